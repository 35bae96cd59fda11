# SPDX-License-Identifier: Apache-2.0
"""The database reader: damaged lines are moved out with a warning, records survive."""

import json
import logging
import os

import pytest
import tvm
from tvm.s_tir import meta_schedule as ms

from autokernel_tvm import database
from autokernel_tvm.progress import count_records
from autokernel_tvm.workloads import Workload

WORKLOAD = Workload("gemm", (16, 16, 16))


def _record(index: int, secs) -> str:
    trace = [[["GetSBlock", [], ["C", "main"], ["b0"]]], []]
    return json.dumps([index, [trace, secs, {"kind": "llvm"}, []]])


@pytest.fixture
def db_dir(tmp_path):
    """A real MetaSchedule JSON database: one workload, three records written by MetaSchedule."""
    db = ms.database.JSONDatabase(work_dir=str(tmp_path))
    entry = db.commit_workload(WORKLOAD.ir_module())
    sch = tvm.s_tir.Schedule(WORKLOAD.ir_module())
    sch.get_sblock("C")
    for secs in ([1e-4], [2e-4], None):
        run_secs = None if secs is None else [tvm.runtime.convert(s) for s in secs]
        args = ms.arg_info.ArgInfo.from_prim_func(WORKLOAD.prim_func())
        record = ms.database.TuningRecord(
            sch.trace, entry, run_secs, tvm.target.Target("llvm"), args
        )
        db.commit_tuning_record(record)
    return str(tmp_path)


def _lines(path):
    with open(path) as f:
        return f.read().splitlines()


def test_intact_database_is_read_and_not_touched(db_dir):
    path = os.path.join(db_dir, database.RECORDS)
    before = os.stat(path).st_mtime_ns
    assert database.repair(db_dir) == []
    assert os.stat(path).st_mtime_ns == before
    recs = list(database.records(db_dir))
    assert [r.run_secs for r in recs] == [(1e-4,), (2e-4,), ()]
    assert recs[0].latency_s == pytest.approx(1e-4) and recs[2].latency_s == float("inf")
    assert count_records(db_dir) == 3
    assert database.workload_keys(db_dir)[0].isdigit()


@pytest.mark.parametrize(
    "damage, line, problem",
    [
        (lambda lines: lines[:1] + [""] + lines[1:], 2, "blank line"),
        (lambda lines: lines + ["   "], 4, "blank line"),
        (lambda lines: lines[:2] + [lines[2][:40]], 3, "half-written or not JSON"),
        (lambda lines: lines + ['{"foreign": 1}'], 4, "not a MetaSchedule tuning record"),
        (lambda lines: lines + [_record(7, [1e-5])], 4, "names workload line 8"),
        (lambda lines: lines + ["\udcff"], 4, "not UTF-8"),
    ],
    ids=["blank-middle", "blank-end", "half-cut", "foreign", "bad-index", "binary"],
)
def test_damaged_record_line_is_moved_out(db_dir, caplog, damage, line, problem):
    path = os.path.join(db_dir, database.RECORDS)
    lines = damage(_lines(path))
    with open(path, "wb") as f:
        f.write("\n".join(lines).encode("utf-8", "surrogateescape"))  # no final newline
    with caplog.at_level(logging.WARNING, logger="autokernel_tvm"):
        warnings = database.repair(db_dir)
    assert len(warnings) == 1 and f"{database.RECORDS} line {line}: {problem}" in warnings[0]
    assert warnings[0] in caplog.text
    aside = [n for n in os.listdir(db_dir) if n.startswith(database.RECORDS + ".damaged-")]
    assert len(aside) == 1 and aside[0] in warnings[0]
    intact = 2 if problem.startswith("half") else 3
    assert count_records(db_dir) == intact
    assert database.repair(db_dir) == []  # repaired for good
    # MetaSchedule itself opens the repaired directory and finds the intact records.
    db = ms.database.JSONDatabase(work_dir=db_dir)
    assert len(db) == intact


def test_damaged_workload_line_takes_its_records_and_renumbers_the_rest(db_dir):
    wl_path = os.path.join(db_dir, database.WORKLOADS)
    rec_path = os.path.join(db_dir, database.RECORDS)
    good = _lines(wl_path)[0]
    with open(wl_path, "w") as f:  # line 1 half-cut (a killed write), line 2 intact
        f.write(good[:100] + "\n" + good + "\n")
    records = _lines(rec_path)
    renumbered = [json.dumps([1, json.loads(r)[1]]) for r in records]
    with open(rec_path, "w") as f:
        f.write("\n".join(records[:1] + renumbered) + "\n")
    warnings = database.repair(db_dir)
    assert f"{database.WORKLOADS} line 1: half-written" in warnings[0]
    assert f"{database.RECORDS} line 1: names workload line 1" in warnings[1]
    assert len(warnings) == 2
    assert [r.workload for r in database.records(db_dir)] == [0, 0, 0]
    assert len(ms.database.JSONDatabase(work_dir=db_dir)) == 3


def test_atomic_write_json_replaces_whole_files(tmp_path):
    path = tmp_path / "sub" / "report.json"
    database.atomic_write_json(path, {"a": 1})
    database.atomic_write_json(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert os.listdir(path.parent) == ["report.json"]  # no temporary file left
    with pytest.raises(TypeError):
        database.atomic_write_json(path, {"c": object()})
    assert json.loads(path.read_text()) == {"b": [1, 2]}  # a failed write leaves the old file
    assert os.listdir(path.parent) == ["report.json"]

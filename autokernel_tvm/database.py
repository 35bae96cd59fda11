# SPDX-License-Identifier: Apache-2.0
"""The one reader of MetaSchedule's JSON database files, and atomic JSON writes.

A MetaSchedule ``JSONDatabase`` directory holds ``database_workload.json`` (one workload per line:
``[structural hash, serialised module]``) and ``database_tuning_record.json`` (one measured
candidate per line: ``[workload line index, [trace, run_secs, target, args_info]]``). MetaSchedule
appends a line per candidate and trusts every line: a blank line segfaults it, a half-written
line (a run killed mid-write, a full disk) or a foreign line crashes it. :func:`repair` runs before
MetaSchedule opens a directory: damaged lines are moved out (the original file is kept aside as
``<file>.damaged-<timestamp>``), the file is rewritten atomically, and each damaged line is named
in a warning. :func:`records` reads measured candidates for progress and summaries.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger("autokernel_tvm")

WORKLOADS = "database_workload.json"
RECORDS = "database_tuning_record.json"


@dataclass(frozen=True)
class Record:
    """One measured candidate: its workload's line index, trace (JSON) and run times (seconds;
    empty when the candidate failed to build or run)."""

    workload: int
    trace: list
    run_secs: tuple[float, ...]
    line: int

    @property
    def latency_s(self) -> float:
        """Mean run time; ``inf`` for a failed candidate."""
        return sum(self.run_secs) / len(self.run_secs) if self.run_secs else float("inf")


def repair(db_dir: str | os.PathLike) -> list[str]:
    """Move damaged lines out of the database files in ``db_dir``; return one warning per line.

    A damaged line is blank, not UTF-8, not JSON, or JSON of another shape; a record whose
    workload line is missing or damaged is damaged too (the records after a removed workload line
    are renumbered). A file that needs no change is not touched.

    Parameters
    ----------
    db_dir : str or PathLike
        A MetaSchedule ``JSONDatabase`` work dir (missing files are fine).

    Returns
    -------
    list of str
        Warnings naming the file and line of each damaged line (also logged on the
        ``autokernel_tvm`` logger).
    """
    db_dir = os.fspath(db_dir)
    warnings: list[str] = []
    wl_path, rec_path = os.path.join(db_dir, WORKLOADS), os.path.join(db_dir, RECORDS)
    renumber: dict[int, int] = {}
    if os.path.exists(wl_path):
        kept, damaged = [], []
        for number, raw, problem in _scan(wl_path, _workload_problem):
            if problem:
                damaged.append((number, problem))
            else:
                renumber[number - 1] = len(kept)
                kept.append(raw)
        warnings += _rewrite(wl_path, kept, damaged)
    if os.path.exists(rec_path):
        kept, damaged, count = [], [], len(renumber)
        for number, raw, problem in _scan(rec_path, _record_problem):
            if not problem:
                index = json.loads(raw)[0]
                if index not in renumber:
                    problem = f"names workload line {index + 1}, which is missing or damaged"
                    problem += f" ({count} intact workload lines)"
                elif renumber[index] != index:
                    raw = json.dumps([renumber[index], json.loads(raw)[1]], separators=(",", ":"))
            if problem:
                damaged.append((number, problem))
            else:
                kept.append(raw)
        warnings += _rewrite(rec_path, kept, damaged)
    for warning in warnings:
        log.warning(warning)
    return warnings


def records(db_dir: str | os.PathLike) -> Iterator[Record]:
    """The intact measured candidates of ``db_dir``, in the order they were recorded.

    Damaged lines are skipped here (:func:`repair` moves them out and warns).
    """
    path = os.path.join(os.fspath(db_dir), RECORDS)
    if not os.path.exists(path):
        return
    for number, raw, problem in _scan(path, _record_problem):
        if problem:
            continue
        index, (trace, run_secs, *_) = json.loads(raw)
        secs = tuple(float(s) for s in (run_secs or ()))
        yield Record(index, trace, secs, number)


def workload_keys(db_dir: str | os.PathLike) -> list[str | None]:
    """The structural-hash key of each workload line of ``db_dir`` by line index (None: the line
    is damaged; :func:`repair` moves it out)."""
    path = os.path.join(os.fspath(db_dir), WORKLOADS)
    if not os.path.exists(path):
        return []
    return [
        None if problem else json.loads(raw)[0]
        for _, raw, problem in _scan(path, _workload_problem)
    ]


def atomic_write_json(path: str | os.PathLike, obj, **dump_kwargs) -> str:
    """Write ``obj`` as JSON to ``path`` so that a reader sees the old file or the new, whole.

    The data goes to a temporary file in the same directory, is flushed to disk (fsync) and then
    renamed over ``path``; a crash at any point leaves no half-written ``path``. ``dump_kwargs``
    go to :func:`json.dump` (default ``indent=1``).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, **{"indent": 1, **dump_kwargs})
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


# ------------------------------------------------------------------------------------------


def _scan(path: str, problem_of) -> Iterator[tuple[int, str, str]]:
    """``(line number, text, problem)`` per line of ``path`` (problem '' if the line is fine)."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            yield number, "", "not UTF-8 text"
            continue
        if not text:
            yield number, text, "blank line"
            continue
        try:
            value = json.loads(text)
        except ValueError as err:
            yield number, text, f"half-written or not JSON ({err.msg} at column {err.colno})"
            continue
        yield number, text, problem_of(value)


def _workload_problem(value) -> str:
    if not (isinstance(value, list) and len(value) == 2):
        return "not a MetaSchedule workload ([hash, module])"
    if not (isinstance(value[0], str) and value[0].isdigit() and isinstance(value[1], str)):
        return "not a MetaSchedule workload ([hash, module])"
    return ""


def _record_problem(value) -> str:
    shape = "not a MetaSchedule tuning record ([workload, [trace, run_secs, ...]])"
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], list)):
        return shape
    index, body = value
    if not (isinstance(index, int) and not isinstance(index, bool) and index >= 0):
        return shape
    if len(body) < 2 or not isinstance(body[0], list):
        return shape
    secs = body[1]
    if secs is not None and not (
        isinstance(secs, list) and all(isinstance(s, int | float) for s in secs)
    ):
        return shape
    return ""


def _rewrite(path: str, kept: list[str], damaged: list[tuple[int, str]]) -> list[str]:
    """Rewrite ``path`` with the ``kept`` lines if that changes it; the original is kept aside
    when lines were ``damaged``. Returns one warning per damaged line."""
    new = "".join(line + "\n" for line in kept).encode()
    with open(path, "rb") as f:
        old = f.read()
    if new == old:
        return []
    aside = ""
    if damaged:
        aside = f"{path}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        with open(aside, "wb") as f:
            f.write(old)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "wb") as f:
        f.write(new)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return [
        f"{path} line {number}: {problem}; moved out of the database (original kept as "
        f"{os.path.basename(aside)})"
        for number, problem in damaged
    ]

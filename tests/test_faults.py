# SPDX-License-Identifier: Apache-2.0
"""Faults injected into real tuning runs (scripts/tune.py, a 64^3 llvm GEMM, 4 trials).

Each run is a subprocess; ``AUTOKERNEL_FAULT`` (see ``autokernel_tvm.config.fault_point``) makes
it SIGKILL itself, segfault a builder worker or hang a measurement at a named point. After each
fault the run (or its rerun) must complete, keep every record measured before the fault, and
export a kernel that passes the correctness gate.
"""

import json
import os
import signal
import subprocess
import sys

import pytest
import tvm

from autokernel_tvm import database
from autokernel_tvm.config import ConfigError, TuneConfig, fault_point
from autokernel_tvm.verify import verify
from autokernel_tvm.workloads import Workload

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = Workload("gemm", (64, 64, 64))
TRIALS = 4


def tune(work: str, fault: str = "", counter: str = "", timeout: float = 300):
    """One ``scripts/tune.py`` run on ``work`` (a rerun resumes); ``fault`` as AUTOKERNEL_FAULT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOKERNEL_FAULT")}
    env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
    env["AUTOKERNEL_RUNNER_TIMEOUT_S"] = "8"
    if fault:
        env["AUTOKERNEL_FAULT"] = fault
        env["AUTOKERNEL_FAULT_COUNTER"] = os.path.join(work, f"fault-counter-{counter}")
    cmd = [
        sys.executable,
        os.path.join(ROOT, "scripts", "tune.py"),
        *("--target", "llvm", "--op", "gemm", "--shape", "64,64,64", "--space", "stock"),
        *("--trials", str(TRIALS), "--trials-per-iter", "2", "--build-workers", "1"),
        *("--work-dir", os.path.join(work, "runs"), "--export", os.path.join(work, "g.so")),
        "--no-progress",
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def db_dir(work: str) -> str:
    return os.path.join(work, "runs", WORKLOAD.name, "stock")


def record_lines(work: str) -> set[str]:
    path = os.path.join(db_dir(work), database.RECORDS)
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {line.strip() for line in f if line.strip()}


def completed(work: str, proc: subprocess.CompletedProcess) -> dict | None:
    """The run's report if it exited 0 with all trials in its database and exported a kernel
    that passes the correctness gate (checked again here, on the loaded library); else None."""
    if proc.returncode != 0 or sum(1 for _ in database.records(db_dir(work))) < TRIALS:
        return None
    with open(os.path.join(work, "g.so.json")) as f:
        manifest = json.load(f)
    (entry,) = manifest["kernels"]
    kernel = tvm.runtime.load_module(os.path.join(work, "g.so"))[entry["name"]]
    if not (
        entry["verify"]["passed"] and verify(kernel, WORKLOAD, kinds=("normal", "exact")).passed
    ):
        return None
    with open(os.path.join(work, "runs", WORKLOAD.name, "report.json")) as f:
        return json.load(f)


def damage_records(work: str) -> tuple[set[str], str]:
    """A blank line (MetaSchedule segfaults), a foreign line (KeyError) and a half-cut last line
    in the records file; returns the intact lines and the half-cut one."""
    path = os.path.join(db_dir(work), database.RECORDS)
    with open(path) as f:
        lines = f.read().splitlines()
    damaged = [lines[0], "", *lines[1:-1], '{"not": "a record"}', lines[-1][:50]]
    with open(path, "w") as f:
        f.write("\n".join(damaged))
    return set(lines[:-1]), lines[-1]


def half_cut_workloads(work: str) -> None:
    path = os.path.join(db_dir(work), database.WORKLOADS)
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text[: len(text) // 2])  # every record is orphaned: the rerun tunes afresh


def test_fault_point_counts_arrivals_across_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOKERNEL_FAULT", "kill@x#3,segv@y")
    monkeypatch.setenv("AUTOKERNEL_FAULT_COUNTER", str(tmp_path / "count"))
    fault_point("x")  # arrivals 1 and 2 here: nothing happens
    fault_point("x")
    fault_point("z")  # another point: not counted
    code = "from autokernel_tvm.config import fault_point; fault_point('x'); print('alive')"
    env = {**os.environ, "PYTHONPATH": ROOT}
    third = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert third.returncode == -signal.SIGKILL and b"alive" not in third.stdout
    fourth = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert fourth.returncode == 0 and b"alive" in fourth.stdout  # only the 3rd arrival
    assert (tmp_path / "count.x").read_bytes() == b"...."
    monkeypatch.setenv("AUTOKERNEL_FAULT", "explode@x")
    with pytest.raises(ConfigError, match="AUTOKERNEL_FAULT: action 'explode'"):
        fault_point("x")


def test_runner_timeout_from_the_environment(monkeypatch):
    monkeypatch.setenv("AUTOKERNEL_RUNNER_TIMEOUT_S", "2.5")
    assert TuneConfig.from_env().runner_timeout_s == 2.5


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """Five runs of one tuning job, each with faults (kept short: every run costs ~25 s):

    1-3. kill -9 mid-build, mid-measure and mid-export;
    4. damaged record lines, then a plain rerun that must complete;
    5. a half-cut workload file, a builder worker that segfaults on one candidate and a
       measurement that hangs past the runner timeout on another.
    """
    work = str(tmp_path_factory.mktemp("faults"))
    steps = {}
    plan = [
        ("build", "kill@build#2", None),
        ("measure", "kill-parent@measure#1", None),
        ("export", "kill@compile#2", None),
        ("damaged-records", "", damage_records),
        ("workloads-segv-hang", "segv@worker-build#2,hang@measure#3", half_cut_workloads),
    ]
    for name, fault, damage in plan:
        damaged = damage(work) if damage else None
        before = record_lines(work)
        proc = tune(work, fault, counter=name)
        exported = os.path.exists(os.path.join(work, "g.so"))
        steps[name] = (before, record_lines(work), proc, exported, damaged, completed(work, proc))
        if damage is None:  # the damaged steps check what survived in their tests
            assert_no_record_lost(name, before, steps[name][1])
    if os.environ.get("FAULTS_TABLE"):  # rows for benchmarks/results/robustness_faults.md
        _write_rows(os.environ["FAULTS_TABLE"], plan, steps)
    return work, steps


def _write_rows(path: str, plan, steps) -> None:
    rows = []
    for name, fault, _ in plan:
        before, after, proc, _, damaged, report = steps[name]
        kept = damaged[0] if name == "damaged-records" else before
        if name == "workloads-segv-hang":
            kept = set()  # every record was orphaned by the half-cut workload line (kept aside)
        failures = (report or {}).get("failures", {})
        rows.append(
            f"| {name} | `{fault or '-'}` | {proc.returncode} | "
            f"{'yes' if report else 'no (killed; the next run resumes)'} | "
            f"{len(before)} -> {len(after)} | {len(kept - after)} | "
            f"{sum(failures.values()) if report else '-'} |"
        )
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")


def assert_no_record_lost(name, before, after):
    assert before <= after, f"{name}: records lost: {len(before - after)}"


@pytest.mark.slow
@pytest.mark.parametrize("point", ["build", "measure", "export"])
def test_kill_9_keeps_every_record(campaign, point):
    _, steps = campaign
    before, after, proc, exported, _, _ = steps[point]
    assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-2000:])
    assert not exported  # no run got as far as a finished export
    if point == "build":
        assert 0 < len(after) < TRIALS  # killed after the first batch, before the second
    if point == "measure":
        assert len(before) < len(after) or len(after) < TRIALS
    if point == "export":
        assert len(after) >= TRIALS  # all trials were measured and kept


@pytest.mark.slow
def test_damaged_record_lines_warn_and_the_rerun_completes(campaign):
    work, steps = campaign
    before, after, proc, _, (intact, half_cut), report = steps["damaged-records"]
    assert report is not None, proc.stderr[-3000:]
    warned = report["space_report"]["database_warnings"]
    last = len(intact) + 3  # + the blank and the foreign line
    for line, problem in ((2, "blank line"), (last - 1, "not a MetaSchedule"), (last, "half-")):
        hit = [w for w in warned if f"{database.RECORDS} line {line}: {problem}" in w]
        assert hit, warned
        assert hit[0] in proc.stderr  # through the autokernel_tvm logger too
    assert intact <= after  # every intact record survived; the half-cut one was re-measured
    asides = [n for n in os.listdir(db_dir(work)) if n.startswith(database.RECORDS + ".dam")]
    kept = []
    for name in asides:  # (the next step moves its orphaned records aside too)
        with open(os.path.join(db_dir(work), name)) as f:
            kept.append(half_cut[:50] in f.read())
    assert any(kept)  # and the damaged original was kept


@pytest.mark.slow
def test_half_cut_workloads_segfault_and_hang_cost_only_their_candidates(campaign):
    work, steps = campaign
    _, after, proc, _, _, report = steps["workloads-segv-hang"]
    assert report is not None, proc.stderr[-3000:]
    warned = report["space_report"]["database_warnings"]
    assert any(f"{database.WORKLOADS} line 1: half-written" in w for w in warned), warned
    failures = report["failures"]
    assert failures.get("run: timeout") == 1, failures
    assert sum(n for reason, n in failures.items() if reason.startswith("build:")) == 1, failures
    assert sum(failures.values()) == 2, failures


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("AUTOKERNEL_BUILD_WORKERS", "abc", "AUTOKERNEL_BUILD_WORKERS='abc': not an integer"),
        ("AUTOKERNEL_BUILD_WORKERS", "-2", "AUTOKERNEL_BUILD_WORKERS='-2': must be >= 0"),
        ("AUTOKERNEL_RUNNER_TIMEOUT_S", "0", "AUTOKERNEL_RUNNER_TIMEOUT_S='0': must be > 0"),
        ("AUTOKERNEL_RUNNER_TIMEOUT_S", "x", "AUTOKERNEL_RUNNER_TIMEOUT_S='x': not a number"),
        ("AUTOKERNEL_STRICT", "maybe", "AUTOKERNEL_STRICT='maybe': 1 (on) or 0 (off)"),
    ],
)
def test_bad_environment_values_name_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        TuneConfig.from_env()
    assert str(err.value) == message


def test_wrongly_typed_options_and_impossible_shapes_are_named():
    with pytest.raises(ConfigError, match="trials must be int, got '4'"):
        TuneConfig(trials="4")
    with pytest.raises(ConfigError, match="strict must be bool, got 1"):
        TuneConfig(strict=1)
    from autokernel_tvm.workloads import Workload, WorkloadError

    with pytest.raises(WorkloadError, match=r"output of shape \(1, -1, -1, 1\)"):
        Workload("conv2d_nhwc", (1, 3, 3, 1, 1, 5, 5, 1, 0))

# SPDX-License-Identifier: Apache-2.0
"""Measuring through a TVM RPC tracker, on loopback: ``scripts/rpc_servers.py`` starts a tracker
and two CPU servers for this module; every process is stopped at the end, also on failure.

The last test kills one of the two servers, so it stays last; the one before stops one for a
while (a hang) and resumes it.
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import psutil
import pytest
import tvm
from tvm.s_tir import meta_schedule as ms

from autokernel_tvm import rpc
from autokernel_tvm.builder import PoolBuilder
from autokernel_tvm.config import ConfigError, TuneConfig
from autokernel_tvm.progress import count_records
from autokernel_tvm.targets import make_target
from autokernel_tvm.tuner import Tuner
from autokernel_tvm.workloads import Workload

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "rpc_servers.py")
KEY = "ak-test"
W = Workload("gemm", (64, 64, 64))  # fp32


@dataclass
class Cluster:
    tracker: str
    pids: list  # tracker, then the servers (each leads its process group)
    servers: list  # host:port of each server, as the tracker reports it
    log_dir: str


@pytest.fixture(scope="module", autouse=True)
def launched(tmp_path_factory):
    """``scripts/rpc_servers.py`` started before the first test, so that the servers boot while
    the tests that need none run; stopped (with everything it started) after the last."""
    log_dir = str(tmp_path_factory.mktemp("rpc_logs"))
    cmd = [sys.executable, SCRIPT, "--cpu", "2", "--port", "0", "--key", KEY, "--log-dir", log_dir]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        yield proc, lines, log_dir
    finally:
        proc.send_signal(signal.SIGTERM)  # the script stops its process groups
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        pids = [int(ln.split()[-1]) for ln in lines if ln.startswith("tracker ")]
        pids += [int(ln.split()[3]) for ln in lines if ln.startswith("server ")]
        for pid in pids:  # whatever the script left
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def cluster(launched):
    proc, lines, log_dir = launched
    deadline = time.time() + 150  # two TVM imports per server on 2 busy cores
    while not any(line.startswith("ready") for line in lines):
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail("rpc_servers.py did not get ready: " + "".join(lines)[-2000:])
        time.sleep(0.2)
    tracker = next(ln.split()[1] for ln in lines if ln.startswith("tracker "))
    pids = [int(ln.split()[-1]) for ln in lines if ln.startswith("tracker ")]
    pids += [int(ln.split()[3]) for ln in lines if ln.startswith("server ")]
    servers = [ln.split()[1] for ln in lines if ln.startswith("server ")]
    return Cluster(tracker, pids, servers, log_dir)


@pytest.fixture(scope="module")
def builder():
    """One build pool for both tuning runs (its workers start once)."""
    pool = PoolBuilder("llvm")
    yield pool
    pool.shutdown()


def config(tmp_path, tracker: str, **kw) -> TuneConfig:
    values = dict(
        target="llvm",
        trials=8,
        trials_per_iter=4,
        work_dir=str(tmp_path),
        space="stock",
        save_library=False,
        runner_min_repeat_ms=10,
        rpc_tracker=tracker,
        rpc_key=KEY,
    )
    return TuneConfig(**{**values, **kw})


def test_rpc_options_are_checked_with_one_line_errors():
    with pytest.raises(ConfigError, match="HOST:PORT"):
        TuneConfig(rpc_tracker="localhost", rpc_key=KEY)
    with pytest.raises(ConfigError, match="port must be in 1..65535"):
        TuneConfig(rpc_tracker="localhost:0", rpc_key=KEY)
    with pytest.raises(ConfigError, match="rpc_key is empty"):
        TuneConfig(rpc_tracker="localhost:9190")
    with pytest.raises(ConfigError, match="without rpc_tracker"):
        TuneConfig(rpc_key=KEY)
    with pytest.raises(ConfigError, match="rpc_devices must be >= 0"):
        TuneConfig(rpc_tracker="localhost:9190", rpc_key=KEY, rpc_devices=-1)
    settings = rpc.RPCSettings.parse("10.0.0.7:9190", "h200", 4)
    assert (settings.host, settings.port, settings.key, settings.devices) == (
        "10.0.0.7",
        9190,
        "h200",
        4,
    )


def test_dead_tracker_fails_fast(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tuner = Tuner(config(tmp_path, f"127.0.0.1:{port}"), progress=False)
    start = time.time()
    with pytest.raises(rpc.RPCError, match=f"tracker 127.0.0.1:{port} does not answer"):
        tuner.tune(W)
    assert time.time() - start < 10


def test_cli_flags_and_env_reach_the_config(tmp_path, monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("tune_cli", os.path.join(ROOT, "scripts/tune.py"))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    argv = ["--op", "gemm", "--shape", "64,64,64", "--work-dir", str(tmp_path), "--no-progress"]
    code = cli.main([*argv, "--rpc-tracker", "127.0.0.1:1", "--rpc-key", KEY, "--rpc-devices", "2"])
    assert code == 2
    assert "RPC tracker 127.0.0.1:1 does not answer" in capsys.readouterr().err
    monkeypatch.setenv("AUTOKERNEL_RPC_TRACKER", "10.0.0.7:9190")
    monkeypatch.setenv("AUTOKERNEL_RPC_KEY", "h200")
    cfg = TuneConfig.from_env(rpc_devices=2)
    assert (cfg.rpc_tracker, cfg.rpc_key, cfg.rpc_devices) == ("10.0.0.7:9190", "h200", 2)


def test_wrong_key_fails_fast(cluster, tmp_path):
    tuner = Tuner(config(tmp_path, cluster.tracker, rpc_key="no-such-key"), progress=False)
    start = time.time()
    with pytest.raises(
        rpc.RPCError, match=rf"no server with key 'no-such-key' \(keys there: \['{KEY}'\]\)"
    ):
        tuner.tune(W)
    assert time.time() - start < 10
    with pytest.raises(rpc.RPCError, match="rpc_devices=3 but tracker .* has 2 server"):
        Tuner(config(tmp_path, cluster.tracker, rpc_devices=3), progress=False).tune(W)


def test_closing_the_tuner_stops_the_runners_workers(cluster, tmp_path):
    """The runner's pool of workers (one a server) is stopped with the tuner's builder: a pool
    collected in one of its own threads fails ("cannot join current thread")."""
    with Tuner(config(tmp_path, cluster.tracker), progress=False) as tuner:
        runner = tuner.runner
        assert isinstance(runner, rpc.TrackerRunner)
    with pytest.raises(RuntimeError, match="after shutdown"):
        runner.pool.submit(time.sleep, 0)


@pytest.fixture(scope="module")
def stock_run(cluster, builder, tmp_path_factory):
    work = tmp_path_factory.mktemp("stock")
    tuner = Tuner(config(work, cluster.tracker), builder=builder, progress=False)
    return tuner, tuner.tune(W), str(work)


@pytest.mark.slow
def test_stock_tuning_measures_on_both_servers(cluster, stock_run):
    _, result, work = stock_run
    assert result.verify["passed"]
    assert count_records(os.path.join(work, W.name, "stock")) == 8
    report = result.space_report["rpc"]
    assert report["workers"] == 2
    assert sorted(report["measured"]) == sorted(cluster.servers)  # both servers measured
    assert sum(report["measured"].values()) == 8 and not report["failed"] and not report["lost"]
    phases = report["seconds_per_session"]
    assert set(phases) == {"wait_server", "connect", "upload_load", "measure"}
    assert all(0 <= t < 60 for t in phases.values())


@pytest.mark.slow
def test_whole_kernel_candidate_is_timed_on_a_server(stock_run, tmp_path):
    """The path of ``cuda.wgmma`` kernels (KernelMeasurer): export, upload, load, time."""
    tuner = stock_run[0]
    before = sum(tuner.runner.measured.values())
    sch = tvm.s_tir.Schedule(W.ir_module())
    sch.parallel(sch.get_loops(sch.get_sblock("C"))[0])
    record = tuner.kernel_measurer._measure(W, sch.mod, str(tmp_path / "kernel.json"))
    assert record["failure"] is None and 0 < record["latency_s"] < 1.0
    assert sum(tuner.runner.measured.values()) == before + 1


def _free_servers(cluster) -> int:
    settings = rpc.RPCSettings.parse(cluster.tracker, KEY)
    return rpc.check_tracker(settings)[1]


def _wait_free(cluster, n: int, timeout_s: float = 30.0) -> bool:
    deadline = time.time() + timeout_s
    while _free_servers(cluster) < n:
        if time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.slow
def test_hung_server_costs_only_a_timeout(cluster, builder):
    """Server B hangs (SIGSTOP) with a candidate sent to it: the worker is killed at the pool
    timeout and the candidate is measured on A; B serves again once it resumes."""
    target = make_target("llvm")
    (built,) = builder.build([ms.builder.BuilderInput(W.ir_module(), target)])
    args_info = [ms.arg_info.TensorInfo(a.dtype, list(a.shape)) for a in (*W.inputs, W.output)]
    settings = rpc.RPCSettings.parse(cluster.tracker, KEY, timeout_s=1.0)  # pool timeout 12 s
    evaluator = ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=10)
    runner = rpc.TrackerRunner(settings, evaluator, 2, "cpu")
    pair = [ms.runner.RunnerInput(built.artifact_path, "cpu", args_info)] * 2
    try:
        assert [f.result().error_msg for f in runner.run(pair)] == [None, None]  # workers warm
        assert _wait_free(cluster, 2)  # both servers back in the tracker's queue
        os.killpg(cluster.pids[2], signal.SIGSTOP)
        try:
            results = [f.result() for f in runner.run(pair)]
        finally:
            os.killpg(cluster.pids[2], signal.SIGCONT)
        assert [r.error_msg for r in results] == [None, None]
        assert sum(runner.lost.values()) == 1 and not runner.failed
        assert runner.measured[cluster.servers[0]] >= 2
        assert _wait_free(cluster, 2)  # B re-registered after resuming
    finally:
        runner.shutdown()


def _records(work_dir: str) -> int:
    paths = glob.glob(os.path.join(work_dir, "**", "database_tuning_record.json"), recursive=True)
    return sum(count_records(os.path.dirname(p)) for p in paths)


def _hang_then_kill(cluster, work_dir: str, events: list) -> None:
    """After the first batch: stop server B (a hang), wait until a worker is connected to it,
    then kill it, so that a candidate is in flight on the server that dies."""
    pid, port = cluster.pids[2], int(cluster.servers[1].rsplit(":", 1)[1])
    deadline = time.time() + 120
    while _records(work_dir) < 4 and time.time() < deadline:
        time.sleep(0.2)
    # B must be back at the tracker as free before it hangs, or the next batch never picks it
    # (CI, 2 busy cores: B had not re-registered, the batch went to A, nothing was in flight)
    _wait_free(cluster, 2, timeout_s=10.0)
    os.killpg(pid, signal.SIGSTOP)
    events.append(("stopped", _records(work_dir)))
    while time.time() < deadline:
        conns = psutil.net_connections("tcp")
        if any(c.laddr and c.laddr.port == port and c.status == "ESTABLISHED" for c in conns):
            events.append(("connected", _records(work_dir)))
            break
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)
    events.append(("killed", _records(work_dir)))


@pytest.mark.slow
def test_server_killed_mid_run_costs_nothing(cluster, builder, tmp_path):
    """Generative space, 8 trials in batches of 4; server B dies with a candidate in flight."""
    work = str(tmp_path)
    events: list = []
    watcher = threading.Thread(target=_hang_then_kill, args=(cluster, work, events), daemon=True)
    watcher.start()
    cfg = config(tmp_path, cluster.tracker, space="generative")
    result = Tuner(cfg, builder=builder, progress=False).tune(W)
    watcher.join(timeout=10)
    assert [e[0] for e in events] == ["stopped", "connected", "killed"], events
    assert 4 <= events[0][1] < 8  # B stopped after the first batch, before the last
    assert _records(work) == 8 == result.trials  # nothing lost
    report = result.space_report["rpc"]
    assert report["lost"] == {cluster.servers[1]: 1}, report  # its candidate went elsewhere
    assert not report["failed"] and sum(report["measured"].values()) == 8
    assert result.verify["passed"]


def test_a_runner_without_servers_fails_its_batch_at_once(cluster, builder):
    """With no server of the key left at the tracker (all killed mid-run), a batch fails at
    once with the tracker's reason instead of each candidate waiting out a pool timeout."""
    target = make_target("llvm")
    (built,) = builder.build([ms.builder.BuilderInput(W.ir_module(), target)])
    args_info = [ms.arg_info.TensorInfo(a.dtype, list(a.shape)) for a in (*W.inputs, W.output)]
    settings = rpc.RPCSettings.parse(cluster.tracker, "nobody-serves-this", timeout_s=30.0)
    evaluator = ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=10)
    runner = rpc.TrackerRunner(settings, evaluator, 1, "cpu")
    start = time.time()
    try:
        results = [f.result() for f in runner.run([ms.runner.RunnerInput(
            built.artifact_path, "cpu", args_info)] * 2)]  # fmt: skip
    finally:
        runner.shutdown()
    assert time.time() - start < 10  # not 2 x the 70 s pool timeout
    assert all("no server with key 'nobody-serves-this'" in r.error_msg for r in results)

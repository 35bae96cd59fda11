# SPDX-License-Identifier: Apache-2.0
"""PoolBuilder housekeeping: artifacts under one folder removed at shutdown, folders of killed
runs removed by the next builder, workers that die with the process that started them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import tvm
from conftest import GEMM_NT
from tvm.s_tir import meta_schedule as ms

from autokernel_tvm.builder import BUILD_ROOT_PREFIX, PoolBuilder
from autokernel_tvm.targets import make_target


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_artifacts_live_under_one_folder_removed_at_shutdown():
    stale = tempfile.mkdtemp(prefix=f"{BUILD_ROOT_PREFIX}{_dead_pid()}_")
    alive = tempfile.mkdtemp(prefix=f"{BUILD_ROOT_PREFIX}{os.getpid()}_other_")
    builder = PoolBuilder("llvm", max_workers=1)
    try:
        assert not os.path.exists(stale)  # left by a run killed with -9: removed
        assert os.path.isdir(alive)  # its process is alive: kept
        mod = tvm.s_tir.Schedule(GEMM_NT.ir_module()).mod
        (result,) = builder.build([ms.builder.BuilderInput(mod, make_target("llvm"))])
        assert result.error_msg is None, result.error_msg
        assert result.artifact_path.startswith(builder.root + os.sep)
        assert os.path.exists(result.artifact_path)
    finally:
        builder.shutdown()
        os.rmdir(alive)
    assert not os.path.exists(builder.root)


def _children() -> set[int]:
    """This process's child processes (Linux /proc)."""
    tasks = f"/proc/{os.getpid()}/task"
    kids = set()
    for tid in os.listdir(tasks):
        with open(f"{tasks}/{tid}/children") as f:
            kids |= {int(pid) for pid in f.read().split()}
    return kids


def test_warm_starts_workers_before_any_build():
    # the workers a tuner's first batch needs start (and import TVM) at once, with no job of
    # their own yet, and the builds then run on them rather than on new ones
    before = _children()
    builder = PoolBuilder("llvm", max_workers=2)
    try:
        builder.warm(2)
        deadline = time.time() + 60
        while len(_children() - before) < 2 and time.time() < deadline:
            time.sleep(0.1)
        warmed = _children() - before
        assert len(warmed) == 2, warmed
        mod = tvm.s_tir.Schedule(GEMM_NT.ir_module()).mod
        results = builder.build([ms.builder.BuilderInput(mod, make_target("llvm"))] * 2)
        assert all(r.error_msg is None for r in results), results
        assert _children() - before == warmed  # no third worker was started for them
    finally:
        builder.shutdown()


def test_worker_dies_with_its_parent(tmp_path):
    # A parent starts a pool worker (die_with_parent as its initializer), gives it a job of a
    # minute and is killed with -9: the busy worker must go at once, not when its job ends.
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "from tvm.support.popen_pool import PopenPoolExecutor\n"
        "from autokernel_tvm.builder import die_with_parent\n"
        "pool = PopenPoolExecutor(max_workers=1, initializer=die_with_parent)\n"
        "print(pool.submit(os.getpid).result(), flush=True)\n"
        "pool.submit(time.sleep, 60)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    worker = int(parent.stdout.readline())
    time.sleep(0.5)  # the sleep job has reached the worker
    parent.kill()
    parent.wait()
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(worker, 9)
    raise AssertionError(f"worker {worker} outlived its parent by 5 s")


def test_an_rpc_failure_keeps_the_servers_own_reason():
    """An RPC error's first line is only "Error caught from RPC call:"; the server's reason
    ends the traceback it sends back."""
    from autokernel_tvm.builder import failure_reason

    sent = (
        "RPCError: Error caught from RPC call:\nTraceback (most recent call last):\n"
        '  File "x.py", line 3\nRuntimeError: CUDA: no device 0 found on this server\n'
    )
    assert failure_reason(sent) == "RPC server: CUDA: no device N found on this server"
    assert failure_reason("RPCError: Error caught from RPC call:\n") == "RPC server: no reason sent"

# SPDX-License-Identifier: Apache-2.0
"""Diagnose RPC measurement on this machine: one built candidate through a loopback RPC server,
step by step (connect, upload + load_module, allocate, time), with the full error of the step
that fails and the server's log. Tries the server with ``scripts/rpc_servers.py``'s environment
(``SERVER_ENV``) and bare (where CUDA sessions failed with cudaErrorInitializationError).

    python benchmarks/gpu/rpc_probe.py [--target cuda] [--arch sm_90a]

Candidates: a small GEMM scheduled by TVM's dlight rules (a module like a MetaSchedule
candidate) and, on sm_90a, the default ``cuda.wgmma`` whole kernel. Prints one line per
(server mode, candidate).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback

os.environ.setdefault("TVM_CUDA_COMPILE_MODE", "nvcc")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tvm import rpc  # noqa: E402
from tvm.s_tir import meta_schedule as ms  # noqa: E402
from tvm.s_tir.meta_schedule.runner import rpc_runner  # noqa: E402

from autokernel_tvm.builder import build_module  # noqa: E402
from autokernel_tvm.families import get  # noqa: E402
from autokernel_tvm.targets import make_target  # noqa: E402
from autokernel_tvm.workloads import Workload  # noqa: E402
from scripts.rpc_servers import SERVER_ENV  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def candidates(target, tmp):
    w = Workload("gemm_nt", (1024, 1024, 1024), "float16", "float16")
    mod = w.ir_module()
    if target.kind.name != "llvm":  # an unscheduled GPU kernel runs on the host: bind threads
        from tvm.s_tir import dlight

        with target:
            mod = dlight.ApplyDefaultSchedule(dlight.gpu.Matmul(), dlight.gpu.Fallback())(mod)
    yield "dlight", w, build_module(mod, target)
    if str(target.attrs.get("arch", "")) == "sm_90a":
        family = get("cuda.wgmma")
        yield "wgmma", w, build_module(family.candidate(family.default, w, target).mod, target)


def probe(port, path, workload, device_type) -> str:
    step = "connect"
    try:
        sess = rpc.connect("127.0.0.1", port, session_timeout=60)
        dev = sess.device(device_type, 0)
        step = "upload+load"
        mod = rpc_runner.default_upload_module(sess, path, os.path.basename(path))
        step = "alloc"
        info = [
            ms.arg_info.TensorInfo(a.dtype, list(a.shape)).as_json()
            for a in (*workload.inputs, workload.output)
        ]
        args = rpc_runner.default_alloc_argument(sess, dev, info, 1)
        step = "time"
        ev = ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=0,
                                       enable_cpu_cache_flush=False)  # fmt: skip
        secs = rpc_runner.default_run_evaluator(sess, mod, dev, ev, args)
        return f"ok {1e6 * sum(secs) / len(secs):.1f} us"
    except Exception:
        return f"FAILED at {step}:\n{traceback.format_exc()[-3000:]}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="cuda")
    p.add_argument("--arch", default="sm_90a")
    args = p.parse_args()
    target = make_target(args.target, args.arch if args.target == "cuda" else None)
    device_type = "cpu" if args.target == "llvm" else args.target
    with tempfile.TemporaryDirectory() as tmp:
        built = []
        for name, w, exe in candidates(target, tmp):
            path = os.path.join(tmp, f"{name}.so")
            exe.export_library(path)
            built.append((name, w, path))
        # the fix scripts/rpc_servers.py applies first, then the bare server that showed the fault
        for mode in ("fixed env", "bare"):
            port = free_port()
            log = os.path.join(tmp, "server.log")
            cmd = [sys.executable, "-m", "tvm.exec.rpc_server", "--host", "127.0.0.1",
                   "--port", str(port), "--port-end", str(port + 1)]  # fmt: skip
            env = {**os.environ, **(SERVER_ENV if mode == "fixed env" else {})}
            server = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
            for _ in range(120):
                if "bind to" in open(log).read():
                    break
                time.sleep(0.5)
            for name, w, path in built:
                print(f"[server {mode}] {name}: {probe(port, path, w, device_type)}")
            server.kill()
            server.wait()
            print(f"--- server log ({mode}) ---\n{open(log).read()[-3000:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

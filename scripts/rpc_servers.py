#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Start a TVM RPC tracker and one RPC server per GPU (or N CPU servers); stop them on Ctrl-C.

    python scripts/rpc_servers.py --key h200                      # tracker :9190, a server per GPU
    python scripts/rpc_servers.py --key h200 --gpus 0,1           # GPUs 0 and 1 only
    python scripts/rpc_servers.py --key cpu --cpu 2 --port 0      # 2 CPU servers, any free port
    python scripts/rpc_servers.py --key h200 --tracker HOST:9190 --host 0.0.0.0   # servers only

Each process (``python -m tvm.exec.rpc_tracker`` / ``tvm.exec.rpc_server``) runs in its own process
group; a GPU server sees one GPU (``CUDA_VISIBLE_DEVICES=i``), a CPU server ``cores / N`` threads
(``TVM_NUM_THREADS``). Once every server is registered it prints ``tracker HOST:PORT key KEY pid
PID``, one ``server HOST:PORT pid PID`` line each and ``ready``, then waits; SIGINT or SIGTERM
stops them all. Logs go to ``--log-dir``. Tune through them with ``scripts/tune.py
--rpc-tracker HOST:PORT --rpc-key KEY``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--key", default="autokernel", help="device key the servers register with")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: other hosts)")
    p.add_argument("--port", type=int, default=9190, help="tracker port (0: any free port)")
    p.add_argument("--tracker", metavar="HOST:PORT", help="use this tracker; start none")
    p.add_argument("--gpus", default="all", help="'all' or comma-separated GPU indices")
    p.add_argument("--cpu", type=int, default=0, metavar="N", help="N CPU servers instead of GPUs")
    p.add_argument("--log-dir", default="", help="process logs (default: a new temp dir)")
    p.add_argument("--wait-s", type=float, default=120.0, help="give up if not ready by then")
    return p.parse_args(argv)


#: The server forks a process per session; CUDA must not be initialized before that fork, or
#: every session fails with cudaErrorInitializationError. Importing tvm imports tvm_ffi, which
#: (with torch installed) calls torch.cuda.is_available() -- a CUDA runtime call -- unless its
#: torch DLPack bridge is off; torch's NVML-based check avoids the runtime call as well.
SERVER_ENV = {"TVM_FFI_DISABLE_TORCH_C_DLPACK": "1", "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}


class Processes:
    """The started processes, each the leader of its own process group."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list, env: dict | None = None) -> subprocess.Popen:
        with open(os.path.join(self.log_dir, name + ".log"), "w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # Ctrl-C in the terminal reaches only this script
            )
        self.procs[name] = proc
        return proc

    def dead(self) -> list:
        return [(n, p.returncode) for n, p in self.procs.items() if p.poll() is not None]

    def log_tail(self, name: str) -> str:
        with open(os.path.join(self.log_dir, name + ".log")) as f:
            return "".join(f.readlines()[-5:]).strip()

    def stop(self) -> None:
        """SIGTERM each group, SIGKILL what is left after 3 s."""
        for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 1.0)):
            for proc in self.procs.values():
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            end = time.time() + wait_s
            while time.time() < end and any(p.poll() is None for p in self.procs.values()):
                time.sleep(0.1)


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def gpu_list(spec: str) -> list[str]:
    if spec != "all":
        return [g.strip() for g in spec.split(",") if g.strip()]
    if shutil.which("nvidia-smi") is None:
        raise SystemExit("error: --gpus all needs nvidia-smi; give --gpus 0,1,... or --cpu N")
    out = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True).stdout
    gpus = [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    if not gpus:
        raise SystemExit("error: nvidia-smi lists no GPU; use --cpu N for CPU servers")
    return gpus


def wait_for(what: str, check, procs: Processes, deadline: float):
    """Poll ``check()`` until it returns a value; fail on a dead process or at ``deadline``."""
    while True:
        value = check()
        if value:
            return value
        for name, code in procs.dead():
            raise SystemExit(f"error: {name} exited ({code}): {procs.log_tail(name)}")
        if time.time() > deadline:
            raise SystemExit(f"error: {what} not ready in time; logs in {procs.log_dir}")
        time.sleep(0.3)


def main(argv=None) -> int:
    args = parse_args(argv)
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="ak_rpc_")
    os.makedirs(log_dir, exist_ok=True)
    devices = [str(i) for i in range(args.cpu)] if args.cpu else gpu_list(args.gpus)
    procs = Processes(log_dir)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        deadline = time.time() + args.wait_s
        if args.tracker:
            host, _, port = args.tracker.rpartition(":")
            if not host or not port.isdigit():
                raise SystemExit(f"error: --tracker must be HOST:PORT, got {args.tracker!r}")
            port = int(port)
        else:
            host, port = args.host, args.port or free_port(args.host)
            track = ["--host", host, "--port", str(port), "--port-end", str(port + 1)]
            procs.start("tracker", ["tvm.exec.rpc_tracker", *track])
        from tvm.rpc import base

        from autokernel_tvm.rpc import tracker_call

        def summary():
            try:
                return tracker_call(host, port, [base.TrackerCode.SUMMARY], 5.0)[1]
            except (OSError, EOFError):
                return None

        wait_for(f"tracker {host}:{port}", summary, procs, deadline)
        threads = max(1, (os.cpu_count() or 1) // len(devices))
        for i, device in enumerate(devices):
            env = {"TVM_NUM_THREADS": str(threads)} if args.cpu else {}
            env["CUDA_VISIBLE_DEVICES"] = "" if args.cpu else device
            env.update(SERVER_ENV)
            sport = free_port(args.host)
            serve = ["--host", args.host, "--port", str(sport), "--port-end", str(sport + 1)]
            serve += ["--tracker", f"{host}:{port}", "--key", args.key]
            procs.start(f"server{i}", ["tvm.exec.rpc_server", *serve], env)

        def registered():
            info = (summary() or {}).get("server_info", [])
            addrs = [
                ":".join(map(str, s["addr"])) for s in info if s["key"] == "server:" + args.key
            ]
            return addrs if len(addrs) >= len(devices) else None

        addrs = wait_for(f"{len(devices)} servers", registered, procs, deadline)
        tracker = procs.procs.get("tracker")
        print(f"tracker {host}:{port} key {args.key} pid {tracker.pid if tracker else '-'}")
        by_port = {a.rsplit(":", 1)[1]: a for a in addrs}
        for i, device in enumerate(devices):
            proc = procs.procs[f"server{i}"]
            sport = _arg(proc.args, "--port")
            where = f"CUDA_VISIBLE_DEVICES={device}" if not args.cpu else "cpu"
            print(f"server {by_port.get(sport, '?:' + sport)} pid {proc.pid} {where}")
        print(f"logs {log_dir}")
        print(f"ready: --rpc-tracker {host}:{port} --rpc-key {args.key}", flush=True)
        reported = set()
        while True:
            for name, code in procs.dead():
                if name == "tracker":
                    print(f"tracker exited ({code}): stopping", flush=True)
                    return 1
                if name not in reported:
                    reported.add(name)
                    print(f"{name} exited ({code})", flush=True)
            time.sleep(0.5)
    except Stop:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the cleanup
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        procs.stop()


class Stop(Exception):
    """SIGINT or SIGTERM arrived."""


def _stop(*_) -> None:
    raise Stop


def _arg(argv: list, flag: str) -> str:
    return argv[argv.index(flag) + 1]


if __name__ == "__main__":
    sys.exit(main())

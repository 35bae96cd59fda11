# SPDX-License-Identifier: Apache-2.0
"""Measuring candidates on the servers of a TVM RPC tracker (``tvm.rpc``); builds stay local.

Read first: :func:`make_runner`. It checks that the tracker answers and has servers for the key
(failing in seconds with one clear line otherwise), then returns a :class:`TrackerRunner`: a
MetaSchedule runner (the ``Runner`` interface, so the tuner's loop is unchanged) whose worker
processes each take a free server from the tracker, upload the built artifact, and time it with
MetaSchedule's own RPC steps (``rpc_runner.default_upload_module``, ``default_alloc_argument``,
``default_run_evaluator``) under the tuner's ``EvaluatorConfig``. What it adds to
``ms.runner.RPCRunner``: it knows which server measured each candidate (counted per server), and
a candidate whose server died or hung is measured again on another one (up to ``max_retries``)
instead of being scored as failed. Whole-kernel candidates (``cuda.wgmma``) go through the same
runner: :func:`measure_kernel`.

Servers: ``scripts/rpc_servers.py`` starts a tracker and one server per GPU.
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace

from tvm.ir.utils import derived_object
from tvm.rpc import base
from tvm.s_tir import meta_schedule as ms

from .config import ConfigError, flushed_run_evaluator, parse_tracker
from .errors import TuneError

#: Seconds to wait for the tracker's answer in :func:`check_tracker` (a dead tracker fails fast).
CHECK_TIMEOUT_S = 5.0


class RPCError(TuneError):
    """The tracker is unreachable, has no server for the key, or a server cannot measure."""


@dataclass(frozen=True)
class RPCSettings:
    """Where candidates are measured: a tracker, a device key, and how many servers to use.

    Parameters
    ----------
    host, port
        The tracker's address.
    key : str
        The device key the servers registered with (``rpc_server --key``).
    devices : int
        Servers measuring at once; 0: every free server of the key.
    timeout_s : float
        One measurement session (upload, load, time); the server ends a longer session and a
        worker waiting longer than twice this for a server that hangs is killed.
    max_retries : int
        Times a candidate whose server died or hung is measured again on another server.
    """

    host: str
    port: int
    key: str
    devices: int = 0
    timeout_s: float = 60.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        if not self.key:
            raise ConfigError("rpc_key is empty: give the servers' key (--rpc-key)")
        if not 0 < self.port < 65536:
            raise ConfigError(f"rpc_tracker port must be in 1..65535, got {self.port}")
        if self.devices < 0:
            raise ConfigError(f"rpc_devices must be >= 0 (0: all free servers), got {self.devices}")
        if self.timeout_s <= 0 or self.max_retries < 0:
            raise ConfigError("RPC timeout_s must be > 0 and max_retries >= 0")

    @classmethod
    def parse(cls, tracker: str, key: str, devices: int = 0, **kwargs) -> RPCSettings:
        """From ``"HOST:PORT"``; raises :class:`ConfigError` naming the bad part."""
        host, port = parse_tracker(tracker)
        return cls(host, port, key, devices, **kwargs)

    @classmethod
    def from_config(cls, config) -> RPCSettings | None:
        """The settings of a :class:`~autokernel_tvm.config.TuneConfig`; None: measure locally."""
        if not config.rpc_tracker:
            if config.rpc_key or config.rpc_devices:
                raise ConfigError("rpc_key/rpc_devices given without rpc_tracker (HOST:PORT)")
            return None
        return cls.parse(config.rpc_tracker, config.rpc_key, config.rpc_devices)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def rpc_config(self) -> ms.runner.RPCConfig:
        return ms.runner.RPCConfig(
            tracker_host=self.host,
            tracker_port=self.port,
            tracker_key=self.key,
            session_priority=1,
            session_timeout_sec=int(self.timeout_s),
        )


# -- the tracker ----------------------------------------------------------------------------
def tracker_call(host: str, port: int, message: list, timeout_s: float | None):
    """Send one message in the tracker protocol (what ``tvm.rpc.TrackerSession`` does) and return
    the answer; ``timeout_s`` bounds connecting and waiting (None: wait for a free server)."""
    sock = socket.create_connection((host, port), timeout=CHECK_TIMEOUT_S)
    try:
        sock.settimeout(timeout_s)
        sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
        if struct.unpack("<i", base.recvall(sock, 4))[0] != base.RPC_TRACKER_MAGIC:
            raise RPCError(f"{host}:{port} is not an RPC tracker: check --rpc-tracker")
        base.sendjson(sock, message)
        return base.recvjson(sock)
    finally:
        sock.close()


def check_tracker(settings: RPCSettings, timeout_s: float = CHECK_TIMEOUT_S) -> tuple[list, int]:
    """``(servers, free)``: the ``host:port`` of every server registered with the key and how
    many are free now. Raises :class:`RPCError` within ``timeout_s`` for a tracker that does not
    answer or a key without servers."""
    where = settings.address
    try:
        answer = tracker_call(settings.host, settings.port, [base.TrackerCode.SUMMARY], timeout_s)
    except (OSError, EOFError) as err:
        raise RPCError(
            f"RPC tracker {where} does not answer ({type(err).__name__}: {err}): start one with "
            "`python scripts/rpc_servers.py` or fix --rpc-tracker"
        ) from None
    if answer[0] != base.TrackerCode.SUCCESS:
        raise RPCError(f"RPC tracker {where} refused the summary query: {answer}")
    summary = answer[1]
    wanted = "server:" + settings.key
    servers = [":".join(map(str, s["addr"])) for s in summary["server_info"] if s["key"] == wanted]
    if not servers:
        keys = sorted({s["key"].split(":", 1)[1] for s in summary["server_info"]})
        raise RPCError(
            f"RPC tracker {where} has no server with key {settings.key!r} (keys there: {keys}): "
            f"fix --rpc-key or start servers with `python scripts/rpc_servers.py --key "
            f"{settings.key} --tracker {where}`"
        )
    free = int(summary["queue_info"].get(settings.key, {}).get("free", 0))
    if settings.devices > len(servers):
        raise RPCError(
            f"rpc_devices={settings.devices} but tracker {where} has {len(servers)} server(s) "
            f"with key {settings.key!r}: lower --rpc-devices or start more servers"
        )
    return servers, free


def make_runner(config, target) -> TrackerRunner:
    """The runner of a :class:`~autokernel_tvm.tuner.Tuner` whose config names a tracker."""
    settings = RPCSettings.from_config(config)
    servers, free = check_tracker(settings)
    evaluator = ms.runner.EvaluatorConfig(**config.evaluator(), enable_cpu_cache_flush=False)
    workers = settings.devices or free or len(servers)  # all busy: queue at the tracker
    return TrackerRunner(settings, evaluator, workers, device_type(target))


def device_type(target) -> str:
    """The device name a session opens for ``target`` (``cpu`` for llvm, else the kind)."""
    return "cpu" if target.kind.name == "llvm" else target.kind.name


# -- the runner -----------------------------------------------------------------------------
@derived_object
class TrackerRunner(ms.runner.PyRunner):
    """A MetaSchedule runner measuring on the tracker's servers, with per-server counts.

    Parameters
    ----------
    settings : RPCSettings
        Tracker, key, timeout and retry bound.
    evaluator : ms.runner.EvaluatorConfig
        How each candidate is timed (the tuner's ``runner_*`` options).
    workers : int
        Candidates measured at once (one server each).
    device_type : str
        Device of a candidate that arrives without one (``cpu``, ``cuda``, ``rocm``).
    """

    def __init__(self, settings: RPCSettings, evaluator, workers: int, device_type: str = "cpu"):
        super().__init__()
        from tvm.support.popen_pool import PopenPoolExecutor

        from .builder import _export_sys_path

        _export_sys_path()  # the workers import this module from where the parent did
        self.settings = settings
        self.evaluator = evaluator
        self.workers = workers
        self.device_type = device_type
        # A worker stuck on a hung server is killed after waiting for a server and one session.
        self.pool_timeout_s = 2 * settings.timeout_s + 10
        self.pool = PopenPoolExecutor(max_workers=workers, timeout=self.pool_timeout_s)
        self.measured: Counter = Counter()  # server -> candidates timed there
        self.failed: Counter = Counter()  # server -> candidates that failed there (final)
        self.lost: Counter = Counter()  # server -> sessions lost (died, hung): retried elsewhere
        self.phase_s: Counter = Counter()  # phase -> seconds over all sessions (see report)
        self.sessions = 0
        self._lock = threading.Lock()

    def run(self, runner_inputs: list) -> list:
        gone = self.no_servers()  # every server of the key gone: fail the batch now, not after
        return [_RetryingFuture(self, inp, gone) for inp in runner_inputs]  # a pool timeout each

    def no_servers(self) -> str | None:
        """Why no server of the key is left at the tracker (or the tracker is gone), or None."""
        try:
            check_tracker(replace(self.settings, devices=0))
        except RPCError as err:
            return str(err)
        return None

    def submit(self, runner_input):
        return self.pool.submit(
            _measure_on_server,
            self.settings.rpc_config(),
            self.evaluator,
            str(runner_input.artifact_path),
            str(runner_input.device_type or self.device_type),
            tuple(info.as_json() for info in runner_input.args_info),
        )

    def count(self, counter: Counter, server: str | None) -> None:
        with self._lock:
            counter[server or "no server (tracker gone or timeout)"] += 1

    def add_phases(self, phases: dict) -> None:
        with self._lock:
            self.sessions += 1
            self.phase_s.update(phases)

    def report(self) -> dict:
        """Per-server counts and the mean seconds per session of each phase (waiting for a
        server, connecting, upload + load, measuring), since this runner was made."""
        per_session = {k: v / max(1, self.sessions) for k, v in self.phase_s.items()}
        return {
            "tracker": self.settings.address,
            "key": self.settings.key,
            "workers": self.workers,
            "measured": dict(self.measured),
            "failed": dict(self.failed),
            "lost": dict(self.lost),
            "seconds_per_session": per_session,
        }

    def shutdown(self) -> None:
        self.pool.shutdown()


@derived_object
class _RetryingFuture(ms.runner.PyRunnerFuture):
    """One candidate: measured on a server; measured again elsewhere if that server was lost."""

    def __init__(self, runner, runner_input, gone: str | None = None):
        super().__init__()
        self.runner, self.input = runner, runner_input
        self.attempts, self.outcome = 0, None
        if gone:  # no server to measure it on
            runner.count(runner.failed, None)
            self.outcome = ms.runner.RunnerResult(None, f"RPCRunner: {gone}")
        else:
            self._submit()

    def _submit(self) -> None:
        self.attempts += 1
        self.future = self.runner.submit(self.input)

    def done(self) -> bool:
        return self._settle(block=False)

    def result(self) -> ms.runner.RunnerResult:
        self._settle(block=True)
        return self.outcome

    def _settle(self, block: bool) -> bool:
        runner = self.runner
        while self.outcome is None:
            if not block and not self.future.done():
                return False
            gone = None
            try:
                secs, server, error, lost, phases = self.future.result()
            except TimeoutError:  # the pool killed the worker: its server hung
                secs, server, lost = None, None, True
                error = f"timeout: no answer from a server in {runner.pool_timeout_s:g} s"
            except Exception as err:  # the worker process itself died
                secs, server, lost = None, None, True
                error = f"worker: {type(err).__name__}: {err}"
            else:
                runner.add_phases(phases)
            if secs is not None:
                runner.count(runner.measured, server)
                self.outcome = ms.runner.RunnerResult([float(s) for s in secs], None)
            elif (
                lost
                and self.attempts <= runner.settings.max_retries
                and not (gone := runner.no_servers())
            ):
                runner.count(runner.lost, server)
                self._submit()
            else:
                runner.count(runner.failed, server)
                where = f"server {server}" if server else "RPC"
                if lost:
                    error = f"server lost {self.attempts} times; last: {error}"
                    if gone:
                        error += f"; {gone}"
                self.outcome = ms.runner.RunnerResult(None, f"RPCRunner: {where}: {error}")
        return True


def _measure_on_server(rpc_config, evaluator, artifact_path, device_type, args_info) -> tuple:
    """In a worker process: ``(run_secs, server, error, lost, phases)``. ``lost``: the server (not
    the candidate) failed, so the candidate deserves another server; ``phases``: seconds spent
    waiting for a server, connecting, uploading and loading, and measuring."""
    from tvm import rpc
    from tvm.s_tir.meta_schedule.runner import rpc_runner

    session, server, remote_path, phases = None, None, None, {}
    try:
        clock = time.perf_counter()
        host, port, matchkey = _request(rpc_config)
        clock = _lap(phases, "wait_server", clock)
        server = f"{host}:{port}"
        session = rpc.connect(host, port, matchkey, rpc_config.session_timeout_sec)
        clock = _lap(phases, "connect", clock)
        device = session.device(device_type, 0)
        remote_path = os.path.basename(artifact_path)
        module = rpc_runner.default_upload_module(session, artifact_path, remote_path)
        clock = _lap(phases, "upload_load", clock)
        args = rpc_runner.default_alloc_argument(session, device, args_info, 1)
        if device_type == "cpu":
            secs = rpc_runner.default_run_evaluator(session, module, device, evaluator, args)
        else:  # a GPU: each call after an L2 flush, as a local runner times it
            secs = flushed_run_evaluator(module, device, evaluator, args)
        _lap(phases, "measure", clock)
        return [float(s) for s in secs], server, None, False, phases
    except Exception as err:  # data for the parent: the candidate's or the server's failure
        error = f"{type(err).__name__}: {str(err).strip()[-300:]}"
        if "RPCSessionTimeoutError" in error:  # the server ended a session too slow: the kernel's
            return None, server, "timeout: " + error, False, phases
        return None, server, error, session is None or not _alive(session), phases
    finally:
        if session is not None and _alive(session):
            rpc_runner.default_cleanup(session, remote_path)


def _lap(phases: dict, name: str, since: float) -> float:
    now = time.perf_counter()
    phases[name] = now - since
    return now


def _request(rpc_config) -> tuple:
    """``(host, port, matchkey)`` of a free server of the key, waiting for one (what
    ``TrackerSession.request`` does, keeping the address it drops)."""
    message = [base.TrackerCode.REQUEST, rpc_config.tracker_key, "", rpc_config.session_priority]
    answer = tracker_call(rpc_config.tracker_host, rpc_config.tracker_port, message, None)
    if answer[0] != base.TrackerCode.SUCCESS:
        raise RPCError(f"tracker refused the request: {answer}")
    return tuple(answer[1])


def _alive(session) -> bool:
    """Whether the server still answers (a kernel error leaves it up; a crash or kill does not)."""
    try:
        session.get_function("tvm.rpc.server.workpath")
        return True
    except Exception:
        return False


# -- whole-kernel candidates ----------------------------------------------------------------
def measure_kernel(config, target, runner, workload, exe) -> dict:
    """Time a built whole-kernel candidate on a server: ``{"latency_s", "failure"}`` like
    :class:`autokernel_tvm.measure.KernelMeasurer`. The library is exported here
    (``export_library``) and measured by ``runner`` (upload, ``load_module``, ``time_evaluator``
    with the same evaluator settings; inputs are random fills, as for every MetaSchedule
    candidate)."""
    from .builder import failure_reason

    args_info = [
        ms.arg_info.TensorInfo(spec.dtype, list(spec.shape))
        for spec in (*workload.inputs, workload.output)
    ]
    with tempfile.TemporaryDirectory(prefix="ak_kernel_") as tmp:
        path = os.path.join(tmp, "kernel.so")
        exe.export_library(path)
        inputs = [ms.runner.RunnerInput(path, device_type(target), args_info)]
        (future,) = runner.run(inputs)
        result = future.result()
    if result.error_msg:
        if config.strict:
            raise RPCError(result.error_msg)
        return {"latency_s": None, "failure": "run: " + failure_reason(result.error_msg)}
    secs = [float(s) for s in result.run_secs]
    return {"latency_s": sum(secs) / len(secs), "failure": None}

# SPDX-License-Identifier: Apache-2.0
"""The one timer of scripts and benchmarks: a kernel and its baselines measured in alternation.

Read first: :func:`compare`. Timing A completely, then B, lets anything that changes over the
run (clock boost, a neighbour's load, one thread pool still spinning while the other works)
land on one side only: ``bench.py`` timed op, bare kernel, torch in that order, and the second
timing was the slower in 18 of 20 rows. Here every callable is measured in each of ``rounds``
rounds, in turn, the order reversed every other round (A B B A A B ...), and the median of all
its samples is reported:

* GPU (``cuda``, also ROCm torch): each call between its own pair of CUDA events, the L2 cache
  cleared before it by writing a buffer larger than L2 (:data:`L2_FLUSH_BYTES`), one call per
  turn.
* CPU: ``time.perf_counter`` around each call, a few milliseconds of calls per turn. Each turn
  starts with a pause of :data:`CPU_SETTLE_S` and one call that is not counted: TVM's pool
  workers keep spinning after a parallel kernel (``TVM_THREAD_POOL_SPIN_COUNT``) and torch's
  OpenMP threads after a parallel op, and whatever runs next on the same cores competes with
  them. torch is given the thread count of TVM's pool (:func:`match_threads`).

  Measured on the shared 2-core development box (load average 8-9): a 256^3 fp32
  ``torch.matmul`` took 0.19-0.33 ms as a median of back-to-back calls but 28-76 ms right
  after a TVM kernel, and 10-15% of its calls in the following 1.5 s took 20-50 ms (scheduler
  slices: one of its two threads descheduled); ``TVM_THREAD_POOL_SPIN_COUNT=0`` did not change
  that. Timing torch right after the kernel is how the README quick start once printed
  "ratio 11.8" for a kernel 0.2-0.5x as fast as torch. On such a machine no order of calls
  makes the numbers right, so the timer says so instead (below).

A warning (``RuntimeWarning`` and :attr:`Timing.warnings`) says when the per-round medians of a
callable disagree by more than :data:`DISAGREE` or the machine is loaded (1-minute load average
above its core count): the ratio is then not to be trusted.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from .hardware import L2_FLUSH_BYTES

#: Relative spread of per-round medians above which a timing is reported as unstable.
DISAGREE = 0.15
#: ways to clear the GPU's L2 before each timed call (:func:`compare`'s ``flush``)
FLUSHES = ("write", "read")
#: CPU: milliseconds of calls per turn of one callable.
CPU_TURN_MS = 5.0
#: CPU: pause before each turn, so that the other side's pool stops spinning first.
CPU_SETTLE_S = 0.02


@dataclass
class Timing:
    """Result of :func:`compare`: median seconds per callable, and what makes it doubtful.

    Attributes
    ----------
    seconds : dict
        Name -> median seconds of one call over all rounds.
    rounds : dict
        Name -> median of each round, in time order.
    samples : dict
        Name -> number of measured calls.
    threads : int or None
        CPU threads both sides ran with (None on a GPU).
    warnings : list of str
        Unstable rounds, a loaded machine.
    """

    seconds: dict[str, float]
    rounds: dict[str, list[float]]
    samples: dict[str, int]
    threads: int | None = None
    warnings: list[str] = field(default_factory=list)

    def spread(self, name: str) -> float:
        """(max - min) / min of the per-round medians of ``name``."""
        values = self.rounds[name]
        return (max(values) - min(values)) / min(values) if min(values) > 0 else 0.0

    def ratio(self, name: str, baseline: str) -> float:
        """How many times faster ``name`` is than ``baseline`` (>1: faster)."""
        return self.seconds[baseline] / self.seconds[name]


def compare(
    fns: Mapping[str, Callable[[], object]],
    device: torch.device | str = "cpu",
    *,
    warmup_ms: float = 100.0,
    rep_ms: float = 500.0,
    rounds: int = 10,
    threads: int | None = None,
    warn: bool = True,
    flush: str = "write",
    lead_us: float = 0.0,
) -> Timing:
    """Time every callable of ``fns`` in alternation on ``device``.

    Parameters
    ----------
    fns : mapping of str to callable
        Name -> a callable taking no arguments (inputs bound in advance).
    device : torch.device or str
        ``cpu`` or a GPU device (``cuda``, ``cuda:1``; ROCm torch also says ``cuda``).
    warmup_ms, rep_ms : float
        Warm-up time, then measuring time, per callable.
    rounds : int
        Turns per callable; each callable is measured ``rounds`` times in alternation.
    threads : int, optional
        CPU only: threads for torch and TVM (default: TVM's pool size, :func:`match_threads`).
    warn : bool
        Also issue the warnings as ``RuntimeWarning``.
    flush : str
        GPU: how the L2 is cleared before each call, ``"write"`` (zero the buffer: what every
        committed result used) or ``"read"`` (sum it: the L2 is left holding clean lines, so
        the call does not also pay for writing back the flush's dirty ones). ``timing_check.py``
        compares the two on a 20 us kernel.
    lead_us : float
        GPU: microseconds of GPU sleep queued after each flush, before the call's start event,
        so that the call is already launched when the GPU reaches it: the CPU's launch cost
        (large for a Python wrapper such as torch.compile's) then stays out of the timing, as
        in a model's stream of kernels. 0: none (what every committed result used).
    """
    if not fns:
        raise ValueError("nothing to time: pass at least one callable")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if flush not in FLUSHES:
        raise ValueError(f"flush must be one of {FLUSHES}, got {flush!r}")
    if not lead_us >= 0:
        raise ValueError(f"lead_us must be >= 0 microseconds, got {lead_us!r}")
    device = torch.device(device)
    if device.type == "cuda":
        result = _compare_gpu(dict(fns), device, warmup_ms, rep_ms, rounds, flush, lead_us)
    elif device.type == "cpu":
        used = match_threads(threads)
        result = _compare_cpu(dict(fns), warmup_ms, rep_ms, rounds)
        result.threads = used
        load = load_warning()
        if load:
            result.warnings.append(load)
    else:
        raise ValueError(f"cannot time on device {device}; expected cpu or cuda")
    for name in fns:
        if rounds > 1 and result.spread(name) > DISAGREE:
            result.warnings.append(
                f"{name}: rounds disagree by {result.spread(name):.0%} (> {DISAGREE:.0%}): "
                "something else ran on the machine; rerun on a quiet machine"
            )
    if warn:
        for message in result.warnings:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
    return result


def time_callable(
    fn: Callable[[], object],
    device: torch.device | str = "cpu",
    *,
    warmup_ms: float = 100.0,
    rep_ms: float = 500.0,
    rounds: int = 5,
) -> float:
    """Median seconds of one call of ``fn()`` on ``device`` (:func:`compare` of one callable).

    Timing a kernel and its baseline with two calls of this function measures them one after
    the other; use :func:`compare` to measure them in alternation.
    """
    return compare({"fn": fn}, device, warmup_ms=warmup_ms, rep_ms=rep_ms, rounds=rounds).seconds[
        "fn"
    ]


def gpu_kernels(fn: Callable[[], object]) -> list[dict]:
    """The GPU kernels one call of ``fn()`` launches, in launch order, each with its device
    time in microseconds (torch.profiler): which part of a call (a padding copy, the GEMM, a
    reduction) takes the time. One warm-up call first; no L2 flush (a breakdown, not a timing).
    """
    fn()
    torch.cuda.synchronize()
    activity = torch.profiler.ProfilerActivity.CUDA
    with torch.profiler.profile(activities=[activity]) as prof:
        fn()
        torch.cuda.synchronize()
    return [
        {"name": e.name[:120], "us": round(e.device_time_total, 2)}
        for e in prof.events()
        if e.device_type == torch.autograd.DeviceType.CUDA
    ]


def match_threads(threads: int | None = None) -> int:
    """Give torch the thread count of TVM's CPU pool (or ``threads`` for both); return it.

    TVM's pool size is fixed when it starts (``TVM_NUM_THREADS``, read once), so ``threads``
    reaches TVM only when set before its first parallel kernel; torch follows in any case.
    """
    if threads is None:
        threads = _tvm_pool_threads()
    else:
        os.environ["TVM_NUM_THREADS"] = str(threads)
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def load_warning() -> str | None:
    """A warning when the 1-minute load average exceeds this machine's cores, else None."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not on this platform
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if load > (cores or 1):
        return (
            f"the machine is loaded (1-minute load average {load:.1f} on {cores} cores): "
            "CPU timings are unreliable; rerun on a quiet machine"
        )
    return None


def _tvm_pool_threads() -> int | None:
    """TVM's CPU pool size if TVM is loaded, else ``TVM_NUM_THREADS``, else None."""
    if "tvm" in sys.modules:
        import tvm

        num_threads = tvm.get_global_func("runtime.NumThreads", allow_missing=True)
        if num_threads is not None:
            return int(num_threads())
    value = os.environ.get("TVM_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def _turns(fns: dict, index: int) -> list:
    """The callables in order, reversed on odd turns (A B B A A B ...): a drift over the run
    then lands on every side equally instead of on whichever comes later in each round."""
    items = list(fns.items())
    return items[::-1] if index % 2 else items


def _compare_cpu(fns: dict, warmup_ms: float, rep_ms: float, rounds: int) -> Timing:
    estimate = {}
    for name, fn in fns.items():  # warm up each, and estimate one call
        fn()
        end, calls, start = time.perf_counter() + warmup_ms / 1e3, 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            if time.perf_counter() >= end:
                break
        estimate[name] = max((time.perf_counter() - start) / calls, 1e-7)
    per_round = {n: rep_ms / 1e3 / rounds for n in fns}
    turn = {n: max(1, min(int(CPU_TURN_MS / 1e3 / e), 10_000)) for n, e in estimate.items()}
    samples: dict[str, list[float]] = {n: [] for n in fns}
    by_round: dict[str, list[float]] = {n: [] for n in fns}
    for r in range(rounds):
        for name, fn in _turns(fns, r):
            this_round: list[float] = []
            spent = 0.0
            time.sleep(CPU_SETTLE_S)
            while spent < per_round[name] or len(this_round) < 2:
                fn()  # not counted: the other side's pool may still be spinning
                for _ in range(turn[name]):
                    start = time.perf_counter()
                    fn()
                    this_round.append(time.perf_counter() - start)
                spent += sum(this_round[-turn[name] :])
            samples[name].extend(this_round)
            by_round[name].append(statistics.median(this_round))
    return Timing(
        seconds={n: statistics.median(s) for n, s in samples.items()},
        rounds=by_round,
        samples={n: len(s) for n, s in samples.items()},
    )


def _compare_gpu(
    fns: dict,
    device,
    warmup_ms: float,
    rep_ms: float,
    rounds: int,
    flush: str = "write",
    lead_us: float = 0.0,
) -> Timing:
    with torch.cuda.device(device):
        cache = torch.zeros(L2_FLUSH_BYTES // 4, dtype=torch.int32, device=device)
        # cycles at a 2 GHz clock (Hopper's boost is 1.98): at a lower clock the lead is longer
        lead_cycles = int(lead_us * 2e3)

        def clear():
            if flush == "write":
                cache.zero_()
            else:
                cache.sum(dtype=torch.int64)
            if lead_us > 0:
                torch.cuda._sleep(lead_cycles)

        estimate = {}
        for name, fn in fns.items():
            fn()
            torch.cuda.synchronize()
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(True)
            start.record()
            for _ in range(5):
                clear()
                fn()
            stop.record()
            torch.cuda.synchronize()
            estimate[name] = max(start.elapsed_time(stop) / 5, 1e-3)  # ms, flush included
            for _ in range(max(1, int(warmup_ms / estimate[name]))):
                fn()
        # One call per turn (A B B A ...), each after an L2 flush, between its own events.
        reps = max(rounds, min(100_000, int(rep_ms / max(estimate.values()))))
        reps -= reps % rounds
        events = {n: [] for n in fns}
        for r in range(reps):
            for name, fn in _turns(fns, r):
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(True)
                clear()
                begin.record()
                fn()
                end.record()
                events[name].append((begin, end))
        torch.cuda.synchronize()
    samples = {n: [b.elapsed_time(e) / 1e3 for b, e in ev] for n, ev in events.items()}
    size = reps // rounds
    by_round = {
        n: [statistics.median(s[i * size : (i + 1) * size]) for i in range(rounds)]
        for n, s in samples.items()
    }
    return Timing(
        seconds={n: statistics.median(s) for n, s in samples.items()},
        rounds=by_round,
        samples={n: len(s) for n, s in samples.items()},
    )

# SPDX-License-Identifier: Apache-2.0
"""Wall-clock timing of a callable, the same way for a kernel and for its baseline.

GPU: like ``triton.testing.do_bench`` -- estimate one call, warm up for ``warmup_ms``, then time
each call of ``rep_ms`` worth with its own pair of CUDA events, clearing the L2 cache (writing a
256 MB buffer) before each call, and return the median. CPU: ``time.perf_counter`` around each
call after ``warmup_ms`` of warm-up, repeated for ``rep_ms`` (at least ``min_reps`` times), median.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

#: Bytes written before each GPU call so that no input stays in L2 (H100: 50 MB, H200: 60 MB).
L2_FLUSH_BYTES = 256 * 1024 * 1024


def time_callable(
    fn: Callable[[], object],
    device: torch.device | str = "cpu",
    *,
    warmup_ms: float = 100.0,
    rep_ms: float = 500.0,
    min_reps: int = 10,
    max_reps: int = 100_000,
) -> float:
    """Median seconds of one call of ``fn()`` on ``device``.

    Parameters
    ----------
    fn : callable
        Takes no arguments; inputs are bound in advance so that only the call is timed.
    device : torch.device or str
        ``cpu`` or a GPU device (``cuda``, ``cuda:1``; ROCm torch also says ``cuda``).
    warmup_ms, rep_ms : float
        Time spent warming up, then measuring.
    min_reps, max_reps : int
        Bounds on the number of measured calls.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return _time_gpu(fn, device, warmup_ms, rep_ms, min_reps, max_reps)
    if device.type != "cpu":
        raise ValueError(f"cannot time on device {device}; expected cpu or cuda")
    return _time_cpu(fn, warmup_ms, rep_ms, min_reps, max_reps)


def _time_cpu(fn, warmup_ms, rep_ms, min_reps, max_reps) -> float:
    fn()
    end = time.perf_counter() + warmup_ms / 1e3
    while time.perf_counter() < end:
        fn()
    samples: list[float] = []
    end = time.perf_counter() + rep_ms / 1e3
    while len(samples) < max_reps and (len(samples) < min_reps or time.perf_counter() < end):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _time_gpu(fn, device, warmup_ms, rep_ms, min_reps, max_reps) -> float:
    with torch.cuda.device(device):
        cache = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.int32, device=device)
        fn()
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(5):
            cache.zero_()
            fn()
        stop.record()
        torch.cuda.synchronize()
        estimate_ms = max(start.elapsed_time(stop) / 5, 1e-3)
        n_warmup = max(1, int(warmup_ms / estimate_ms))
        n_rep = min(max_reps, max(min_reps, int(rep_ms / estimate_ms)))
        for _ in range(n_warmup):
            fn()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(n_rep)]
        stops = [torch.cuda.Event(enable_timing=True) for _ in range(n_rep)]
        for begin, end in zip(starts, stops, strict=True):
            cache.zero_()
            begin.record()
            fn()
            end.record()
        torch.cuda.synchronize()
        samples = [b.elapsed_time(e) / 1e3 for b, e in zip(starts, stops, strict=True)]
    return statistics.median(samples)

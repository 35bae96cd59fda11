# SPDX-License-Identifier: Apache-2.0
"""timing.compare on the CPU: medians of real calls, taken in alternation, same thread count on
both sides, warnings for unstable rounds and a loaded machine."""

from __future__ import annotations

import os
import time

import pytest
import torch

from autokernel_tvm import timing


def test_cpu_median_of_a_sleep():
    seconds = timing.time_callable(lambda: time.sleep(0.002), "cpu", warmup_ms=1, rep_ms=40)
    assert 0.0019 < seconds < 0.02


def test_callables_are_measured_in_alternation():
    order = []
    result = timing.compare(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")},
        "cpu", warmup_ms=1, rep_ms=20, rounds=6, warn=False,
    )  # fmt: skip
    switches = sum(x != y for x, y in zip(order, order[1:]))
    assert switches >= 6  # blocks a b b a a b ...: a switch in every round
    assert len(result.rounds["a"]) == len(result.rounds["b"]) == 6
    assert result.samples["a"] >= 12 and result.threads == torch.get_num_threads()


def test_a_drift_lands_on_both_sides():
    # Every call gets slower as the run goes on (1 ms growing by 4 ms/s, to ~3 ms). Measured
    # in alternation, two identical callables get equal medians; timed one after the other the
    # second would come out about 1.7x as slow.
    start = time.perf_counter()

    def drifting():
        time.sleep(0.001 + 0.004 * (time.perf_counter() - start))

    result = timing.compare(
        {"a": drifting, "b": drifting}, "cpu", warmup_ms=1, rep_ms=200, rounds=6, warn=False
    )
    assert 0.8 < result.ratio("a", "b") < 1.25
    assert any("rounds disagree" in w for w in result.warnings)


def test_torch_gets_tvm_pool_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(timing, "_tvm_pool_threads", lambda: 1)
        assert timing.match_threads() == 1 == torch.get_num_threads()
        monkeypatch.delenv("TVM_NUM_THREADS", raising=False)
        assert timing.match_threads(2) == 2 and os.environ["TVM_NUM_THREADS"] == "2"
    finally:
        torch.set_num_threads(before)


def test_loaded_machine_warns(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 99.0, 99.0))
    with pytest.warns(RuntimeWarning, match="machine is loaded"):
        timing.compare({"x": lambda: None}, "cpu", warmup_ms=0, rep_ms=5, rounds=1)


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="cannot time"):
        timing.time_callable(lambda: None, "meta")
    with pytest.raises(ValueError, match="nothing to time"):
        timing.compare({}, "cpu")
    with pytest.raises(ValueError, match="flush must be one of"):
        timing.compare({"x": lambda: None}, "cpu", flush="none")
    with pytest.raises(ValueError, match="lead_us must be >= 0"):
        timing.compare({"x": lambda: None}, "cpu", lead_us=-5.0)


@pytest.mark.gpu
def test_gpu_kernels_lists_each_kernel_of_a_call():
    """Two launches in one call: two rows, in launch order, each with a positive time. (Two
    elementwise ops: a matmul is one launch or two as cuBLAS likes -- on the H100, 2026-12-07,
    an fp32 512^3 product ran as a split-K GEMM and its reduction.)"""
    a = torch.randn(512, 512, device="cuda")
    rows = timing.gpu_kernels(lambda: (a.mul_(2.0), a.add_(1.0)))
    assert len(rows) == 2 and all(r["us"] > 0 for r in rows), rows
    assert "elementwise" in rows[1]["name"].lower() or "add" in rows[1]["name"].lower()

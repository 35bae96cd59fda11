# SPDX-License-Identifier: Apache-2.0
"""time_callable on the CPU: median of real calls, honouring the repeat bounds."""

from __future__ import annotations

import time

import pytest

from autokernel_tvm.timing import time_callable


def test_cpu_median_of_a_sleep():
    calls = []

    def sleepy():
        calls.append(1)
        time.sleep(0.002)

    seconds = time_callable(sleepy, "cpu", warmup_ms=1, rep_ms=20, min_reps=5)
    assert 0.0019 < seconds < 0.02
    assert len(calls) >= 7  # first call + at least one warm-up + five measured


def test_max_reps_bounds_the_calls():
    calls = []
    time_callable(lambda: calls.append(1), "cpu", warmup_ms=0, rep_ms=10_000, max_reps=50)
    assert len(calls) <= 52


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="cannot time"):
        time_callable(lambda: None, "meta")

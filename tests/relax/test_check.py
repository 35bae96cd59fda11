# SPDX-License-Identifier: Apache-2.0
"""The end-to-end model check: one wrong 64 x 64 tile that the normwise check misses."""

from __future__ import annotations

import torch

from autokernel_tvm.relax.check import check, rel_error


def _outputs():
    torch.manual_seed(0)
    ref64 = torch.randn(1024, 1024, dtype=torch.float64) * 8.0
    eager = ref64.half()  # eager rounds to fp16 once, as a correct fp16 kernel does
    return ref64, eager


def test_a_64x64_tile_off_by_ten_percent_fails_elementwise_but_not_normwise():
    ref64, eager = _outputs()
    out = eager.clone()
    out[128:192, 64:128] *= 1.1  # one wrong tile: 4096 of 1M outputs
    assert rel_error(out, eager) < 2e-2  # the normwise check alone passes it
    result = check(out, eager, (eager,), ref64)
    assert not result["passed"] and result["elementwise_ratio"] > 1
    assert "(1" in result["elementwise_worst"]  # the worst element is inside the tile


def test_correct_outputs_pass_both_checks():
    ref64, eager = _outputs()
    other_order = (ref64 * (1 + 2.0**-12)).half()  # another correct rounding path
    result = check(other_order, eager, (eager,), ref64)
    assert result["passed"] and result["elementwise_ratio"] <= 1, result


def test_non_finite_output_fails():
    ref64, eager = _outputs()
    out = eager.clone()
    out[0, 0] = float("nan")
    assert not check(out, eager, (eager,), ref64)["passed"]


def test_a_scalar_output_is_checked_normwise_only():
    """A sum over many terms (a loss): eager's own error can be a lucky tiny one (here 1e-9
    relative), which the elementwise bound followed: 8x that, an fp32 summation-order
    difference of 1.4e-6 failed it. Normwise it is well inside fp32's 1e-4."""
    ref64 = torch.tensor(-20.06, dtype=torch.float64)
    eager = torch.tensor(float(ref64) * (1 + 1e-9), dtype=torch.float32)
    out = torch.tensor(float(ref64) * (1 + 1.4e-6), dtype=torch.float32)
    result = check((out, eager.expand(2)), (eager, eager.expand(2)), (eager,),
                   (ref64, ref64.expand(2)))  # fmt: skip
    assert result["passed"], result
    wrong = torch.tensor(float(ref64) * 1.01, dtype=torch.float32)
    assert not check(wrong, eager, (eager,), ref64)["passed"]  # normwise still fails it
    nan = torch.tensor(float("nan"))
    assert not check(nan, eager, (eager,), ref64)["passed"]

# SPDX-License-Identifier: Apache-2.0
"""The end-to-end model check: one wrong 64 x 64 tile that the normwise check misses."""

from __future__ import annotations

import torch

from autokernel_tvm.relax.check import check, reference64, rel_error


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


class _Casts(torch.nn.Module):
    """An fp16 input cast up, an fp32 weight, an fp16 factory and a bf16 result."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(8, 5))

    def forward(self, x):
        y = x.float() @ self.w + torch.ones(5, dtype=torch.float16)
        return y.to(torch.bfloat16), y.half().sum()


def test_reference64_reads_the_dtypes_a_model_names_as_float64():
    """A model that casts explicitly: its fp64 copy used to raise (fp32 @ fp64); every floating
    dtype it names is read as float64, so the run is the model's exact value."""
    torch.manual_seed(0)
    model, x = _Casts(), torch.randn(4, 8, dtype=torch.float16)
    out, total = reference64(model, (x,))
    assert out.dtype == total.dtype == torch.float64
    exact = x.double() @ model.w.double() + 1.0
    assert torch.equal(out, exact) and torch.equal(total, exact.sum())
    assert model.w.dtype == torch.float32  # the caller's model is untouched


def test_reference64_of_a_model_without_a_float64_run_is_none(caplog):
    """A model that reads fp32 bits (no float64 run of it has their shape): the elementwise
    check is skipped, the reason logged."""

    class Bits(torch.nn.Module):
        def forward(self, x):
            return (x.view(torch.int32).reshape(4, 8) >> 23).float()

    assert reference64(Bits(), (torch.randn(4, 8),)) is None
    assert "no float64 run" in caplog.text

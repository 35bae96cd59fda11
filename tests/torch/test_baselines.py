# SPDX-License-Identifier: Apache-2.0
"""Every op's torch baseline computes what the workload's fp64 reference computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autokernel_tvm.torch.baselines import make_baseline, max_rel_error
from autokernel_tvm.workloads import OPS, Workload

CASES = [
    Workload("gemm", (8, 12, 16)),
    Workload("gemm_nt", (8, 12, 16)),
    Workload("gemm_tn", (8, 12, 16)),
    Workload("batch_gemm", (3, 8, 12, 16)),
    Workload("batch_gemm_nt", (3, 8, 12, 16)),
    Workload("batch_gemm_tn", (3, 8, 12, 16)),
    Workload("gemm_bias", (8, 12, 16)),
    Workload("gemm_bias_relu", (8, 12, 16)),
    Workload("gemm_bias_gelu", (8, 12, 16)),
    Workload("conv2d_nhwc", (2, 9, 7, 4, 5, 3, 3, 2, 1)),
    Workload("gemm_gated_nt", (8, 12, 16)),
    Workload("gemm_scaled_nt", (8, 12, 32), "float8_e4m3fn"),
]


def test_every_op_has_a_baseline():
    assert {w.op for w in CASES} == set(OPS)


@pytest.mark.parametrize("workload", CASES, ids=lambda w: w.op)
def test_baseline_matches_reference(workload):
    arrays = workload.random_inputs(np.random.default_rng(0), "normal")
    got = make_baseline(workload.to_json(), [_tensor(a) for a in arrays])()
    want = torch.from_numpy(workload.reference(arrays))
    assert tuple(got.shape) == workload.output.shape
    assert max_rel_error(got, want) < 1e-5


def _tensor(array: np.ndarray) -> torch.Tensor:
    """torch's view of ``array`` (fp8 through its bytes: torch.from_numpy refuses ml_dtypes)."""
    if array.dtype.itemsize == 1 and array.dtype.name.startswith("float8"):
        return torch.from_numpy(array.view(np.uint8)).view(getattr(torch, array.dtype.name))
    return torch.from_numpy(array)


def test_e5m2_baseline_runs_on_cpu_as_given():
    """cuBLASLt has no e5m2 x e5m2 GEMM: on a GPU the baseline converts B to e4m3; on the
    CPU torch._scaled_mm takes both as they are."""
    w = Workload("gemm_scaled_nt", (8, 12, 32), "float8_e5m2", "bfloat16")
    arrays = w.random_inputs(np.random.default_rng(1), "normal")
    got = make_baseline(w.to_json(), [_tensor(a) for a in arrays])()
    assert got.dtype == torch.bfloat16
    assert max_rel_error(got, torch.from_numpy(w.reference(arrays))) < 2**-8


def test_fp8_baseline_accumulates_as_the_workload_asks():
    """torch._scaled_mm promotes its sums to fp32 unless the workload allows fast
    accumulation; the row names which one was timed."""
    from autokernel_tvm.torch.baselines import baseline_name

    calls = []
    real = torch._scaled_mm

    def spy(*args, **kwargs):
        calls.append(kwargs["use_fast_accum"])
        return real(*args, **kwargs)

    for precision in ("", "fast_accum"):
        w = Workload("gemm_scaled_nt", (8, 12, 32), "float8_e4m3fn", "bfloat16", None, precision)
        arrays = w.random_inputs(np.random.default_rng(1), "normal")
        fn = make_baseline(w.to_json(), [_tensor(a) for a in arrays])
        torch._scaled_mm = spy
        try:
            fn()
        finally:
            torch._scaled_mm = real
    assert calls == [False, True]
    fast = Workload("gemm_scaled_nt", (8, 12, 32), "float8_e5m2", precision="fast_accum")
    assert baseline_name(fast.to_json()) == "torch._scaled_mm(fast_accum)"
    assert baseline_name(CASES[0].to_json()) == "torch"


def test_max_rel_error_is_normwise():
    want = torch.tensor([0.0, 10.0, -20.0])
    assert max_rel_error(want + torch.tensor([1e-3, 0, 0]), want) == pytest.approx(5e-5)
    assert max_rel_error(torch.zeros(2), torch.zeros(2)) == 0.0


def test_fp32_workloads_are_compared_at_their_precision_and_the_flags_restored():
    """TF32 where the workload allows it, fp32 accuracy otherwise, for matmuls and convs
    whatever the flags were (cuDNN's allow_tf32 is on by default); 16-bit workloads leave
    them alone."""
    seen = []
    real_mm, real_conv = torch.matmul, F.conv2d

    def mm(a, b):
        seen.append(("mm", torch.backends.cuda.matmul.allow_tf32))
        return real_mm(a, b)

    def conv(*args, **kwargs):
        seen.append(("conv", torch.backends.cudnn.allow_tf32))
        return real_conv(*args, **kwargs)

    a, b = torch.randn(8, 4), torch.randn(4, 8)
    x, k = torch.randn(1, 5, 5, 8).contiguous(), torch.randn(8, 3, 3, 8)
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn)
    before = [f.allow_tf32 for f in flags]
    torch.matmul, F.conv2d = mm, conv
    try:
        for start in (False, True):
            for f in flags:
                f.allow_tf32 = start
            for precision in ("tf32", ""):
                w = Workload("gemm", (8, 8, 4), "float32", precision=precision)
                make_baseline(w.to_json(), [a, b])()
                c = Workload(
                    "conv2d_nhwc", (1, 5, 5, 8, 8, 3, 3, 1, 1), "float32", precision=precision
                )
                make_baseline(c.to_json(), [x, k])()
                assert [f.allow_tf32 for f in flags] == [start, start]  # restored
            make_baseline(Workload("gemm", (8, 8, 4), "float16").to_json(), [a.half(), b.half()])
    finally:
        torch.matmul, F.conv2d = real_mm, real_conv
        for f, value in zip(flags, before):
            f.allow_tf32 = value
    want = [("mm", True), ("conv", True), ("mm", False), ("conv", False)]
    assert seen == want * 2

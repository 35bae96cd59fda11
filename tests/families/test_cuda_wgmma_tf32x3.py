# SPDX-License-Identifier: Apache-2.0
"""3xTF32's arithmetic, emulated in numpy with the kernel's own constants: the split copies
(:data:`SEGMENTS`, the TF32 rounding of :func:`high`) and a tensor core that keeps 10 mantissa
bits of each operand must land inside the gate's fp32 bound, where one TF32 product does not."""

from __future__ import annotations

import numpy as np
import pytest

from autokernel_tvm.families.cuda_wgmma.tf32x3 import (
    LINE,
    SEGMENTS,
    TF32_MASK,
    TF32_ROUND,
    split_k,
)
from autokernel_tvm.verify import UNIT_ROUNDOFF, tolerance
from autokernel_tvm.workloads import Workload


def _high(x):
    return ((x.view(np.uint32) + np.uint32(TF32_ROUND)) & np.uint32(TF32_MASK)).view(np.float32)


def _tensor_core(x):  # what a TF32 wgmma reads of an fp32 value: the low 13 bits dropped
    return (x.view(np.uint32) & np.uint32(TF32_MASK)).view(np.float32)


def _segments(x, name):
    parts = {"hi": _high(x), "lo": x - _high(x)}
    return [_tensor_core(parts[p]) for p in SEGMENTS[name]]


@pytest.mark.parametrize("m, n, k", [(128, 96, 77), (64, 64, 4096)])
def test_three_products_meet_the_fp32_bound_and_one_does_not(m, n, k):
    rng = np.random.default_rng(k)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((n, k)).astype(np.float32)  # A @ B.T, K-major like the copies
    a3 = np.concatenate(_segments(a, "a"), axis=1)
    b3 = np.concatenate(_segments(b, "b"), axis=1)
    three = (a3 @ b3.T).astype(np.float32)
    one = (_tensor_core(a) @ _tensor_core(b).T).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64).T
    u_gpu = 2 * UNIT_ROUNDOFF["float32"]  # the gate's u_eff on a GPU
    bound = tolerance(Workload("gemm_nt", (m, n, k), "float32"), [a, b], ref, u_gpu)
    assert np.max(np.abs(three - ref) / bound) < 0.5
    assert np.max(np.abs(one - ref) / bound) > 5


def test_split_keeps_exact_values_and_pads_segments_to_lines():
    x = np.array([1.0, -2.0, 3.0, 0.5, 1e-3, 123456.789], np.float32)
    assert np.array_equal(_high(x[:4]), x[:4])  # small integers: all in hi, lo = 0
    assert np.array_equal(_high(x) + (x - _high(x)), x)  # hi + lo is x, exactly
    assert split_k(1) == 3 * LINE and split_k(LINE) == 3 * LINE and split_k(LINE + 1) == 6 * LINE

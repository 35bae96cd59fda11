# SPDX-License-Identifier: Apache-2.0
"""3xTF32's arithmetic, emulated in numpy with the kernel's own constants: the split copies
(:data:`SEGMENTS`, the TF32 rounding of :func:`high`) and a tensor core that keeps 10 mantissa
bits of each operand and truncates each k8 group's sum into the fp32 accumulator must land
inside the gate's fp32 bound, where one TF32 product does not."""

from __future__ import annotations

import re

import numpy as np
import pytest

from autokernel_tvm.builder import build_module, cuda_source
from autokernel_tvm.families.cuda_wgmma import FAMILY, tf32_passes, tf32x3
from autokernel_tvm.families.cuda_wgmma.tf32x3 import (
    LINE,
    SEGMENTS,
    TF32_MASK,
    TF32_ROUND,
    THREADS,
    TILE,
    split_blocks,
    split_k,
)
from autokernel_tvm.space.genome import Genome
from autokernel_tvm.space.grammar import Grammar
from autokernel_tvm.targets import make_target
from autokernel_tvm.verify import UNIT_ROUNDOFF, tolerance
from autokernel_tvm.workloads import Workload


def _high(x):
    return ((x.view(np.uint32) + np.uint32(TF32_ROUND)) & np.uint32(TF32_MASK)).view(np.float32)


def _tensor_core(x):  # what a TF32 wgmma reads of an fp32 value: the low 13 bits dropped
    return (x.view(np.uint32) & np.uint32(TF32_MASK)).view(np.float32)


def _segments(x, order):
    parts = {"hi": _high(x), "lo": x - _high(x)}
    return [_tensor_core(parts[p]) for p in order]


def _truncate32(x):  # fp64 -> fp32 rounded toward zero, as the tensor core's accumulator
    r = x.astype(np.float32)
    over = np.abs(r.astype(np.float64)) > np.abs(x)
    r[over] = np.nextafter(r[over], np.float32(0))
    return r


def _wgmma(a, b, group=8):
    """``a @ b.T`` the way a TF32 wgmma sums: each k8 group exact, then added to the running
    fp32 sum with truncation (Fasi et al., PeerJ CS 2021), in K order."""
    acc = np.zeros((a.shape[0], b.shape[0]), np.float32)
    for k0 in range(0, a.shape[1], group):
        part = a[:, k0 : k0 + group].astype(np.float64) @ b[:, k0 : k0 + group].T
        acc = _truncate32(acc.astype(np.float64) + part)
    return acc


@pytest.mark.parametrize("m, n, k", [(64, 48, 77), (64, 64, 1024)])
@pytest.mark.parametrize("kind", ["normal", "mixed"])
def test_three_products_meet_the_fp32_bound_and_one_does_not(m, n, k, kind):
    workload = Workload("gemm_nt", (m, n, k), "float32")  # A @ B.T, K-major like the copies
    a, b = workload.random_inputs(np.random.default_rng(k), kind)
    ref = a.astype(np.float64) @ b.astype(np.float64).T
    u_gpu = 2 * UNIT_ROUNDOFF["float32"]  # the gate's u_eff on a GPU
    bound = tolerance(workload, [a, b], ref, u_gpu)

    def ratio(order_a, order_b):
        a3 = np.concatenate(_segments(a, order_a), axis=1)
        b3 = np.concatenate(_segments(b, order_b), axis=1)
        return np.max(np.abs(_wgmma(a3, b3) - ref) / bound)

    assert ratio(SEGMENTS["a"], SEGMENTS["b"]) < 0.5
    assert np.max(np.abs(_wgmma(_tensor_core(a), _tensor_core(b)) - ref) / bound) > 5
    if k >= 1024:  # the large products first: K roundings of the large sum more (1.6x on H200)
        assert ratio(("hi", "hi", "lo"), ("hi", "lo", "hi")) > 1.0


def test_split_keeps_exact_values_and_pads_segments_to_lines():
    x = np.array([1.0, -2.0, 3.0, 0.5, 1e-3, 123456.789], np.float32)
    assert np.array_equal(_high(x[:4]), x[:4])  # small integers: all in hi, lo = 0
    assert np.array_equal(_high(x) + (x - _high(x)), x)  # hi + lo is x, exactly
    assert split_k(1) == 3 * LINE and split_k(LINE) == 3 * LINE and split_k(LINE + 1) == 6 * LINE


@pytest.mark.parametrize(
    "rows, cols, kmajor, batch", [(100, 77, True, 3), (77, 200, False, 3), (1000, 1003, True, 0)]
)
def test_split_blocks_cover_every_matrix_of_a_batch(rows, cols, kmajor, batch):
    """The split copy's grid reaches every value of every matrix (the K-major grid once covered
    only the first matrix of a batch: batched 3xTF32 read uninitialized memory, H200)."""
    k = cols if kmajor else rows
    kp = split_k(k) // 3
    blocks = split_blocks(rows, cols, kmajor, batch)
    if kmajor:
        assert blocks * THREADS * 4 >= max(batch, 1) * rows * kp
    else:
        assert blocks == max(batch, 1) * (kp // TILE) * -(-cols // TILE)


TARGET = make_target("cuda", "sm_90a")


@pytest.mark.parametrize("taps, seg", [(1, 1), (9, 2), (25, 3)])
def test_split_conv_sums_every_taps_small_products_first(taps, seg):
    """The 3xTF32 conv's K order visits each stored K step once, and all taps' small-product
    segments (the first two of each tap's three) before any tap's hi x hi segment."""
    order = [tf32x3.conv_step(ks, seg, taps) for ks in range(taps * 3 * seg)]
    assert sorted(order) == list(range(taps * 3 * seg))
    small = taps * 2 * seg
    assert all(step % (3 * seg) < 2 * seg for step in order[:small])
    assert all(step % (3 * seg) >= 2 * seg for step in order[small:])
    assert order[:small] == sorted(order[:small]) and order[small:] == sorted(order[small:])


@pytest.mark.parametrize(
    "shape, precision",
    [((8, 28, 28, 64, 128, 3, 3, 1, 1), ""), ((4, 30, 30, 3, 64, 3, 3, 1, 1), ""),
     ((8, 28, 28, 128, 128, 3, 3, 2, 1), "tf32")],
    ids=str,
)  # fmt: skip
def test_fp32_convs_split_channels_or_run_tf32(needs_nvcc, shape, precision):
    """An fp32 conv2d at fp32 accuracy splits each pixel's and each filter tap's channels into
    three segments padded to whole lines (so any C): the TF32 conv over split_k(C) channels
    sums the three products. Allowed TF32, a conv of 32-multiple channels reads its operands."""
    conv = Workload("conv2d_nhwc", shape, "float32", precision=precision)
    assert FAMILY.applies(conv, TARGET) is None
    genome = Grammar(TARGET).check(Genome.default("cuda.wgmma").replace(block_n=64, raster=1), conv)
    mod = FAMILY.candidate(genome.params, conv, TARGET).mod
    img, h, w, c, k, r, s = shape[:7]
    script = mod["main"].script()
    names = {gv.name_hint.split("_")[-2] for gv in mod.functions if gv.name_hint != "main"}
    if precision:
        assert len(mod.functions) == 1 and f"A.data, {c}, {w}, {h}, {img}" in script
    else:
        cs = split_k(c)
        assert cs == 3 * -(-c // 32) * 32
        assert f"A8.data, {cs}, {w}, {h}, {img}" in script  # the split image: cs channels
        assert f"B8.data, {r * s * cs}, {k}" in script  # the split filter: K rows of R*S*cs
        assert names == {"split"}
        assert f'def main(A: T.Buffer(({img}, {h}, {w}, {c}), "float32"' in script  # the user's
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    assert "f32.tf32.tf32" in src


@pytest.mark.parametrize(
    "workload",
    [Workload("gemm_tn", (1000, 999, 777), "float32"),
     Workload("batch_gemm_tn", (3, 200, 130, 77), "float32")],
    ids=lambda w: w.name,
)  # fmt: skip
def test_fp32_transposed_a_is_split_into_k_major_rows(needs_nvcc, workload):
    """A.T @ B in fp32: wgmma transposes 16-bit operands only, so A (stored ``[K, M]``) is
    transposed by its split copy, through the same shared-memory tiles as B of A @ B; the TF32
    GEMM then reads K-major A3 rows, and the kernel takes the user's ``[K, M]`` A."""
    *lead, m, n, k = workload.shape
    genome = Grammar(TARGET).check(Genome.default("cuda.wgmma").replace(raster=1), workload)
    mod = FAMILY.candidate(genome.params, workload, TARGET).mod
    script = mod["main"].script()
    assert f'def main(A: T.Buffer(({", ".join(map(str, (*lead, k, m)))}), "float32"' in script
    split_a = [gv for gv in mod.functions if gv.name_hint.endswith("_split_a")][0]
    a_script = mod[split_a].script()
    assert "shared" in a_script  # the transposing copy (a K-major A is copied in chunks)
    nb = lead[0] if lead else 1
    assert f"({nb * m}, {split_k(k)})" in a_script  # A3: rows of M, K-major
    assert split_blocks(k, m, False, nb if lead else 0) == nb * (split_k(k) // 3 // TILE) * (
        -(-m // TILE)
    )
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    assert "f32.tf32.tf32" in src
    assert set(re.findall(r"ps0, ([\d, ]+);", src)) == {"1, 1"}  # no transpose flags


@pytest.mark.parametrize(
    "workload, copied",
    [(Workload("gemm", (1000, 1000, 999), "float32", precision="tf32"), {"b"}),
     (Workload("gemm_tn", (1000, 999, 777), "float32", precision="tf32"), {"a", "b"}),
     (Workload("batch_gemm_tn", (3, 200, 130, 77), "float32", precision="tf32"), {"a", "b"}),
     (Workload("gemm_nt", (1000, 999, 777), "float32", precision="tf32"), set())],
    ids=lambda x: getattr(x, "name", None) or "-".join(sorted(x)) or "none",
)  # fmt: skip
def test_allowed_tf32_copies_only_mn_major_operands_in_one_segment(needs_nvcc, workload, copied):
    """TF32 allowed (one product): an operand stored MN-major (B as ``[K, N]``, A as ``[K, M]``)
    is read from a K-major copy of one segment (its values rounded to TF32, rows of whole lines:
    the kernel's K runs over zeros past the user's), a K-major operand as stored (padded only
    where TMA needs it); the kernel takes the user's tensors."""
    *lead, m, n, k = workload.shape
    nb = lead[0] if lead else 1
    genome = Grammar(TARGET).check(Genome.default("cuda.wgmma").replace(raster=1), workload)
    assert tf32_passes(workload) == 1
    mod = FAMILY.candidate(genome.params, workload, TARGET).mod
    splits = {gv.name_hint[-1]: gv for gv in mod.functions if "_split_" in gv.name_hint}
    assert set(splits) == copied
    a_shape = (*lead, k, m) if "tn" in workload.op else (*lead, m, k)
    script = mod["main"].script()
    assert f'def main(A: T.Buffer(({", ".join(map(str, a_shape))}), "float32"' in script
    kp = split_k(k, 1)
    for name, gv in splits.items():
        rows = nb * (m if name == "a" else n)
        assert f"({rows}, {kp})" in mod[gv].script()  # one segment: K-major rows of whole lines
        assert f"{name.upper()}8.data, {kp}, {rows}, {kp * 4}" in script  # what the TMA reads
    if "a" not in copied:
        assert f"A8.data, {-(-k // LINE) * LINE}" in script or "A.data" in script
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    assert "f32.tf32.tf32" in src
    assert set(re.findall(r"ps0, ([\d, ]+);", src)) == {"1, 1"}  # no transpose flags


@pytest.mark.parametrize("m, n, k", [(64, 48, 77), (64, 64, 1024)])
def test_one_product_over_a_rounded_copy_meets_the_tf32_bound(m, n, k):
    """Allowed TF32: B copied into one segment (``hi``, rounded to TF32), A read as stored (the
    tensor core drops its low 13 bits) lands inside the gate's TF32 bound, not its fp32 one."""
    assert tf32x3.segments("a", 1) == tf32x3.segments("b", 1) == ("hi",)
    a, b = Workload("gemm_nt", (m, n, k), "float32").random_inputs(np.random.default_rng(k))
    ref = a.astype(np.float64) @ b.astype(np.float64).T
    got = _wgmma(_tensor_core(a), _segments(b, tf32x3.segments("b", 1))[0])
    u_gpu = 2 * UNIT_ROUNDOFF["float32"]
    for precision, inside in (("tf32", True), ("", False)):
        workload = Workload("gemm_nt", (m, n, k), "float32", precision=precision)
        bound = tolerance(workload, [a, b], ref, u_gpu)
        assert bool(np.all(np.abs(got - ref) <= bound)) is inside

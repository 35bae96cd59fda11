# SPDX-License-Identifier: Apache-2.0
"""MFMA (AMD matrix core) GEMM schedules for gfx942/gfx90a with TVM 0.27's ``rocm_mfma_*`` intrins.

Read first: :func:`schedule_rocm_mfma` tensorizes a GEMM block (16x16x16 f16->f32, 16x16x4 f32,
16x16x16 s8 on gfx90a); :func:`~autokernel_tvm.families.rocm_mfma.build.build_rocm` compiles it with
``rocm_build.PIPELINE``, a TIR pipeline that works around three ``LowerWarpMemory`` bugs of 0.27
((1), (2) fixed on apache/tvm main). (1) It
lowers one ``warp`` allocation per scope per run; an MFMA GEMM has three (A, B, C fragments) and
the rest fail in codegen ("Can only allocate shared or local memory inside kernel"): the pipeline
repeats the pass. (2) It cannot see ``threadIdx.x`` through CSE's let-bound temporaries ("require
positive constant coefficient on warp index"): the pipeline turns CSE off. (3) It cannot split an
unrolled index such as ``tx * 4 + 257`` (fragment 1, register 1: the simplifier does not prove
``(tx * 4 + 257) // 256 == 1``; "failed to rewrite load to shuffle"), which any unroll pragma on
more than one fragment produced: 61% of sampled candidates failed. The pipeline unrolls after it.

Numerics are NOT verified (no AMD GPU here); tests check that kernels build with ``v_mfma``.
Layout: ``warps_m x warps_n`` 64-lane wavefronts (``threadIdx.y``) per workgroup, each owning
``tiles_m x tiles_n`` 16x16 accumulators; A, B go global -> shared (``k_chunk`` K-steps) -> regs.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm.s_tir import Schedule
from tvm.s_tir.schedule import ExprRV, SBlockRV

from ...intrin.rocm_mfma import INTRINS, TRANS, register_intrins

Size = int | ExprRV | None


class MfmaScheduleError(ValueError):
    """The block is not a GEMM this schedule handles; the message says why."""


@dataclass(frozen=True)
class MfmaTiling:
    """What :func:`schedule_rocm_mfma` chose: sizes (ints or sampled ExprRVs), the init block."""

    warps_m: int | ExprRV
    warps_n: int | ExprRV
    tiles_m: int | ExprRV
    tiles_n: int | ExprRV
    k_chunk: int | ExprRV
    init: SBlockRV


def _layouts(k: int, b_trans: bool):
    """Index maps (logical (row, col) -> (tile_r, tile_c, lane, reg)) of the A, B, C fragments."""
    from tvm.s_tir.tensor_intrin import rocm

    lay_a, lay_b = {
        16: (rocm.shared_16x16_to_local_64x4_layout_A, rocm.shared_16x16_to_local_64x4_layout_B),
        4: (rocm.shared_16x4_to_local_64x1_layout_A, rocm.shared_4x16_to_local_64x1_layout_B),
    }[k]
    # B^T (n, k) lands in the same registers as B (k, n): lane n + 16 * (k // 4), as A does.
    b_rows, b_cols, lay_b = (16, k, lay_a) if b_trans else (k, 16, lay_b)

    def tiled(lay, rows, cols):
        def index_map(i, j):
            lane, reg = lay(i % rows, j % cols)
            reg = tvm.tirx.const(reg, "int32") if isinstance(reg, int) else reg  # 64x1: Python 0
            return i // rows, j // cols, lane, reg

        return index_map

    lay_c = rocm.shared_16x16_to_local_64x4_layout_C
    return tiled(lay_a, 16, k), tiled(lay_b, b_rows, b_cols), tiled(lay_c, 16, 16)


def _gemm_operands(sch: Schedule, block: SBlockRV):
    """(dtype, b_trans) of a ``C[i, j] += A[i, k] * B[k, j] (or B[j, k])`` block, validated."""
    stmt = sch.get(block)
    if len(stmt.iter_vars) != 3 or [int(v.iter_type) for v in stmt.iter_vars] != [0, 0, 2]:
        raise MfmaScheduleError(f"block {stmt.name_hint!r} is not a 2-D GEMM (i, j spatial, k red)")
    vi, vj, vk = (v.var for v in stmt.iter_vars)
    out = stmt.writes[0].source
    ins = [r for r in stmt.reads if not r.source.same_as(out)]
    idx = [[rng.min for rng in r.region] for r in ins]

    def reads(n, row, col):
        return len(idx[n]) == 2 and idx[n][0].same_as(row) and idx[n][1].same_as(col)

    b_trans = len(ins) == 2 and reads(1, vj, vk)
    if len(ins) != 2 or not reads(0, vi, vk) or not (b_trans or reads(1, vk, vj)):
        raise MfmaScheduleError(f"block {stmt.name_hint!r} must read A[i, k] and B[k, j]/B[j, k]")
    dtype, acc = str(ins[0].source.dtype), str(out.dtype)
    if dtype not in INTRINS or INTRINS[dtype].acc != acc or str(ins[1].source.dtype) != dtype:
        raise MfmaScheduleError(f"no MFMA intrinsic for {dtype} x {ins[1].source.dtype} -> {acc}")
    return dtype, b_trans


def gemm_shape(sch: Schedule, block: SBlockRV) -> tuple[int, int, int, str, bool]:
    """(M, N, K, input dtype, b_trans) of a GEMM block; MfmaScheduleError if it is none."""
    dtype, b_trans = _gemm_operands(sch, block)
    m, n, k = (int(sch.get(loop).extent) for loop in sch.get_loops(block)[-3:])
    return m, n, k, dtype, b_trans


def mfma_problem(m: int, n: int, k: int, dtype: str, warps_m: Size = 1, warps_n: Size = 1):
    """Why an M x N x K ``dtype`` GEMM cannot be scheduled with these wavefronts, or None.

    The sampled sizes need no check: :func:`schedule_rocm_mfma` draws only legal ones."""
    if dtype not in INTRINS:
        return f"no MFMA intrinsic for {dtype}"
    for name, size, step, warps in (("M", m, 16, warps_m), ("N", n, 16, warps_n)):
        if size % step:
            return f"{name}={size} is not a multiple of {step}"
        if isinstance(warps, int) and (warps <= 0 or size // step % warps):
            return f"size {warps} does not divide the {size // step} MFMA tiles along {name}"
    return f"K={k} is not a multiple of {INTRINS[dtype].k}" if k % INTRINS[dtype].k else None


def _factor(sch, loop, size: Size, max_size: int) -> int | ExprRV:
    """``size``, or a factor of ``loop``'s extent drawn with sample_perfect_tile if None."""
    if size is None:
        return sch.sample_perfect_tile(loop, n=2, max_innermost_factor=max_size)[1]
    extent = int(sch.get(loop).extent)
    if isinstance(size, int) and (size <= 0 or extent % size):
        raise MfmaScheduleError(f"size {size} does not divide the {extent} MFMA tiles")
    return size


def _split_levels(sch, loop, warps: Size, tiles: Size, max_warps: int, max_tiles: int):
    """Split a loop over MFMA tiles into (workgroup, wavefront, tile) loops.

    The wavefront count is split off first and the tile count drawn from what is left, so every
    tile count that sample_perfect_tile (or MutateTileSize) picks fits the fixed wavefronts. The
    two loops are then fused and split again to give each wavefront a contiguous run of tiles:
    fragment buffers are sized by bounding box, so an interleaved run would take W x the VGPRs.
    """
    warps = _factor(sch, loop, warps, max_warps)
    rest, wave = sch.split(loop, [None, warps])
    tiles = _factor(sch, rest, tiles, max_tiles)
    return (*sch.split(sch.fuse(rest, wave), [None, warps, tiles]), warps, tiles)


def schedule_rocm_mfma(
    sch: Schedule,
    block: SBlockRV | str = "C",
    *,
    warps_m: Size = None,
    warps_n: Size = None,
    tiles_m: Size = None,
    tiles_n: Size = None,
    k_chunk: Size = None,
    max_warps: int = 4,
    max_tiles: int = 4,
    max_k_chunk: int = 4,
) -> MfmaTiling:
    """Tensorize a GEMM block with MFMA 16x16xK intrinsics (K = 16 for f16/s8, 4 for f32).

    Parameters
    ----------
    sch : Schedule
        Schedule holding the GEMM block ``C[i, j] += A[i, k] * B[k, j]`` (or ``B[j, k]``), f16 ->
        f32, f32 -> f32 or s8 -> s32 (gfx90a only); M, N multiples of 16, K of K. Changed in place.
    block : SBlockRV or str
        The GEMM block; C must be a global buffer (epilogues stay separate blocks).
    warps_m, warps_n, tiles_m, tiles_n, k_chunk : int, ExprRV or None
        Wavefronts per workgroup along M / N, 16x16 tiles per wavefront along M / N, MFMA K-steps
        per shared-memory stage. Ints must divide the tile counts (tiles: what the wavefronts
        leave), ExprRVs must be valid factors; None draws the size with ``sample_perfect_tile``
        (wavefronts first, tiles from what they leave, so every draw and every MutateTileSize
        mutation is legal), bounded by ``max_warps`` / ``max_tiles`` / ``max_k_chunk``.

    Returns
    -------
    MfmaTiling
        The sizes as used and the init block. Numerics are not verified (no AMD GPU here).
    """
    block = sch.get_sblock(block) if isinstance(block, str) else block
    m, n, k_len, dtype, b_trans = gemm_shape(sch, block)
    if (problem := mfma_problem(m, n, k_len, dtype, warps_m, warps_n)) is not None:
        raise MfmaScheduleError(problem)  # before any change to ``sch``
    intr = INTRINS[dtype]
    i, j, k = sch.get_loops(block)[-3:]
    tile = (16, 16, intr.k)
    register_intrins()
    (i, i_tc), (j, j_tc), (k, k_tc) = (
        sch.split(x, [None, n]) for x, n in zip((i, j, k), tile, strict=True)
    )
    sch.reorder(i, j, k, i_tc, j_tc, k_tc)
    outer = sch.blockize(i_tc)

    i0, i1, i2, warps_m, tiles_m = _split_levels(sch, i, warps_m, tiles_m, max_warps, max_tiles)
    j0, j1, j2, warps_n, tiles_n = _split_levels(sch, j, warps_n, tiles_n, max_warps, max_tiles)
    k_chunk = _factor(sch, k, k_chunk, max_k_chunk)
    k0, k1 = sch.split(k, [None, k_chunk])
    sch.reorder(i0, j0, i1, j1, k0, k1, i2, j2)
    sch.bind(sch.fuse(i0, j0), "blockIdx.x")
    warp = sch.fuse(i1, j1)
    sch.bind(warp, "threadIdx.y")

    for index in (0, 1):  # cooperative global -> shared copy, one vector per lane
        copy = sch.cache_read(outer, index, "shared")
        sch.compute_at(copy, k0)
        fused = sch.fuse(*sch.get_loops(copy)[-2:])
        _, wm, wn, lane, vec = sch.split(fused, [None, warps_m, warps_n, 64, intr.vec])
        sch.bind(sch.fuse(wm, wn), "threadIdx.y")
        sch.bind(lane, "threadIdx.x")
        sch.vectorize(vec)

    # Register fragments ("warp" scope: 64 lanes x regs), loaded per K-step, stored per warp.
    a_frag, b_frag = sch.cache_read(outer, 0, "warp"), sch.cache_read(outer, 1, "warp")
    for frag in (a_frag, b_frag):
        sch.compute_at(frag, k1)
    c_frag = sch.cache_write(outer, 0, "warp")
    sch.reverse_compute_at(c_frag, warp)
    init = sch.decompose_reduction(outer, k0)

    def fragment(frag, rows, cols):  # tile the last two loops into (rows, cols) fragments
        r, c = sch.get_loops(frag)[-2:]
        (r0, r1), (c0, c1) = sch.split(r, [None, rows]), sch.split(c, [None, cols])
        sch.reorder(r0, c0, r1, c1)
        return r1

    loops = [fragment(a_frag, 16, intr.k), fragment(c_frag, 16, 16)]
    loops.append(fragment(b_frag, *((16, intr.k) if b_trans else (intr.k, 16))))
    map_a, map_b, map_c = _layouts(intr.k, b_trans)
    sch.transform_layout(a_frag, ("write", 0), map_a)
    sch.transform_layout(b_frag, ("write", 0), map_b)
    sch.transform_layout(c_frag, ("read", 0), map_c)
    sch.tensorize(loops[0], intr.load_a)
    sch.tensorize(loops[2], TRANS.format(intr.load_b) if b_trans else intr.load_b)
    sch.tensorize(sch.get_loops(block)[-3], intr.compute)
    sch.tensorize(sch.get_loops(sch.get_child_blocks(init)[0])[-2], intr.fill)
    sch.tensorize(loops[1], intr.store)
    return MfmaTiling(warps_m, warps_n, tiles_m, tiles_n, k_chunk, init)

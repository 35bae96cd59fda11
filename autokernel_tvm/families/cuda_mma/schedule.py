# SPDX-License-Identifier: Apache-2.0
"""CUDA tensor-core GEMM schedule template: ldmatrix + mma.sync m16n8k16 with a cp.async pipeline.

Read `apply_cuda_mma` first. The keyword arguments are the STRUCTURE (picked by the generator);
the numeric tile sizes are sampled inside from lists that `cuda_mma_tiles.tile_candidates`
pre-filters, so every decision MetaSchedule's search or mutators can make is a legal, buildable
candidate. `legal` gives the reason a structure cannot be used for a workload, before scheduling.
MetaSchedule glue (rule, mutator, postprocs, builder) is in `cuda_mma_ms.py`.

Loop nest produced (one thread block computes a BM x BN tile, BM = 16*warp_m*frag_m,
BN = 16*warp_n*frag_n, BK = 16*k_frags)::

    blockIdx.x  (rasterized M/N tile grid)
      threadIdx.y (warp_m*warp_n warps)   C accumulators live in registers ("warp" scope)
        k0 (K/BK)   software pipeline: A/B global->shared.dyn with cp.async, `stages` deep
          k1 (k_frags) ldmatrix A, B -> mma.sync over frag_m x frag_n fragments
      epilogue: mma_store from registers straight to global

Tried and left out (TVM 0.27, nvcc 13): a shared-memory epilogue (mma_store into an fp32
shared.dyn tile fails LowerIntrin after StorageRewrite merges it with the fp16 A/B ring; the
"simple" store makes LowerWarpMemory emit __shfl_sync per element and spill the accumulators);
an unroll knob (explicit unrolling anywhere in the warp tile puts the accumulators in local memory,
560 B stack frame; ``pragma_unroll_explicit=0`` fails codegen on non-constant cp.async waits);
split-K (needs a second reduction kernel or atomics; 4096^3 already has 1024 128x128 tiles).
"""

from __future__ import annotations

import inspect

from tvm import s_tir

from .tiles import (
    MMA_TILE,
    PAD_HALFS,
    WARP_SIZE,
    MmaStructureError,
    MmaTiles,
    tile_candidates,
)

__all__ = ["MmaStructureError", "apply_cuda_mma", "legal", "gemm_shape"]


def legal(m: int, n: int, k: int, **structure) -> str | None:
    """Why ``structure`` (the keyword arguments of `apply_cuda_mma`) is illegal for an
    ``m x n x k`` GEMM, or None when every candidate it samples is legal."""
    params = inspect.signature(tile_candidates).parameters
    unknown = sorted(set(structure) - set(params))
    if unknown or "trans_b" not in structure:
        return f"bad structure keywords: unknown {unknown}" if unknown else "trans_b is required"
    try:
        tile_candidates(m, n, k, **structure)
    except MmaStructureError as err:
        return str(err)
    return None


def gemm_shape(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV) -> tuple[int, int, int, bool]:
    """(m, n, k, trans_b) of a GEMM block ``C[i, j] += A[i, k] * B[k, j] (or B[j, k])``."""
    stmt = sch.get(block)
    kinds = [int(iv.iter_type) for iv in stmt.iter_vars]
    if len(kinds) != 3 or kinds != [0, 0, 2]:  # kDataPar, kDataPar, kCommReduce
        raise MmaStructureError(f"block {stmt.name_hint!r} is not a 3-loop SSR GEMM block")
    vi, vj, vk = (iv.var for iv in stmt.iter_vars)
    m, n, k = (int(iv.dom.extent) for iv in stmt.iter_vars)
    out = stmt.writes[0].source  # 0.27: regions name their buffer `.source`, not `.buffer`
    ins = [r for r in stmt.reads if not r.source.same_as(out)]
    if len(ins) != 2:
        raise MmaStructureError(f"block {stmt.name_hint!r} must read exactly two inputs")
    if str(out.dtype) != "float32" or str(ins[0].source.dtype) != str(ins[1].source.dtype):
        raise MmaStructureError(
            f"dtypes {ins[0].source.dtype} x {ins[1].source.dtype} -> {out.dtype}: "
            "need equal input dtypes and a float32 output"
        )
    b_vars = [r.min for r in ins[1].region]
    if len(b_vars) == 2 and b_vars[0].same_as(vj) and b_vars[1].same_as(vk):
        trans_b = True
    elif len(b_vars) == 2 and b_vars[0].same_as(vk) and b_vars[1].same_as(vj):
        trans_b = False
    else:
        raise MmaStructureError(f"B is indexed {b_vars}, expected [k, j] or [j, k]")
    a_vars = [r.min for r in ins[0].region]
    if not (len(a_vars) == 2 and a_vars[0].same_as(vi) and a_vars[1].same_as(vk)):
        raise MmaStructureError(f"A is indexed {a_vars}, expected [i, k]")
    return m, n, k, trans_b


def inline_producers(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV) -> None:
    """Inline every producer chain of ``block`` into it (innermost first), so a shared-memory
    copy reads the workload's inputs directly: the im2col gather and zero padding of a rewrite
    (`autokernel_tvm.rewrite`) become predicated cp.async copies, never global buffers."""
    while producers := sch.get_producers(block):
        sch.compute_inline(producers[0])


def _ldmatrix_index_map(i, j):
    from tvm.s_tir.tensor_intrin.cuda import shared_16x16_to_ldmatrix_32x8_layout

    return (i // 16, j // 16, *shared_16x16_to_ldmatrix_32x8_layout(i % 16, j % 16))


def apply_cuda_mma(
    sch: s_tir.Schedule,
    block: s_tir.schedule.SBlockRV,
    *,
    in_dtype: str = "float16",
    trans_b: bool,
    warp_m: int = 2,
    warp_n: int = 2,
    stages: int = 3,
    smem_layout: str = "swizzle",
    vector_bytes: int = 16,
    raster: int = 0,
    unroll: int = 0,
    epilogue: str = "direct",
    frag_pipeline: bool = False,
    smem_limit: int,
) -> s_tir.Schedule:
    """Schedule the GEMM ``block`` of ``sch`` (in place) for ldmatrix + mma.sync m16n8k16.

    Parameters
    ----------
    in_dtype : "float16" or "bfloat16" (the output buffer must be float32).
    trans_b : B is [N, K] (``A @ B.T``) if True, [K, N] if False; must match the block.
    warp_m, warp_n : warps per block along M and N, each in {1, 2, 4, 8}, product <= 8.
    stages : cp.async software-pipeline depth of the shared-memory ring, 2..5.
    smem_layout : "swizzle" (XOR-permuted 16-byte chunks, TVM's ``permuted_layout``),
        "pad" (rows padded by 16 bytes) or "plain" (bank conflicts on ldmatrix).
    vector_bytes : bytes per cp.async global->shared copy: 4, 8 or 16.
    raster : block rasterization: 0 = row-major tile order, G > 1 = groups of G tile rows
        walked column by column (L2 reuse of B tiles).
    unroll : must be 0, epilogue : must be "direct" (see the module docstring: they are
        keywords only so that `legal` can give the reason other values are rejected).
    frag_pipeline : also software-pipeline the inner K loop (prefetch the next ldmatrix
        fragments into a second register buffer).
    smem_limit : dynamic shared memory budget in bytes for the worst sampled candidate (the
        target's, :func:`autokernel_tvm.hardware.limits`).

    Sampled (``sample_categorical``): fragments per warp ``frag_m``, ``frag_n`` in {1, 2, 4}
    and ``k_frags`` in {2, 4} (BK 32 or 64), each restricted to values legal for the shape.
    """
    from tvm.s_tir.tensor_intrin.cuda import get_mma_intrin_group

    m, n, k, block_trans_b = gemm_shape(sch, block)
    if block_trans_b != trans_b:
        raise MmaStructureError(f"trans_b={trans_b} but the block reads B as trans_b={not trans_b}")
    block_dtype = str(sch.get(block).reads[-1].source.dtype)
    if block_dtype != in_dtype:
        raise MmaStructureError(f"in_dtype={in_dtype} but the block reads {block_dtype}")
    tiles: MmaTiles = tile_candidates(
        m, n, k, in_dtype=in_dtype, trans_b=trans_b, warp_m=warp_m, warp_n=warp_n,
        stages=stages, smem_layout=smem_layout, vector_bytes=vector_bytes, raster=raster,
        unroll=unroll, epilogue=epilogue, smem_limit=smem_limit,
    )  # fmt: skip
    warps = warp_m * warp_n

    # 1. 16x16x16 inner tile, blockized: the outer block works on mma fragments.
    i, j, kk = sch.get_loops(block)
    i, i_tc = sch.split(i, [None, MMA_TILE])
    j, j_tc = sch.split(j, [None, MMA_TILE])
    kk, k_tc = sch.split(kk, [None, MMA_TILE])
    sch.reorder(i, j, kk, i_tc, j_tc, k_tc)
    block_mma = block
    block_outer = sch.blockize(i_tc)

    # 2. Sampled tile sizes -> grid x warps x fragments.
    frag_m = sch.sample_categorical(list(tiles.frag_m), MmaTiles.probs(tiles.frag_m))
    frag_n = sch.sample_categorical(list(tiles.frag_n), MmaTiles.probs(tiles.frag_n))
    k_frags = sch.sample_categorical(list(tiles.k_frags), MmaTiles.probs(tiles.k_frags))
    i0, i1, i2 = sch.split(i, [None, warp_m, frag_m])
    j0, j1, j2 = sch.split(j, [None, warp_n, frag_n])
    k0, k1 = sch.split(kk, [None, k_frags])
    if raster > 1:
        i0, i0_in = sch.split(i0, [None, raster])
        sch.reorder(i0, j0, i0_in, i1, j1, k0, k1, i2, j2)
        bx = sch.fuse(i0, j0, i0_in)
    else:
        sch.reorder(i0, j0, i1, j1, k0, k1, i2, j2)
        bx = sch.fuse(i0, j0)
    sch.bind(bx, "blockIdx.x")
    ty = sch.fuse(i1, j1)
    sch.bind(ty, "threadIdx.y")

    # 3. Global -> shared.dyn, cooperative and vectorized (cp.async under tirx.use_async_copy).
    def to_shared(index: int) -> s_tir.schedule.SBlockRV:
        copy = sch.cache_read(block_outer, index, "shared.dyn")
        inline_producers(sch, copy)
        sch.compute_at(copy, k0)
        fused = sch.fuse(*sch.get_loops(copy)[-2:])
        _, f_ty, f_tx, f_vec = sch.split(fused, [None, warps, WARP_SIZE, vector_bytes // 2])
        sch.bind(f_ty, "threadIdx.y")
        sch.bind(f_tx, "threadIdx.x")
        sch.vectorize(f_vec)
        if smem_layout == "pad":
            sch.storage_align(copy, 0, axis=-2, factor=32, offset=PAD_HALFS)
        elif smem_layout == "swizzle":
            sch.annotate(copy, "permuted_layout", 1)
        return copy

    to_shared(0)
    to_shared(1)

    # 4. Shared -> registers with ldmatrix, per 16x16 fragment, inside k1.
    def to_registers(index: int) -> s_tir.schedule.LoopRV:
        frag = sch.cache_read(block_outer, index, "warp")
        sch.compute_at(frag, k1)
        r, c = sch.get_loops(frag)[-2:]
        r0, r1 = sch.split(r, [None, MMA_TILE])
        c0, c1 = sch.split(c, [None, MMA_TILE])
        sch.reorder(r0, c0, r1, c1)
        sch.transform_layout(frag, ("write", 0), _ldmatrix_index_map)
        return r1  # the 16x16 fragment loop that ldmatrix replaces

    a_loop = to_registers(0)
    b_loop = to_registers(1)

    # 5. Epilogue: mma accumulators (registers) -> global, one 16x16 fragment at a time.
    acc = sch.cache_write(block_outer, 0, "warp")
    sch.reverse_compute_at(acc, ty)
    r, c = sch.get_loops(acc)[-2:]
    r0, r1 = sch.split(r, [None, MMA_TILE])
    c0, c1 = sch.split(c, [None, MMA_TILE])
    sch.reorder(r0, c0, r1, c1)
    sch.transform_layout(acc, ("read", 0), _ldmatrix_index_map)

    # 6. Tensorize: fill, ldmatrix (in a permuted-layout block for "swizzle"), mma, store.
    init = sch.decompose_reduction(block_outer, k0)
    if in_dtype == "bfloat16":
        from ...intrin.cuda_bf16 import bf16_intrin_group

        intrins = bf16_intrin_group("shared.dyn", "global", trans_b)
    else:
        intrins = get_mma_intrin_group(
            load_scope="shared.dyn",
            store_scope="global",
            in_dtype=in_dtype,
            out_dtype="float32",
            trans_a=False,
            trans_b=trans_b,
            not_use_mma_store_intrinic=False,
        )
    for loop, key in ((a_loop, "load_a"), (b_loop, "load_b")):
        ld_block = sch.blockize(loop)
        if smem_layout == "swizzle":
            sch.annotate(ld_block, "permuted_layout", 1)
        sch.tensorize(loop, intrins[key])
    sch.tensorize(sch.get_loops(block_mma)[-3], intrins["compute"])
    sch.tensorize(sch.get_loops(sch.get_child_blocks(init)[0])[-2], intrins["init"])
    sch.tensorize(r1, intrins["store"])

    # 7. Software pipeline. The inner pipeline (if any) splits the k1 body into prologue, body
    # and epilogue, so the outer annotation then covers 5 statements instead of 3.
    last = stages - 1
    if frag_pipeline:
        sch.annotate(k1, "software_pipeline_stage", [0, 0, 1])
        sch.annotate(k1, "software_pipeline_order", [0, 1, 2])
        sch.annotate(k0, "software_pipeline_stage", [0, 0, last, last, last])
        sch.annotate(k0, "software_pipeline_order", [0, 1, 2, 3, 4])
    else:
        sch.annotate(k0, "software_pipeline_stage", [0, 0, last])
        sch.annotate(k0, "software_pipeline_order", [0, 1, 2])
    sch.annotate(k0, "software_pipeline_async_stages", [0])
    return sch

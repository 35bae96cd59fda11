# SPDX-License-Identifier: Apache-2.0
"""``cuda.mma``: GEMM on NVIDIA tensor cores (sm_80+) with ldmatrix + mma.sync m16n8k16 and a
cp.async software pipeline, realised by :func:`autokernel_tvm.space.cuda_mma.apply_cuda_mma`.

The genome fixes the structure (warps per block, pipeline depth, shared-memory layout, copy
width, rasterization, write-back, unroll); the fragment counts and K tile stay
``sample_categorical`` decisions restricted to legal values, so no sampled candidate is illegal.
"""

from __future__ import annotations

from .schedule import MmaStructureError, apply_cuda_mma, gemm_shape, legal

NAME = "cuda.mma"


def structure(genome, in_dtype: str, trans_b: bool) -> dict:
    """The keyword arguments of ``apply_cuda_mma`` that ``genome`` stands for."""
    return {
        "in_dtype": in_dtype,
        "trans_b": trans_b,
        "warp_m": genome.warps[0],
        "warp_n": genome.warps[1],
        "stages": genome.stages,
        "smem_layout": genome.a.layout,
        "vector_bytes": genome.a.vector_bytes,
        "raster": genome.raster,
        "unroll": genome.unroll[0],
        "frag_pipeline": genome.frag_pipeline,
    }


def apply(sch, block, genome):
    try:
        m, n, k, trans_b = gemm_shape(sch, block)
    except MmaStructureError:
        return [sch]  # not a GEMM block: the stock rules schedule it
    in_dtype = str(sch.get(block).reads[0].source.dtype)
    kwargs = structure(genome, in_dtype, trans_b)
    if legal(m, n, k, **kwargs) is not None:  # the grammar rejects these before tuning
        return [sch]
    for consumer in sch.get_consumers(block):  # AutoInline fails on the tensorized producer
        sch.annotate(consumer, "meta_schedule.inline_rule", "disable")  # epilogue: own kernel
    apply_cuda_mma(sch, block, **kwargs)
    return [sch]

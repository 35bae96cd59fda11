# SPDX-License-Identifier: Apache-2.0
"""``rocm.mfma``: GEMM on AMD matrix cores (gfx942/gfx90a) through TVM's ``rocm_mfma_*``
intrinsics, scheduled by :func:`autokernel_tvm.intrin.rocm_mfma.schedule_rocm_mfma`.

The genome fixes the wavefronts per workgroup (``warps``); the fragments per wavefront and the K
chunk stay ``sample_perfect_tile`` decisions for MetaSchedule to tune, drawn from what the
wavefronts leave so that every sample and mutation is legal. Unroll decisions (stock
ParallelizeVectorizeUnroll) are legal too: :data:`~autokernel_tvm.families.rocm_mfma.build.PIPELINE`
unrolls after LowerWarpMemory. An epilogue stays a kernel of its own (fusing it is future work).
Numerics are unverified: no AMD GPU was available; candidates are checked to build with
``v_mfma`` in their assembly (tests/space/test_rocm_space.py).
"""

from __future__ import annotations

from .schedule import MfmaScheduleError, gemm_shape, mfma_problem, schedule_rocm_mfma

NAME = "rocm.mfma"


def apply(sch, block, genome):
    warps_m, warps_n = genome.warps
    try:
        m, n, k, dtype, _ = gemm_shape(sch, block)
    except MfmaScheduleError:
        return [sch]  # not an MFMA GEMM block: the stock rules schedule it
    if mfma_problem(m, n, k, dtype, warps_m, warps_n) is not None:
        return [sch]  # shape and wavefronts do not fit; the grammar should reject this genome
    for consumer in sch.get_consumers(block):  # AutoInline crashes on the tensorized producer
        sch.annotate(consumer, "meta_schedule.inline_rule", "disable")  # epilogue: own kernel
    schedule_rocm_mfma(sch, block, warps_m=warps_m, warps_n=warps_n)
    return [sch]

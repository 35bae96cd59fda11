# SPDX-License-Identifier: Apache-2.0
"""``rocm.mfma``: GEMM on AMD matrix cores (gfx942/gfx90a) through TVM's ``rocm_mfma_*``
intrinsics, scheduled by :func:`autokernel_tvm.intrin.rocm_mfma.schedule_rocm_mfma`.

The genome fixes the wavefronts per workgroup (``warps``); the fragments per wavefront and the K
chunk stay sampled (``sample_perfect_tile``) for MetaSchedule to tune. Numerics are unverified:
no AMD GPU was available; candidates are checked to build with ``v_mfma`` in their assembly.
"""

from __future__ import annotations

from ...intrin.rocm_mfma import schedule_rocm_mfma

NAME = "rocm.mfma"


def apply(sch, block, genome):
    warps_m, warps_n = genome.warps
    schedule_rocm_mfma(sch, block, warps_m=warps_m, warps_n=warps_n)
    return [sch]

# SPDX-License-Identifier: Apache-2.0
"""``rocm.mfma``: GEMM on AMD matrix cores (gfx942/gfx90a) through TVM's ``rocm_mfma_*``
intrinsics, scheduled by :func:`.schedule.schedule_rocm_mfma` and built by :mod:`.build`.

The parameters fix the wavefronts per workgroup; the fragments per wavefront and the K chunk stay
``sample_perfect_tile`` decisions for MetaSchedule to tune, drawn from what the wavefronts leave
so that every sample and mutation is legal. Unroll decisions (stock ParallelizeVectorizeUnroll)
are legal too: :data:`.build.PIPELINE` unrolls after LowerWarpMemory. An epilogue stays a kernel
of its own. Numerics are unverified: no AMD GPU was available; candidates are checked to build
with ``v_mfma`` in their assembly (tests/families/test_rocm_mfma.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...rewrite import GEMM_OPS
from ..base import GenomeError, Params
from ..design_space import ScheduleFamily
from .schedule import MfmaScheduleError, gemm_shape, mfma_problem, schedule_rocm_mfma

DTYPES = ("float16", "float32")  # MFMA f16 -> f32 and f32 -> f32


@dataclass(frozen=True)
class MfmaParams(Params):
    """warps: 64-lane wavefronts per workgroup along (M, N)."""

    warps: tuple[int, int] = (2, 2)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.warps) != 2 or min(self.warps) < 1:
            raise GenomeError("bad-warps", str(self.warps))


class RocmMfma(ScheduleFamily):
    name = "rocm.mfma"
    marker = "Tensorize"  # the MFMA intrinsics
    params = MfmaParams
    domain = {"warps": ((1, 1), (2, 2), (1, 2), (2, 1))}
    default = MfmaParams()

    def applies(self, workload, target) -> str | None:
        if target.kind.name != "rocm":
            return "needs a ROCm target"
        if workload.dtype not in DTYPES:
            return f"inputs {workload.dtype}: MFMA is implemented for {DTYPES}"
        if workload.op not in GEMM_OPS:
            return f"op {workload.op}: the MFMA schedule takes 2-D GEMMs"
        if workload.out_dtype not in ("", "float32"):
            return f"output {workload.out_dtype}: the MFMA store writes the f32 accumulators"
        return None

    def check(self, params: MfmaParams, workload, target) -> None:
        m, n, k = workload.shape[-3:]
        why = mfma_problem(m, n, k, workload.dtype, *params.warps)
        if why:
            raise GenomeError("mfma-structure", why)

    def schedule(self, sch, block, params: MfmaParams, target) -> list:
        warps_m, warps_n = params.warps
        try:
            m, n, k, dtype, _ = gemm_shape(sch, block)
        except MfmaScheduleError:
            return [sch]  # not an MFMA GEMM block: the stock rules schedule it
        if mfma_problem(m, n, k, dtype, warps_m, warps_n) is not None:
            return [sch]  # check() rejects these before tuning
        for consumer in sch.get_consumers(block):  # AutoInline crashes on the tensorized producer
            sch.annotate(consumer, "meta_schedule.inline_rule", "disable")  # epilogue: own kernel
        schedule_rocm_mfma(sch, block, warps_m=warps_m, warps_n=warps_n)
        return [sch]

    def unroll(self, params: MfmaParams) -> tuple[int, ...]:
        return (0, 16, 64)

    def from_legacy(self, genome: dict) -> MfmaParams:
        return MfmaParams(warps=tuple(genome["warps"]))


FAMILY = RocmMfma()

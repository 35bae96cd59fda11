# SPDX-License-Identifier: Apache-2.0
"""``cuda.mma``: GEMM on NVIDIA tensor cores (sm_80+) with ldmatrix + mma.sync m16n8k16 and a
cp.async software pipeline, scheduled by :func:`.schedule.apply_cuda_mma`.

The parameters fix the structure (warps per block, pipeline depth, shared-memory layout, copy
width, rasterization, fragment double-buffering); the fragment counts and the K tile stay
``sample_categorical`` decisions restricted to legal values, so no sampled candidate is illegal.
conv2d (implicit GEMM) and GEMMs whose sizes are not tile multiples (padding) reach the template
through TensorIR rewrites (:mod:`autokernel_tvm.rewrite`). An epilogue (bias, activation) runs
as its own kernel after the GEMM: the stock AutoInline fails on the tensorized producer in 0.27.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...hardware import limits
from ...rewrite import GEMM_OPS, gemm_mnk, propose
from ..base import GenomeError, Params
from ..design_space import ScheduleFamily
from .metaschedule import MutateCategorical, mma_postprocs
from .schedule import MmaStructureError, apply_cuda_mma, gemm_shape, legal
from .tiles import IN_DTYPES


@dataclass(frozen=True)
class MmaParams(Params):
    """warps: warps per block along (M, N); stages: cp.async ring depth; smem_layout:
    ``swizzle``/``pad``/``plain``; vector_bytes: bytes per cp.async; raster: tile rows per
    rasterization group (0 = row-major); frag_pipeline: double-buffer the ldmatrix fragments."""

    warps: tuple[int, int] = (2, 4)
    stages: int = 3
    smem_layout: str = "swizzle"
    vector_bytes: int = 16
    raster: int = 8
    frag_pipeline: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.warps) != 2 or min(self.warps) < 1:
            raise GenomeError("bad-warps", str(self.warps))


def structure(params: MmaParams, in_dtype: str, trans_b: bool, smem_limit: int) -> dict:
    """The keyword arguments of :func:`.schedule.apply_cuda_mma` that ``params`` stands for."""
    return {
        "in_dtype": in_dtype,
        "trans_b": trans_b,
        "warp_m": params.warps[0],
        "warp_n": params.warps[1],
        "stages": params.stages,
        "smem_layout": params.smem_layout,
        "vector_bytes": params.vector_bytes,
        "raster": params.raster,
        "frag_pipeline": params.frag_pipeline,
        "smem_limit": smem_limit,
    }


class CudaMma(ScheduleFamily):
    name = "cuda.mma"
    marker = "Tensorize"  # the mma.sync intrinsics
    params = MmaParams
    domain = {
        "warps": ((2, 2), (2, 4), (4, 2), (4, 4), (1, 4), (4, 1), (2, 1), (1, 2)),
        "stages": (2, 3, 4),
        "smem_layout": ("swizzle", "pad", "plain"),
        "vector_bytes": (16, 8),
        "raster": (0, 8, 16),
        "frag_pipeline": (False, True),
    }
    default = MmaParams()

    def applies(self, workload, target) -> str | None:
        if target.kind.name != "cuda":
            return "needs a CUDA target"
        sm = int("".join(c for c in str(target.attrs.get("arch", "")) if c.isdigit()) or 0)
        if sm < 80:
            return f"sm_{sm}: mma.sync m16n8k16 with cp.async needs sm_80 or newer"
        if workload.dtype not in IN_DTYPES:
            return f"inputs {workload.dtype}: mma m16n8k16 -> f32 is implemented for {IN_DTYPES}"
        if workload.op not in GEMM_OPS and workload.op != "conv2d_nhwc":
            return f"op {workload.op}: the template schedules 2-D GEMMs and conv2d (no batch dim)"
        return None

    def rewrites(self, workload) -> tuple:
        return propose(workload, self.name)

    def check(self, params: MmaParams, workload, target) -> None:
        m, n, k = gemm_mnk(workload, self.rewrites(workload))  # after the rewrites
        smem = limits(target).smem_per_block
        why = legal(m, n, k, **structure(params, workload.dtype, workload.op != "gemm", smem))
        if why:
            raise GenomeError("mma-structure", why)

    def schedule(self, sch, block, params: MmaParams, target) -> list:
        try:
            m, n, k, trans_b = gemm_shape(sch, block)
        except MmaStructureError:
            return [sch]  # not a GEMM block: the stock rules schedule it
        in_dtype = str(sch.get(block).reads[0].source.dtype)
        kwargs = structure(params, in_dtype, trans_b, limits(target).smem_per_block)
        if legal(m, n, k, **kwargs) is not None:  # check() rejects these before tuning
            return [sch]
        for consumer in sch.get_consumers(block):  # AutoInline fails on the tensorized producer
            sch.annotate(consumer, "meta_schedule.inline_rule", "disable")  # epilogue: own kernel
        apply_cuda_mma(sch, block, **kwargs)
        return [sch]

    def unroll(self, params: MmaParams) -> tuple[int, ...]:
        # Explicit unrolling puts the accumulators in local memory (nvcc 13): never unroll.
        return (0,)

    def postprocs(self, target) -> list:
        return mma_postprocs()

    def mutators(self, target) -> dict:
        # The template samples its tiles with sample_categorical, which no stock mutator
        # touches; stock mutators that find nothing to mutate make EvolutionarySearch fail
        # (`Check failed: !weights.empty()`, TVM-0.27-NOTES §7.14), so this is the only one.
        return {MutateCategorical(): 1.0}

    def from_legacy(self, genome: dict) -> MmaParams:
        return MmaParams(
            warps=tuple(genome["warps"]),
            stages=genome["stages"],
            smem_layout=genome["a"]["layout"],
            vector_bytes=genome["a"]["vector_bytes"],
            raster=genome["raster"],
            frag_pipeline=genome.get("frag_pipeline", False),
        )


FAMILY = CudaMma()

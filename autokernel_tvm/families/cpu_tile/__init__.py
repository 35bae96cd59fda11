# SPDX-License-Identifier: Apache-2.0
"""``cpu.tile``: llvm GEMM-like reduction blocks tiled around a vector micro-kernel
(:mod:`.schedule`); the tile sizes stay ``sample_perfect_tile`` decisions for MetaSchedule."""

from __future__ import annotations

from dataclasses import dataclass

from ...workloads.dtypes import FP8_DTYPES
from ..base import GenomeError, Params
from ..design_space import ScheduleFamily
from . import schedule

#: Registers of the micro-kernel: rows x vectors x lanes fp32 accumulators (32 zmm x 16 lanes).
MICRO_REGISTER_LANES = 32 * 16


@dataclass(frozen=True)
class TileParams(Params):
    """structure: multi-level tiling, one letter per level (``S`` spatial, ``R`` reduction; the
    outermost spatial level is parallel); pack_b: pack B so its vector axis is contiguous;
    accumulator: ``local`` (a buffer written back per tile) or ``global``; epilogue: ``inline``
    (fused into the write-back) or ``separate``; vector_lanes: innermost vector width; micro:
    the register block (rows, vectors) of the innermost tile, (0, 0) = sampled; unroll: the
    unroll depths the search may pick from."""

    structure: str = "SSRSRS"
    pack_b: bool = True
    accumulator: str = "local"
    epilogue: str = "inline"
    vector_lanes: int = 16
    micro: tuple[int, int] = (4, 2)
    unroll: tuple[int, ...] = (0, 16, 64, 512)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.structure or set(self.structure) - {"S", "R"}:
            raise GenomeError("bad-structure", f"{self.structure!r} must be letters S and R")
        if self.accumulator not in ("local", "global"):
            raise GenomeError("bad-accumulator", self.accumulator)
        if self.epilogue not in ("inline", "separate"):
            raise GenomeError("bad-epilogue", self.epilogue)
        if len(self.micro) != 2 or min(self.micro) < 0:
            raise GenomeError("bad-micro", str(self.micro))
        if not self.unroll or min(self.unroll) < 0:
            raise GenomeError("bad-unroll", str(self.unroll))


class CpuTile(ScheduleFamily):
    name = "cpu.tile"
    marker = "SamplePerfectTile"  # stock multi-level tiling is replaced by the template
    params = TileParams
    domain = {
        "structure": ("SSRSRS", "SRSRS", "SSRS", "SSSRSRS"),
        "pack_b": (False, True),
        "accumulator": ("local", "global"),
        "epilogue": ("inline", "separate"),
        "vector_lanes": (8, 16, 32),
        "micro": ((0, 0), (4, 1), (4, 2), (8, 1), (8, 2), (2, 4)),
        "unroll": ((0, 16, 64, 512), (0, 8, 32), (64, 256, 1024)),
    }
    default = TileParams()

    def applies(self, workload, target) -> str | None:
        if target.kind.name != "llvm":
            return "needs an llvm (CPU) target"
        if workload.opdef.carry is not None:  # gemm_gated_nt
            return f"op {workload.op}: its epilogue reads two accumulators (no inlined write-back)"
        if workload.dtype in FP8_DTYPES:
            # the packed fp8 B's vector loads are legalized to f32 before the decode's
            # reinterpret reads their bits: LLVM rejects the bitcast (TVM 0.27)
            return (
                f"inputs {workload.dtype}: the template's vector loads of fp8 fail TVM 0.27's "
                "LLVM legalization (the stock space schedules it)"
            )
        return None

    def check(self, params: TileParams, workload, target) -> None:
        if not params.structure.endswith("S"):
            raise GenomeError("cpu-innermost-not-spatial", "the vector loop must be innermost")
        if "R" not in params.structure:
            raise GenomeError("no-reduction-level", params.structure)
        lanes, last = params.vector_lanes, workload.output.shape[-1]
        if last % lanes:
            raise GenomeError("vector-not-dividing", f"{lanes} lanes do not divide {last}")
        rows, vectors = params.micro
        if vectors and last % (lanes * vectors):
            raise GenomeError("micro-not-dividing", f"{vectors}x{lanes} does not divide {last}")
        if rows and len(workload.output.shape) >= 2 and workload.output.shape[-2] % rows:
            raise GenomeError("micro-not-dividing", f"{rows} rows do not divide the output")
        if rows * max(vectors, 1) * lanes > MICRO_REGISTER_LANES:
            raise GenomeError("micro-too-large", f"{rows}x{vectors}x{lanes} exceeds the registers")

    def schedule(self, sch, block, params: TileParams, target) -> list:
        return schedule.apply(sch, block, params)

    def unroll(self, params: TileParams) -> tuple[int, ...]:
        return params.unroll

    def from_legacy(self, genome: dict) -> TileParams:
        return TileParams(
            structure=genome["structure"],
            pack_b=genome["b"]["layout"] == "pack",
            accumulator=genome["accumulator"],
            epilogue=genome["epilogue"],
            vector_lanes=genome["vector_lanes"],
            micro=tuple(genome["micro"]),
            unroll=tuple(genome["unroll"]),
        )


FAMILY = CpuTile()

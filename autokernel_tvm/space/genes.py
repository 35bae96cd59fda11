# SPDX-License-Identifier: Apache-2.0
"""Genome <-> genes: the flat field -> value view the generator learns distributions over."""

from __future__ import annotations

from .genome import Genome, Staging
from .grammar import DOMAINS, default_genome


def encode(genome: Genome) -> dict:
    """The genes of ``genome`` (keys of its family's domain)."""
    if genome.family == "cpu.tile":
        return {
            "structure": genome.structure,
            "b_layout": genome.b.layout,
            "accumulator": genome.accumulator,
            "epilogue": genome.epilogue,
            "vector_lanes": genome.vector_lanes,
            "unroll": genome.unroll,
            "micro": genome.micro,
        }
    if genome.family == "cuda.mma":
        return {
            "intrinsic": genome.intrinsic,
            "warps": genome.warps,
            "stages": genome.stages,
            "smem_layout": genome.a.layout,
            "vector_bytes": genome.a.vector_bytes,
            "raster": genome.raster,
            "write_back": genome.write_back,
            "unroll": genome.unroll,
            "frag_pipeline": genome.frag_pipeline,
        }
    if genome.family == "cuda.wgmma":
        return {
            "intrinsic": genome.intrinsic,
            "warps": genome.warps,
            "stages": genome.stages,
            "raster": genome.raster,
        }
    return {"intrinsic": genome.intrinsic, "warps": genome.warps, "unroll": genome.unroll}


def decode(family: str, genes: dict) -> Genome:
    """Build a genome of ``family`` from genes (missing genes keep the family default)."""
    base = default_genome(family)
    unknown = set(genes) - set(DOMAINS[family])
    if unknown:
        raise KeyError(f"unknown genes {sorted(unknown)} for {family}")
    g = {**encode(base), **genes}
    if family == "cpu.tile":
        n_spatial = g["structure"].count("S")
        return base.replace(
            structure=g["structure"],
            binds=("parallel",) + ("serial",) * (n_spatial - 1),
            b=Staging("global", 0, 0, g["b_layout"]),
            accumulator=g["accumulator"],
            epilogue=g["epilogue"],
            vector_lanes=g["vector_lanes"],
            unroll=tuple(g["unroll"]),
            micro=tuple(g["micro"]),
        )
    if family == "cuda.mma":
        staging = Staging("shared.dyn", 0, g["vector_bytes"], g["smem_layout"])
        return base.replace(
            intrinsic=g["intrinsic"],
            warps=tuple(g["warps"]),
            stages=g["stages"],
            async_copy=g["stages"] > 1 or base.async_copy,
            a=staging,
            b=staging,
            raster=g["raster"],
            write_back=g["write_back"],
            unroll=tuple(g["unroll"]),
            frag_pipeline=g["frag_pipeline"],
        )
    if family == "cuda.wgmma":
        return base.replace(
            intrinsic=g["intrinsic"],
            warps=tuple(g["warps"]),
            stages=g["stages"],
            raster=g["raster"],
        )
    return base.replace(
        intrinsic=g["intrinsic"], warps=tuple(g["warps"]), unroll=tuple(g["unroll"])
    )

# SPDX-License-Identifier: Apache-2.0
"""Genomes: ``(family, params)`` values, JSON round trip, stable keys, errors with reasons."""

import json

import pytest

from autokernel_tvm.families import all_families
from autokernel_tvm.families.cpu_tile import TileParams
from autokernel_tvm.families.cuda_wgmma import WgmmaParams
from autokernel_tvm.space.genome import Genome, GenomeError

FAMILIES = [f.name for f in all_families()]


@pytest.mark.parametrize("family", FAMILIES)
def test_json_round_trip_and_stable_key(family):
    genome = Genome.default(family)
    text = json.dumps(genome.to_json())
    back = Genome.from_json(json.loads(text))
    assert back == genome and hash(back) == hash(genome)
    assert back.key == genome.key and back.key.startswith(family.replace(".", "-"))
    field, values = next(iter(genome_family(family).domain.items()))
    other = next(v for v in values if v != getattr(genome.params, field))
    assert genome.replace(**{field: other}).key != genome.key


def genome_family(name):
    return next(f for f in all_families() if f.name == name)


def test_params_must_be_of_the_family_type():
    with pytest.raises(GenomeError, match="bad-params"):
        Genome("cuda.wgmma", TileParams())
    with pytest.raises(GenomeError) as err:
        Genome("cuda.tcgen05", WgmmaParams())
    assert err.value.reason == "bad-family" and "cuda.wgmma" in str(err.value)


def test_unknown_json_fields_are_rejected():
    data = Genome.default("cpu.tile").to_json()
    with pytest.raises(GenomeError, match="unknown-field"):
        Genome.from_json({**data, "tile_m": 64})
    with pytest.raises(GenomeError, match="unknown-field"):
        Genome.from_json({**data, "params": {**data["params"], "tile_m": 64}})


def test_describe_names_every_field():
    genome = Genome.default("cuda.wgmma")
    assert genome.describe() == (
        "cuda.wgmma block_n=256 consumers=2 stages=4 raster=8 schedule=tile cluster=1 "
        "store=direct splits=1 pad=needed arrangement=cooperative reduction=workspace "
        "bias_at=store epilogue_math=exact accum=tensor regs=even order=raster multicast=b "
        "k_atoms=1 producer_warps=1 operands=ab"
    )

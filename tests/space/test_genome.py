# SPDX-License-Identifier: Apache-2.0
import json

import pytest

from autokernel_tvm.space.genes import decode, encode
from autokernel_tvm.space.genome import Genome, GenomeError, Staging
from autokernel_tvm.space.grammar import DOMAINS, default_genome


@pytest.mark.parametrize("family", sorted(DOMAINS))
def test_json_round_trip_and_stable_key(family):
    genome = default_genome(family)
    text = json.dumps(genome.to_json())
    back = Genome.from_json(json.loads(text))
    assert back == genome and hash(back) == hash(genome)
    assert back.key == genome.key and back.key.startswith(family.replace(".", "-"))
    assert genome.replace(raster=genome.raster + 1).key != genome.key


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"family": "cuda.tcgen05"}, "bad-family"),
        ({"structure": "SXR"}, "bad-structure"),
        ({"binds": ("parallel",)}, "binds-mismatch"),
        ({"binds": ("parallel", "gpu", "serial", "serial")}, "bad-bind"),
        ({"intrinsic": "mma.m8n8k4"}, "bad-intrinsic"),
        ({"accumulator": "shared"}, "bad-accumulator"),
        ({"write_back": "tma"}, "bad-write-back"),
        ({"epilogue": "later"}, "bad-epilogue"),
        ({"stages": 12}, "bad-stages"),
        ({"split_k": 0}, "bad-count"),
        ({"unroll": ()}, "bad-unroll"),
    ],
)
def test_invalid_genomes_raise_with_reason(changes, reason):
    base = default_genome("cpu.tile").to_json()
    with pytest.raises(GenomeError) as err:
        Genome(**{**base, **changes})
    assert err.value.reason == reason


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"scope": "texture"}, "bad-scope"),
        ({"layout": "zigzag"}, "bad-layout"),
        ({"vector_bytes": 3}, "bad-vector"),
        ({"level": -1}, "bad-level"),
    ],
)
def test_invalid_staging_raises_with_reason(kwargs, reason):
    with pytest.raises(GenomeError) as err:
        Staging(**kwargs)
    assert err.value.reason == reason


def test_unknown_json_field_is_rejected():
    data = {**default_genome("cpu.tile").to_json(), "tile_m": 64}
    with pytest.raises(GenomeError, match="unknown-field"):
        Genome.from_json(data)


@pytest.mark.parametrize("family", sorted(DOMAINS))
def test_every_gene_value_decodes_and_encodes_back(family):
    for gene, values in DOMAINS[family].items():
        for value in values:
            genome = decode(family, {gene: value})
            assert encode(genome)[gene] == value

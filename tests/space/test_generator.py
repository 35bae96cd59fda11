# SPDX-License-Identifier: Apache-2.0
"""The generator on a synthetic objective: it must move toward measured winners."""

import pytest

from autokernel_tvm.space.generator import Generator, encode
from autokernel_tvm.space.genome import Genome
from autokernel_tvm.space.grammar import Grammar
from autokernel_tvm.space.search import halving_plan
from autokernel_tvm.targets import make_target
from autokernel_tvm.workloads import Workload

W = Workload("gemm_nt", (256, 256, 256))
LLVM = Grammar(make_target("llvm"))
BEST = {"structure": "SSSRSRS", "pack_b": True, "vector_lanes": 32, "accumulator": "local"}


def objective(genome) -> float:
    genes = encode(genome)
    return sum(genes[g] == v for g, v in BEST.items()) + 0.1


def test_distribution_moves_toward_winners():
    gen = Generator(LLVM, W, seed=3)
    before = {g: gen.probabilities("cpu.tile", g)[v] for g, v in BEST.items()}
    for _ in range(8):
        for genome in gen.propose(4):
            gen.update(genome, objective(genome))
    after = {g: gen.probabilities("cpu.tile", g)[v] for g, v in BEST.items()}
    assert all(after[g] > before[g] for g in BEST), (before, after)
    best, score = gen.best()
    assert score >= 3.1  # found a genome with at least 3 of the 4 winning genes


def test_proposals_are_legal_unique_and_rejections_counted():
    gen = Generator(LLVM, Workload("gemm", (48, 48, 48)), seed=0)
    seen = set()
    for _ in range(5):
        for genome in gen.propose(4):
            assert genome.key not in seen
            seen.add(genome.key)
    # vector_lanes 32 does not divide 48: sampled genomes with it are rejected and counted.
    assert gen.rejections["vector-not-dividing"] > 0


def test_prior_genomes_are_proposed_first():
    seed_genome = Genome.default("cpu.tile").replace(vector_lanes=32)
    gen = Generator(LLVM, W, seed=0, prior=[(seed_genome, 1.0)])
    assert gen.propose(2)[0] == seed_genome
    assert gen.probabilities("cpu.tile", "vector_lanes")[32] > 1 / 3


@pytest.mark.parametrize("trials", [8, 16, 32, 64, 100, 256])
def test_halving_plan_spends_the_budget_exactly_and_halves(trials):
    plan = halving_plan(trials)
    assert sum(n * t for n, t in plan) <= trials
    assert sum(n * t for n, t in plan) >= trials - len(plan) * plan[0][0]
    assert all(b[0] <= a[0] for a, b in zip(plan, plan[1:]))
    assert plan[-1][0] == 1


def test_held_back_gene_values_are_drawn_only_when_asked():
    """A family's held-back values (built, not yet shown on a GPU to win) are never drawn by
    default, mutated children included; held_back=False draws them like any other value."""
    from autokernel_tvm.families import get

    grammar = Grammar(make_target("cuda", "sm_90a"))
    workload = Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16")
    held = get("cuda.wgmma").held_back
    assert held["producer_warps"] == (2,) and held["order"] == ("hilbert",)

    def drawn(**kw):
        gen = Generator(grammar, workload, seed=1, **kw)
        out = []
        for round_ in range(6):
            for genome in gen.propose(8):
                gen.update(genome, 1.0 + round_)
                if genome.family == "cuda.wgmma":
                    out.append(genome.params)
        return out

    kept = drawn()
    assert kept and not any(
        getattr(p, gene) in values for p in kept for gene, values in held.items()
    )
    assert Generator(grammar, workload).probabilities("cuda.wgmma", "order")["hilbert"] == 0
    free = drawn(held_back=False)
    assert any(getattr(p, gene) in values for p in free for gene, values in held.items())

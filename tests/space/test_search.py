# SPDX-License-Identifier: Apache-2.0
"""The successive-halving search: budget accounting for whole-kernel genomes."""

from autokernel_tvm.space.grammar import Grammar
from autokernel_tvm.space.search import Search
from autokernel_tvm.targets import make_target
from autokernel_tvm.workloads import Workload

HOPPER = make_target("cuda", "sm_90a")
NT = Workload("gemm_nt", (4096, 4096, 4096), "float16")


def _run(search: Search, cost) -> list:
    """Drive ``search`` with ``cost(genome, granted) -> trials used``; the genomes measured."""
    seen = []
    for genome, granted in search:
        seen.append(genome)
        search.learn(genome, cost(genome, granted), 100.0 + len(seen))
    return seen


def test_whole_kernels_leave_budget_for_more_genomes():
    """A cuda.wgmma genome is one measurement: an 8-trial budget measures 8 structures (it was
    one, the prior's first, so every short run picked the same structure)."""
    search = Search(Grammar(HOPPER), NT, 8, seed=0)
    seen = _run(search, lambda g, granted: 1 if g.family == "cuda.wgmma" else granted)
    wgmma = [g for g in seen if g.family == "cuda.wgmma"]
    assert len({g.key for g in wgmma}) == len(wgmma) >= 2
    assert sum(search.used.values()) <= 8
    assert search.one_shot == {"cuda.wgmma"}


def test_scheduled_genomes_keep_their_minimum_trials():
    """Genomes that spend what they are given never get a sliver of the budget."""
    search = Search(Grammar(HOPPER), NT, 12, seed=0)
    seen = _run(search, lambda g, granted: granted)
    assert sum(search.used.values()) <= 12 and all(search.granted[g.key] >= 8 for g in seen)

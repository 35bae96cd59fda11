# SPDX-License-Identifier: Apache-2.0
"""The successive-halving search: budget accounting for whole-kernel genomes."""

from autokernel_tvm.space.genome import Genome
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


def test_a_whole_kernel_family_gets_a_trial_when_a_design_space_leads_the_prior():
    """At 6 trials the plan measures one genome: where the prior ranks a cuda.mma space first
    (a library hit), the wgmma family still gets its best genome measured, for one trial taken
    from the space's share (bf16 ResNet convs ran on cuda.mma at 0.6x of the fp16 wgmma ones)."""
    conv = Workload("conv2d_nhwc", (32, 56, 56, 64, 128, 3, 3, 1, 1), "bfloat16", "bfloat16")
    grammar = Grammar(HOPPER)
    mma = next(f for f in grammar.families(conv) if f.name == "cuda.mma")
    search = Search(grammar, conv, 6, prior=[(Genome("cuda.mma", mma.default), 1.0)], seed=0)
    seen = _run(search, lambda g, granted: granted)
    assert [(g.family, search.granted[g.key]) for g in seen] == [("cuda.wgmma", 1), ("cuda.mma", 5)]
    assert search.plan == [(1, 5)] and sum(search.used.values()) == 6


def test_budget_left_goes_to_whole_kernels_before_a_design_space():
    """A 24-trial conv2d measured 2 wgmma kernels, then gave 16 trials to a cuda.mma space
    (each candidate built and timed: minutes on the H200, and slower than the wgmma kernels):
    whole kernels cost a trial each, so the budget the plan leaves buys them first."""
    conv = Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16")
    search = Search(Grammar(HOPPER), conv, 24, seed=0)
    seen = _run(search, lambda g, granted: 1 if g.family == "cuda.wgmma" else granted)
    assert {g.family for g in seen} == {"cuda.wgmma"} and len({g.key for g in seen}) == 24
    assert sum(search.used.values()) == 24


def test_whole_kernels_the_budget_leaves_come_in_batches_with_their_rest_upcoming():
    """After the first rung, whole kernels are proposed WHOLE_BATCH at a time: while one is
    measured, ``upcoming`` names the rest of its batch (the tuner builds them ahead); the
    generator learns every one before the next batch is proposed."""
    from autokernel_tvm.space.search import WHOLE_BATCH

    search = Search(Grammar(HOPPER), NT, 8, seed=0)
    seen, ahead = [], []
    proposals = []
    propose = search.generator.propose

    def counting(n, *args, **kwargs):
        proposals.append((n, len(search.used)))
        return propose(n, *args, **kwargs)

    search.generator.propose = counting
    for genome, _ in search:
        seen.append(genome)
        ahead.append([g.key for g in search.upcoming])
        search.learn(genome, 1, 100.0 + len(seen))
    assert len(seen) == 8 and len({g.key for g in seen}) == 8
    assert proposals[0] == (1, 0)  # the first rung: one genome, nothing learned yet
    assert [n for n, _ in proposals[1:]] == [WHOLE_BATCH, 3]  # 7 trials left: 4, then 3
    assert proposals[2][1] == 1 + WHOLE_BATCH  # the second batch after the first was learned
    assert ahead[1] == [g.key for g in seen[2:5]] and ahead[4] == []
    assert search.upcoming == []


def test_a_whole_kernel_family_in_the_lead_gets_neighbours_beside_the_ranked_family():
    """At a decode shape cuda.gemv's default is measured beside the first rung; where it leads,
    half of each later batch is its neighbours (the proposal model ranks only cuda.wgmma
    genomes, so it had none); where cuda.wgmma leads, the batches stay cuda.wgmma's."""
    from autokernel_tvm.space import ranker
    from autokernel_tvm.space.library import shipped_root

    decode = Workload("gemm_nt", (1, 4096, 4096), "float16", "float16")
    model = ranker.shipped(HOPPER, [shipped_root()])
    assert model is not None and model.family == "cuda.wgmma"
    gemv = {}
    for lead in ("cuda.gemv", "cuda.wgmma"):
        search = Search(Grammar(HOPPER), decode, 12, seed=0, ranker=model)
        seen = []
        for genome, _ in search:
            seen.append(genome)
            search.learn(genome, 1, 2.0 if genome.family == lead else 1.0)
        assert seen[0].family == "cuda.gemv" and len({g.key for g in seen}) == len(seen) == 12
        assert search.one_shot == {"cuda.gemv", "cuda.wgmma"}
        gemv[lead] = sum(g.family == "cuda.gemv" for g in seen)
    # 10 trials after the first rung: batches of 4, 4, 2, half of each the leader's
    assert gemv["cuda.gemv"] >= 1 + 2 + 2 + 1 > gemv["cuda.wgmma"]


def test_a_library_genome_is_proposed_with_its_upgrade_first():
    """linear_gelu's library entry was measured with CUDA's erff before the fast functions
    existed; 16 trials kept it and never tried it with them (H100 2026-12-06). Its upgrade
    now goes first, at its weight, then the entry itself, then the rest of the prior."""
    gelu = Workload("gemm_bias_gelu", (2048, 16384, 4096), "float16", "float16")
    grammar = Grammar(HOPPER)
    entry = Genome.default("cuda.wgmma").replace(bias_at="start", regs="split", raster=16)
    search = Search(grammar, gelu, 16, prior=[(entry, 1.0)], seed=0)
    first = search.generator.propose(3)
    assert first[0] == entry.replace(epilogue_math="fast") and first[1] == entry
    assert first[2] == Genome("cuda.wgmma", grammar.families(gelu)[0].seed(gelu, HOPPER))
    plain = Search(grammar, NT, 16, prior=[(entry, 1.0)], seed=0)  # no GELU: no upgrade
    assert [g for g, _ in plain.prior].count(entry) == 1
    assert all(g.params.to_json().get("epilogue_math") != "fast" for g, _ in plain.prior)

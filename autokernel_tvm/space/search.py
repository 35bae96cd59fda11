# SPDX-License-Identifier: Apache-2.0
"""The generative search: propose genomes, give each a small MetaSchedule budget, spend more on
the promising ones (successive halving), learn, and record the winner in the library.

Called by :meth:`autokernel_tvm.tuner.Tuner.tune` when ``space="generative"``. Each genome gets its
own resumable database under ``<work_dir>/<workload>/genomes/<key>``; the tuner then verifies the
fastest record across all of them before anything is returned or exported.
"""

from __future__ import annotations

import math
from collections import Counter

from .design_space import space_for
from .generator import Generator
from .grammar import Grammar, default_genome
from .library import ROOT, Library

MIN_TRIALS = 8  # fewer than this per genome and one XGB batch says little about a structure
MAX_GENOMES = 4
MAX_EXTRA_GENOMES = 16  # bound on genomes proposed to spend budget an exhausted space left
KERNEL_FAMILIES = ("cuda.wgmma",)  # genomes that compile to one whole kernel, not a rule


def halving_plan(trials: int, max_genomes: int = MAX_GENOMES) -> list[tuple[int, int]]:
    """Rungs as (genomes alive, extra trials each), spending at most ``trials`` in total.

    The first rung is as wide as the budget allows with ``MIN_TRIALS`` per genome; each later
    rung halves the survivors and gives them the same share of the budget.
    """
    for n0 in range(max(1, min(max_genomes, trials // MIN_TRIALS)), 0, -1):
        rungs = math.ceil(math.log2(n0)) + 1
        per_rung = trials // rungs
        if per_rung // n0 >= MIN_TRIALS or n0 == 1:
            plan = [(max(1, n0 >> r), per_rung // max(1, n0 >> r)) for r in range(rungs)]
            used = sum(n * t for n, t in plan)
            alive, extra = plan[-1]
            plan[-1] = (alive, extra + (trials - used) // alive)
            return plan
    return [(1, trials)]


def run(tuner, workload):
    """Search the generative space for ``workload``; returns (space runs, report)."""
    config = tuner.config
    grammar = Grammar.for_target(tuner.target)
    families = grammar.families(workload)
    if not families:
        why = (
            f"no generative rule family for {workload.op} {workload.dtype} on {grammar.target_kind}"
        )
        runs = [tuner.run_space(workload, tuner.stock_space(), "stock", config.trials)]
        return runs, {"fallback": why + ": used the stock space"}
    mod, proposals = tuner.tuning_module(workload)  # the sketch rewrites, applied once
    library = Library.for_workload(config.target, workload, config.library_dir or ROOT)
    prior = library.prior(workload)
    known = {g.family for g, _ in prior}  # a family the library has not seen starts at its default
    prior += [(default_genome(f), 0.3) for f in families if f not in known]
    generator = Generator(grammar, workload, seed=config.seed, prior=prior)
    plan = halving_plan(config.trials)
    alive = generator.propose(plan[0][0])
    if not alive:  # every genome is illegal for this shape (e.g. a K too short to pipeline)
        runs = [tuner.run_space(workload, tuner.stock_space(), "stock", config.trials)]
        why = f"no legal {families} genome (rejected: {dict(generator.rejections)})"
        return runs, {"fallback": why + ": used the stock space"}
    proposed = list(alive)
    spent: Counter = Counter()
    runs, rungs = {}, []
    for width, extra in plan:
        alive = alive[:width]
        for genome in alive:
            spent[genome.key] += extra
            runs[genome.key] = run_genome(tuner, workload, genome, spent[genome.key], mod)
            generator.update(genome, _score(runs[genome.key], workload))
        alive.sort(key=lambda g: -_score(runs[g.key], workload))
        rungs.append([{"key": g.key, "tflops": _score(runs[g.key], workload)} for g in alive])
    # A genome whose space is exhausted (few legal decisions) returns budget unspent: give it
    # to new proposals, so the run measures what it was asked to.
    for _ in range(MAX_EXTRA_GENOMES):
        if config.trials - sum(r.trials for r in runs.values()) < MIN_TRIALS:
            break
        new = generator.propose(1)
        if not new:
            break
        genome = new[0]
        proposed.append(genome)
        left = config.trials - sum(r.trials for r in runs.values())
        runs[genome.key] = run_genome(tuner, workload, genome, min(left, 2 * MIN_TRIALS), mod)
        generator.update(genome, _score(runs[genome.key], workload))
        rungs.append([{"key": genome.key, "tflops": _score(runs[genome.key], workload)}])
    best_genome, best_score = generator.best()
    report = {
        "plan": plan,
        "sketch": [p.to_json() for p in proposals],
        "library": library.path,
        "prior": [{"key": g.key, "weight": w, "describe": g.describe()} for g, w in prior],
        "proposed": [{"key": g.key, "describe": g.describe()} for g in proposed],
        "all_genomes": [{"key": g.key, "genome": g.to_json()} for g in proposed],
        "rejected": dict(generator.rejections),
        "rungs": rungs,
        "kept": [g.key for g in alive],
        "winner": {
            "genome": best_genome.to_json(),
            "key": best_genome.key,
            "describe": best_genome.describe(),
            "tflops": best_score,
        },
    }
    return list(runs.values()), report


def run_genome(tuner, workload, genome, trials: int, mod):
    """Measure ``genome``: a MetaSchedule design space of up to ``trials`` candidates, or, for a
    whole-kernel family (``cuda.wgmma``), its one kernel."""
    label = f"genomes/{genome.key}"
    if genome.family in KERNEL_FAMILIES:
        from ..families.cuda_wgmma import kernel_module
        from ..measure import run_kernel

        return run_kernel(tuner, workload, kernel_module(genome, workload), label)
    return tuner.run_space(workload, space_for(genome, tuner.target), label, trials, mod)


def record_winner(tuner, workload, result, device: str, save: bool = True) -> dict | None:
    """Keep the verified winner's genome in the library (after the correctness gate passed)."""
    from .genome import Genome

    winner = (result.space_report or {}).get("winner")
    if not winner or not result.space.startswith("genomes/"):
        return None
    genome = Genome.from_json(winner["genome"])
    if result.space != f"genomes/{genome.key}":  # the fastest verified record came from another
        genome = next(
            Genome.from_json(p["genome"])
            for p in result.space_report["all_genomes"]
            if f"genomes/{p['key']}" == result.space
        )
    library = Library.for_workload(tuner.config.target, workload, tuner.config.library_dir or ROOT)
    entry = library.record(
        genome,
        workload,
        tflops=result.tflops,
        latency_us=result.latency_s * 1e6,
        trials=result.trials,
        device=device,
        arch=tuner.config.arch or "",
    )
    if save:
        library.save()
    return entry


def _score(run, workload) -> float:
    return workload.flops / run.best_s / 1e12 if run.best_s < float("inf") else 0.0

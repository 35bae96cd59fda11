# SPDX-License-Identifier: Apache-2.0
"""Rule templates by family, and genome -> MetaSchedule ``PyScheduleRule`` / ``SpaceGenerator``.

A template is a function ``apply(sch, block, genome) -> list[Schedule]`` registered under its
family name. :class:`GenomeRule` wraps one genome as a ``PyScheduleRule`` that schedules the
reduction block; :func:`space_for` combines it with the target's stock rules (inlining,
parallelize/vectorize/unroll, thread binding), postprocessors and mutators, so everything
downstream (evolutionary search, cost model, database) is MetaSchedule's own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.schedule import ScheduleError

from ..families import common
from .genome import Genome

log = logging.getLogger("autokernel_tvm")
TEMPLATES: dict[str, Callable] = {}
#: Stock rules that tile the reduction block; the genome's rule replaces them.
REPLACED = ("MultiLevelTiling", "MultiLevelTilingTensorCore", "AddRFactor", "CrossThreadReduction")


def register_template(family: str, fn: Callable) -> Callable:
    if family in TEMPLATES:
        raise KeyError(f"template {family!r} is already registered")
    TEMPLATES[family] = fn
    return fn


def template(family: str) -> Callable:
    _load()
    if family not in TEMPLATES:
        raise KeyError(f"no rule template {family!r}; known: {sorted(TEMPLATES)}")
    return TEMPLATES[family]


def _load() -> None:
    if TEMPLATES:
        return
    from ..families import cuda_mma, rocm_mfma
    from ..families.cpu_tile import schedule as cpu_tile

    for module in (cpu_tile, cuda_mma, rocm_mfma):
        register_template(module.NAME, module.apply)


@derived_object
class GenomeRule(ms.schedule_rule.PyScheduleRule):
    """The ScheduleRule one genome compiles to: its template applied to reduction blocks."""

    def __init__(self, genome: Genome):
        super().__init__()
        self.genome = genome
        self.fn = template(genome.family)

    def _initialize_with_tune_context(self, context) -> None:
        pass

    def apply(self, sch, block):
        if common.analyze(sch, block) is None:
            return [sch]
        trial = sch.copy()
        try:
            return self.fn(trial, block, self.genome)
        except ScheduleError as err:
            # A structure the template cannot realise for this block is data, not a crash:
            # the block keeps the stock rules' (untiled) schedule; the log says why.
            log.warning("%s does not apply to a block: %s", self.genome.key, str(err)[-200:])
            return [sch]

    def clone(self):
        return GenomeRule(self.genome)


def stock_kind(target) -> str:
    return "llvm" if target.kind.name == "llvm" else "cuda"


def space_for(genome: Genome, target) -> ms.space_generator.PostOrderApply:
    """A SpaceGenerator: the genome's rule + the target's stock non-tiling rules."""
    kind = stock_kind(target)
    rules = [GenomeRule(genome)]
    for rule in ms.ScheduleRule.create(kind):
        name = type(rule).__name__
        if name in REPLACED:
            continue
        if name == "ParallelizeVectorizeUnroll":
            rule = _pvu(kind, genome)
        rules.append(rule)
    postprocs = list(ms.Postproc.create(kind))
    mutators = dict(ms.Mutator.create(kind))
    if genome.family == "cuda.mma":
        from ..families.cuda_mma.metaschedule import MutateCategorical, mma_postprocs

        # The sketch tensorizes itself and samples its tiles with sample_categorical, which no
        # stock mutator touches. Mixing in stock mutators that find nothing to mutate makes
        # EvolutionarySearch fail (`Check failed: !weights.empty()`), so it is the only one.
        postprocs = mma_postprocs()
        mutators = {MutateCategorical(): 1.0}
    return ms.space_generator.PostOrderApply(
        sch_rules=rules, postprocs=postprocs, mutator_probs=mutators
    )


def _pvu(kind: str, genome: Genome):
    if kind == "llvm":
        return ms.schedule_rule.ParallelizeVectorizeUnroll(
            max_jobs_per_core=16,
            max_vectorize_extent=64,
            unroll_max_steps=list(genome.unroll),
            unroll_explicit=True,
        )
    return ms.schedule_rule.ParallelizeVectorizeUnroll(
        max_jobs_per_core=-1,
        max_vectorize_extent=-1,
        unroll_max_steps=list(genome.unroll),
        unroll_explicit=True,
    )

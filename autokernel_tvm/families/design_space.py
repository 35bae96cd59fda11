# SPDX-License-Identifier: Apache-2.0
"""Families whose parameters become a MetaSchedule design space (``cpu.tile``, ``cuda.mma``,
``rocm.mfma``): a schedule template applied by one ``PyScheduleRule`` to the reduction block,
the target's stock rules (inlining, parallelize/vectorize/unroll, thread binding) for the rest,
and the family's postprocessors and mutators. Everything downstream (evolutionary search, cost
model, database) is MetaSchedule's own.
"""

from __future__ import annotations

import logging

from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.schedule import ScheduleError

from . import common
from .base import DesignSpace, Family, Params

log = logging.getLogger("autokernel_tvm")
#: Stock rules that tile the reduction block; the family's rule replaces them.
REPLACED = ("MultiLevelTiling", "MultiLevelTilingTensorCore", "AddRFactor", "CrossThreadReduction")


class ScheduleFamily(Family):
    """A family realised as a schedule template over the workload's loops.

    ``marker``: a trace instruction only the template emits, so that a candidate whose trace
    lacks it is known to be an untiled fallback (the template did not apply to the block).
    """

    marker: str = ""

    def realised(self, trace) -> bool:
        """Whether the family's template scheduled the candidate of ``trace``."""
        return any(inst.kind.name == self.marker for inst in trace.insts)

    def schedule(self, sch, block, params: Params, target) -> list:
        """Apply the template to ``block`` of ``sch`` (a copy the caller owns) for ``target``."""
        raise NotImplementedError

    def unroll(self, params: Params) -> tuple[int, ...]:
        """The unroll depths the stock ParallelizeVectorizeUnroll rule may pick from."""
        raise NotImplementedError

    def postprocs(self, target) -> list:
        return list(ms.Postproc.create(stock_kind(target)))

    def mutators(self, target) -> dict:
        return dict(ms.Mutator.create(stock_kind(target)))

    def candidate(self, params: Params, workload, target) -> DesignSpace:
        from ..rewrite import apply_all

        rewrites = self.rewrites(workload)
        mod = apply_all(rewrites, workload.prim_func()) if rewrites else workload.ir_module()
        return DesignSpace(design_space(self, params, target), mod)


@derived_object
class FamilyRule(ms.schedule_rule.PyScheduleRule):
    """The ScheduleRule one parameter value compiles to: the family's template on reduction
    blocks. A block the template cannot realise keeps the stock rules' schedule; the log says
    why (it is data, not a crash)."""

    def __init__(self, family: ScheduleFamily, params: Params, target):
        super().__init__()
        self.family, self.params, self.target = family, params, target

    def _initialize_with_tune_context(self, context) -> None:
        pass

    def apply(self, sch, block):
        if common.analyze(sch, block) is None:
            return [sch]
        trial = sch.copy()
        try:
            return self.family.schedule(trial, block, self.params, self.target)
        except ScheduleError as err:
            log.warning("%s does not apply to a block: %s", self.family.name, _reason(err))
            return [sch]

    def clone(self):
        return FamilyRule(self.family, self.params, self.target)


def _reason(err: Exception) -> str:
    """One line of a TVM schedule error: its "Error message:" (the rest is the IR with a row of
    carets under the culprit), else its first line."""
    text = str(err)
    if "Error message:" in text:
        text = text.split("Error message:", 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0][:200] if lines else type(err).__name__


def stock_kind(target) -> str:
    return "llvm" if target.kind.name == "llvm" else "cuda"


def design_space(family: ScheduleFamily, params: Params, target):
    """A ``PostOrderApply``: the family's rule + the target's stock non-tiling rules."""
    kind = stock_kind(target)
    rules = [FamilyRule(family, params, target)]
    for rule in ms.ScheduleRule.create(kind):
        name = type(rule).__name__
        if name in REPLACED:
            continue
        if name == "ParallelizeVectorizeUnroll":
            rule = ms.schedule_rule.ParallelizeVectorizeUnroll(
                max_jobs_per_core=16 if kind == "llvm" else -1,
                max_vectorize_extent=64 if kind == "llvm" else -1,
                unroll_max_steps=list(family.unroll(params)),
                unroll_explicit=True,
            )
        rules.append(rule)
    return ms.space_generator.PostOrderApply(
        sch_rules=rules, postprocs=family.postprocs(target), mutator_probs=family.mutators(target)
    )

# SPDX-License-Identifier: Apache-2.0
"""Relax tuning tasks: which fused TIR functions get tuned, with what budget, and how it went.

Read first: :func:`tune_tasks`. A Relax module is legalized and fused with TVM's ``zero``
pipeline (``extract_tasks`` alone finds nothing in 0.27, TVM-0.27-NOTES §5); every extracted
task with a reduction and enough FLOPs gets an equal share of ``config.trials`` (the remainder
goes to the heaviest, by weight x FLOPs); elementwise/injective and tiny tasks keep TVM's
default lowering, and the report says why. All tasks share one resumable JSON database, keyed
by the task's structural hash: a task that already holds its budget of records is not tuned
again. :mod:`autokernel_tvm.relax_passes` applies that database and lowers the module.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import relax
from tvm.s_tir import meta_schedule as ms

from .. import database as db_lib
from ..intrin import import_stock_intrinsics as preimport_tensor_intrin
from ..measure import FAILED, search_strategy
from ..progress import ProgressCallback

#: Tasks below this many FLOPs keep TVM's default lowering (a tuned 8x64x128 matmul saves µs).
MIN_TASK_FLOPS = 1e4


@dataclass
class TaskReport:
    """One fused TIR function of the model: how often it runs and whether it was tuned."""

    name: str
    weight: int
    flops: float
    workload: str
    budget: int = 0
    trials: int = 0
    best_us: float | None = None
    seconds: float = 0.0
    space: str = ""
    reason: str = ""
    failures: dict = dataclasses.field(default_factory=dict)

    @property
    def tuned(self) -> bool:
        return self.best_us is not None

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "tuned": self.tuned}


def extract(mod: tvm.IRModule, target: tvm.target.Target) -> list:
    """MetaSchedule tasks of ``mod``, legalizing and fusing it first when that is still needed."""
    tasks = ms.relax_integration.extract_tasks(mod, target)
    if not tasks:
        with target:
            tasks = ms.relax_integration.extract_tasks(relax.get_pipeline("zero")(mod), target)
    return tasks


def plan(tasks: list, trials: int, min_task_flops: float = MIN_TASK_FLOPS) -> list[TaskReport]:
    """One :class:`TaskReport` per task with its trial budget, or the reason it gets none."""
    reports = []
    for task in tasks:
        func_mod = task.dispatched[0]
        flops = float(tvm.s_tir.analysis.estimate_tir_flops(func_mod))
        report = TaskReport(task.task_name, int(task.weight), flops, workload_key(func_mod))
        if _is_dispatched(func_mod):
            report.reason = "a dispatched kernel: tuned as its own workload (relax.dispatch)"
        elif not _has_reduction(func_mod):
            report.reason = "no reduction (elementwise/injective): TVM's default lowering"
        elif flops < min_task_flops:
            report.reason = f"{flops:.3g} FLOPs < min_task_flops {min_task_flops:.3g}"
        reports.append(report)
    tunable = sorted(
        (r for r in reports if not r.reason), key=lambda r: r.weight * r.flops, reverse=True
    )
    for i, report in enumerate(tunable):
        report.budget = trials // len(tunable) + (1 if i < trials % len(tunable) else 0)
        if report.budget == 0:
            report.reason = f"no trials left: config.trials={trials} < {len(tunable)} tasks"
    return reports


def tune_tasks(tuner, tasks: list, db_dir: str, trials: int, *, min_task_flops=MIN_TASK_FLOPS):
    """Tune ``tasks`` into the JSON database in ``db_dir``; return their :class:`TaskReport`.

    Parameters
    ----------
    tuner : Tuner
        Supplies the target, the persistent builder, the runner, the config and the space.
    tasks : list of ExtractedTask
        From :func:`extract`.
    db_dir : str
        The database folder; records already there count against each task's budget.
    trials : int
        Total measured candidates over all tasks.
    min_task_flops : float
        Tasks below this keep TVM's default lowering.
    """
    os.makedirs(db_dir, exist_ok=True)
    db_lib.repair(db_dir)  # before MetaSchedule reads it: it trusts every line
    reports = plan(tasks, trials, min_task_flops)
    done = db_stats(db_dir)
    todo = [
        (t, r)
        for t, r in zip(tasks, reports, strict=True)
        if r.budget > done.get(r.workload, (0, None))[0]
    ]
    if todo:
        preimport_tensor_intrin()
        database = ms.database.JSONDatabase(work_dir=db_dir)
    for i, (task, report) in enumerate(todo):
        start = time.time()
        remaining = report.budget - done.get(report.workload, (0, None))[0]
        space, report.space = space_for(tuner, task.dispatched[0])
        context = ms.TuneContext(
            mod=task.dispatched[0],
            target=tuner.target,
            space_generator=space,
            search_strategy=search_strategy(remaining),
            task_name=task.task_name,
            rand_state=tuner.config.seed + i,
            num_threads=tuner.config.num_cores or "physical",
        ).clone()
        callback = ProgressCallback(remaining, task.task_name, tuner.progress)
        try:
            ms.tune_tasks(
                tasks=[context],
                task_weights=[float(task.weight)],
                work_dir=db_dir,
                max_trials_global=remaining,
                max_trials_per_task=remaining,
                num_trials_per_iter=min(tuner.config.trials_per_iter, remaining),
                builder=tuner.builder,
                runner=tuner.runner,
                database=database,
                cost_model="xgb",
                measure_callbacks=[
                    *ms.measure_callback.MeasureCallback.create("default"),
                    callback,
                ],
                task_scheduler="round-robin",
            )
        finally:
            callback.close()
        report.seconds = time.time() - start
        report.failures = dict(callback.failures)
    stats = db_stats(db_dir)
    for report in reports:
        report.trials, best = stats.get(report.workload, (0, None))
        report.best_us = best * 1e6 if best is not None else None
        if report.tuned and not report.budget:
            report.reason = "no budget now; tuned earlier (its record is applied)"
        elif report.budget and not report.tuned:
            report.reason = f"no valid candidate in {report.trials} trials: default lowering"
    return reports


def space_for(tuner, mod: tvm.IRModule):
    """``(space, label)`` for one task: the generative space where it applies, else stock."""
    if tuner.config.space == "generative":
        from ..space import task_design_space
        from ..space.library import roots

        return task_design_space(tuner.target, roots(tuner.config))
    return "post-order-apply", "stock"


def workload_key(mod: tvm.IRModule) -> str:
    """How the JSON database names a workload (``module_equality="structural"``)."""
    return str(tvm_ffi.structural_hash(mod))


def db_stats(db_dir: str) -> dict[str, tuple[int, float | None]]:
    """Per workload key: records in the database and the best mean latency (None: no valid)."""
    keys = db_lib.workload_keys(db_dir)
    stats: dict[str, tuple[int, float | None]] = {}
    for record in db_lib.records(db_dir):
        if record.workload >= len(keys) or keys[record.workload] is None:
            continue  # its workload line is damaged: repair() moves such records out
        latency = record.latency_s if record.run_secs else FAILED
        count, best = stats.get(keys[record.workload], (0, None))
        if latency < FAILED and (best is None or latency < best):
            best = latency
        stats[keys[record.workload]] = (count + 1, best)
    return stats


def _is_dispatched(mod: tvm.IRModule) -> bool:
    """Whether the task is a kernel :mod:`~autokernel_tvm.relax.dispatch` put there (scheduled)."""
    return any(
        func.attrs is not None and bool(func.attrs.get("tir.is_scheduled", False))
        for func in mod.functions.values()
    )


def _has_reduction(mod: tvm.IRModule) -> bool:
    """Whether the task has a reduction block (TVM's "anchor block": one with an init)."""
    return tvm.s_tir.analysis.find_anchor_sblock(mod) is not None

# SPDX-License-Identifier: Apache-2.0
"""The tuner: one object owns the loop propose -> build -> measure -> learn -> verify.

Read first: :meth:`Tuner.tune`. MetaSchedule does the measuring (its evolutionary search, XGB
cost model and JSON database); this object picks the design space (``stock`` MetaSchedule rules
or the ``generative`` space of :mod:`autokernel_tvm.space`), keeps one resumable database per
design space under ``work_dir``, counts failures by reason, and gates the winner through
:mod:`autokernel_tvm.verify` before it is returned.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field

import tvm
from tvm.s_tir import meta_schedule as ms

from . import builder as build_lib
from . import database as db_lib
from . import verify as verify_lib
from .config import TuneConfig, fault_run_evaluator, faults_enabled
from .intrin import import_stock_intrinsics
from .progress import ProgressCallback, count_records
from .targets import arch_problem, cpu_name, make_target, use_cores
from .workloads import Workload

log = logging.getLogger("autokernel_tvm")
FAILED = 1e9  # MetaSchedule stores failed candidates with huge run_secs


class TuneError(RuntimeError):
    """Tuning cannot start or produced no kernel that passes the correctness gate."""


@dataclass
class SpaceRun:
    """What one design space produced: its database dir, trials spent, failures by reason, and
    the module it tuned (the workload after its sketch proposals; None: the workload as is)."""

    label: str
    db_dir: str
    trials: int
    failures: Counter
    best_s: float
    seconds: float
    curve: list = field(default_factory=list)
    mod: tvm.IRModule | None = None
    kernel: bool = False  # a whole-kernel sketch (no trace, no MetaSchedule database)


@dataclass
class TuneResult:
    """The verified winner of a tuning run and how it was found."""

    workload: Workload
    target: str
    arch: str | None
    latency_s: float
    trials: int
    failures: dict
    tune_seconds: float
    trace: str
    mod: tvm.IRModule
    curve: list
    verify: dict | None
    space: str
    space_report: dict = field(default_factory=dict)

    @property
    def tflops(self) -> float:
        return self.workload.flops / self.latency_s / 1e12

    def summary(self) -> dict:
        return {
            "workload": self.workload.to_json(),
            "target": self.target,
            "arch": self.arch,
            "space": self.space,
            "best_latency_us": self.latency_s * 1e6,
            "tflops": self.tflops,
            "trials": self.trials,
            "failures": dict(self.failures),
            "tune_seconds": self.tune_seconds,
            "curve": self.curve,
            "verify": self.verify,
            "space_report": self.space_report,
            "trace": self.trace,
        }


class Tuner:
    """Tune workloads for one target under one :class:`TuneConfig`.

    Parameters
    ----------
    config : TuneConfig
        The run's options.
    builder, runner : optional
        MetaSchedule Builder / Runner overrides (tests inject fakes); defaults are the persistent
        :class:`~autokernel_tvm.builder.PoolBuilder` and MetaSchedule's ``LocalRunner``.
    progress : bool
        Show a tqdm progress bar.
    """

    def __init__(self, config: TuneConfig, *, builder=None, runner=None, progress: bool = True):
        self.config = config
        # MetaSchedule logs every batch to the console; keep that in work_dir/logs unless verbose.
        level = logging.INFO if config.verbose else logging.WARNING
        logging.getLogger("tvm.s_tir.meta_schedule").setLevel(level)
        import_stock_intrinsics()  # every TuneContext imports them; 7x faster this way
        self.target = make_target(config.target, config.arch, config.num_cores)
        if config.target == "llvm":
            use_cores(config.num_cores)  # TVM would use half the cores (it assumes SMT)
        self.progress = progress
        self._builder = builder
        self._runner = runner
        self.db_warnings: list[str] = []  # damaged database lines moved out (db_lib.repair)

    # -- the loop ---------------------------------------------------------------------------
    def tune(self, workload: Workload) -> TuneResult:
        """Tune ``workload`` until ``config.trials`` candidates were measured, then verify."""
        self._check_can_measure()
        start = time.time()
        root = self.workload_dir(workload)
        if self.config.space == "stock":
            runs = [self.run_space(workload, self.stock_space(), "stock", self.config.trials)]
            report: dict = {}
        else:
            from .space import search

            runs, report = search.run(self, workload)
        result = self._pick_verified(workload, runs, time.time() - start, report)
        if self.config.space == "generative" and self.config.save_library:
            from .space import search

            entry = search.record_winner(self, workload, result, self.device_name())
            result.space_report["library_entry"] = entry
        if self.db_warnings:
            result.space_report["database_warnings"] = list(self.db_warnings)
        db_lib.atomic_write_json(os.path.join(root, "report.json"), result.summary())
        return result

    def run_space(self, workload: Workload, space, label: str, trials: int, mod=None) -> SpaceRun:
        """Measure up to ``trials`` candidates of one design space on ``mod`` (default: the
        workload's module; see :meth:`tuning_module`); resumes from its database."""
        db_dir = os.path.join(self.workload_dir(workload), label)
        os.makedirs(db_dir, exist_ok=True)
        self.db_warnings += db_lib.repair(db_dir)  # before MetaSchedule reads it: it trusts lines
        tuned = mod
        mod = workload.ir_module() if mod is None else mod
        done = count_records(db_dir)
        failures = _load_failures(db_dir)
        remaining = trials - done
        start = time.time()
        if remaining > 0:
            callback = ProgressCallback(remaining, f"{workload.name} [{label}]", self.progress)
            database = ms.database.JSONDatabase(work_dir=db_dir)
            # MetaSchedule re-runs dictConfig on every tune_tir and chokes on handlers left from
            # an earlier call in the same process (a None name): start each call clean.
            ms_logger = logging.getLogger("tvm.s_tir.meta_schedule")
            ms_logger.handlers.clear()
            # Its console handler takes this level (dictConfig resets the logger to DEBUG).
            ms_logger.setLevel(logging.INFO if self.config.verbose else logging.WARNING)
            try:
                ms.tune_tir(
                    mod=mod,
                    target=self.target,
                    work_dir=db_dir,
                    max_trials_global=remaining,
                    num_trials_per_iter=min(self.config.trials_per_iter, remaining),
                    builder=self.builder,
                    runner=self.runner,
                    database=database,
                    cost_model="xgb",
                    measure_callbacks=[
                        *ms.measure_callback.MeasureCallback.create("default"),
                        callback,
                    ],
                    space=space,
                    strategy=search_strategy(remaining),
                    num_tuning_cores=self.config.num_cores or "physical",
                    seed=self.config.seed,
                )
            finally:
                callback.close()
                failures.update(callback.failures)
                _save_failures(db_dir, failures)
        trials_done, best, curve = _records_summary(db_dir, workload)
        seconds = time.time() - start
        return SpaceRun(label, db_dir, trials_done, failures, best, seconds, curve, tuned)

    # -- pieces -----------------------------------------------------------------------------
    def workload_dir(self, workload: Workload) -> str:
        path = os.path.join(self.config.work_dir, workload.name)
        os.makedirs(path, exist_ok=True)
        return path

    def tuning_module(self, workload: Workload) -> tuple[tvm.IRModule, tuple]:
        """``(module, proposals)``: what the generative space schedules, i.e. ``workload`` after
        the TensorIR sketch proposals its rule family needs (conv2d -> implicit GEMM, padding of
        non-aligned GEMMs; :mod:`autokernel_tvm.space.sketch`). The stock space gets the
        workload as is. The correctness gate still checks against the original workload."""
        if self.config.space == "stock":
            return workload.ir_module(), ()
        from .space import sketch
        from .space.grammar import Grammar

        proposals = Grammar.for_target(self.target).sketch(workload)
        return sketch.apply_all(proposals, workload.prim_func()), proposals

    def stock_space(self):
        """MetaSchedule's default design space for the target (what ``tune_tir`` uses)."""
        return "post-order-apply"

    @property
    def builder(self):
        if self._builder is None:
            self._builder = build_lib.PoolBuilder(
                self.config.target,
                max_workers=self.config.build_workers,
                timeout_s=self.config.build_timeout_s,
                strict=self.config.strict,
            )
        return self._builder

    @property
    def runner(self):
        if self._runner is None:
            evaluator = ms.runner.EvaluatorConfig(
                number=self.config.runner_number,
                repeat=self.config.runner_repeat,
                min_repeat_ms=self.config.runner_min_repeat_ms,
                enable_cpu_cache_flush=False,
            )
            self._runner = ms.runner.LocalRunner(
                timeout_sec=self.config.runner_timeout_s,
                evaluator_config=evaluator,
                f_run_evaluator=fault_run_evaluator if faults_enabled() else None,
            )
        return self._runner

    def device_name(self) -> str:
        """The GPU's name, or the CPU model for llvm (recorded with library entries)."""
        if self.config.target != "llvm":
            return str(self.device().device_name)
        return cpu_name()

    def design_space(self, workload: Workload):
        """The generative design space of the library's (or the default) best genome."""
        from .space.grammar import Grammar, default_genome
        from .space.library import ROOT, Library
        from .space.rules import space_for
        from .space.search import KERNEL_FAMILIES

        families = Grammar.for_target(self.target).families(workload)
        families = [f for f in families if f not in KERNEL_FAMILIES]  # no rule to sample
        if not families:
            return self.stock_space()
        library = Library.for_workload(
            self.config.target, workload, self.config.library_dir or ROOT
        )
        prior = [(g, w) for g, w in library.prior(workload) if g.family in families]
        genome = prior[0][0] if prior else default_genome(families[0])
        return space_for(genome, self.target)

    def kernel_candidates(self, workload: Workload, n: int) -> list:
        """Up to ``n`` ``(genome, IRModule)`` of the whole-kernel families (``cuda.wgmma``)
        legal for ``workload`` here, the family default first; [] if there is none."""
        from .space.generator import Generator
        from .space.grammar import Grammar, default_genome
        from .space.rules.cuda_wgmma_rule import kernel_module
        from .space.search import KERNEL_FAMILIES

        grammar = Grammar.for_target(self.target)
        families = [f for f in grammar.families(workload) if f in KERNEL_FAMILIES]
        prior = [(default_genome(f), 1.0) for f in families]
        generator = Generator(grammar, workload, seed=self.config.seed, prior=prior)
        genomes = [g for g in generator.propose(4 * n) if g.family in families][:n]
        return [(g, kernel_module(g, workload)) for g in genomes]

    def device(self):
        return tvm.cpu() if self.config.target == "llvm" else tvm.device(self.config.target, 0)

    def _check_can_measure(self) -> None:
        if self._runner is not None or self.config.target == "llvm":
            return
        if not self.device().exist:
            raise TuneError(
                f"no {self.config.target} device here: tuning measures every candidate on the "
                "GPU. Run on a GPU machine, or check code generation only with "
                "`scripts/tune.py --build-only N`."
            )
        if self.config.target == "cuda":
            why = arch_problem(str(self.target.attrs["arch"]), self.device().compute_version)
            if why:
                raise TuneError(why)

    def build(self, mod: tvm.IRModule):
        """Build a scheduled module with the project's pass config."""
        return build_lib.build_module(mod, self.target)

    def _pick_verified(self, workload, runs, seconds, report) -> TuneResult:
        """The fastest record that passes the correctness gate, across all design spaces."""
        candidates = []
        for run in runs:
            if run.kernel:
                if run.best_s < FAILED:
                    candidates.append((run.best_s, run.label, None, run.mod))
                continue
            database = ms.database.JSONDatabase(work_dir=run.db_dir)
            mod = workload.ir_module() if run.mod is None else run.mod
            workload_entry = database.commit_workload(mod)
            for record in database.get_top_k(workload_entry, 5):
                latency = _mean(record.run_secs)
                if latency < FAILED:
                    candidates.append((latency, run.label, record, mod))
        candidates.sort(key=lambda c: c[0])
        failures: Counter = Counter()
        for run in runs:
            failures.update(run.failures)
        rejected = []
        for latency, label, record, mod in candidates:
            if record is None:  # a whole-kernel sketch is its own schedule
                scheduled, trace = mod, "(whole-kernel TIRx sketch: no schedule trace)"
            else:
                sch = tvm.s_tir.Schedule(mod)
                record.trace.apply_to_schedule(sch, remove_postproc=False)
                scheduled, trace = sch.mod, str(record.trace)
            exe = self.build(scheduled)
            report_v = verify_lib.verify(exe["main"], workload, self.device())
            if report_v.passed:
                curve = _merge_curves(runs)
                return TuneResult(
                    workload=workload,
                    target=self.config.target,
                    arch=self.config.arch,
                    latency_s=latency,
                    trials=sum(r.trials for r in runs),
                    failures=dict(failures),
                    tune_seconds=seconds,
                    trace=trace,
                    mod=scheduled,
                    curve=curve,
                    verify=report_v.to_json(),
                    space=label,
                    space_report={**report, "rejected_by_verify": rejected},
                )
            rejected.append({"space": label, "failures": report_v.failures})
            failures["verify: " + report_v.failures[0][:60]] += 1
        raise TuneError(
            f"{workload.name}: no candidate passed the correctness gate "
            f"({len(candidates)} measured, failures: {dict(failures)})"
        )


def search_strategy(trials: int):
    """MetaSchedule's evolutionary search, with a population scaled down for small budgets.

    The default (population 512, 4 genetic iterations) spent ~40 s per task before the first of
    2 trials on 2 busy cores; from 64 trials per task on the default is used unchanged.
    """
    if trials >= 64:
        return "evolutionary"
    return ms.search_strategy.EvolutionarySearch(
        population_size=max(64, 8 * trials),
        init_min_unmeasured=max(16, min(50, trials)),
        genetic_num_iters=2,
    )


def _mean(values) -> float:
    vals = [float(v) for v in values]
    return sum(vals) / len(vals) if vals else float("inf")


def _records_summary(db_dir: str, workload: Workload):
    """Trials in a database, the best latency, and the best-so-far TFLOP/s after each trial."""
    best, curve, trials = float("inf"), [], 0
    for record in db_lib.records(db_dir):
        trials += 1
        if record.latency_s < FAILED:
            best = min(best, record.latency_s)
        curve.append(workload.flops / best / 1e12 if best < float("inf") else 0.0)
    return trials, best, curve


def _merge_curves(runs) -> list:
    """One best-so-far TFLOP/s curve over all design spaces, in the order they ran."""
    merged, best = [], 0.0
    for run in runs:
        for value in run.curve:
            best = max(best, value)
            merged.append(best)
    return merged


def _load_failures(db_dir: str) -> Counter:
    path = os.path.join(db_dir, "failures.json")
    if os.path.exists(path):
        with open(path) as f:
            try:
                return Counter(json.load(f))
            except ValueError as err:  # written before writes were atomic, then killed
                log.warning("%s: unreadable (%s); failure counts start again", path, err)
    return Counter()


def _save_failures(db_dir: str, failures: Counter) -> None:
    db_lib.atomic_write_json(os.path.join(db_dir, "failures.json"), dict(failures))

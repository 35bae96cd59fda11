# SPDX-License-Identifier: Apache-2.0
"""The tuner: the loop propose -> build -> measure -> learn -> verify -> record, on one screen.

Read :meth:`Tuner.tune` first. The generative search (:class:`~autokernel_tvm.space.search.
Search`) proposes genomes; each genome's family turns it into a candidate (a MetaSchedule
design space, or one whole kernel: :mod:`autokernel_tvm.families`); one of two measurers
(:mod:`autokernel_tvm.measure`) measures it into a resumable record under ``work_dir``; the
search learns from the score; the fastest record that passes the correctness gate
(:mod:`autokernel_tvm.verify`) is the result, and its genome goes into the user library.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field

import tvm
import tvm_ffi
from tvm.s_tir import meta_schedule as ms

from . import builder as build_lib
from . import database as db_lib
from . import measure as measure_lib
from . import verify as verify_lib
from .config import (
    TuneConfig,
    fault_point,
    fault_run_evaluator,
    faults_enabled,
    flushed_run_evaluator,
)
from .errors import TuneError
from .families import DesignSpace, Kernel, get
from .intrin import import_stock_intrinsics
from .manifest import out_pitch
from .measure import (
    FAILED,
    KERNEL_RECORD,
    DesignSpaceMeasurer,
    KernelMeasurer,
    SpaceRun,
    Watchdog,
    mean,
)
from .space import library, ranker
from .space.grammar import Grammar
from .space.search import WHOLE_BATCH, Search
from .targets import arch_problem, cpu_name, make_target, use_cores
from .workloads import Workload
from .workloads.dtypes import FP8_DTYPES

log = logging.getLogger("autokernel_tvm")
#: the gate runs a kernel a dozen times on fresh inputs: it may take this many runner timeouts
#: before a whole kernel is taken for hung
VERIFY_TIMEOUTS = 10
STOCK = "post-order-apply"  # MetaSchedule's default design space for the target

__all__ = ["FAILED", "SpaceRun", "TuneError", "TuneResult", "Tuner"]


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
    genome: dict | None = None  # the winning genome {family, params}; None: the stock space
    resumed: int = 0  # of `trials`, those measured by an earlier run into work_dir

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
            "resumed_trials": self.resumed,
            "curve": self.curve,
            "verify": self.verify,
            "space_report": self.space_report,
            "genome": self.genome,
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
        #: (workload, structural hash of the kernel) -> the gate's passing report: a kernel this
        #: process has verified is not rebuilt and re-verified when it wins again (the model
        #: paths ask for the same kernels; the problem suite spent ~20 s a problem on it)
        self._passed: dict = {}
        self.db_warnings: list[str] = []  # damaged database lines moved out (db_lib.repair)
        self._timing_args: dict = {}  # KernelMeasurer.args, shared by this tuner's measurers
        self._builds: dict = {}  # KernelMeasurer.builds: kernels being built ahead
        self._loaded: dict = {}  # KernelMeasurer.loaded: this workload's timed kernels
        self._candidates: dict = {}  # (workload, genome key) -> its candidate, this workload's

    # -- the loop ---------------------------------------------------------------------------
    def tune(self, workload: Workload) -> TuneResult:
        """Tune ``workload`` until its trials (:meth:`trial_budget`) were measured, then verify."""
        self._check_can_measure()
        self.warm()
        start, runs, report = time.time(), {}, {}
        hit = None
        if self.config.space == "generative":
            trials, hit = self.trial_budget(workload)
            search = self.search(workload, trials)
        else:
            search = None
        budget, stopped = self.config.time_budget_s, ""
        timeline, best = [], 0.0  # (seconds since start, best TFLOP/s so far) per measurement
        phases = Counter()  # seconds by phase: where the run's time went
        for genome, trials in search or ():  # propose
            if budget and runs and time.time() - start > budget:
                stopped = f"time budget of {budget:g} s reached after {len(runs)} genomes"
                break
            candidate = self._candidate(genome, workload, phases)
            ahead = self._ahead(search, workload, phases) if isinstance(candidate, Kernel) else []
            run = self.measure(workload, candidate, f"genomes/{genome.key}", trials, ahead)  # run
            phases.update(run.phases)
            run.family = genome.family
            search.learn(genome, run.trials, run.tflops(workload))  # learn
            if run.label in runs:  # a later rung: what it found is this run's earlier rung's
                run.resumed = runs[run.label].resumed
            runs[run.label] = run  # a later rung's run of a genome holds all of its records
            best = max(best, run.tflops(workload))
            # milliseconds, rounded down: a measurement is never later than the run's end
            timeline.append([int((time.time() - start) * 1000) / 1000, best])
        runs = list(runs.values())
        if search is not None:
            report = {**search.report(), "families": self.families_report(workload)}
            report["timeline"] = timeline  # what the search cost: benchmarks/search_cost.py
            if stopped:
                report["stopped"] = stopped
            if hit is not None:
                report["library_hit"] = {
                    "key": hit["key"], "describe": hit["describe"], "tflops": hit["tflops"],
                    "date": hit.get("date", ""), "trials": search.trials,
                    "of": self.config.trials,
                }  # fmt: skip
        if not runs:  # stock space asked for, or no family / no legal genome for this workload
            if self._stock_problem(workload):
                raise TuneError(self._no_stock_reason(workload))
            runs = [self.measure(workload, DesignSpace(STOCK, workload.ir_module()), "stock")]
            phases.update(runs[0].phases)
            if search is not None:
                report["fallback"] = self.fallback_reason(workload, search)
        gated = time.time()
        result = self._pick_verified(workload, runs, gated - start, report)  # verify
        phases["gate"] += time.time() - gated
        result.space_report["seconds"] = {p: round(t, 3) for p, t in phases.items()}
        if self.config.rpc_tracker:  # candidates measured per RPC server
            result.space_report["rpc"] = self.runner.report()
        if search is not None and result.space.startswith("genomes/"):
            genome = search.genome(result.space.split("/", 1)[1])
            result.genome = genome.to_json()
            if self.config.save_library:  # record
                result.space_report["library_entry"] = self._record(workload, result, genome)
        if self.db_warnings:
            result.space_report["database_warnings"] = list(self.db_warnings)
        path = os.path.join(self.workload_dir(workload), "report.json")
        db_lib.atomic_write_json(path, result.summary())
        return result

    def _candidate(self, genome, workload: Workload, phases: Counter):
        """``genome``'s candidate for ``workload``, made once (a batch's kernels are made when
        the first of them is measured); the seconds it took go to ``phases["generate"]``."""
        key = (workload, genome.key)
        if key not in self._candidates:
            made = time.time()
            family = get(genome.family)
            self._candidates = {key: family.candidate(genome.params, workload, self.target)} | {
                k: c for k, c in self._candidates.items() if k[0] == workload
            }  # this workload's only
            phases["generate"] += time.time() - made
        return self._candidates[key]

    def _ahead(self, search: Search, workload: Workload, phases: Counter) -> list:
        """``(label, Kernel)`` of the whole kernels proposed with the one measured now: built
        with it, at once."""
        upcoming = [g for g in search.upcoming if g.family in search.whole]
        return [(f"genomes/{g.key}", self._candidate(g, workload, phases)) for g in upcoming]

    def trial_budget(self, workload: Workload) -> tuple[int, dict | None]:
        """``(trials, hit)``: ``config.trials``, or ``config.hit_trials`` where the libraries
        hold ``workload`` measured on this device as a whole kernel (:func:`library.hit`, the
        entry returned): a rerun spends seconds, not the first run's minutes."""
        trials, cap = self.config.trials, self.config.hit_trials
        if not cap or cap >= trials:
            return trials, None
        try:
            device = self.device_name()
        except Exception:  # noqa: BLE001  (no local device: an RPC run; nothing to match)
            return trials, None
        families = self.grammar.families(workload)
        roots = library.roots(self.config)
        found = library.hit(self.config.target, workload, roots, device, families)
        return (cap, found) if found is not None else (trials, None)

    def search(self, workload: Workload, trials: int | None = None) -> Search:
        """The generative search for ``workload``, seeded by the libraries' genomes, over
        ``trials`` (default ``config.trials``)."""
        families = [f.name for f in self.grammar.families(workload)]
        roots = library.roots(self.config)
        prior = library.prior(self.config.target, workload, roots, families)
        model, note = None, "off (proposal_model=False)"
        if self.config.proposal_model:
            try:
                model = ranker.shipped(self.target, roots)
                note = model.describe() if model else "none shipped for this target"
            except ranker.RankerError as err:  # an aid to the search, not a reason to stop it
                note = f"not used: {err}"
                log.warning("proposal model %s", note)
        return Search(
            self.grammar, workload, trials or self.config.trials, prior=prior,
            seed=self.config.seed,
            ranker=model, model_note=note, held_back=not self.config.held_back_genes,
        )  # fmt: skip

    def measure(
        self, workload, candidate, label: str, trials: int | None = None, ahead=()
    ) -> SpaceRun:
        """Measure one candidate (design space or whole kernel) into ``<workload>/<label>``;
        a whole kernel is built at once with the ``(label, Kernel)`` pairs ``ahead`` of it."""
        trials = self.config.trials if trials is None else trials
        if isinstance(candidate, Kernel):
            measurer = self.kernel_measurer
            measurer.build_ahead(workload, [(label, candidate), *ahead])
            return measurer.measure(workload, candidate, label, trials)
        measurer = self.space_measurer
        try:
            return measurer.measure(workload, candidate, label, trials)
        finally:
            self.db_warnings += measurer.warnings

    # -- pieces -----------------------------------------------------------------------------
    @property
    def grammar(self) -> Grammar:
        return Grammar(self.target)

    @property
    def space_measurer(self) -> DesignSpaceMeasurer:
        return DesignSpaceMeasurer(
            self.config, self.target, self.builder, self.runner, self.progress
        )

    @property
    def kernel_measurer(self) -> KernelMeasurer:
        runner = self.runner if self.config.rpc_tracker else None  # else timed here
        return KernelMeasurer(
            self.config, self.target, self.device(), runner, self._timing_args,
            builder=self.builder, builds=self._builds, loaded=self._loaded,
        )  # fmt: skip

    def candidates(self, workload: Workload, n: int, search: Search | None = None) -> list:
        """Up to ``n`` ``(genome, candidate)`` the search would try first (no device needed):
        what ``scripts/tune.py --build-only`` builds; ``search``: that of ``workload``, to read
        its rejections after (by default a new one)."""
        search = search or self.search(workload)
        genomes = search.generator.propose(n)
        return [(g, get(g.family).candidate(g.params, workload, self.target)) for g in genomes]

    def workload_dir(self, workload: Workload) -> str:
        return measure_lib.workload_dir(self.config, workload)

    def close(self) -> None:
        """Stop the worker processes of the builder and of an RPC tracker's runner, where they
        were started (again: nothing). Without it they stop when the tuner is collected -- but
        a run that ends while they are still starting (a problem rejected at its export) leaves
        a pool's last reference to one of its own threads, whose collection then fails:
        "cannot join current thread"."""
        for part in (self._builder, self._runner):
            shutdown = getattr(part, "shutdown", None)
            if shutdown is not None:
                shutdown()

    def __enter__(self) -> Tuner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def warm(self) -> None:
        """Start the builder's first workers (a search's batch of whole kernels) if they are not
        running yet; the search's setup and the first candidate's build go on meanwhile."""
        if self._builder is None:
            self.builder.warm(min(WHOLE_BATCH, self.config.build_workers or os.cpu_count() or 1))

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
        if self._runner is None and self.config.rpc_tracker:  # the servers of an RPC tracker
            from .rpc import make_runner

            self._runner = make_runner(self.config, self.target)
        if self._runner is None:
            evaluator = ms.runner.EvaluatorConfig(
                **self.config.evaluator(), enable_cpu_cache_flush=False
            )
            if self.config.gpu:
                run_evaluator = flushed_run_evaluator
            else:
                run_evaluator = fault_run_evaluator if faults_enabled() else None
            self._runner = ms.runner.LocalRunner(
                timeout_sec=self.config.runner_timeout_s,
                evaluator_config=evaluator,
                f_run_evaluator=run_evaluator,
                initializer=build_lib.die_with_parent,  # no orphaned runner after a kill
            )
        return self._runner

    @property
    def arch(self) -> str | None:
        """The arch the target compiles for (the detected GPU's when none was given)."""
        attrs = self.target.attrs
        return str(attrs.get("arch", "") or attrs.get("mcpu", "")) or None

    def device_name(self) -> str:
        """The GPU's name, or the CPU model for llvm (recorded with library entries)."""
        if self.config.target != "llvm":
            return str(self.device().device_name)
        return cpu_name()

    def device(self):
        return tvm.cpu() if self.config.target == "llvm" else tvm.device(self.config.target, 0)

    def _check_can_measure(self) -> None:
        if self.config.rpc_tracker:  # a dead tracker or a wrong key fails here, in seconds
            self._runner = self.runner
            return
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

    def _built_ahead(self, db_dir: str):
        """The whole kernel recorded in ``db_dir`` as this process timed or built it, loaded
        (:func:`~autokernel_tvm.measure.timed_kernel`); else None."""
        return measure_lib.timed_kernel(self._loaded, self._builds, db_dir)

    def _stock_problem(self, workload: Workload) -> str:
        """Why MetaSchedule's stock space cannot build ``workload`` here ('' if it can)."""
        if workload.opdef.carry is not None:
            return "fail on its two-accumulator epilogue (an error in reverse_compute_at)"
        if workload.dtype in FP8_DTYPES and self.target.kind.name != "llvm":
            # TVM 0.27 CUDA codegen: "Cannot convert type T.intNxN to CUDA type"
            return "build no fp8 kernel for this target (only cuda.wgmma, on sm_90a, does)"
        return ""

    def _no_stock_reason(self, workload: Workload) -> str:
        why = "; ".join(f"{k}: {v}" for k, v in Grammar(self.target).why_not(workload).items())
        return (
            f"{workload.name}: no family builds {workload.op} here ({why}), and MetaSchedule's "
            f"stock rules {self._stock_problem(workload)}"
        )

    def families_report(self, workload: Workload) -> dict:
        """Per family: the TensorIR rewrites it applies, or why it does not apply here."""
        out = {
            name: {"applies": False, "why": why}
            for name, why in self.grammar.why_not(workload).items()
        }
        for family in self.grammar.families(workload):
            rewrites = [p.to_json() for p in family.rewrites(workload)]
            out[family.name] = {"applies": True, "rewrites": rewrites}
        return out

    def fallback_reason(self, workload: Workload, search: Search) -> str:
        """Why ``workload`` gets the stock space: no family takes it, or no legal genome."""
        if not self.grammar.families(workload):
            why = "; ".join(f"{k}: {v}" for k, v in self.grammar.why_not(workload).items())
            return f"no generative family for {workload.name} ({why}): used the stock space"
        rejected = dict(search.generator.rejections)
        dropped = "".join(f"; {f} dropped: {why}" for f, why in search.generator.dropped.items())
        return f"no legal genome (rejected: {rejected}{dropped}): used the stock space"

    def _record(self, workload: Workload, result: TuneResult, genome) -> dict:
        """Keep the verified winner's genome in the user library (the shipped one is read-only)."""
        lib = library.Library.for_workload(
            self.config.target, workload, library.user_root(self.config)
        )
        entry = lib.record(
            genome,
            workload,
            tflops=result.tflops,
            latency_us=result.latency_s * 1e6,
            trials=result.trials,
            device=self.device_name(),
            arch=self.arch or "",
        )
        lib.save()
        return entry

    def _retimed(self, workload, candidates: list, by_label: dict, report: dict) -> list:
        """``candidates`` (fastest first) with the whole kernels within ``retime_within`` of the
        fastest, when it is one, timed again together (:meth:`KernelMeasurer.retime`) and put
        first in that order, at those times; ``report["retimed"]`` says what changed."""
        finalists = retime_finalists(candidates, self.config.retime_within)
        if len(finalists) < 2 or self.config.target != "cuda" or self.config.rpc_tracker:
            return candidates
        kernels = {c[1]: (c[3], by_label[c[1]].db_dir) for c in finalists}
        try:
            seconds = self.kernel_measurer.retime(workload, kernels)
        except Exception as err:  # an aid to the pick: the first timings stand
            log.warning("re-timing %s's finalists failed: %s", workload.name, err)
            report["retimed"] = {"error": f"{type(err).__name__}: {err}"}
            return candidates
        report["retimed"] = [
            {"space": c[1], "first_us": c[0] * 1e6, "again_us": seconds[c[1]] * 1e6}
            for c in finalists
        ]
        again = sorted(((seconds[c[1]], *c[1:]) for c in finalists), key=lambda c: c[0])
        return again + candidates[len(finalists) :]

    def _pick_verified(self, workload, runs, seconds, report) -> TuneResult:
        """The fastest record that passes the correctness gate, across all candidate sources."""
        candidates = []
        for run in runs:
            if run.kernel:
                if run.best_s < FAILED:
                    candidates.append((run.best_s, run.label, None, run.mod, run.family))
                continue
            database = ms.database.JSONDatabase(work_dir=run.db_dir)
            workload_entry = database.commit_workload(run.mod)
            for record in database.get_top_k(workload_entry, 5):
                latency = mean(record.run_secs)
                if latency < FAILED:
                    candidates.append((latency, run.label, record, run.mod, run.family))
        candidates.sort(key=lambda c: c[0])
        by_label = {run.label: run for run in runs}
        # the gate phase's seconds by step (H200: 8-12 s a LLaMA-sized kernel, of which the
        # gate's own checks took 3-5 s): report["gate_seconds"]
        steps, start = {}, time.perf_counter()
        candidates = self._retimed(workload, candidates, by_label, report)
        verify_lib.spent(steps, "retime", start)
        report["gate_seconds"] = steps
        failures: Counter = Counter()
        for run in runs:
            failures.update(run.failures)
        rejected = []
        for latency, label, record, mod, family in candidates:
            if record is not None and family and not get(family).realised(record.trace):
                # the family's template did not apply: an untiled fallback is not its kernel
                failures[f"not realised: {family} left the block untiled"] += 1
                continue
            if record is None:  # a whole kernel is its own schedule
                scheduled, trace = mod, "(whole kernel: no schedule trace)"
            else:
                sch = tvm.s_tir.Schedule(mod)
                record.trace.apply_to_schedule(sch, remove_postproc=False)
                scheduled, trace = sch.mod, str(record.trace)
            start = time.perf_counter()
            key = (workload, tvm_ffi.structural_hash(scheduled))
            verified = self._passed.get(key)
            if verified is None:
                built = self._built_ahead(by_label[label].db_dir) if record is None else None
                exe = built or self.build(scheduled)
                start = verify_lib.spent(steps, "rebuilt" if built is None else "loaded", start)
                if record is None:  # a whole kernel: one that hangs in the gate is its record's
                    path = os.path.join(by_label[label].db_dir, KERNEL_RECORD)
                    seconds_allowed = VERIFY_TIMEOUTS * self.config.runner_timeout_s
                    # padded output rows the kernel also takes (loaders allocate them): gated too
                    pitch = out_pitch(scheduled["main"]) if "main" in scheduled else None
                    with Watchdog(path, seconds_allowed, workload.name, "the correctness gate"):
                        fault_point("kernel-gate")
                        report_v = verify_lib.verify(
                            exe["main"], workload, self.device(), out_pitch=pitch
                        )
                else:
                    report_v = verify_lib.verify(exe["main"], workload, self.device())
                verify_lib.spent(steps, "verify", start)
                if report_v.passed:
                    verified = self._passed[key] = report_v.to_json()
            else:
                verified = {**verified, "reused": "verified earlier in this process"}
            if verified is not None:
                return TuneResult(
                    workload=workload,
                    target=self.config.target,
                    arch=self.arch if self.config.target != "llvm" else None,
                    latency_s=latency,
                    trials=sum(r.trials for r in runs),
                    resumed=sum(r.resumed for r in runs),
                    failures=dict(failures),
                    tune_seconds=seconds,
                    trace=trace,
                    mod=scheduled,
                    curve=_merge_curves(runs),
                    verify=verified,
                    space=label,
                    space_report={**report, "rejected_by_verify": rejected, "realised": family},
                )
            rejected.append({"space": label, "failures": report_v.failures})
            failures["verify: " + report_v.failures[0][:60]] += 1
        if not candidates:  # nothing ran: the failures say why (build, run, RPC server)
            raise TuneError(
                f"{workload.name}: no candidate could be measured (failures: {dict(failures)})"
            )
        raise TuneError(
            f"{workload.name}: no candidate passed the correctness gate "
            f"({len(candidates)} measured, failures: {dict(failures)})"
        )


#: whole kernels :meth:`Tuner._retimed` times again at most
RETIME_FINALISTS = 3


def retime_finalists(candidates: list, within: float) -> list:
    """The leading ``candidates`` (``(seconds, label, record, mod, family)``, fastest first)
    to time again: whole kernels (no record) within ``within`` of the fastest, itself one,
    at most ``RETIME_FINALISTS``; none where ``within`` is 0."""
    if not within or not candidates or candidates[0][2] is not None:
        return []
    out = []
    for c in candidates[:RETIME_FINALISTS]:
        if c[2] is not None or c[0] > candidates[0][0] * (1 + within):
            break
        out.append(c)
    return out


def _merge_curves(runs) -> list:
    """One best-so-far TFLOP/s curve over all candidate sources, in the order they ran."""
    merged, best = [], 0.0
    for run in runs:
        for value in run.curve:
            best = max(best, value)
            merged.append(best)
    return merged

# SPDX-License-Identifier: Apache-2.0
"""The two measurers behind one interface: ``measure(workload, candidate, label, trials)``
keeps its records under ``<work_dir>/<workload>/<label>`` and returns a :class:`SpaceRun`.

* :class:`DesignSpaceMeasurer` runs MetaSchedule on a :class:`~autokernel_tvm.families.
  DesignSpace` (its evolutionary search, XGB cost model, builder, runner and JSON database)
  until its database holds ``trials`` records.
* :class:`KernelMeasurer` builds and times one :class:`~autokernel_tvm.families.Kernel` (a whole
  TIRx kernel has no trace for MetaSchedule's database); its record is ``kernel.json``, timed
  with the evaluator settings of MetaSchedule's ``LocalRunner`` (``TuneConfig.runner_*``).

Both resume: what a directory already holds is not measured again. A whole kernel that runs
past ``runner_timeout_s`` (a generated kernel can deadlock on its barriers; the GPU context it
hangs cannot be recovered in this process) is recorded as failed and the process exits with
:data:`HUNG_EXIT` and a one-line error: the same command resumes past it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm.s_tir import meta_schedule as ms

from . import builder as build_lib
from . import database as db_lib
from . import manifest as manifest_lib
from .config import fault_point
from .families import DesignSpace, Kernel
from .hardware import L2_FLUSH_BYTES
from .progress import ProgressCallback, count_records

FAILED = 1e9  # MetaSchedule stores failed candidates with huge run_secs
KERNEL_RECORD = "kernel.json"
HUNG_EXIT = 3  # the exit status of a process whose whole kernel hung


@dataclass
class SpaceRun:
    """What one candidate source produced: its record dir, trials spent, failures by reason,
    the best latency and curve, and the module it tuned (a design space's rewritten workload,
    or the whole kernel)."""

    label: str
    db_dir: str
    trials: int
    failures: Counter
    best_s: float
    seconds: float
    curve: list = field(default_factory=list)
    mod: tvm.IRModule | None = None
    kernel: bool = False  # a whole kernel (no trace, no MetaSchedule database)
    family: str | None = None  # the family whose candidate this is; None: the stock space
    resumed: int = 0  # of `trials`, those found in the record dir, measured by an earlier run
    #: seconds this run spent by phase: a whole kernel's "build" and "time", a design space's
    #: "search" (MetaSchedule interleaves its builds and runs); empty where nothing ran
    phases: dict = field(default_factory=dict)

    def tflops(self, workload) -> float:
        return workload.flops / self.best_s / 1e12 if self.best_s < FAILED else 0.0


class DesignSpaceMeasurer:
    """Measure candidates of a MetaSchedule design space (builder and runner injected)."""

    def __init__(self, config, target, builder, runner, progress: bool = True):
        self.config, self.target = config, target
        self.builder, self.runner, self.progress = builder, runner, progress
        self.warnings: list[str] = []  # damaged database lines moved out (database.repair)

    def measure(self, workload, candidate: DesignSpace, label: str, trials: int) -> SpaceRun:
        db_dir = record_dir(self.config, workload, label)
        self.warnings += db_lib.repair(db_dir)  # before MetaSchedule reads it: it trusts lines
        failures = _load_failures(db_dir)
        found = count_records(db_dir)
        remaining = trials - found
        start = time.time()
        if remaining > 0:
            callback = ProgressCallback(remaining, f"{workload.name} [{label}]", self.progress)
            # MetaSchedule re-runs dictConfig on every tune_tir and chokes on handlers left from
            # an earlier call in the same process (TVM-0.27-NOTES §7.15): start each call clean.
            ms_logger = logging.getLogger("tvm.s_tir.meta_schedule")
            ms_logger.handlers.clear()
            ms_logger.setLevel(logging.INFO if self.config.verbose else logging.WARNING)
            try:
                ms.tune_tir(
                    mod=candidate.mod,
                    target=self.target,
                    work_dir=db_dir,
                    max_trials_global=remaining,
                    num_trials_per_iter=min(self.config.trials_per_iter, remaining),
                    builder=self.builder,
                    runner=self.runner,
                    database=ms.database.JSONDatabase(work_dir=db_dir),
                    cost_model="xgb",
                    measure_callbacks=[
                        *ms.measure_callback.MeasureCallback.create("default"),
                        callback,
                    ],
                    space=candidate.space,
                    strategy=search_strategy(remaining),
                    num_tuning_cores=self.config.num_cores or "physical",
                    seed=self.config.seed,
                )
            finally:
                callback.close()
                failures.update(callback.failures)
                _save_failures(db_dir, failures)
        done, best, curve = records_summary(db_dir, workload)
        seconds = time.time() - start
        return SpaceRun(
            label, db_dir, done, failures, best, seconds, curve, candidate.mod,
            resumed=min(found, done), phases={"search": seconds} if remaining > 0 else {},
        )  # fmt: skip


class KernelMeasurer:
    """Build and time one whole kernel on ``device``, or through ``runner`` (the servers of an
    RPC tracker) when one is given; a failed build or run is data."""

    def __init__(
        self, config, target, device, runner=None, args: dict | None = None, builder=None,
        builds: dict | None = None, loaded: dict | None = None,
    ):  # fmt: skip
        self.config, self.target, self.device, self.runner = config, target, device, runner
        #: workload -> the device arguments it is timed with: every candidate of a workload is
        #: timed on the same inputs (one seed), so they are drawn and uploaded once, not per
        #: candidate (8192^3: ~4.5 s of host time each on 2 cores); a tuner passes one dict to
        #: all its measurers, holding its last workload's
        self.args = {} if args is None else args
        #: the PoolBuilder whose workers build kernels ahead (:meth:`build_ahead`), and record
        #: path -> the future of its kernel's library (a tuner's measurers share one dict; the
        #: gate loads the winner's from it too)
        self.builder, self.builds = builder, ({} if builds is None else builds)
        #: record path -> the runtime module this process timed, of one workload at a time:
        #: the gate and the re-timing of the finalists take it instead of building it again
        self.loaded = {} if loaded is None else loaded

    def build_ahead(self, workload, candidates) -> None:
        """Start building the ``(label, Kernel)`` pairs not measured or started yet, all at once
        in the builder's workers: the search proposes whole kernels in batches, and
        :meth:`measure` then loads each one's library instead of building it (one build took
        most of a candidate's ~2.5 s on the H200, one after another)."""
        if self.builder is None or self.runner is not None or len(candidates) < 2:
            return  # one kernel builds as fast here, without a library to link and load
        for label, candidate in candidates:
            path = os.path.join(record_dir(self.config, workload, label), KERNEL_RECORD)
            if path not in self.builds and not os.path.exists(path):
                self.builds[path] = self.builder.submit(candidate.mod, self.target)

    def measure(self, workload, candidate: Kernel, label: str, trials: int) -> SpaceRun:
        db_dir = record_dir(self.config, workload, label)
        path = os.path.join(db_dir, KERNEL_RECORD)
        start = time.time()
        record, resumed = None, 1
        if os.path.exists(path):  # resumed: measured (or failed to build) in an earlier run
            with open(path) as f:
                try:
                    record = json.load(f)
                except ValueError:  # written before writes were atomic, then killed
                    record = {"latency_s": None, "failure": "damaged record"}
            if record["latency_s"] is None and not record["failure"].startswith(KEPT_FAILURES):
                record = None  # a failure at run time may be the device's, not the kernel's
        if record is None:
            record, resumed = self._measure(workload, candidate.mod, path), 0
            db_lib.atomic_write_json(path, record)
        failures = Counter({record["failure"]: 1} if record["failure"] else {})
        best = record["latency_s"] if record["latency_s"] is not None else FAILED
        tflops = workload.flops / best / 1e12 if best < FAILED else 0.0
        seconds = time.time() - start
        phases = {p: record[f"{p}_s"] for p in ("build", "time") if f"{p}_s" in record}
        return SpaceRun(
            label, db_dir, 1, failures, best, seconds, [tflops], candidate.mod, True,
            resumed=resumed, phases={} if resumed else phases,
        )  # fmt: skip

    def _measure(self, workload, mod, path: str) -> dict:
        """The record of one whole kernel: its latency or failure, and the seconds its build
        and its timing took (``build_s``, ``time_s``: what a run's tuning time went to)."""
        start = time.time()
        record, built = self._build_and_time(workload, mod, path)
        end = time.time()
        built = built or end  # None: the build failed
        return {**record, "build_s": round(built - start, 3), "time_s": round(end - built, 3)}

    def _build_and_time(self, workload, mod, path: str) -> tuple[dict, float | None]:
        """The record, and when the build ended (None: it failed)."""
        config = self.config
        ahead = self.builds.get(path)
        try:
            if ahead is not None:  # built in a worker (build_ahead): its library, loaded
                exe, runtime = None, tvm.runtime.load_module(ahead.result())
            else:
                exe = build_lib.build_module(mod, self.target)
                runtime = exe.mod  # tvm.compile's Executable wraps the runtime module
        except Exception as err:  # a candidate that does not build is data, counted by reason
            if config.strict:
                raise
            failure = "build: " + build_lib.failure_reason(str(err))
            return {"latency_s": None, "failure": failure}, None
        built = time.time()
        home = workload_dir(config, workload) + os.sep
        if any(not p.startswith(home) for p in self.loaded):
            self.loaded.clear()  # another workload's kernels
        self.loaded[path] = runtime
        if self.runner is not None:  # timed on a server of the tracker, like every candidate
            from .rpc import measure_kernel

            return measure_kernel(config, self.target, self.runner, workload, exe), built
        args = self._arguments(workload, mod)
        try:
            timer = runtime.time_evaluator(
                "main",
                self.device,
                **config.evaluator(),
                cache_flush_bytes=L2_FLUSH_BYTES if config.gpu else 0,  # as flushed_run_evaluator
            )
            with Watchdog(path, config.runner_timeout_s, workload.name):
                fault_point("kernel-measure")
                latency = float(np.mean(timer(*args).results))
        except Exception as err:
            if config.strict:
                raise
            failure = "run: " + build_lib.failure_reason(str(err))
            return {"latency_s": None, "failure": failure}, built
        return {"latency_s": latency, "failure": None}, built

    def _arguments(self, workload, mod) -> list:
        """The device arguments ``mod`` is timed with: the workload's inputs (one draw per
        workload) and an output, a view of padded rows where the kernel takes one and the
        config says so (as torch's loader calls it)."""
        args = self.args.get(workload)
        if args is None:
            rng = np.random.default_rng(self.config.seed)
            args = [tvm.runtime.tensor(a, device=self.device) for a in workload.random_inputs(rng)]
            out = workload.output
            args.append(tvm.runtime.empty(out.shape, out.dtype, device=self.device))
            self.args.clear()  # one workload's arguments on the device at a time
            self.args[workload] = args
        pitch = manifest_lib.out_pitch(mod["main"]) if "main" in mod else None
        if pitch is not None and self.config.padded_outputs:
            args = [*args[:-1], padded_output(workload, pitch, self.device)]
        return args

    def retime(self, workload, kernels: dict) -> dict:
        """Seconds a call of each whole kernel (``label -> (mod, db_dir)``, measured before)
        takes, timed again together: in alternation, each call after an L2 flush
        (:func:`~autokernel_tvm.timing.compare`, the benchmarks' timer), so that a drift of
        the clocks between their first timings cannot order them."""
        from .timing import compare

        fns = {}
        for label, (mod, db_dir) in kernels.items():
            runtime = timed_kernel(self.loaded, self.builds, db_dir)
            if runtime is None:  # measured by an earlier run (resumed): built again, and
                # kept as timed here, so that the gate takes it rather than a third build
                runtime = build_lib.build_module(mod, self.target).mod
                self.loaded[os.path.join(db_dir, KERNEL_RECORD)] = runtime
            fn, args = runtime["main"], self._arguments(workload, mod)
            fns[label] = lambda fn=fn, args=args: fn(*args)
        timing = compare(fns, "cuda", warmup_ms=RETIME_WARMUP_MS, rep_ms=RETIME_MS, rounds=5,
                         warn=False)  # fmt: skip
        return timing.seconds


def timed_kernel(loaded: dict, builds: dict, db_dir: str):
    """The whole kernel recorded in ``db_dir`` as this process timed it (``loaded``), or as
    the builder's workers built it (``builds``, :meth:`KernelMeasurer.build_ahead`), loaded;
    None where neither holds it."""
    path = os.path.join(db_dir, KERNEL_RECORD)
    if path in loaded:
        return loaded[path]
    future = builds.get(path)
    if future is None or not future.done() or future.exception() is not None:
        return None
    return tvm.runtime.load_module(future.result())


#: re-timing whole kernels (:meth:`KernelMeasurer.retime`): milliseconds of calls per kernel
RETIME_MS = 60.0
RETIME_WARMUP_MS = 20.0


def padded_output(workload, pitch: int, device):
    """An output tensor for ``workload`` on ``device`` whose rows are ``pitch`` elements apart
    (a view of padded rows, as torch's loader allocates for kernels that take them: TVM's own
    tensors are compact, so torch's, handed over by DLPack, which keeps them alive)."""
    import torch
    import tvm_ffi

    from .torch.loader import new_rows, torch_device
    from .workloads.dtypes import TORCH_DTYPES

    out = workload.output
    like = torch.empty(0, device=torch_device(device))
    view = new_rows(like, out.shape, TORCH_DTYPES[out.dtype], pitch)
    return tvm_ffi.from_dlpack(view, require_contiguous=False)


#: record failures a resumed run keeps instead of measuring again: the kernel's own
KEPT_FAILURES = ("build:", "hang:")


class Watchdog:
    """While open: if ``seconds`` pass, record the whole kernel whose record is ``path`` as hung
    and exit the process (a kernel spinning on a barrier holds the GPU context; nothing in this
    process can stop it). ``during``: what was running, for the error line."""

    def __init__(self, path: str, seconds: float, name: str, during: str = "timing"):
        self.path, self.seconds, self.name, self.during = path, seconds, name, during
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        return False

    def _fire(self) -> None:
        failure = f"hang: no result in {self.seconds:g} s of {self.during}"
        db_lib.atomic_write_json(self.path, {"latency_s": None, "failure": failure})
        print(
            f"error: {self.name}: a candidate kernel ran {self.seconds:g} s in {self.during} "
            f"(hung); recorded as failed in {self.path}; run the same command again to resume "
            "past it",
            file=sys.stderr,
            flush=True,
        )
        os._exit(HUNG_EXIT)


def workload_dir(config, workload) -> str:
    """``<work_dir>/<workload>``, created: a workload's records and its report."""
    path = os.path.join(config.work_dir, workload.name)
    os.makedirs(path, exist_ok=True)
    return path


def record_dir(config, workload, label: str) -> str:
    """``<work_dir>/<workload>/<label>``, created: where one candidate source keeps its records."""
    path = os.path.join(workload_dir(config, workload), label)
    os.makedirs(path, exist_ok=True)
    return path


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


def mean(values) -> float:
    vals = [float(v) for v in values]
    return sum(vals) / len(vals) if vals else float("inf")


def records_summary(db_dir: str, workload):
    """Trials in a database, the best latency, and the best-so-far TFLOP/s after each trial."""
    best, curve, trials = float("inf"), [], 0
    for record in db_lib.records(db_dir):
        trials += 1
        if record.latency_s < FAILED:
            best = min(best, record.latency_s)
        curve.append(workload.flops / best / 1e12 if best < float("inf") else 0.0)
    return trials, best, curve


def _load_failures(db_dir: str) -> Counter:
    path = os.path.join(db_dir, "failures.json")
    if os.path.exists(path):
        with open(path) as f:
            try:
                return Counter(json.load(f))
            except ValueError as err:  # written before writes were atomic, then killed
                logging.getLogger("autokernel_tvm").warning(
                    "%s: unreadable (%s); failure counts start again", path, err
                )
    return Counter()


def _save_failures(db_dir: str, failures: Counter) -> None:
    db_lib.atomic_write_json(os.path.join(db_dir, "failures.json"), dict(failures))

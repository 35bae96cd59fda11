# SPDX-License-Identifier: Apache-2.0
"""Relax passes around the tuner: lowering with a tuning database, and TVM's tuning pass routed.

Read first: :func:`lower_pipeline` (what ``compile_relax`` runs, as a reusable pass) and
:func:`routed_tune_relax`, which makes TVM's own ``MetaScheduleTuneIRMod`` pass (used by the
``static_shape_tuning`` pipeline) tune with this package's builder, runner and design space.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import relax
from tvm.s_tir import meta_schedule as ms

from ..builder import WMMA_PASS_CONFIG, pass_config
from ..database import repair
from .layout import LayoutTranspose
from .reshapes import fold_reshapes, view_output_reshapes
from .tasks import MIN_TASK_FLOPS, extract, tune_tasks

TUNE_RELAX_GLOBAL = "tvm.s_tir.meta_schedule.tune_relax"


def lower_pipeline(target: tvm.target.Target) -> tvm.transform.Pass:
    """Legalize, fuse, apply ``Database.current()``, schedule the rest, lower for the VM.

    What ``compile_relax`` runs (the fusion of :func:`~autokernel_tvm.relax_tasks.extract`, so
    database keys match), as a reusable pass; GPU functions without a record get DLight's
    default schedules, and layout transposes the shared-memory tiling of
    :class:`~autokernel_tvm.relax.layout.LayoutTranspose`. 0.27's ``compile_relax`` itself
    cannot be used: it opens its own ``PassContext`` and so drops the CUDA flags of
    :func:`~autokernel_tvm.builder.pass_config`.
    """
    from tvm.relax import pipeline as rp
    from tvm.s_tir import dlight as dl

    is_gpu = rp.BackendDispatcher.is_gpu_target(target)

    @tvm.transform.module_pass(opt_level=0, name="AutokernelLower")
    def _lower(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        # zero_pipeline = LegalizeOps .. FuseTIR, then MetaScheduleApplyDatabase(current db).
        passes = [fold_reshapes(), *rp.library_dispatch_passes(target), rp.zero_pipeline()]
        if is_gpu:
            passes.append(
                dl.ApplyDefaultSchedule(
                    dl.gpu.Matmul(),
                    dl.gpu.GEMV(),
                    dl.gpu.Reduction(),
                    dl.gpu.GeneralReduction(),
                    LayoutTranspose(),
                    dl.gpu.Fallback(),
                )
            )
        passes += [view_output_reshapes(), *_lowering_passes(target)]
        with target:
            return tvm.transform.Sequential(passes)(mod)

    return _lower


def _lowering_passes(target: tvm.target.Target) -> list:
    from tvm.relax import pipeline as rp

    try:
        return rp.dataflow_lower_passes(target) + rp.finalize_passes(target)
    except (ValueError, AttributeError):  # 0.27: relax.backend.cpu_generic lacks these helpers
        t = relax.transform
        return [
            t.RewriteDataflowReshape(),
            t.ToNonDataflow(),
            t.RemovePurityChecking(),
            t.CallTIRRewrite(),
            t.StaticPlanBlockMemory(),
            t.LowerAllocTensor(),
            t.KillAfterLastUse(),
            t.LowerRuntimeBuiltin(),
            t.ComputePrimValue(),
            t.VMShapeLower(),
            t.AttachGlobalSymbol(),
        ]


def compile_with_database(mod: tvm.IRModule, target: tvm.target.Target, db_dir: str | None):
    """Build ``mod`` (raw: not yet legalized) for the VM, applying the records in ``db_dir``."""
    if db_dir:
        repair(db_dir)  # before MetaSchedule reads it: it trusts every line
    database = ms.database.JSONDatabase(work_dir=db_dir) if db_dir else ms.database.MemoryDatabase()
    config = pass_config(target, mod)  # dispatched wmma kernels are PrimFuncs of ``mod``
    if target.kind.name == "cuda" and _records_use_wmma(db_dir):
        config.update(WMMA_PASS_CONFIG)  # wmma kernels break under StorageRewrite in 0.27
    with target, database, tvm.transform.PassContext(opt_level=3, config=config):
        return relax.build(mod, target=target, relax_pipeline=lower_pipeline(target))


def _records_use_wmma(db_dir: str | None) -> bool:
    path = os.path.join(db_dir, "database_tuning_record.json") if db_dir else ""
    if not path or not os.path.exists(path):
        return False
    with open(path) as f:
        return "wmma_" in f.read()


@dataclass
class Route:
    """What :func:`routed_tune_relax` saw: calls of TVM's ``tune_relax`` and their
    :class:`~autokernel_tvm.relax_tasks.TaskReport` list."""

    calls: int = 0
    reports: list = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def routed_tune_relax(tuner, min_task_flops: float = MIN_TASK_FLOPS):
    """While active, TVM's ``tune_relax`` global tunes with :func:`tune_tasks` and ``tuner``.

    ``MetaScheduleTuneIRMod`` (and so the ``static_shape_tuning`` pipeline) calls that global
    with MetaSchedule's default builder, which times out on small machines (TVM-0.27-NOTES §5).
    Yields a :class:`Route` that collects the :class:`TaskReport` of every call (``calls`` stays
    0 if TVM never reached the dispatcher: see :func:`install_dispatcher`). Outside the block
    TVM's own function runs.
    """
    install_dispatcher()
    route = Route()

    def _route(mod, params, _target, work_dir, max_trials_global, *_):
        if params:
            mod = relax.transform.BindParams("main", params)(mod)
        tasks = extract(mod, tuner.target)
        trials = int(max_trials_global)
        route.calls += 1
        route.reports += tune_tasks(
            tuner, tasks, str(work_dir), trials, min_task_flops=min_task_flops
        )
        return mod

    _ROUTES.append(_route)
    try:
        yield route
    finally:
        _ROUTES.remove(_route)


_ROUTES: list = []  # active routes of the tune_relax dispatcher, innermost last


def install_dispatcher() -> bool:
    """Register, once per process, a ``tune_relax`` global that follows :func:`routed_tune_relax`.

    Why not override and restore the global around each use: ``MetaScheduleTuneIRMod`` keeps
    the function it first finds in a C++ static, so a later restore or override is ignored, and
    freeing that Python function after the interpreter has finalized crashes the exit (SIGSEGV or
    ``double free`` in ``TVMFFIPyCallbackClosure::Deleter``). So the dispatcher is installed once
    and never freed. Returns False when it was installed before.
    """
    if getattr(install_dispatcher, "installed", False):
        return False
    stock = tvm_ffi.get_global_func(TUNE_RELAX_GLOBAL)

    def _dispatch(*args):
        return _ROUTES[-1](*args) if _ROUTES else stock(*args)

    tvm_ffi.register_global_func(TUNE_RELAX_GLOBAL, _dispatch, override=True)
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(tvm_ffi.get_global_func(TUNE_RELAX_GLOBAL)))
    install_dispatcher.installed = True
    return True

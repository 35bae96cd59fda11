# SPDX-License-Identifier: Apache-2.0
"""The TVM pipeline entry points: tune a whole PyTorch model, or tune inside ``tvm.compile``.

Read first: :func:`tune_model` (``torch.export`` -> Relax -> tune every heavy fused task ->
build -> :class:`~autokernel_tvm.relax_runtime.TunedModel`), then :func:`autokernel_pipeline`,
the same as a Relax pass pipeline for a TVM user's own flow::

    ex = tvm.compile(mod, target, relax_pipeline=autokernel_pipeline(config))
    ex = tvm.compile(mod, target, relax_pipeline=relax.get_pipeline("autokernel", trials=64))

A custom ``relax_pipeline`` replaces all of ``tvm.compile``'s Relax passes (``relax.build``
runs only what it is given), so this pipeline also lowers the module for the VM. Which tasks are
tuned and how the budget is split: :mod:`autokernel_tvm.relax_tasks`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import time

import torch
import tvm
from tvm import relax

from .. import database as db_lib
from ..config import TuneConfig
from ..tuner import TuneError, Tuner
from ..workloads import dtypes as _dtypes
from . import passes as relax_passes
from . import tasks as relax_tasks
from .check import TOLERANCE, check, check_summary, reference64, rel_error, tolerance
from .dispatch import DispatchReport, dispatch_kernels
from .reductions import blocked_reductions
from .runtime import ModelLoadError, TunedModel, load_model
from .tasks import MIN_TASK_FLOPS, TaskReport

#: dtypes a model may be cast to (torch's), the floating ones
DTYPES = {name: _dtypes.TORCH_DTYPES[name] for name in _dtypes.DTYPES}

__all__ = [
    "MIN_TASK_FLOPS",
    "TOLERANCE",
    "DispatchReport",
    "ModelLoadError",
    "TaskReport",
    "TunedModel",
    "UnsupportedModelError",
    "autokernel_pipeline",
    "check",
    "reference64",
    "dispatch_kernels",
    "load_model",
    "model_tuner",
    "rel_error",
    "tolerance",
    "tune_model",
]
log = logging.getLogger("autokernel_tvm")


class UnsupportedModelError(RuntimeError):
    """TVM cannot import or build this model; the message names the ops or the stage."""


def tune_model(
    model: torch.nn.Module,
    example_inputs: tuple,
    *,
    config: TuneConfig,
    dtype: str | None = None,
    tuner: Tuner | None = None,
    min_task_flops: float = MIN_TASK_FLOPS,
    dispatch: bool = True,
) -> TunedModel:
    """Export, tune and build ``model``; the result is called like ``model`` in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        Compiled in eval mode (its modules' modes are restored after); its weights become the
        compiled model's parameters. ``dtype`` casts a copy, never the caller's model.
    example_inputs : tuple of torch.Tensor
        Fix the shapes (static shapes only) and are used for the numerics check.
    config : TuneConfig
        ``trials`` in total, split over the tuned tasks; the database lives in
        ``work_dir/relax/<space>`` and is resumed from.
    dtype : str, optional
        ``float16``/``bfloat16``/``float32``: cast the model and floating inputs first.
    tuner : Tuner, optional
        Reuse a tuner made from ``config`` (and its builder processes); by default a new one.
    min_task_flops : float
        Tasks below this keep TVM's default lowering.
    dispatch : bool
        Replace each matmul/conv2d and its elementwise chain by a kernel tuned for that
        workload (:mod:`~autokernel_tvm.relax.dispatch`, ``config.trials`` per kernel); the
        rest of the graph is tuned as Relax tasks.

    Returns
    -------
    TunedModel
        ``.report["dispatch"]`` lists the kernel and family of each served call and the
        reason for each unmatched one; ``.report`` also has per-task name, weight, FLOPs,
        trials, best latency, tuned or why not, the numerics check against eager and fp64
        (:mod:`~autokernel_tvm.relax.check`) on ``example_inputs``, and stage timings.

    Raises
    ------
    UnsupportedModelError
        ``torch.export`` or TVM's importer rejects the model (the message names the ops).
    """
    start = time.time()
    for i, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor):
            raise UnsupportedModelError(
                f"input {i} is a {type(x).__name__}, not a tensor: pass numbers to the model's "
                "constructor, or as tensors"
            )
    wide = {str(t.dtype) for t in (*example_inputs, *model.parameters(), *model.buffers())}
    wide &= {"torch.float64", "torch.complex64", "torch.complex128"}
    if wide and dtype is None:
        scalars = [
            i for i, x in enumerate(example_inputs) if x.dim() == 0 and x.dtype == torch.float64
        ]
        why = (
            f" (input {scalars[0]} is a 0-d float64 tensor: torch.compile passes a Python float "
            "argument as one; make it a tensor of the model's dtype, or a constant)"
            if scalars
            else " (cast the model to float32, float16 or bfloat16)"
        )
        raise UnsupportedModelError(
            f"{sorted(wide)} tensors: TVM's torch import computes in float32 at most{why}"
        )
    own = tuner is None  # a tuner made here stops its build workers when the model is done
    tuner = tuner or model_tuner(config)
    if config.target != "llvm" and not tuner.device().exist:
        raise TuneError(f"no {config.target} device here: tuning measures every candidate on it")
    tuner.warm()  # its build workers start while the model is exported and imported
    modes = {m: m.training for m in model.modules()}
    try:
        return _tune_model(model.eval(), example_inputs, config, dtype, tuner, min_task_flops,
                           dispatch, start)  # fmt: skip
    finally:
        for m, training in modes.items():
            m.train(training)
        if own:
            tuner.close()


def _tune_model(model, example_inputs, config, dtype, tuner, min_task_flops, dispatch, start):
    if dtype is not None and any(p.dtype != DTYPES.get(dtype) for p in model.parameters()):
        model = copy.deepcopy(model)  # the caller's model keeps its dtype
    model, inputs = cast(model, tuple(example_inputs), dtype)
    dispatched = DispatchReport()
    rewrite = dispatch_kernels(tuner, report=dispatched) if dispatch else None
    facts: dict = {}
    mod, params, out_spec = import_model(model, inputs, rewrite=rewrite, facts=facts)
    num_inputs = int(mod["main"].attrs["num_input"])
    imported = time.time()
    db_dir = database_dir(tuner)
    # Weight transforms (main_transform_params) run once at load: only main's tasks count.
    main_only = tvm.IRModule(
        {
            gv: f
            for gv, f in mod.functions.items()
            if gv.name_hint == "main" or isinstance(f, tvm.tirx.PrimFunc)  # dispatched kernels
        }
    )
    try:
        tasks = relax_tasks.extract(main_only, tuner.target)
    except Exception as err:  # e.g. an op without a legalization
        raise UnsupportedModelError(f"TVM cannot legalize the model: {err}") from err
    reports = relax_tasks.tune_tasks(
        tuner, tasks, db_dir, config.trials, min_task_flops=min_task_flops
    )
    tuned_at = time.time()
    device = "cpu" if config.target == "llvm" else "cuda"
    exe = _build(mod, tuner.target, db_dir)
    report = {
        "target": str(tuner.target.kind.name),
        "trials": config.trials,
        "tasks": [r.to_json() for r in reports],
        "dispatch": dispatched.to_json(),
        "index_bounds": facts["index_bounds"],
        "inputs": [[list(x.shape), str(x.dtype).removeprefix("torch.")] for x in inputs],
        "import_seconds": imported - start,
        "tune_seconds": tuned_at - imported,
    }
    result = TunedModel(exe, device, params, num_inputs, out_spec, report)
    with torch.no_grad():
        expected = model(*inputs)
    ref64 = reference64(model, inputs)
    report["check"] = check(result(*inputs), expected, inputs, ref64, tf32=config.tf32)
    if not report["check"]["passed"]:
        # the tuned build, or TVM's import of the model itself: rebuild without either's
        # choices to tell which
        log.warning("tuned model fails the numerics check %s: default lowering", report["check"])
        mod, params, _ = import_model(model, inputs)
        exe = _build(mod, tuner.target, None)
        result = TunedModel(exe, device, params, num_inputs, out_spec, report)
        for task in report["tasks"]:
            task["tuned"], task["reason"] = False, "tuned build failed the numerics check"
        for served in report["dispatch"]["served"]:
            served["reason"] = "model failed the numerics check: TVM's default lowering used"
        report["check"] = check(result(*inputs), expected, inputs, ref64, tf32=config.tf32)
        if not report["check"]["passed"]:  # never hand back (or cache) a wrong model
            raise UnsupportedModelError(
                f"TVM's build disagrees with eager PyTorch even with its default lowering "
                f"({check_summary(report['check'])})"
            )
    report["build_seconds"] = time.time() - tuned_at
    report["total_seconds"] = time.time() - start
    return result


def import_model(model: torch.nn.Module, inputs: tuple, rewrite=None, facts: dict | None = None):
    """``torch.export`` + Relax import; weights detached and their transforms lifted.

    ``rewrite`` (a Relax pass, e.g. :func:`dispatch_kernels`) runs before the weight transforms
    are lifted, so the layout changes it makes to weights run once, at load time.

    fp16/bf16 models import with PyTorch's dtypes (:mod:`autokernel_tvm.relax.importer`).

    Returns ``(mod, params, out_spec)``: ``mod["main"]`` takes the inputs then the (transformed)
    weights; ``mod["main_transform_params"]`` (when there are weights) transforms ``params``.
    ``facts``, when given, receives ``index_bounds`` (:func:`index_bounds`).
    """
    from tvm.relax.frontend import detach_params

    from .importer import from_exported_program

    try:
        program = torch.export.export(model, inputs)
    except Exception as err:
        raise UnsupportedModelError(f"torch.export failed: {type(err).__name__}: {err}") from err
    why = eager_only(program) or computed_indices(program)
    if why:
        raise UnsupportedModelError(why)
    if facts is not None:
        facts["index_bounds"] = index_bounds(program)
    try:
        mod = from_exported_program(program, keep_params_as_input=True)
    except Exception as err:  # TVM's importer asserts on ops it has no converter for
        raise UnsupportedModelError(f"TVM's torch importer: {err}") from err
    mod, params = detach_params(_host_constants(mod))
    if program.call_spec.out_spec.is_leaf():
        mod = _return_tensor(mod)
    mod = tvm.transform.Sequential(
        [
            relax.transform.DecomposeOpsForInference(),
            blocked_reductions(),  # long fp sums in two levels: eager's accuracy
            relax.transform.CanonicalizeBindings(),
        ]
    )(mod)
    if rewrite is not None:
        mod = rewrite(mod)
    weights = [torch.from_dlpack(p) for p in params.get("main", [])]
    if weights:
        mod = relax.transform.LiftTransformParams()(mod)
    return mod, weights, program.call_spec.out_spec


#: ops whose every call draws new random numbers: a compiled graph cannot reproduce eager
RANDOM_OPS = frozenset(
    ("rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "randperm",
     "bernoulli", "bernoulli_", "normal", "normal_", "uniform_", "exponential_", "poisson",
     "multinomial", "native_dropout", "random_")
)  # fmt: skip


def eager_only(program) -> str | None:
    """Why an exported program must run eagerly, or None: it changes an input, a buffer or a
    parameter in place (TVM's import computes a new value and drops the update: a training
    BatchNorm's running statistics, ``x.mul_(2)``), runs in training mode (dropout, batch
    statistics) or draws random numbers."""
    graph = program.graph_module.graph
    placeholders = {n for n in graph.nodes if n.op == "placeholder"}
    for node in graph.nodes:
        schema = getattr(node.target, "_schema", None)
        if node.op != "call_function" or schema is None:
            continue
        name = node.target.overloadpacket.__name__
        if name in RANDOM_OPS:
            return f"it draws random numbers ({name}): the compiled graph cannot match eager"
        for i, arg in enumerate(schema.arguments):
            value = node.args[i] if i < len(node.args) else node.kwargs.get(arg.name)
            written = arg.alias_info is not None and arg.alias_info.is_write
            if written and value in placeholders:
                return (
                    f"it changes {value.name} in place ({name}): TVM's import would drop the update"
                )
            if arg.name in ("train", "training") and value is True:
                return f"{name} in training mode: put the model in eval mode (model.eval())"
    return None


#: ops that read (or write) their first argument, a table, at indices: (the dim -- an int, or
#: "arg1": the second argument holds it -- and the indices' argument); aten.index's indices
#: are a list, one per leading dim of the table (x[idx], x[:, idx] is x.index([None, idx]))
INDEXED = {
    "embedding": (0, 1),
    "index_select": ("arg1", 2),
    "gather": ("arg1", 2),
    "index": ("list", 1),
    "take": ("flat", 1),
    # writes at indices: out of range, TVM's scatter writes past the tensor
    "scatter": ("arg1", 2),
    "scatter_add": ("arg1", 2),
    "scatter_reduce": ("arg1", 2),
    "index_add": ("arg1", 2),
    "index_copy": ("arg1", 2),
    "index_fill": ("arg1", 2),
    "index_put": ("list", 1),
}


def _indexings(program):
    """``(op name, table node, indices node, dim, direct)`` for each indices tensor an
    :data:`INDEXED` op reads; dim None: the table read flat (``take``); direct: the indices are
    a model input themselves."""
    users = set(program.graph_signature.user_inputs)
    for node in program.graph_module.graph.nodes:
        packet = getattr(node.target, "overloadpacket", None)
        if node.op != "call_function" or packet is None or packet.__name__ not in INDEXED:
            continue
        dim, idx = INDEXED[packet.__name__]
        indices = node.args[idx] if idx < len(node.args) else None
        if dim == "list":
            found = [(each, d) for d, each in enumerate(indices or ())]
        else:
            found = [(indices, None if dim == "flat" else node.args[1] if dim == "arg1" else dim)]
        for each, d in found:
            if each is None:  # a dim x[:, idx] does not index, or no indices argument
                continue
            direct = getattr(each, "op", None) == "placeholder" and each.name in users
            yield packet.__name__, node.args[0], each, d, direct


def _from_inputs(node, users: set) -> bool:
    """Whether ``node``'s value depends on a model input (not only weights and constants)."""
    seen, todo = set(), [node]
    while todo:
        n = todo.pop()
        if n in seen or not hasattr(n, "op"):
            continue
        seen.add(n)
        if n.op == "placeholder" and n.name in users:
            return True
        todo.extend(n.all_input_nodes)
    return False


def computed_indices(program) -> str | None:
    """Why the model's indexing must run eagerly, or None: indices computed from the inputs
    inside the graph (``table[idx + 1]``) cannot be range-checked before the call, and TVM's
    gather reads out of bounds where eager raises (garbage, or a segfault). Indices that are
    inputs themselves are checked on each call (:func:`index_bounds`); indices from weights or
    constants only (position ids) are what eager reads too."""
    users = set(program.graph_signature.user_inputs)
    for name, _, indices, _, direct in _indexings(program):
        if not direct and _from_inputs(indices, users):
            return (
                f"{name} reads at indices computed from the inputs ({indices.name}): they cannot "
                "be range-checked per call, and TVM's gather reads out of bounds where eager "
                "raises IndexError"
            )
    return None


def index_bounds(program) -> list[list[int]]:
    """``[input position, rows]`` for each model input used directly as the indices of an
    :data:`INDEXED` op into ``rows`` rows (the indexed dim's size; a ``take``'s: the table's
    elements). Eager PyTorch raises IndexError for an index outside ``[0, rows)`` (``x[idx]``
    wraps negative ones; TVM does not, so they are refused too); TVM's compiled gather reads
    out of bounds (garbage, or a segfault), so the compiled model checks these inputs on every
    call (:class:`~autokernel_tvm.relax.runtime.TunedModel`)."""
    users = list(program.graph_signature.user_inputs)
    out = []
    for _, table, indices, dim, direct in _indexings(program):
        if not direct:
            continue
        shape = table.meta["val"].shape
        rows = math.prod(shape) if dim is None else shape[dim]
        bound = [users.index(indices.name), int(rows)]
        if bound not in out:
            out.append(bound)
    return out


def _return_tensor(mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` whose ``main`` returns its one output tensor, not a 1-tuple of it (the
    importer's form when the model returns one tensor): the VM then hands back the tensor
    itself, sparing every call building a tuple and indexing it (~3 us of its host time)."""
    func = mod["main"]
    body = func.body
    block = body.blocks[-1] if body.blocks else None
    last = block.bindings[-1] if block is not None and block.bindings else None
    if (
        last is None
        or not isinstance(last, relax.VarBinding)
        or not last.var.same_as(body.body)
        or not isinstance(last.value, relax.Tuple)
        or len(last.value.fields) != 1
    ):
        return mod
    field = last.value.fields[0]
    out = relax.Var(last.var.name, field.ty)
    bindings = [*block.bindings[:-1], relax.VarBinding(out, field)]
    block = type(block)(bindings)  # a DataflowBlock stays one
    seq = relax.SeqExpr([*body.blocks[:-1], block], out)
    new = relax.Function(func.params, seq, field.ty, func.is_pure, func.attrs)
    mod = tvm.IRModule(mod.functions, attrs=mod.attrs)
    mod["main"] = new
    return mod


def _host_constants(mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with its constants (a model's buffers, e.g. BatchNorm's running statistics: the
    importer embeds them as they are, on the model's device) copied to the host. FoldConstant
    evaluates them with host-built code while the model is legalized: a CUDA constant made
    that fail with "Mismatched A.device_type ... expected cpu" (ResNet block, 2026-12-03)."""
    from tvm.relax.expr_functor import PyExprMutator, mutator

    @mutator
    class _ToHost(PyExprMutator):
        def visit_generic_const_(self, op):
            if op.value.device.dlpack_device_type() == tvm.cpu().dlpack_device_type():
                return op
            return relax.const(op.value.numpy(), str(op.value.dtype))

    out = tvm.IRModule(mod.functions, attrs=mod.attrs)
    for gv, func in mod.functions.items():
        if isinstance(func, relax.Function):
            out[gv] = _ToHost().visit_expr(func)
    return out


def model_tuner(config: TuneConfig, **kwargs) -> Tuner:
    """The tuner of a model compiled through Relax (``kwargs``: :class:`Tuner`'s): whole kernels
    timed on plain output rows, as the model's Relax VM allocates them (a kernel that also takes
    padded rows copies into plain ones), whatever torch's loader allocates."""
    return Tuner(dataclasses.replace(config, padded_outputs=False), **kwargs)


def autokernel_pipeline(config: TuneConfig, *, tuner: Tuner | None = None) -> tvm.transform.Pass:
    """A Relax pipeline: long float sums in two levels (:func:`blocked_reductions`) -> dispatch
    heavy calls to tuned kernels (:func:`dispatch_kernels`) -> legalize -> tune the remaining
    tasks with our builder and space -> apply records -> lower.

    For ``tvm.compile(mod, target, relax_pipeline=...)``. Tuning goes through TVM's own
    ``MetaScheduleTuneIRMod`` pass, whose ``tune_relax`` global is routed to this package's
    tuner only while the pass runs (:func:`~autokernel_tvm.relax_passes.routed_tune_relax`).
    ``config.target`` must be the target that is compiled for. The per-task report of each run
    is written to ``<database>/pipeline_report.json``. For CUDA, compile inside
    ``PassContext(opt_level=3, config=autokernel_tvm.builder.pass_config(target))``: the TIR
    build after this pipeline runs under the caller's context, and tensor-core kernels need it.
    """
    holder = {"tuner": tuner}

    @tvm.transform.module_pass(opt_level=0, name="AutokernelPipeline")
    def _pipeline(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        tuner_ = holder["tuner"] = holder["tuner"] or model_tuner(config)
        target = tuner_.target
        current = tvm.target.Target.current(allow_none=True)
        if current is not None and current.kind.name != target.kind.name:
            raise ValueError(f"compiling for {current.kind.name}, but config.target={target}")
        db_dir = database_dir(tuner_)
        os.makedirs(db_dir, exist_ok=True)
        dispatched = DispatchReport()
        mod = blocked_reductions()(mod)  # long float sums in two levels, as import_model does
        mod = dispatch_kernels(tuner_, report=dispatched)(mod)
        fused = relax.get_pipeline("zero")(mod)
        with target, relax_passes.routed_tune_relax(tuner_) as route:
            relax.transform.MetaScheduleTuneIRMod({}, db_dir, config.trials)(fused)
        if not route.calls:  # TVM cached tune_relax before autokernel_tvm.relax was imported
            log.warning("MetaScheduleTuneIRMod bypassed autokernel's tuner: tuning directly")
            tasks = relax_tasks.extract(fused, target)
            route.reports = relax_tasks.tune_tasks(tuner_, tasks, db_dir, config.trials)
        with open(os.path.join(db_dir, "pipeline_report.json"), "w") as f:
            tasks = [r.to_json() for r in route.reports]
            summary = {"routed": route.calls > 0, "tasks": tasks, "dispatch": dispatched.to_json()}
            json.dump(summary, f, indent=1)
        db_lib.repair(db_dir)  # before MetaSchedule reads it: it trusts every line
        database = tvm.s_tir.meta_schedule.database.JSONDatabase(work_dir=db_dir)
        with database:
            return relax_passes.lower_pipeline(target)(mod)

    return _pipeline


def _registered_pipeline(config: TuneConfig | None = None, **options) -> tvm.transform.Pass:
    """``relax.get_pipeline("autokernel", trials=64, target="llvm", ...)`` (TuneConfig keys)."""
    return autokernel_pipeline(config or TuneConfig.from_env(**options))


if "autokernel" not in relax.pipeline.PIPELINE_MAP:
    relax.register_pipeline("autokernel")(_registered_pipeline)
# Before any MetaScheduleTuneIRMod call caches TVM's own tune_relax (see install_dispatcher).
relax_passes.install_dispatcher()


def database_dir(tuner: Tuner) -> str:
    """The JSON database of Relax tasks, one per design-space kind (shared by all models)."""
    label = "generative" if tuner.config.space == "generative" else "stock"
    return os.path.join(tuner.config.work_dir, "relax", label)


def cast(model: torch.nn.Module, inputs: tuple, dtype: str | None):
    """``model`` and its floating-point inputs in ``dtype`` (unchanged when None)."""
    if dtype is None:
        return model, inputs
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    torch_dtype = DTYPES[dtype]
    inputs = tuple(
        x.to(torch_dtype) if isinstance(x, torch.Tensor) and x.is_floating_point() else x
        for x in inputs
    )
    return model.to(torch_dtype), inputs


def _build(mod: tvm.IRModule, target: tvm.target.Target, db_dir: str | None):
    try:
        return relax_passes.compile_with_database(mod, target, db_dir)
    except Exception as err:
        raise UnsupportedModelError(f"TVM cannot build the model: {err}") from err

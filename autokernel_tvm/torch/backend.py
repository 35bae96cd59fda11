# SPDX-License-Identifier: Apache-2.0
"""The ``torch.compile`` backend ``"autokernel"``: each captured graph is tuned through Relax.

Example::

    import autokernel_tvm.torch.backend  # registers the backend
    fast = torch.compile(model, backend="autokernel", options={"target": "llvm", "trials": 64})
    with torch.no_grad():
        fast(x)

Read first: :func:`autokernel_backend`. Dynamo hands over an FX ``GraphModule`` whose inputs
are the activations *and* the weights (dynamo lifts parameters into graph inputs), so one
compiled graph serves any weights. It is re-exported with ``torch.export`` and goes through
:func:`autokernel_tvm.relax.tune_model`. The result is cached on disk under
``<cache_dir>/models/<key>`` (the exported ``.so``), keyed by the graph code, the input shapes
and dtypes, graph constants, target and tuning options, the TVM and torch versions and this
package's own sources (a model compiled before an upgrade or a fix is compiled again); the
tuning database is shared under
``<cache_dir>/tuning``. A second compile of the same graph, in any process, loads the ``.so``
and tunes nothing. Graphs it cannot handle run eagerly, with a logged warning giving the reason.
Options (``options=`` of ``torch.compile``, else :func:`configure`, else ``AUTOKERNEL_*``
variables): any :class:`~autokernel_tvm.config.TuneConfig` key plus ``cache_dir`` and
``min_task_flops``; ``rpc_tracker``/``rpc_key``/``rpc_devices`` measure on the servers of a TVM
RPC tracker (:mod:`autokernel_tvm.rpc`) and do not change the cache key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import pathlib
import shutil
import sys
import tempfile
from collections import Counter

import torch
import tvm

from .. import config as config_lib
from ..relax import MIN_TASK_FLOPS, UnsupportedModelError, tune_model
from ..relax.runtime import FORMAT_VERSION, ModelLoadError, load_model

log = logging.getLogger("autokernel_tvm")
BACKEND_OPTIONS = ("cache_dir", "min_task_flops")
_DEFAULTS: dict = {}
_STATS: Counter = Counter()
_TUNERS: dict = {}


def configure(**options) -> None:
    """Default options of later compiles (``options=`` of ``torch.compile`` wins)."""
    _split(options)  # validate names now rather than at the first compile
    _DEFAULTS.update(options)


def stats() -> dict:
    """Counters of this process: ``compiles``, ``cache_hits``, ``tuned``, ``fallbacks``."""
    return {k: _STATS[k] for k in ("compiles", "cache_hits", "tuned", "fallbacks")}


def autokernel_backend(gm: torch.fx.GraphModule, example_inputs, options=None, **_kwargs):
    """Compile one dynamo graph; return a callable with the graph's signature.

    Raises ``ConfigError`` for unknown option names; every other problem falls back to eager.
    """
    settings = _split({**_DEFAULTS, **(options or {})})  # config, cache_root, min_task_flops
    _STATS["compiles"] += 1
    if any(_symbolic(x) for x in example_inputs):
        return _PerShape(gm, settings)
    return _compile_static(gm, example_inputs, *settings)


def _compile_static(gm, example_inputs, config, cache_root, min_task_flops):
    """:func:`autokernel_backend` for a graph whose inputs are all tensors of static shapes."""
    reason = unsupported_reason(example_inputs, config)
    if reason:
        return _fallback(gm, reason)
    key = cache_key(gm, example_inputs, config, min_task_flops)
    final = os.path.join(cache_root, "models", key)
    library = os.path.join(final, "model.so")
    weights = [i for i, x in enumerate(example_inputs) if isinstance(x, torch.nn.Parameter)]
    if os.path.exists(library + ".json"):
        try:
            model = load_model(library)
            _STATS["cache_hits"] += 1
            log.info("autokernel: graph %s loaded from %s", key[:12], final)
            return _LiveWeights(model, weights, len(example_inputs)) if weights else model
        except ModelLoadError as err:
            log.warning("autokernel: cached graph %s unusable (%s): tuning again", key[:12], err)
            shutil.rmtree(final, ignore_errors=True)
    inputs = [_real(x) for x in example_inputs]
    module = _Weighted(gm, example_inputs, weights) if weights else gm
    user = [x for i, x in enumerate(inputs) if i not in weights]
    try:
        model = tune_model(
            module, tuple(user), config=config, tuner=_tuner(config), min_task_flops=min_task_flops
        )
    except UnsupportedModelError as err:
        return _fallback(gm, str(err))
    except OSError as err:  # e.g. a cache_dir that cannot be written
        return _fallback(gm, f"{type(err).__name__}: {err}")
    _STATS["tuned"] += 1
    _save(model, final)
    return _LiveWeights(model, weights, len(example_inputs)) if weights else model


#: static graphs one dynamic graph is specialized into, at most (dynamo's recompile limit)
MAX_SHAPES = 8


def _symbolic(x) -> bool:
    """Whether a graph input makes the graph dynamic: a (symbolic) number, or a tensor with a
    symbolic size."""
    if isinstance(x, torch.Tensor):
        return any(not isinstance(d, int) for d in x.shape)
    return isinstance(x, (int, float, torch.SymInt, torch.SymFloat))


class _PerShape:
    """A dynamic graph (dynamo marks a size dynamic once it has seen two, and passes sizes as
    numbers) compiled once per concrete call signature: the graph is traced again with that
    call's sizes (``make_fx``) into a static graph, which is compiled as any other. After
    :data:`MAX_SHAPES` signatures the others run eagerly."""

    def __init__(self, gm: torch.fx.GraphModule, settings: tuple):
        self.gm, self.settings = gm, settings  # _compile_static's config, cache_root, min flops
        self.compiled: dict = {}
        self.warned = False

    def __call__(self, *args):
        key = tuple((tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else a for a in args)
        fn = self.compiled.get(key)
        if fn is None:
            if len(self.compiled) >= MAX_SHAPES:
                if not self.warned:
                    self.warned = True
                    log.warning("autokernel: %d shapes of one graph compiled: others run "
                                "eagerly", MAX_SHAPES)  # fmt: skip
                return self.gm(*args)
            fn = self.compiled[key] = self._specialize(args)
        return fn(*[a for a in args if isinstance(a, torch.Tensor)])

    def _specialize(self, args):
        from torch.fx.experimental.proxy_tensor import make_fx

        numbers = {i: a for i, a in enumerate(args) if not isinstance(a, torch.Tensor)}
        slots = [i for i in range(len(args)) if i not in numbers]

        def static(*tensors):
            full = dict(numbers)
            full.update(zip(slots, tensors))
            return self.gm(*[full[i] for i in range(len(args))])

        tensors = [args[i] for i in slots]
        try:
            with torch.no_grad():
                traced = make_fx(static)(*tensors)
        except Exception as err:  # a graph make_fx cannot trace with these sizes
            _fallback(self.gm, f"dynamic graph not specialized to {len(tensors)} inputs: {err}")
            return static
        # falls back to the traced graph, run eagerly, where the static graph cannot compile
        return _compile_static(traced, tensors, *self.settings)


class _Weighted(torch.nn.Module):
    """``gm`` with the parameters dynamo passes it as inputs held as parameters again, so the
    import treats them as weights and lifts their transforms (layouts, the stacked gated-MLP
    weights) out of every call."""

    def __init__(self, gm: torch.fx.GraphModule, example_inputs, weights: list[int]):
        super().__init__()
        self.gm, self.count = gm, len(example_inputs)
        self.slot = {i: j for j, i in enumerate(weights)}  # input position -> weight index
        for j, i in enumerate(weights):
            self.register_parameter(f"w{j}", example_inputs[i])

    def forward(self, *args):
        given = iter(args)
        full = [
            getattr(self, f"w{self.slot[i]}") if i in self.slot else next(given)
            for i in range(self.count)
        ]
        return self.gm(*full)


class _LiveWeights:
    """The compiled graph called with dynamo's full argument list: the parameters among the
    arguments are the model's live weights; when one is another tensor or was changed in place
    (its version counter moved), the weight transforms run again before the call."""

    def __init__(self, model, weights: list[int], count: int):
        self.model, self.weights = model, weights
        self.inputs = [i for i in range(count) if i not in weights]
        self._seen = None

    def __call__(self, *args):
        params = [args[i] for i in self.weights]
        seen = [(p.data_ptr(), p._version) for p in params]
        if seen != self._seen:
            self.model.set_weights(params)
            self._seen = seen
        return self.model(*[args[i] for i in self.inputs])


def unsupported_reason(example_inputs, config: config_lib.TuneConfig) -> str | None:
    """Why a graph with these inputs cannot be compiled, or None."""
    want = "cpu" if config.target == "llvm" else "cuda"
    for x in example_inputs:
        if not isinstance(x, torch.Tensor):
            return f"non-tensor graph input {type(x).__name__} (dynamic shapes or Python scalars)"
        if any(not isinstance(s, int) for s in x.shape):
            return "dynamic shapes (compile with dynamic=False)"
        if x.device.type != want:
            return f"input on {x.device.type}, but target {config.target} runs on {want}"
    if torch.is_grad_enabled() and any(x.requires_grad for x in example_inputs):
        return "inputs require grad: the backend compiles inference graphs (use torch.no_grad())"
    return None


@functools.cache
def package_digest() -> str:
    """sha256 of this package's Python sources: what compiles a model besides TVM and torch
    (the dispatch, the passes, the kernel generators). Its version number alone would keep
    serving models compiled before a fix installed from git or in place."""
    root = pathlib.Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(gm, example_inputs, config: config_lib.TuneConfig, min_task_flops: float) -> str:
    """sha256 of what decides the compiled model: graph, inputs, constants, target, budget."""
    digest = hashlib.sha256()
    spec = {
        "code": gm.code,
        "inputs": [(list(x.shape), str(x.dtype)) for x in example_inputs],
        "target": [config.target, config.arch, config.num_cores],
        "tuning": [config.trials, config.space, min_task_flops],
        "versions": [tvm.__version__, torch.__version__, FORMAT_VERSION, package_digest()],
        # parameters among the inputs are compiled as weights (see _Weighted)
        "weights": [isinstance(x, torch.nn.Parameter) for x in example_inputs],
    }
    digest.update(json.dumps(spec, sort_keys=True).encode())
    for name, tensor in sorted(gm.state_dict().items()):  # constants captured in the graph
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy())
    return digest.hexdigest()


def _split(options: dict):
    """(TuneConfig, cache_dir, min_task_flops) from backend options; unknown names raise."""
    options = dict(options)
    cache_root = options.pop("cache_dir", None) or config_lib.cache_dir()
    min_task_flops = float(options.pop("min_task_flops", MIN_TASK_FLOPS))
    known = {f.name for f in dataclasses.fields(config_lib.TuneConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise config_lib.ConfigError(
            f"unknown autokernel option(s) {unknown}; known: {sorted(known | set(BACKEND_OPTIONS))}"
        )
    options.setdefault("work_dir", os.path.join(cache_root, "tuning"))
    # torch's convention, per op kind: matmuls off by default, cuDNN convolutions on
    options.setdefault("allow_tf32", torch.backends.cuda.matmul.allow_tf32)
    options.setdefault("allow_tf32_conv", torch.backends.cudnn.allow_tf32)
    options.setdefault("padded_outputs", False)  # the model's Relax VM allocates plain outputs
    return config_lib.TuneConfig.from_env(**options), cache_root, min_task_flops


def _tuner(config: config_lib.TuneConfig):
    """One tuner (and builder process pool) per configuration, for the life of the process."""
    from ..tuner import Tuner

    if config not in _TUNERS:
        _TUNERS[config] = Tuner(config, progress=sys.stderr.isatty())
    return _TUNERS[config]


def _fallback(gm: torch.fx.GraphModule, reason: str):
    _STATS["fallbacks"] += 1
    log.warning("autokernel: running this graph eagerly: %s", reason)
    return gm.forward


def _real(x: torch.Tensor) -> torch.Tensor:
    """A real tensor like ``x`` (dynamo may pass fake tensors), detached."""
    if isinstance(x, torch._subclasses.fake_tensor.FakeTensor):
        if x.is_floating_point():
            return torch.randn(x.shape, dtype=x.dtype, device=x.device)
        return torch.zeros(x.shape, dtype=x.dtype, device=x.device)
    return x.detach()


def _save(model, final: str) -> None:
    """Export into a temporary folder, then rename it into place (atomic for other processes)."""
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp_", dir=parent)
    try:
        model.export(os.path.join(tmp, "model.so"))
        os.replace(tmp, final)
    except OSError as err:  # another process saved it first, or the cache is read-only
        log.info("autokernel: cache not written (%s)", err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _register() -> None:
    from torch._dynamo.backends import registry

    if registry._BACKENDS.get("autokernel") is not None:
        return  # torch is loading this module through the package's entry point: it registers
    try:
        registry.register_backend(autokernel_backend, name="autokernel")
    except AssertionError:  # already registered (module reloaded)
        pass


_register()

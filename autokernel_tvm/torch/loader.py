# SPDX-License-Identifier: Apache-2.0
"""Load an exported kernel library and register its kernels as PyTorch custom ops.

Read first: :func:`load`. Each manifest entry becomes ``torch.ops.autokernel.<name>`` (a
``torch.library.custom_op`` with a fake implementation, so ``torch.compile(fullgraph=True)``
traces it and ``meta`` tensors give the output's shape). Calls are checked against the manifest
before they reach TVM, and torch tensors are handed to the TVM function as they are (DLPack,
zero-copy; tvm-ffi launches on torch's current CUDA stream). The output is a new tensor on the
inputs' device: plain, or where the manifest entry has ``out_row_pitch``, a view of rows that
many elements apart (C rows that are not 16-byte multiples, which the kernel then stores with
the TMA instead of copying them in; torch.compile returns its padded matmuls' outputs so too).
GEMM-family ops have an autograd formula (the gradient of the op's torch
expression, :mod:`.baselines`); the others are forward-only and say so on ``backward``.

Before anything of a library runs, :func:`autokernel_tvm.manifest.check` compares the library's
sha256 and its embedded manifest with the ``.json`` beside it.

Two details that are easy to get wrong:

* The library is loaded from a private copy named by its sha256. ``dlopen`` of a path that is
  already open returns the old code even when the file was replaced (measured: a re-exported
  ``.so`` at the same path silently ran the previous kernel).
* ``torch.library.custom_op`` silently replaces an op of the same name, dropping its fake
  implementation; so ops are registered once per process, and re-registering a name is allowed
  only for an identical manifest entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings

import torch

from .. import manifest as manifest_lib
from ..workloads.dtypes import TORCH_DTYPES
from .library import KernelLibrary, KernelOp

NAMESPACE = "autokernel"
#: torch device type of the tensors each target's kernels take (ROCm torch calls HIP "cuda").
DEVICE_TYPES = {"llvm": "cpu", "cuda": "cuda", "rocm": "cuda"}


class LibraryError(RuntimeError):
    """A library cannot be loaded: not found, checksum or manifest mismatch, missing device
    runtime, name conflict."""


#: Ops with an autograd formula: the gradient of their torch expression (matmuls, linear).
GRAD_OPS = (
    "gemm", "gemm_nt", "gemm_tn", "batch_gemm", "batch_gemm_nt", "batch_gemm_tn", "gemm_bias",
)  # fmt: skip


class KernelSpec:
    """What one kernel accepts, from its manifest entry; :meth:`check` validates a call.

    Parameters
    ----------
    entry : dict
        One element of the manifest's ``kernels`` list.
    """

    def __init__(self, entry: dict):
        self.entry = entry
        self.name = entry["name"]
        self.qualname = f"{NAMESPACE}.{self.name}"
        self.target = entry["target"]
        self.device_type = DEVICE_TYPES[self.target]
        self.inputs = [
            (a["name"], tuple(a["shape"]), _torch_dtype(a["dtype"])) for a in entry["inputs"]
        ]
        self.out_shape = tuple(entry["output"]["shape"])
        self.out_dtype = _torch_dtype(entry["output"]["dtype"])
        self.schema = "(" + ", ".join(f"Tensor {n}" for n, _, _ in self.inputs) + ") -> Tensor"

    def check(self, args, *, fake: bool = False) -> None:
        """Raise ``TypeError`` (wrong count/type/dtype) or ``ValueError`` (shape, device, layout).

        ``fake``: shape inference (``meta`` and fake tensors); the device is not checked.
        """
        self.check_count(len(args))
        first = None
        for arg, (name, shape, dtype) in zip(args, self.inputs, strict=True):
            where = f"{self.qualname}: argument {name!r}"
            if not isinstance(arg, torch.Tensor):
                raise TypeError(f"{where} must be a torch.Tensor, got {type(arg).__name__}")
            if arg.dtype != dtype:
                raise TypeError(f"{where} has dtype {arg.dtype}, expected {dtype}")
            if tuple(arg.shape) != shape:
                raise ValueError(f"{where} has shape {tuple(arg.shape)}, expected {shape}")
            if arg.device.type != self.device_type and not (fake and arg.device.type == "meta"):
                raise ValueError(
                    f"{where} is on {arg.device}, but this kernel was built for "
                    f"{self.target} ({self.entry.get('arch')}): expected a "
                    f"{self.device_type} tensor"
                )
            if first is not None and arg.device != first[1]:
                raise ValueError(f"{where} is on {arg.device} but {first[0]!r} is on {first[1]}")
            first = first or (name, arg.device)
            if not arg.is_contiguous():
                raise ValueError(
                    f"{where} is not contiguous (strides {tuple(arg.stride())}); pass .contiguous()"
                )

    def check_count(self, count: int) -> None:
        """``TypeError`` naming the op and the expected count unless ``count`` tensors."""
        if count != len(self.inputs):
            raise TypeError(
                f"{self.qualname}: takes {len(self.inputs)} tensors "
                f"({', '.join(n for n, _, _ in self.inputs)}), got {count}"
            )

    def bind(self, args: tuple, kwargs: dict) -> tuple:
        """Positional and keyword tensors in argument order; ``TypeError`` naming what is wrong."""
        names = [n for n, _, _ in self.inputs]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(f"{self.qualname}: no argument(s) {unknown}; arguments: {names}")
        self.check_count(len(args) + len(kwargs))
        twice = [n for n in names[: len(args)] if n in kwargs]
        if twice:
            raise TypeError(f"{self.qualname}: argument {twice[0]!r} given twice")
        bound = tuple(args) + tuple(kwargs[n] for n in names[len(args) :])
        for name, arg in zip(names, bound, strict=True):
            if not isinstance(arg, torch.Tensor):
                raise TypeError(
                    f"{self.qualname}: argument {name!r} must be a torch.Tensor, "
                    f"got {type(arg).__name__}"
                )
        return bound

    @property
    def differentiable(self) -> bool:
        op = self.entry["op"]
        return op in GRAD_OPS or op.startswith("gemm_bias_")

    def new_output(self, like: torch.Tensor) -> torch.Tensor:
        """The output tensor a call writes (:func:`new_rows`, the manifest's pitch)."""
        return new_rows(
            like, self.out_shape, self.out_dtype, self.entry.get(manifest_lib.OUT_PITCH)
        )


def torch_device(device) -> str:
    """The torch device of a TVM ``device``: ``cuda:<index>`` for a CUDA GPU, else ``cpu``."""
    return f"cuda:{device.index}" if device.dlpack_device_type() == 2 else "cpu"  # kDLCUDA


def new_rows(like: torch.Tensor, shape, dtype, pitch: int | None = None) -> torch.Tensor:
    """A new tensor of ``shape`` and ``dtype`` on ``like``'s device: plain, or (``pitch``, a
    manifest's ``out_row_pitch``) a view of rows that many elements apart, which the kernel
    stores into with the TMA where plain rows would take a copy (they are not 16-byte
    multiples) -- as torch.compile's padded matmuls return views of padded rows. How the loader
    allocates outputs, and so how benchmarks call a kernel as a user does."""
    if pitch is None:
        return like.new_empty(shape, dtype=dtype)
    return like.new_empty((*shape[:-1], pitch), dtype=dtype)[..., : shape[-1]]


class _Registered:
    """A registered op and the TVM function it calls."""

    def __init__(self, entry: dict, fn):
        self.entry = entry
        self.fn = fn
        self.spec = KernelSpec(entry)
        self.opdef = None
        self.kernel_op = None  # the KernelOp handed to every library holding this kernel


_LOCK = threading.Lock()
_REGISTRY: dict[str, _Registered] = {}  # kernel name -> op, process-wide like torch.ops
_MODULES: dict[str, object] = {}  # library sha256 -> loaded tvm module


def load(path: str | os.PathLike, *, verify_checksum: bool = True) -> KernelLibrary:
    """Load an exported library and register its kernels as ``torch.ops.autokernel.<name>``.

    Parameters
    ----------
    path : str or PathLike
        The ``.so`` written by :func:`autokernel_tvm.export.export`; its manifest
        (``path + ".json"``) must sit beside it.
    verify_checksum : bool
        Refuse a library whose sha256 differs from the manifest's. The manifest embedded in
        the library is compared with the ``.json`` in any case.

    Raises
    ------
    LibraryError
        No such file, a directory or the ``.json`` given; a missing, malformed or version-1
        manifest; checksum mismatch (names both hashes); a manifest that differs from the one
        embedded in the library (names the first differing field and both values); a device
        library that this machine cannot load (CUDA without a driver); or a kernel name
        already registered from a different entry.
    """
    path = os.fspath(path)
    _check_library_path(path)
    try:
        manifest = manifest_lib.read(path)
        with open(path, "rb") as f:
            data = f.read()
    except (manifest_lib.ManifestError, OSError) as err:
        raise LibraryError(str(err)) from err
    actual = hashlib.sha256(data).hexdigest()
    copy = manifest_lib.private_copy(data, actual)
    _import_tvm()  # the library's undefined TVM symbols resolve against the loaded runtime
    try:
        manifest_lib.check(path, manifest, data=data, opened=copy, verify_sha256=verify_checksum)
    except manifest_lib.ManifestError as err:
        hint = (
            " (export it again; verify_checksum=False loads it anyway, and a damaged "
            "library can crash the process)"
            if "sha256" in str(err)
            else ""
        )
        raise LibraryError(f"{err}{hint}") from err
    with _LOCK:
        module = _load_module(path, copy, actual, manifest)
        entries = manifest["kernels"]
        for entry in entries:  # all conflicts first: torch ops cannot be unregistered
            _check_conflict(entry, path)
        ops = {e["name"]: _register(e, _function(module, e["name"], path)) for e in entries}
    return KernelLibrary(path, manifest, module, ops)


def registered_kernels() -> list[str]:
    """Names of the kernels registered in this process."""
    return sorted(_REGISTRY)


def _check_library_path(path: str) -> None:
    """One clear error for the usual wrong paths, before any file is opened."""
    if path.endswith(".json"):
        raise LibraryError(
            f"{path}: this is the manifest; pass the library itself ({path[: -len('.json')]})"
        )
    if os.path.isdir(path):
        raise LibraryError(f"{path}: is a directory; pass the .so written by export")
    if not os.path.exists(path):
        raise LibraryError(f"{path}: no such file; pass the .so written by export")


def _import_tvm():
    import tvm

    return tvm


def _load_module(path: str, copy: str, sha: str, manifest: dict):
    if sha in _MODULES:
        return _MODULES[sha]
    import tvm

    kind = manifest["target"]["kind"]
    if kind == "llvm":
        _warn_if_other_cpu(path, manifest["target"].get("arch"))
        from ..targets import use_cores

        use_cores()  # TVM's thread pool would use half the physical cores
    try:
        module = tvm.runtime.load_module(copy)
    except Exception as err:
        if kind == "llvm":
            raise
        arch = manifest["target"].get("arch")
        raise LibraryError(
            f"{path}: cannot load a {kind} library ({arch}, device code: "
            f"{manifest.get('device_code')}) on this machine: {kind} kernels load only where the "
            f"{kind} driver and runtime are present. TVM said: {err}"
        ) from err
    _MODULES[sha] = module
    return module


def _warn_if_other_cpu(path: str, mcpu: str | None) -> None:
    """CPU code built for another ``mcpu`` may use instructions this CPU lacks (SIGILL)."""
    import tvm

    host = tvm.target.codegen.llvm_get_system_cpu()
    if mcpu and mcpu not in (host, "generic", "x86-64"):
        warnings.warn(
            f"{path}: CPU kernels were built for {mcpu!r}, this CPU is {host!r}; they may use "
            "instructions this CPU lacks. Re-export on this machine if calls crash.",
            RuntimeWarning,
            stacklevel=3,
        )


def _function(module, name: str, path: str):
    try:
        return module[name]
    except Exception as err:
        raise LibraryError(
            f"{path}: the manifest lists kernel {name!r}, the library lacks it"
        ) from err


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _check_conflict(entry: dict, path: str) -> None:
    old = _REGISTRY.get(entry["name"])
    if old is not None and not _same(old.entry, entry):
        diff = sorted(k for k in {*entry, *old.entry} if old.entry.get(k) != entry.get(k))
        raise LibraryError(
            f"{path}: kernel {entry['name']!r} is already registered as "
            f"torch.ops.{NAMESPACE}.{entry['name']} from a different library entry (differs "
            f"in {diff}); a torch op cannot be replaced in a running process, so load only one "
            "version of a kernel per process"
        )


def _register(entry: dict, fn):
    name = entry["name"]
    if name in _REGISTRY:
        return _REGISTRY[name].kernel_op
    reg = _Registered(entry, fn)
    spec = reg.spec

    def run(*args):
        spec.check(args)
        out = spec.new_output(args[0])
        reg.fn(*args, out)
        return out

    def fake(*args):
        spec.check(args, fake=True)
        return spec.new_output(args[0])

    reg.opdef = torch.library.custom_op(
        f"{NAMESPACE}::{name}", run, mutates_args=(), schema=spec.schema
    )
    reg.opdef.register_fake(fake)
    reg.opdef.register_autograd(_backward(spec), setup_context=_save_inputs)
    reg.kernel_op = KernelOp(spec, getattr(getattr(torch.ops, NAMESPACE), name))
    _REGISTRY[name] = reg
    return reg.kernel_op


def _save_inputs(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _backward(spec: KernelSpec):
    """The op's backward: the gradient of its torch expression, or a forward-only error."""
    from .baselines import make_baseline

    def backward(ctx, grad):
        if not spec.differentiable:
            raise RuntimeError(
                f"{spec.qualname} ({spec.entry['op']}) is forward-only: autokernel-tvm has no "
                "backward for it; call it under torch.no_grad() or on tensors without "
                "requires_grad, or use the torch op for training"
            )
        inputs = ctx.saved_tensors
        needed = ctx.needs_input_grad
        with torch.enable_grad():
            leaves = [x.detach().requires_grad_(bool(n)) for x, n in zip(inputs, needed)]
            out = make_baseline(spec.entry, leaves)()
            wanted = [x for x in leaves if x.requires_grad]
            grads = iter(torch.autograd.grad(out, wanted, grad.to(out.dtype)))
        return tuple(next(grads) if n else None for n in needed)

    return backward


def _torch_dtype(name: str) -> torch.dtype:
    if name not in TORCH_DTYPES:
        raise LibraryError(f"dtype {name!r} has no torch equivalent; known: {sorted(TORCH_DTYPES)}")
    return TORCH_DTYPES[name]

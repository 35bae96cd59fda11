# SPDX-License-Identifier: Apache-2.0
"""Load an exported kernel library and register its kernels as PyTorch custom ops.

Read first: :func:`load`. Each manifest entry becomes ``torch.ops.autokernel.<name>`` (a
``torch.library.custom_op`` with a fake implementation, so ``torch.compile(fullgraph=True)``
traces it). Calls are checked against the manifest before they reach TVM, and torch tensors are
handed to the TVM function as they are (DLPack, zero-copy; tvm-ffi launches on torch's current
CUDA stream). The output is a new tensor on the inputs' device.

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
import tempfile
import threading
import warnings

import torch

from ..export import load_manifest
from .library import KernelLibrary

NAMESPACE = "autokernel"
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
#: torch device type of the tensors each target's kernels take (ROCm torch calls HIP "cuda").
DEVICE_TYPES = {"llvm": "cpu", "cuda": "cuda", "rocm": "cuda"}


class LibraryError(RuntimeError):
    """A library cannot be loaded: checksum mismatch, missing device runtime, name conflict."""


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

    def check(self, args) -> None:
        """Raise ``TypeError`` (wrong type/dtype) or ``ValueError`` (shape, device, layout)."""
        if len(args) != len(self.inputs):
            raise TypeError(
                f"{self.qualname}: takes {len(self.inputs)} tensors "
                f"({', '.join(n for n, _, _ in self.inputs)}), got {len(args)}"
            )
        first = None
        for arg, (name, shape, dtype) in zip(args, self.inputs, strict=True):
            where = f"{self.qualname}: argument {name!r}"
            if not isinstance(arg, torch.Tensor):
                raise TypeError(f"{where} must be a torch.Tensor, got {type(arg).__name__}")
            if arg.dtype != dtype:
                raise TypeError(f"{where} has dtype {arg.dtype}, expected {dtype}")
            if tuple(arg.shape) != shape:
                raise ValueError(f"{where} has shape {tuple(arg.shape)}, expected {shape}")
            if arg.device.type != self.device_type:
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

    def new_output(self, like: torch.Tensor) -> torch.Tensor:
        return like.new_empty(self.out_shape, dtype=self.out_dtype)


class _Registered:
    """A registered op and the TVM function it calls."""

    def __init__(self, entry: dict, fn):
        self.entry = entry
        self.fn = fn
        self.spec = KernelSpec(entry)
        self.opdef = None


_LOCK = threading.Lock()
_REGISTRY: dict[str, _Registered] = {}  # kernel name -> op, process-wide like torch.ops
_MODULES: dict[str, object] = {}  # library sha256 -> loaded tvm module
_COPIES = None  # TemporaryDirectory holding the content-addressed library copies


def load(path: str | os.PathLike, *, verify_checksum: bool = True) -> KernelLibrary:
    """Load an exported library and register its kernels as ``torch.ops.autokernel.<name>``.

    Parameters
    ----------
    path : str or PathLike
        The ``.so`` written by :func:`autokernel_tvm.export.export`; its manifest
        (``path + ".json"``) must sit beside it.
    verify_checksum : bool
        Refuse a library whose sha256 differs from the manifest's.

    Raises
    ------
    LibraryError
        Checksum mismatch (names both hashes), a device library that this machine cannot load
        (CUDA without a driver), or a kernel name already registered from a different entry.
    """
    path = os.fspath(path)
    manifest = load_manifest(path)
    with open(path, "rb") as f:
        data = f.read()
    actual = hashlib.sha256(data).hexdigest()
    if verify_checksum and actual != manifest["sha256"]:
        raise LibraryError(
            f"{path}: sha256 mismatch: the manifest says {manifest['sha256']}, the file has "
            f"{actual}; the library was changed after export (re-export it, or pass "
            "verify_checksum=False to load it anyway)"
        )
    with _LOCK:
        module = _load_module(path, data, actual, manifest)
        entries = manifest["kernels"]
        for entry in entries:  # all conflicts first: torch ops cannot be unregistered
            _check_conflict(entry, path)
        ops = {e["name"]: _register(e, _function(module, e["name"], path)) for e in entries}
    return KernelLibrary(path, manifest, module, ops)


def registered_kernels() -> list[str]:
    """Names of the kernels registered in this process."""
    return sorted(_REGISTRY)


def _load_module(path: str, data: bytes, sha: str, manifest: dict):
    global _COPIES
    if sha in _MODULES:
        return _MODULES[sha]
    import tvm

    if _COPIES is None:
        _COPIES = tempfile.TemporaryDirectory(prefix="autokernel_libs_")
    copy = os.path.join(_COPIES.name, f"{sha}.so")
    with open(copy, "wb") as f:
        f.write(data)
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
        return getattr(getattr(torch.ops, NAMESPACE), name)
    reg = _Registered(entry, fn)
    spec = reg.spec

    def run(*args):
        spec.check(args)
        out = spec.new_output(args[0])
        reg.fn(*args, out)
        return out

    def fake(*args):
        spec.check(args)
        return spec.new_output(args[0])

    reg.opdef = torch.library.custom_op(
        f"{NAMESPACE}::{name}", run, mutates_args=(), schema=spec.schema
    )
    reg.opdef.register_fake(fake)
    _REGISTRY[name] = reg
    return getattr(getattr(torch.ops, NAMESPACE), name)


def _torch_dtype(name: str) -> torch.dtype:
    if name not in TORCH_DTYPES:
        raise LibraryError(f"dtype {name!r} has no torch equivalent; known: {sorted(TORCH_DTYPES)}")
    return TORCH_DTYPES[name]

# SPDX-License-Identifier: Apache-2.0
"""A compiled Relax model called like a PyTorch module, and its one-``.so`` export.

Needs only the TVM runtime and torch (no tuner, no compiler passes), so that
:func:`load_model` works wherever the library runs. Files of an export to ``model.so``:

* ``model.so``: the Relax VM executable with every kernel (``Executable.export_library``);
* ``model.so.params``: the model's weights (``tvm.runtime.save_param_dict``), untransformed;
* ``model.so.json``: the manifest (inputs, output structure, sha256 of both files, tuning report).

Weights are transformed once at load time (``main_transform_params``, from Relax's
``LiftTransformParams``: e.g. ``nn.Linear``'s weight transpose), not on every call.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile

import torch
import tvm
from torch.utils import _pytree as pytree
from tvm.runtime.vm import VirtualMachine

from ..manifest import ManifestError, check_elf, file_sha256, private_copy
from ..manifest import read as read_manifest

FORMAT = "autokernel-tvm-model"
FORMAT_VERSION = 1
TRANSFORM_PARAMS = "main_transform_params"


#: What TVM 0.27's VM prints (a LOG(WARNING), no level control) on every save and load of an
#: executable: a debugging line with nothing in it for a user
VM_NOISE = ("executable.cc", "Warning: Scope ")


@contextlib.contextmanager
def quiet_vm_scopes():
    """Drop :data:`VM_NOISE` lines from what native code writes to stderr in this block; every
    other line is written out after it."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a daemon, say): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode(errors="replace").splitlines(keepends=True):
                if not all(part in line for part in VM_NOISE):
                    sys.stderr.write(line)
            sys.stderr.flush()


class ModelLoadError(RuntimeError):
    """An exported model cannot be loaded; the message says which file and why."""


class TunedModel:
    """A compiled Relax model: ``model(*tensors)`` returns what the PyTorch model returns.

    Parameters
    ----------
    module : tvm.runtime.Executable or tvm.runtime.Module
        The VM executable (``relax.build``) or a loaded ``.so``.
    device : str
        ``cpu`` or ``cuda`` (also ROCm); where inputs, weights and outputs live.
    params : list of torch.Tensor
        Weights in the order of ``main``'s parameters after the inputs (before the transform).
    num_inputs : int
        Number of tensor inputs of ``forward``.
    out_spec : pytree.TreeSpec
        Structure of the PyTorch model's output (a tensor, a tuple...).
    report : dict
        Per-task tuning report and the numerics check (``export`` writes it to the manifest).
    """

    def __init__(self, module, device: str, params, num_inputs: int, out_spec, report=None):
        self.executable = module if isinstance(module, tvm.runtime.Executable) else None
        #: the runtime module: its kernels can be called by symbol (``ak_<workload>``)
        self.library = module.mod if self.executable is not None else module
        self.device = torch.device(device)
        index = self.device.index or 0
        if self.device.type != "cpu":  # "cuda" as "cuda:0": what its tensors' .device compares to
            self.device = torch.device(self.device.type, index)
        tvm_device = tvm.cpu() if self.device.type == "cpu" else tvm.cuda(index)
        self.vm = VirtualMachine(module, tvm_device)
        self.num_inputs = num_inputs
        self.out_spec = out_spec
        self.report = report or {}
        # inputs that index a table: checked on each call, as eager PyTorch checks them
        self._bounds = [tuple(b) for b in self.report.get("index_bounds", [])]
        self._main = self.vm["main"]
        self.set_weights(params)

    def set_weights(self, params) -> None:
        """Use ``params`` (same order and shapes as the model's) from now on; their weight
        transforms (layouts, stacked gated-MLP weights) run here, once."""
        self.params = [p.detach().to(self.device).contiguous() for p in params]
        self._weights = self.params
        if self.params and _has_function(self.vm, TRANSFORM_PARAMS):
            self._weights = list(_to_torch(self.vm[TRANSFORM_PARAMS](self.params)))

    def __call__(self, *args: torch.Tensor):
        if len(args) != self.num_inputs:
            raise TypeError(f"expected {self.num_inputs} tensor inputs, got {len(args)}")
        try:
            inputs = [a if self._ready(a) else a.detach().to(self.device).contiguous()
                      for a in args]  # fmt: skip
        except AttributeError:  # checked here, off the per-call path: a non-tensor input
            for i, a in enumerate(args):
                if not isinstance(a, torch.Tensor):
                    raise TypeError(f"input {i} is a {type(a).__name__}, not a tensor") from None
            raise
        for position, rows in self._bounds:
            _check_indices(inputs[position], rows, position)
        try:
            outputs = self._main(*inputs, *self._weights)
        except (RuntimeError, ValueError, TypeError) as err:
            clear = self._input_error(inputs)
            if clear is None:
                raise
            raise clear from err
        flat = _to_torch(outputs)
        flat = list(flat) if isinstance(flat, (list, tuple)) else [flat]
        return pytree.tree_unflatten(flat, self.out_spec)

    def _input_error(self, inputs) -> ValueError | None:
        """The first input unlike the one the model was compiled for, as one line (TVM's own
        error names a match_cast), or None."""
        for i, (x, (shape, dtype)) in enumerate(zip(inputs, self.report.get("inputs", []))):
            got = (list(x.shape), str(x.dtype).removeprefix("torch."))
            if got != (shape, dtype):
                return ValueError(
                    f"input {i} is {got[1]} {tuple(got[0])}, but the model was compiled for "
                    f"{dtype} {tuple(shape)} (a compiled model takes the shapes and dtypes it was "
                    "compiled for)"
                )
        return None

    def _ready(self, tensor: torch.Tensor) -> bool:
        """Whether ``tensor`` can go to the VM as it is: on this device, contiguous, no autograd
        history (a per-call fast path: the ``.to().contiguous()`` copies-if-needed cost ~3 us
        even when they copy nothing)."""
        return tensor.device == self.device and not tensor.requires_grad and tensor.is_contiguous()

    def export(self, path: str | os.PathLike) -> dict:
        """Write ``path`` (one ``.so``), ``path.params`` and the manifest ``path.json``.

        Returns
        -------
        dict
            The manifest that was written.
        """
        path = os.fspath(path)
        if not path.endswith(".so"):  # export_library writes a tar for .tar: no loader reads it
            raise ModelLoadError(f"export to a .so path (got {path!r}): the model is one library")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if self.executable is None:
            raise ModelLoadError("a loaded model cannot be re-exported: copy its files instead")
        with quiet_vm_scopes():
            self.executable.export_library(path)
        named = {f"p{i}": tvm.runtime.from_dlpack(p.cpu()) for i, p in enumerate(self.params)}
        with open(path + ".params", "wb") as f:
            f.write(bytes(tvm.runtime.save_param_dict(named)))
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library": os.path.basename(path),
            "sha256": file_sha256(path),
            "params": os.path.basename(path) + ".params",
            "params_sha256": file_sha256(path + ".params"),
            "num_params": len(self.params),
            "device": self.device.type,
            "num_inputs": self.num_inputs,
            "out_spec": pytree.treespec_dumps(self.out_spec),
            "tvm_version": tvm.__version__,
            "torch_version": torch.__version__,
            "report": self.report,
        }
        with open(path + ".json", "w") as f:
            json.dump(manifest, f, indent=1)
        return manifest


def load_model(path: str | os.PathLike, device: str | None = None) -> TunedModel:
    """Reload an exported model (``path`` is the ``.so`` or its ``.json`` manifest).

    The sha256 of the library and of the weights are checked against the manifest first.
    ``device`` defaults to the one it was exported for (``cuda:1`` picks a GPU).
    """
    path = os.fspath(path)
    lib = path[: -len(".json")] if path.endswith(".json") else path
    try:
        manifest = read_manifest(lib, fmt=FORMAT, version=FORMAT_VERSION)
    except ManifestError as err:
        raise ModelLoadError(str(err)) from err
    folder = os.path.dirname(os.path.abspath(lib))
    lib_path = os.path.join(folder, manifest["library"])
    params_path = os.path.join(folder, manifest["params"])
    for file in (lib_path, params_path):
        if not os.path.isfile(file):
            raise ModelLoadError(f"{file}: missing; the manifest names it (copy it beside it)")
    device = device or manifest["device"]
    try:
        kind = torch.device(device).type
    except RuntimeError as err:
        raise ModelLoadError(f"device {device!r}: {err}") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"{lib}: a model for {device}, and torch sees no CUDA GPU here")
    with open(lib_path, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        raise ModelLoadError(f"{lib_path} does not match the sha256 in its manifest")
    if file_sha256(params_path) != manifest["params_sha256"]:
        raise ModelLoadError(f"{params_path} does not match the sha256 in its manifest")
    try:
        check_elf(lib_path, data)  # a cut file whose sha256 was recomputed: SIGBUS in dlopen
    except ManifestError as err:
        raise ModelLoadError(str(err)) from err
    # Loaded from a private copy, as the torch loader does: the user's file may be rewritten
    # while the model is alive (re-exported in place), which would pull the mapped code away.
    copy = private_copy(data, manifest["sha256"])
    with open(params_path, "rb") as f:
        named = tvm.runtime.load_param_dict(f.read())
    params = [torch.from_dlpack(named[f"p{i}"]).clone() for i in range(manifest["num_params"])]
    with quiet_vm_scopes():
        module = tvm.runtime.load_module(copy)
    return TunedModel(
        module,
        device,
        params,
        manifest["num_inputs"],
        pytree.treespec_loads(manifest["out_spec"]),
        manifest.get("report"),
    )


def _has_function(vm: VirtualMachine, name: str) -> bool:
    try:
        return vm.module.get_function(name) is not None
    except (AttributeError, RuntimeError):
        return False


def _to_torch(value):
    """TVM tensors (and arrays of them) as torch tensors, zero-copy through DLPack."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, tvm.runtime.Tensor):
        return torch.from_dlpack(value)
    return tuple(_to_torch(v) for v in value)


def _check_indices(indices: torch.Tensor, rows: int, position: int) -> None:
    """Raise IndexError, as eager PyTorch does, where ``indices`` leave ``[0, rows)``: TVM's
    gather would read out of bounds (one reduction and one device sync per call)."""
    if not indices.numel():
        return
    low, high = torch.aminmax(indices)
    if bool(((low < 0) | (high >= rows)).item()):
        raise IndexError(
            f"index out of range in input {position}: values {int(low)}..{int(high)} index a "
            f"table of {rows} rows"
        )

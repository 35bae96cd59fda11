# SPDX-License-Identifier: Apache-2.0
"""The end-to-end check of a compiled model against PyTorch: normwise and elementwise.

A normwise relative error of 2e-2 (fp16/bf16) passes a model whose output has one 64 x 64 tile
zeroed when the output has more than ~10 such tiles. So the elementwise check compares both the
compiled model and eager PyTorch with an fp64 run of the same model (a copy cast to float64):
every element must be within ``8 x`` eager's largest error plus ``16`` roundings of the output
dtype at the output's largest magnitude. A wrong tile errs by about the values themselves.
Outputs smaller than one such tile (:data:`TILE`: a loss, a pooled vector) are the normwise
check's alone: a wrong tile there is most of the output, and eager's error on a few values --
one sum over many terms, say -- can be a lucky small one that summation-order noise exceeds.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

log = logging.getLogger(__name__)

#: Relative-norm error allowed against eager PyTorch, by dtype; "tf32": fp32 models whose
#: matmuls or convolutions may run as TF32 (the 11-bit significand of fp16), eager's included
TOLERANCE = {"float32": 1e-4, "float16": 2e-2, "bfloat16": 2e-2, "tf32": 2e-2}
#: Unit roundoff of each output dtype.
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}
EAGER_FACTOR, ROUNDINGS = 8.0, 16.0
TILE = 64 * 64  #: outputs of fewer elements are checked normwise only


def flat(value) -> list[torch.Tensor]:
    return [v for v in pytree.tree_leaves(value) if isinstance(v, torch.Tensor)]


def rel_error(out, ref) -> float:
    """Largest relative-norm error ``|out - ref| / |ref|`` over the (flattened) outputs."""
    outs, refs = flat(out), flat(ref)
    if len(outs) != len(refs):
        return float("inf")
    worst = 0.0
    for o, r in zip(outs, refs, strict=True):
        if o.shape != r.shape:
            return float("inf")
        o, r = o.detach().double().cpu(), r.detach().double().cpu()
        worst = max(worst, float((o - r).norm() / r.norm().clamp_min(1e-30)))
    return worst


def tolerance(tensors) -> float:
    """The error bound for the lowest-precision floating dtype among ``tensors`` (fp32: none)."""
    names = [str(x.dtype).removeprefix("torch.") for x in flat(tensors) if x.is_floating_point()]
    return max((TOLERANCE.get(n, 1e-4) for n in names), default=TOLERANCE["float32"])


class _InFloat64(TorchFunctionMode):
    """Every floating dtype a model names (``x.float()``, ``x.to(torch.float16)``, a factory's
    ``dtype=``) read as float64: a model that casts explicitly would otherwise mix its fp64
    copy's tensors with the dtype it names (torch raises on fp32 @ fp64)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        func = torch.Tensor.double if func in _NARROWING else func
        args = tuple(_wide(a) for a in args)
        kwargs = {key: _wide(v) for key, v in (kwargs or {}).items()}
        return func(*args, **kwargs)


_NARROWING = {torch.Tensor.float, torch.Tensor.half, torch.Tensor.bfloat16}


def _wide(x):
    return torch.float64 if isinstance(x, torch.dtype) and x.is_floating_point else x


def reference64(model: torch.nn.Module, inputs: tuple):
    """``model`` run in float64 on float64 copies of the floating inputs (the model is copied;
    the dtypes it names are read as float64 too), or None where it cannot run so (the check is
    then normwise only, with the reason logged)."""
    model64 = copy.deepcopy(model).double()
    args = [
        x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs
    ]
    try:
        with torch.no_grad(), _InFloat64():
            return model64(*args)
    except Exception as err:  # an op without float64 support, say: eager's check still runs
        log.warning("no float64 run of the model (%s: %s): normwise check only",
                    type(err).__name__, str(err)[:200])  # fmt: skip
        return None


def elementwise(out, eager, ref64) -> dict:
    """Worst ratio of ``|out - ref64|`` to the bound of the module docstring, over outputs."""
    worst, where = 0.0, None
    for i, (o, e, r) in enumerate(zip(flat(out), flat(eager), flat(ref64), strict=True)):
        if o.shape != r.shape:
            return {"ratio": float("inf"), "where": f"output {i}: shape {tuple(o.shape)}"}
        o, e, r = (t.detach().double().cpu() for t in (o, e, r))
        u = UNIT_ROUNDOFF.get(str(flat(out)[i].dtype).removeprefix("torch."), 2.0**-24)
        if not torch.isfinite(o).all():
            return {"ratio": float("inf"), "where": f"output {i}: non-finite values"}
        if r.numel() < TILE:
            continue
        scale = float(r.abs().max())
        bound = EAGER_FACTOR * float((e - r).abs().max()) + ROUNDINGS * u * scale
        bound = max(bound, 1e-30)
        err = (o - r).abs()
        ratio = float(err.max()) / bound
        if ratio > worst:
            index = tuple(int(x) for x in torch.nonzero(err == err.max())[0])
            worst, where = ratio, f"output {i} at {index}"
    return {"ratio": worst, "where": where}


def check(out, ref, inputs, ref64=None, tf32: bool = False) -> dict:
    """Whether ``out`` matches eager ``ref``: the same dtypes, normwise within the
    :func:`tolerance` of the inputs and ``ref`` (at least TF32's where ``tf32``: fp32 matmuls or
    convolutions allowed to run as TF32) and, given the fp64 run ``ref64``, elementwise (the
    module docstring's bound, which follows eager's own error)."""
    error, bound = rel_error(out, ref), tolerance((inputs, ref))
    if tf32:
        bound = max(bound, TOLERANCE["tf32"])
    result = {"rel_error": error, "tolerance": bound, "passed": bool(error <= bound)}
    got, want = [str(x.dtype) for x in flat(out)], [str(x.dtype) for x in flat(ref)]
    if got != want:  # e.g. a float64 model computed (and returned) in float32
        result["dtypes"], result["passed"] = f"{got} where eager returns {want}", False
    if ref64 is not None:
        element = elementwise(out, ref, ref64)
        result["elementwise_ratio"], result["elementwise_worst"] = (
            element["ratio"],
            element["where"],
        )
        result["passed"] = result["passed"] and element["ratio"] <= 1.0
    return result


def check_summary(result: dict) -> str:
    """One line for a failed :func:`check`: what differed and by how much."""
    if "dtypes" in result:
        return f"output dtypes {result['dtypes']}"
    line = f"relative error {result['rel_error']:.3g} (tolerance {result['tolerance']:.3g})"
    if "elementwise_ratio" in result:
        line += f", elementwise {result['elementwise_ratio']:.3g}x the bound"
        line += f" at {result['elementwise_worst']}" if result.get("elementwise_worst") else ""
    return line

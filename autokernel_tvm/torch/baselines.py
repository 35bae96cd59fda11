# SPDX-License-Identifier: Apache-2.0
"""The PyTorch expression of each op: the baseline a kernel is benchmarked against.

Each baseline computes in the inputs' dtype, as a PyTorch user would write it (on a GPU,
``torch.matmul`` is cuBLAS and ``conv2d`` is cuDNN), and returns its output in the kernel's
layout. conv2d runs on channels-last views: NHWC data is an NCHW tensor in channels_last memory,
and the KRSC weight permuted to KCRS is channels_last as well, so no copy is timed. The fp8
scaled GEMM is ``torch._scaled_mm`` (cuBLASLt on a GPU), with ``use_fast_accum`` where the
workload's precision is ``fast_accum``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..workloads.dtypes import TORCH_DTYPES

_ACTS = {"": lambda x: x, "relu": torch.relu, "gelu": F.gelu}


def baseline_name(entry: dict) -> str:
    """What the baseline of ``entry``'s op is called in result rows."""
    if entry["op"] != "gemm_scaled_nt":
        return "torch"
    return "torch._scaled_mm" + ("(fast_accum)" if entry.get("precision") == "fast_accum" else "")


def make_baseline(entry: dict, inputs: Sequence[torch.Tensor]) -> Callable[[], torch.Tensor]:
    """A no-argument callable computing the kernel's op on ``inputs`` with PyTorch.

    Parameters
    ----------
    entry : dict
        The kernel's manifest entry (or ``Workload.to_json()``): ``op`` and ``shape`` are used.
    inputs : sequence of torch.Tensor
        The kernel's inputs, in its argument order and layout.

    Returns
    -------
    callable
        ``fn()`` returns the output in the kernel's output layout (possibly a view). An fp32
        workload is compared at its own precision: TF32 where it is "tf32", fp32 accuracy
        otherwise, whatever torch's flags say (``torch.backends.cudnn.allow_tf32`` is on by
        default, so an fp32 conv2d would otherwise run cuDNN in TF32); a flag that differs is
        set for the call and restored after it.
    """
    fn = _expression(entry, inputs)
    if entry.get("dtype") != "float32":
        return fn
    tf32 = entry.get("precision") == "tf32"
    if torch.backends.cuda.matmul.allow_tf32 == torch.backends.cudnn.allow_tf32 == tf32:
        return fn

    def at_precision():
        with tf32_flags(tf32, tf32):
            return fn()

    return at_precision


@contextlib.contextmanager
def tf32_flags(matmul: bool, conv: bool):
    """torch's TF32 flags (``torch.backends.cuda.matmul`` and ``torch.backends.cudnn``) set
    for the block and restored after it: eager PyTorch at a compiled model's precision."""
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn)
    before = [f.allow_tf32 for f in flags]
    try:
        for f, value in zip(flags, (matmul, conv)):
            f.allow_tf32 = value
        yield
    finally:
        for f, value in zip(flags, before):
            f.allow_tf32 = value


def _expression(entry: dict, inputs: Sequence[torch.Tensor]) -> Callable[[], torch.Tensor]:
    op = entry["op"]
    if op == "gemm":
        a, b = inputs
        return lambda: torch.matmul(a, b)
    if op == "gemm_nt":
        a, b = inputs
        bt = b.T
        return lambda: a @ bt
    if op == "gemm_tn":
        a, b = inputs
        at = a.T
        return lambda: torch.matmul(at, b)
    if op == "batch_gemm_tn":
        a, b = inputs
        at = a.transpose(1, 2)
        return lambda: torch.bmm(at, b)
    if op == "batch_gemm":
        a, b = inputs
        return lambda: torch.bmm(a, b)
    if op == "batch_gemm_nt":
        a, b = inputs
        bt = b.transpose(1, 2)
        return lambda: torch.bmm(a, bt)
    if op.startswith("gemm_bias"):
        a, w, bias = inputs
        act = _ACTS[op[len("gemm_bias_") :] if op != "gemm_bias" else ""]
        return lambda: act(F.linear(a, w, bias))
    if op == "gemm_gated_nt":  # the unrewritten gated MLP: two projections, SiLU, product
        a, b = inputs
        gate, up = b[0].T, b[1].T
        return lambda: F.silu(a @ gate) * (a @ up)
    if op == "gemm_scaled_nt":  # cuBLASLt's fp8 GEMM on a GPU
        a, b, scale_a, scale_b = inputs
        out_dtype = TORCH_DTYPES[entry.get("out_dtype") or "float32"]
        if b.is_cuda and a.dtype == b.dtype == torch.float8_e5m2:
            # cuBLASLt has no e5m2 x e5m2 GEMM: B as e4m3 (converted once, here), the same rate
            b = b.to(torch.float8_e4m3fn)
        bt = b.T
        # the accumulation the workload asks for: cuBLASLt's promotion of partial sums into
        # fp32 registers, or (fast_accum) the tensor core's own running sum over all of K
        fast = entry.get("precision") == "fast_accum"
        return lambda: torch._scaled_mm(
            a, bt, scale_a=scale_a, scale_b=scale_b, out_dtype=out_dtype, use_fast_accum=fast
        )
    if op == "conv2d_nhwc":
        data, weight = inputs
        stride, pad = entry["shape"][7], entry["shape"][8]
        x = data.permute(0, 3, 1, 2)  # NCHW view, channels_last memory
        w = weight.permute(0, 3, 1, 2)  # KRSC -> KCRS view, channels_last memory
        return lambda: F.conv2d(x, w, stride=stride, padding=pad).permute(0, 2, 3, 1)
    raise KeyError(f"no torch baseline for op {op!r}")


def max_rel_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """``max|got - want| / max|want|`` in float64 (a normwise relative error).

    Elementwise relative error is meaningless where ``want`` is near zero (GEMM outputs cross
    zero), so the error is scaled by the largest output magnitude instead.
    """
    got64, want64 = got.detach().double().cpu(), want.detach().double().cpu()
    scale = want64.abs().max().item()
    err = (got64 - want64).abs().max().item()
    return err / scale if scale > 0 else err

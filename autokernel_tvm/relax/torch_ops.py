# SPDX-License-Identifier: Apache-2.0
"""PyTorch's own implementation of a workload (op + epilogue), to time dispatched kernels
against the torch op they replace, in the same run.

:func:`torch_op` returns a zero-argument callable on fresh inputs: ``A @ B`` / ``A @ B.T`` /
``torch.bmm`` / ``F.conv2d`` on channels-last tensors, followed by the epilogue expression as
eager torch ops in the output dtype (what the unfused model runs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..workloads import Workload
from ..workloads.dtypes import TORCH_DTYPES as DTYPES
from ..workloads.epilogue import Epilogue, Expr

TORCH_FUNCTIONS = {
    "add": lambda a, v: a[0] + a[1],
    "sub": lambda a, v: a[0] - a[1],
    "mul": lambda a, v: a[0] * a[1],
    "div": lambda a, v: a[0] / a[1],
    "maximum": lambda a, v: torch.maximum(a[0], a[1]),
    "minimum": lambda a, v: torch.minimum(a[0], a[1]),
    "neg": lambda a, v: -a[0],
    "relu": lambda a, v: torch.relu(a[0]),
    "leaky_relu": lambda a, v: F.leaky_relu(a[0], v),
    "gelu": lambda a, v: F.gelu(a[0]),
    "gelu_tanh": lambda a, v: F.gelu(a[0], approximate="tanh"),
    "sigmoid": lambda a, v: torch.sigmoid(a[0]),
    "silu": lambda a, v: F.silu(a[0]),
    "tanh": lambda a, v: torch.tanh(a[0]),
    "exp": lambda a, v: torch.exp(a[0]),
}


def torch_epilogue(epilogue: Epilogue, acc: torch.Tensor, operands: list) -> torch.Tensor:
    """``epilogue`` as eager torch ops on ``acc`` (the output layout) and its operands."""
    full = [x.reshape(-1, 1) if kind == "m" else x for x, kind in zip(operands, epilogue.operands)]

    def walk(node: Expr):
        if node.op == "acc":
            return acc
        if node.op == "const":
            return node.value
        if node.op == "operand":
            return full[int(node.value)]
        return TORCH_FUNCTIONS[node.op]([walk(a) for a in node.args], node.value)

    return walk(epilogue.expr)


def torch_op(workload: Workload, device: str):
    """A callable running ``workload`` with PyTorch on fresh random inputs on ``device``: the
    op's baseline (:func:`autokernel_tvm.torch.baselines.make_baseline`), then the epilogue."""
    from ..torch.baselines import make_baseline

    dtype = DTYPES[workload.dtype]
    args = [torch.randn(a.shape, device=device).to(dtype) for a in workload.inputs]
    base, operands = workload.split_inputs(args)
    op = make_baseline(workload.to_json(), base)
    out_dtype = DTYPES[workload.out_dtype]

    def run():
        out = op()
        if workload.epilogue is not None:
            out = torch_epilogue(workload.epilogue, out, operands)
        return out.to(out_dtype)

    return run

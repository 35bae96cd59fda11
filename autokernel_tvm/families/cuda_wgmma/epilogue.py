# SPDX-License-Identifier: Apache-2.0
"""The epilogue of a ``cuda.wgmma`` GEMM on one f32 accumulator: shared by the kernel's own
write-back and by the split-K reduction (:mod:`.splitk`), which applies it after the sum."""

from __future__ import annotations

import tvm

from ...intrin.cuda_math import NAMES, FastMath, fast_function
from ...workloads.epilogue import Epilogue


def column_bias(epilogue) -> tuple | None:
    """What ``bias_at="start"`` starts the accumulators from: ``(-1, None)`` for a
    ``bias[_relu|_gelu]`` epilogue's bias, ``(i, rest)`` for an expression's column operand ``i``
    (:meth:`Epilogue.column_add`); None where the epilogue adds no such vector."""
    if isinstance(epilogue, Epilogue):
        return epilogue.column_add()
    return (-1, None) if epilogue.startswith("bias") else None


def approximable(epilogue, gated: bool = False) -> bool:
    """Whether the write-back applies a function :class:`~...intrin.cuda_math.FastMath` lowers
    (``epilogue_math="fast"``): the gated GEMM's SiLU, a ``bias_gelu`` epilogue's GELU, an
    expression's GELU, SiLU, sigmoid or tanh."""
    if gated:
        return True
    if isinstance(epilogue, Epilogue):
        return bool(epilogue.calls() & NAMES)
    return epilogue.endswith("_gelu")


def finish(
    x,
    index: tuple,
    *,
    epilogue,
    out_dtype: str,
    bias=None,
    operands=(),
    started=False,
    fast=False,
):
    """``epilogue`` applied to the f32 value ``x`` of C[index], cast to ``out_dtype``, as one
    expression (no scalar temporaries: a temporary inside a 2-wide vectorized store would be
    shared by both lanes). ``epilogue``: "" / ``bias[_relu|_gelu]`` (``bias``: the ``[N]``
    buffer) or an :class:`Epilogue` expression whose operand buffers are ``operands``.
    ``started``: ``x`` already holds the :func:`column_bias` vector (the accumulators started
    from it), which is then not added again. ``fast``: GELU, SiLU, sigmoid and tanh through
    CUDA's approximate exponential and division (:mod:`~...intrin.cuda_math`)."""
    if isinstance(epilogue, Epilogue):

        def load(i):
            return tvm.tirx.Cast("float32", operands[i][epilogue.operand_index(i, index)])

        rest = epilogue.column_add()[1] if started else None
        if not fast:
            return tvm.tirx.Cast(out_dtype, epilogue.lower(x, load, rest))
        math = FastMath()
        return tvm.tirx.Cast(out_dtype, math.wrap(epilogue.lower(x, load, rest, math.lowerings)))
    if epilogue and not started:
        x = x + tvm.tirx.Cast("float32", bias[index[-1]])
    act = epilogue.partition("_")[2]
    if act == "relu":
        x = tvm.tirx.max(x, tvm.tirx.const(0, "float32"))
    if act == "gelu" and fast:
        x = fast_function("gelu", x)
    elif act == "gelu":
        x = 0.5 * x * (1.0 + tvm.tirx.erf(x * 0.5**0.5))
    return tvm.tirx.Cast(out_dtype, x)


def operand_buffers(expression, c_shape: tuple, dtype: str) -> list:
    """One buffer per operand of an epilogue ``expression`` (none for a string epilogue)."""
    if not isinstance(expression, Epilogue):
        return []
    return [
        tvm.tirx.decl_buffer(expression.operand_shape(i, c_shape), dtype, name=f"x{i}")
        for i in range(len(expression.operands))
    ]


def with_buffers(func: tvm.tirx.PrimFunc, buffers: list, at: int) -> tvm.tirx.PrimFunc:
    """``func`` with ``buffers`` (read by its body: an epilogue's operands) inserted as
    parameters before its parameter ``at``."""
    params = [*func.params[:at], *buffers, *func.params[at:]]  # 0.27: buffers are parameters
    return tvm.tirx.PrimFunc(params, func.body, func.ret_type, func.attrs)

# SPDX-License-Identifier: Apache-2.0
"""Long sums in two levels, for accuracy: ``sum``/``mean`` over ``R`` elements as sums of
``R / B`` blocks of ``B`` (``B`` near sqrt(R)), then the sum of the block sums.

TVM lowers a reduction to one running sum per output element; in fp32 its error grows with the
count (a mean of 128 x 4096 squares: 1.6e-4 from eager PyTorch's pairwise sum, past fp32's
1e-4 bound, so a KernelBench MSE loss ran eagerly). Summed in blocks, each addition meets a
partial sum about ``sqrt(R)`` terms long: the error of the blocked sum is that of two sums of
~sqrt(R) terms. Read :func:`blocked_reductions`.
"""

from __future__ import annotations

import math

import tvm
from tvm import relax

from .dispatch import _dtype, _shape

#: reduced counts below this stay one sum: a row of a LayerNorm or a softmax over a vocab of
#: 32000 sums accurately enough in fp32, and a second kernel costs a launch
MIN_COUNT = 1 << 16
MIN_BLOCK = 32  # no divisor this large near sqrt(R) (R prime, or nearly): left as one sum
OPS = ("relax.sum", "relax.mean")
FLOATS = ("float16", "bfloat16", "float32")


def block_size(count: int) -> int | None:
    """The divisor of ``count`` closest below its square root, if at least MIN_BLOCK."""
    for b in range(math.isqrt(count), MIN_BLOCK - 1, -1):
        if count % b == 0:
            return b
    return None


def blocked_reductions() -> tvm.transform.Pass:
    """Relax pass: each ``sum``/``mean`` of a float tensor (static shape) over a suffix of its
    axes (all of them, or the last ones) that reduces at least MIN_COUNT elements becomes a
    reshape to ``[..., R / B, B]``, a sum over ``B``, a sum over ``R / B`` (divided by ``R``
    for a mean) and a reshape to the reduction's own shape (``keepdims`` included)."""
    from tvm.relax.expr_functor import PyExprMutator, mutator

    @mutator
    class _Blocked(PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            blocked = _rewrite(call, self.builder_)
            return call if blocked is None else blocked

    @tvm.transform.module_pass(opt_level=0, name="AutokernelBlockedReductions")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        out = tvm.IRModule(mod.functions, attrs=mod.attrs)
        for gv, func in mod.functions.items():
            if isinstance(func, relax.Function):
                out[gv] = _Blocked().visit_expr(func)
        return out

    return _pass


def _rewrite(call, builder):
    """The blocked form of ``call``, or None where it stays as it is."""
    if not isinstance(call.op, tvm.ir.Op) or call.op.name not in OPS:
        return None
    x = call.args[0]
    shape = _shape(x)  # static shapes of tensors only
    if shape is None:
        return None
    dtype, ndim = _dtype(x), len(shape)
    if dtype not in FLOATS:
        return None
    axes = call.attrs.axis
    axes = list(range(ndim)) if axes is None else sorted(int(a) % ndim for a in axes)
    if not axes or axes != list(range(ndim - len(axes), ndim)):  # a suffix of the axes only
        return None
    kept = shape[: ndim - len(axes)]
    count = math.prod(shape[ndim - len(axes) :])
    block = block_size(count) if count >= MIN_COUNT else None
    if block is None:
        return None
    blocks = builder.emit(relax.op.reshape(x, [*kept, count // block, block]))
    partial = builder.emit(relax.op.sum(blocks, axis=[-1]))
    total = relax.op.sum(partial, axis=[-1])
    if call.op.name == "relax.mean":
        total = relax.op.divide(builder.emit(total), relax.const(float(count), dtype))
    if call.attrs.keepdims:
        total = relax.op.reshape(builder.emit(total), [*kept, *([1] * len(axes))])
    return total

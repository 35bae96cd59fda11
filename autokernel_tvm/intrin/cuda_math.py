# SPDX-License-Identifier: Apache-2.0
"""The epilogue's transcendental functions through CUDA's approximate exponential and division.

What the write-back of a bias + GELU GEMM costs is instructions: CUDA's ``erff`` and the
compiled GELU around it are 34 PTX instructions an element and a branch, ``expf`` and an IEEE
division in SiLU 23; a 128 x 256 tile's 32768 GELUs then take ~5 us of one SM's issue slots,
about a seventh of the tile's mainloop at 2048 x 16384 x 4096, and the cooperative consumers
cannot hide them (H100 2026-12-06: that GEMM 445 us with the bias + GELU, ~400 without).

Here ``exp(y)`` is ``exp2f(y log2 e)`` (``ex2.approx``: 2 ulp; the ``log2 e`` folded into each
function's own constant) and ``a / b`` is ``__fdividef`` (``rcp.approx`` then a product: 2 ulp
for ``2^-126 <= |b| <= 2^126``; 0 beyond, where the quotients below are under every 16-bit
format's smallest subnormal). GELU's erf is Abramowitz and Stegun's 7.1.26 (absolute error <=
1.5e-7; one exponential, one reciprocal, five coefficients), written as the normal CDF:
``Phi(x) = 1 - h`` for ``x >= 0``, ``h`` for ``x < 0``, where ``h = erfc(|x| / sqrt 2) / 2``,
so the left tail is not ``1 + erf``'s cancellation. Each function stays within ~1e-6 of the
result's scale (``max(1, |x|)``) -- the rounding of an fp16 result is 5e-4 of it, of bf16
4e-3 -- measured on llvm with an exact division in ``tests/intrin/test_cuda_math.py``. PTX
instructions an element (sm_90a, nvcc 13), CUDA's functions -> these: GELU 34 (and a branch)
-> 22, SiLU 23 -> 6, sigmoid 22 -> 7, tanh 26 -> 10, tanh-GELU 33 -> 6 as ``x / (1 + e^-2z)``
(17 as ``0.5 x (1 + tanh z)`` with the tanh above).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from tvm import tirx

#: Abramowitz & Stegun 7.1.26: erf(z) = 1 - t (a1 + t (a2 + ...)) exp(-z^2), t = 1 / (1 + p z)
AS_P = 0.3275911
AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
LOG2E = 1.4426950408889634


def _c(value: float):
    return tirx.const(value, "float32")


def cuda_divide(a, b):
    """``__fdividef(a, b)``: ``a`` times ``b``'s approximate reciprocal."""
    return tirx.call_pure_extern("float32", "__fdividef", a, b)


def _exp(y, scale: float):
    """``exp(y * scale)`` as ``exp2`` (CUDA's ``exp2f``: one ``ex2.approx``)."""
    return tirx.exp2(y * _c(scale * LOG2E))


def _bodies(divide: Callable) -> dict[str, Callable]:
    """name -> ``(x) -> TIR`` for each function, reading ``x`` as often as it needs."""

    def sigmoid(x):
        return divide(_c(1.0), _c(1.0) + _exp(x, -1.0))

    def silu(x):
        return divide(x, _c(1.0) + _exp(x, -1.0))

    def tanh(x):
        # 1 - 2 / (e^2x + 1): e^2x = inf gives 1, 0 gives -1 (absolute error ~1e-7 near 0)
        return _c(1.0) - divide(_c(2.0), _exp(x, 2.0) + _c(1.0))

    def normal_cdf(x):
        t = divide(_c(1.0), _c(AS_P * 0.5**0.5) * tirx.abs(x) + _c(1.0))  # z = |x| / sqrt 2
        poly = _c(0.5 * AS_A[-1])  # halved: h = erfc / 2 directly
        for a in reversed(AS_A[:-1]):
            poly = poly * t + _c(0.5 * a)
        h = poly * t * _exp(x * x, -0.5)
        # 1 - h or h, with h written once (a select between two copies would keep both)
        right = x >= _c(0.0)
        return tirx.Select(right, _c(1.0), _c(0.0)) + tirx.Select(right, _c(-1.0), _c(1.0)) * h

    def gelu(x):
        return x * normal_cdf(x)

    def gelu_tanh(x):
        # 0.5 x (1 + tanh z) = x sigmoid(2z) = x / (1 + e^-2z), z = k (x + 0.044715 x^3):
        # e^-2z = exp2(x (c0 + c1 x^2)), so x^2, one FMA, a product, ex2, an add and the
        # quotient (rcp, product); x -> -inf gives x / inf = -0, +inf gives x
        k = -2.0 * 0.7978845608028654 * LOG2E
        power = x * (_c(k) + _c(k * 0.044715) * (x * x))
        return divide(x, _c(1.0) + tirx.exp2(power))

    return {"gelu": gelu, "gelu_tanh": gelu_tanh, "sigmoid": sigmoid, "silu": silu, "tanh": tanh}


#: the epilogue functions :class:`FastMath` lowers
NAMES = frozenset(_bodies(cuda_divide))


class FastMath:
    """The fast lowerings of one expression. ``lowerings[name](x)`` is the function of a new
    variable bound to ``x``; :meth:`wrap` puts those bindings around the finished expression as
    one chain of ``Let``s, in the order they were made (an argument may read an earlier
    function's result).

    Bound once, because the write-back's ``x`` reads an fp16 bias through an inline-asm
    conversion nvcc does not merge: each copy of ``x`` recomputed all that follows it (6 MUFU
    ops an element instead of 2 in the bias + GELU GEMM's PTX). Bound in a chain, not side by
    side, because TVM 0.27's vectorizer rejects two ``Let``s side by side under one product
    ("Let cannot bind the same var to two different values").

    ``divide``: CUDA's approximate division; the tests pass an exact one to check the algebra
    on llvm, where ``exp2`` is exact too.
    """

    def __init__(self, divide: Callable = cuda_divide):
        self._bodies = _bodies(divide)
        self._lets: list[tuple] = []
        self.lowerings = {name: functools.partial(self._lower, name) for name in self._bodies}

    def _lower(self, name: str, x):
        if isinstance(x, (tirx.Var, tirx.FloatImm)):
            return self._bodies[name](x)
        var = tirx.Var(f"{name}_x", "float32")
        self._lets.append((var, x))
        return self._bodies[name](var)

    def wrap(self, expr):
        """``expr`` inside this expression's bindings."""
        for var, value in reversed(self._lets):
            expr = tirx.Let(var, value, expr)
        return expr


def fast_function(name: str, x, divide: Callable = cuda_divide):
    """The function ``name`` of ``x`` alone, its argument bound (:class:`FastMath`)."""
    math = FastMath(divide)
    return math.wrap(math.lowerings[name](x))

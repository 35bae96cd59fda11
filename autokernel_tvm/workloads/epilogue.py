# SPDX-License-Identifier: Apache-2.0
"""Epilogue expressions: the elementwise chain a model applies to a GEMM/conv accumulator.

An :class:`Epilogue` is a frozen value -- an expression tree over ``acc`` (the fp32 accumulator
of one output element), constants, and operand tensors broadcast against the output -- plus the
broadcast of each operand. It is part of a :class:`~autokernel_tvm.workloads.Workload`, so a
``Linear -> x * 2.0 -> LeakyReLU`` chain is tuned, verified and exported as one kernel, and it
has three readings that must agree:

* :meth:`Epilogue.lower`: a TIR expression (the TE compute of the workload, and the register
  write-back of whole kernels such as ``cuda.wgmma``'s ``finish``), evaluated in fp32;
* :meth:`Epilogue.evaluate`: the fp64 numpy reference;
* :meth:`Epilogue.magnitude`: the elementwise error scale the correctness gate multiplies by
  ``(2K + 8) u_acc`` (derivative bounds of each function, plus one rounding per op).

Example: ``leaky_relu(acc * 2.0 - 0.5, 0.1)`` with no operands::

    Epilogue(F("leaky_relu", F("sub", F("mul", ACC, const(2.0)), const(0.5)), value=0.1))
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import erfc, expit

from .errors import WorkloadError

#: Where an operand's elements come from: ``n`` a vector over the last output dim (a bias per
#: output channel), ``m`` a vector over the second-last dim, ``full`` the output's shape.
BROADCASTS = ("n", "m", "full")
#: |f'(x)| bounds: an accumulator error is scaled by at most this through each function.
LIPSCHITZ = {"gelu": 1.13, "gelu_tanh": 1.13, "silu": 1.1, "sigmoid": 0.25, "tanh": 1.0}


@dataclass(frozen=True)
class Expr:
    """One node: ``op`` is ``acc``, ``const`` (``value``), ``operand`` (index ``value``) or a
    function of :data:`FUNCTIONS` applied to ``args`` (``leaky_relu`` reads its slope from
    ``value``)."""

    op: str
    args: tuple = ()
    value: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "value", float(self.value))
        if self.op in ("acc", "const", "operand"):
            arity = 0
        elif self.op in FUNCTIONS:
            arity = FUNCTIONS[self.op][0]
        else:
            known = sorted(FUNCTIONS) + ["acc", "const", "operand"]
            raise WorkloadError(f"epilogue op {self.op!r} is unknown; known: {known}")
        if len(self.args) != arity or not all(isinstance(a, Expr) for a in self.args):
            raise WorkloadError(f"epilogue op {self.op!r} takes {arity} Expr arguments")
        if self.op == "operand" and (self.value < 0 or self.value != int(self.value)):
            raise WorkloadError(f"operand index must be a natural number, got {self.value}")

    def __str__(self) -> str:
        if self.op == "acc":
            return "acc"
        if self.op == "const":
            return repr(self.value)
        if self.op == "operand":
            return f"x{int(self.value)}"
        if self.op in INFIX:
            return f"({self.args[0]} {INFIX[self.op]} {self.args[1]})"
        extra = f", {self.value!r}" if self.op == "leaky_relu" else ""
        return f"{self.op}({', '.join(map(str, self.args))}{extra})"

    def to_json(self):
        if self.op == "acc":
            return "acc"
        if self.op in ("const", "operand"):
            return {self.op: self.value if self.op == "const" else int(self.value)}
        node = {"op": self.op, "args": [a.to_json() for a in self.args]}
        return {**node, "value": self.value} if self.op == "leaky_relu" else node

    @classmethod
    def from_json(cls, data) -> Expr:
        if data == "acc":
            return ACC
        if isinstance(data, dict) and "const" in data:
            return cls("const", value=data["const"])
        if isinstance(data, dict) and "operand" in data:
            return cls("operand", value=data["operand"])
        if not isinstance(data, dict) or "op" not in data:
            raise WorkloadError(f"not an epilogue expression: {data!r}")
        args = tuple(cls.from_json(a) for a in data.get("args", ()))
        return cls(data["op"], args, data.get("value", 0.0))

    def nodes(self):
        yield self
        for a in self.args:
            yield from a.nodes()


ACC = Expr("acc")


def const(value: float) -> Expr:
    return Expr("const", value=value)


def operand(index: int) -> Expr:
    return Expr("operand", value=index)


def F(op: str, *args: Expr, value: float = 0.0) -> Expr:  # noqa: N802  (reads like a call)
    """The function ``op`` of :data:`FUNCTIONS` applied to ``args``."""
    return Expr(op, args, value)


INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def _tir():
    from tvm import tirx

    return tirx


def _f32(v: float):
    return _tir().const(v, "float32")


def _sigmoid_tir(x):
    return _f32(1.0) / (_f32(1.0) + _tir().exp(-x))


def _gelu_tanh_tir(x):
    inner = _f32(0.7978845608028654) * (x + _f32(0.044715) * x * x * x)
    return _f32(0.5) * x * (_f32(1.0) + _tir().tanh(inner))


def gelu_np(x):
    """GELU in fp64 as ``x erfc(-x / sqrt 2) / 2``: its left tail (``x Phi(x)``, -1e-18 at
    -9) stays, where ``1 + erf`` cancels to an exact 0 from -8.3 that the gate would hold a
    kernel to, though a kernel that keeps the tail is the more accurate one."""
    return 0.5 * x * erfc(-x / np.sqrt(2.0))


def _gelu_tanh_np(x):
    """The tanh GELU in fp64 as ``x sigmoid(2z)`` (= ``0.5 x (1 + tanh z)``): its left tail
    (-1e-28 at -9) stays, where ``1 + tanh`` is an exact 0 from -7.6."""
    return x * expit(2.0 * 0.7978845608028654 * (x + 0.044715 * x**3))


#: name -> (arity, TIR lowering (args, value), fp64 numpy (args, value))
FUNCTIONS: dict[str, tuple[int, Callable, Callable]] = {
    "add": (2, lambda a, v: a[0] + a[1], lambda a, v: a[0] + a[1]),
    "sub": (2, lambda a, v: a[0] - a[1], lambda a, v: a[0] - a[1]),
    "mul": (2, lambda a, v: a[0] * a[1], lambda a, v: a[0] * a[1]),
    "div": (2, lambda a, v: a[0] / a[1], lambda a, v: a[0] / a[1]),
    "maximum": (2, lambda a, v: _tir().max(a[0], a[1]), lambda a, v: np.maximum(a[0], a[1])),
    "minimum": (2, lambda a, v: _tir().min(a[0], a[1]), lambda a, v: np.minimum(a[0], a[1])),
    "neg": (1, lambda a, v: -a[0], lambda a, v: -a[0]),
    "relu": (1, lambda a, v: _tir().max(a[0], _f32(0.0)), lambda a, v: np.maximum(a[0], 0.0)),
    "leaky_relu": (
        1,
        lambda a, v: _tir().Select(a[0] > _f32(0.0), a[0], a[0] * _f32(v)),
        lambda a, v: np.where(a[0] > 0, a[0], a[0] * v),
    ),
    "gelu": (
        1,
        lambda a, v: _f32(0.5) * a[0] * (_f32(1.0) + _tir().erf(a[0] * _f32(0.5**0.5))),
        lambda a, v: gelu_np(a[0]),
    ),
    "gelu_tanh": (1, lambda a, v: _gelu_tanh_tir(a[0]), lambda a, v: _gelu_tanh_np(a[0])),
    "sigmoid": (1, lambda a, v: _sigmoid_tir(a[0]), lambda a, v: 1.0 / (1.0 + np.exp(-a[0]))),
    "silu": (
        1,
        lambda a, v: a[0] * _sigmoid_tir(a[0]),
        lambda a, v: a[0] / (1.0 + np.exp(-a[0])),
    ),
    "tanh": (1, lambda a, v: _tir().tanh(a[0]), lambda a, v: np.tanh(a[0])),
    "exp": (1, lambda a, v: _tir().exp(a[0]), lambda a, v: np.exp(a[0])),
}


def _replace(node: Expr, old: Expr, new: Expr) -> Expr:
    """``node`` with every subtree equal to ``old`` replaced by ``new``."""
    if node == old:
        return new
    return Expr(node.op, tuple(_replace(a, old, new) for a in node.args), node.value)


@dataclass(frozen=True)
class Epilogue:
    """An expression over ``acc`` and the operands, whose broadcasts are ``operands[i]``."""

    expr: Expr
    operands: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "operands", tuple(self.operands))
        bad = [b for b in self.operands if b not in BROADCASTS]
        if bad:
            raise WorkloadError(f"operand broadcasts {bad}: each must be one of {BROADCASTS}")
        used = {int(n.value) for n in self.expr.nodes() if n.op == "operand"}
        if used != set(range(len(self.operands))):
            raise WorkloadError(
                f"epilogue {self.expr} uses operands {sorted(used)}, "
                f"but {len(self.operands)} are declared: use each of 0..n-1"
            )

    def __str__(self) -> str:
        ops = ", ".join(f"x{i}[{b}]" for i, b in enumerate(self.operands))
        return f"{self.expr}" + (f" with {ops}" if ops else "")

    @property
    def key(self) -> str:
        """Short stable hash, for workload names and file names."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def to_json(self) -> dict:
        return {"expr": self.expr.to_json(), "operands": list(self.operands)}

    @classmethod
    def from_json(cls, data: dict) -> Epilogue:
        return cls(Expr.from_json(data["expr"]), tuple(data.get("operands", ())))

    def divisors(self) -> frozenset[int]:
        """Operands read under the right side of a ``div`` (a BatchNorm's sqrt(var + eps)): the
        gate draws them away from zero, as the model's own values are."""
        found = set()
        for node in self.expr.nodes():
            if node.op == "div":
                found.update(int(n.value) for n in node.args[1].nodes() if n.op == "operand")
        return frozenset(found)

    def operand_shape(self, index: int, out_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of operand ``index`` for an output of ``out_shape``."""
        kind = self.operands[index]
        if kind == "n":
            return (out_shape[-1],)
        if kind == "m":
            return (out_shape[-2],)
        return tuple(out_shape)

    def operand_index(self, index: int, out_index: tuple) -> tuple:
        """The element of operand ``index`` that output element ``out_index`` reads."""
        kind = self.operands[index]
        if kind == "n":
            return (out_index[-1],)
        if kind == "m":
            return (out_index[-2],)
        return tuple(out_index)

    def calls(self) -> frozenset[str]:
        """The functions the expression applies (``add``, ``gelu``, ...)."""
        return frozenset(n.op for n in self.expr.nodes() if n.op in FUNCTIONS)

    def column_add(self) -> tuple[int, Expr] | None:
        """``(i, rest)`` where the expression adds operand ``i``, a vector over the output's
        last dim (a bias), to the accumulator itself -- ``acc + x_i`` or ``x_i + acc``, the only
        place ``acc`` is read -- and ``rest`` is the expression with that sum read as ``acc``: a
        kernel may start its accumulators from ``x_i`` instead of adding it at the store.
        None where there is no such sum."""
        if sum(node.op == "acc" for node in self.expr.nodes()) != 1:
            return None
        for node in self.expr.nodes():
            if node.op != "add" or ACC not in node.args:
                continue
            other = node.args[1] if node.args[0] == ACC else node.args[0]
            if other.op == "operand" and self.operands[int(other.value)] == "n":
                return int(other.value), _replace(self.expr, node, ACC)
        return None

    def lower(
        self,
        acc,
        load: Callable[[int], object],
        expr: Expr | None = None,
        functions: dict[str, Callable] | None = None,
    ):
        """The TIR expression (fp32) given the accumulator and ``load(i)``, operand ``i``'s
        element as fp32; of ``expr`` (a rewriting of this expression, such as
        :meth:`column_add`'s) in place of the whole expression, if given; one-argument
        functions lowered by ``functions[name](x)`` where it names them (a target's fast
        lowerings, :mod:`autokernel_tvm.intrin.cuda_math`)."""
        functions = functions or {}

        def walk(node: Expr):
            if node.op == "acc":
                return acc
            if node.op == "const":
                return _f32(node.value)
            if node.op == "operand":
                return load(int(node.value))
            if node.op in functions:
                return functions[node.op](*(walk(a) for a in node.args))
            return FUNCTIONS[node.op][1]([walk(a) for a in node.args], node.value)

        return walk(self.expr if expr is None else expr)

    def evaluate(
        self, acc: np.ndarray, operands: list[np.ndarray], expr: Expr | None = None
    ) -> np.ndarray:
        """fp64 reference: ``acc`` has the output's shape; operands broadcast by kind; of
        ``expr`` (a rewriting, as in :meth:`lower`) in place of the whole expression, if given."""
        full = [
            self._broadcast(i, np.asarray(x, np.float64), acc.shape) for i, x in enumerate(operands)
        ]

        def walk(node: Expr):
            if node.op == "acc":
                return acc
            if node.op == "const":
                return np.float64(node.value)
            if node.op == "operand":
                return full[int(node.value)]
            return FUNCTIONS[node.op][2]([walk(a) for a in node.args], node.value)

        with np.errstate(over="ignore"):
            value = walk(self.expr if expr is None else expr)
            return np.broadcast_to(value, acc.shape).astype(np.float64)

    def magnitude(self, acc: np.ndarray, acc_mag: np.ndarray, operands: list) -> np.ndarray:
        """Elementwise error scale of the result, given the accumulator's value and its error
        scale ``acc_mag``: derivative bounds carry the accumulator error through each function,
        and each op adds one rounding of its result (``|value|``)."""
        full = [
            self._broadcast(i, np.asarray(x, np.float64), acc.shape) for i, x in enumerate(operands)
        ]

        def walk(node: Expr):  # -> (value, error scale)
            if node.op == "acc":
                return acc, acc_mag
            if node.op == "const":
                return np.float64(node.value), 0.0
            if node.op == "operand":
                x = full[int(node.value)]
                return x, np.abs(x)
            vals, mags = zip(*(walk(a) for a in node.args))
            out = FUNCTIONS[node.op][2](list(vals), node.value)
            if node.op in ("add", "sub", "maximum", "minimum"):
                mag = mags[0] + mags[1]
            elif node.op == "mul":
                mag = np.abs(vals[1]) * mags[0] + np.abs(vals[0]) * mags[1]
            elif node.op == "div":
                b = np.maximum(np.abs(vals[1]), 1e-300)
                mag = mags[0] / b + np.abs(vals[0]) * mags[1] / b**2
            elif node.op == "leaky_relu":
                mag = mags[0] * max(1.0, abs(node.value))
            elif node.op == "exp":
                mag = np.abs(out) * mags[0]
            else:
                mag = mags[0] * LIPSCHITZ.get(node.op, 1.0)
            # tanh/sigmoid/erf lowerings are accurate in absolute terms (llvm's tanh is off by
            # 0.5% relative at 3e-6): one rounding at their range, 1, times what scales them.
            if node.op in ("tanh", "sigmoid"):
                mag = mag + 1.0
            elif node.op in ("silu", "gelu", "gelu_tanh"):
                mag = mag + np.abs(vals[0])
            return out, mag + np.abs(out)

        with np.errstate(over="ignore"):
            return np.broadcast_to(walk(self.expr)[1], acc.shape).astype(np.float64)

    def _broadcast(self, index: int, x: np.ndarray, shape: tuple) -> np.ndarray:
        kind = self.operands[index]
        if kind == "m":
            return x.reshape((x.shape[0], 1))
        return x  # "n" broadcasts along the last axis by numpy's rules; "full" is the shape


__all__ = ["ACC", "BROADCASTS", "FUNCTIONS", "Epilogue", "Expr", "F", "const", "operand"]

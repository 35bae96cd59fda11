# SPDX-License-Identifier: Apache-2.0
"""Workload values and the op registry.

A :class:`Workload` is a frozen value (op name, shape, dtypes). Its op definition, registered by
name with :func:`register_op`, knows how to build the TensorIR function, count FLOPs and compute
the fp64 reference. Inputs of fp16/bf16 ops accumulate in fp32.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .dtypes import DTYPES, FP8_DTYPES, INPUT_DTYPES
from .errors import WorkloadError

if TYPE_CHECKING:
    from .epilogue import Epilogue

#: Accumulator dtype of each input dtype (every product is accumulated in fp32).
ACCUMULATE = {dtype: "float32" for dtype in INPUT_DTYPES}
#: ``Workload.precision``: "" computes in the input dtype; "tf32" lets fp32 inputs be multiplied
#: as TF32 (10 mantissa bits, torch's ``allow_tf32``), which the gate's bound then allows for;
#: "fast_accum" lets fp8 products be summed over all of K in the tensor core's own short
#: accumulator (``torch._scaled_mm``'s ``use_fast_accum``), likewise
PRECISIONS = ("", "tf32", "fast_accum")
#: the input dtypes each non-default precision applies to
PRECISION_DTYPES = {"tf32": ("float32",), "fast_accum": FP8_DTYPES}


@dataclass(frozen=True)
class ArgSpec:
    """One tensor argument of a kernel: name, static shape, dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class OpDef:
    """How an op is defined: dims, layouts, TE compute, FLOPs, fp64 reference.

    ``compute(shape, dtype, out_dtype)`` returns ``(te_inputs, te_output)``;
    ``reference(shape, arrays)`` computes in float64; ``magnitude(shape, arrays)`` returns the
    elementwise scale of the rounding error (the same computation on absolute values) and
    ``reduction(shape)`` the reduction length, used by :mod:`autokernel_tvm.verify`.
    ``dtypes``: the input dtypes the op takes; ``scalars``: names of its fp32 per-tensor scale
    inputs (shape ``(1,)``, whatever the input dtype: ``torch._scaled_mm``'s ``scale_a``).
    ``carry(shape, arrays, scale)``, for an op that combines several accumulators (the gated
    GEMM), returns the elementwise error of its result given that each accumulator's error is
    ``scale * sqrt(sum_k (a_ik b_kj)^2)``; None: the op is one accumulator. ``degree``: how many
    accumulators its result multiplies (input scales for ``large`` values take its root).
    """

    name: str
    dims: tuple[str, ...]
    layout: str
    arg_shapes: Callable[[tuple[int, ...]], list[tuple[str, tuple[int, ...]]]]
    out_shape: Callable[[tuple[int, ...]], tuple[int, ...]]
    compute: Callable
    reference: Callable
    magnitude: Callable
    flops: Callable[[tuple[int, ...]], int]
    reduction: Callable[[tuple[int, ...]], int]
    doc: str = ""
    carry: Callable | None = None
    degree: int = 1
    dtypes: tuple[str, ...] = DTYPES
    scalars: tuple[str, ...] = ()


OPS: dict[str, OpDef] = {}


def register_op(op: OpDef) -> OpDef:
    """Register an op by name; a duplicate name is an error."""
    if op.name in OPS:
        raise WorkloadError(f"op {op.name!r} is already registered")
    OPS[op.name] = op
    return op


def get_op(name: str) -> OpDef:
    if name not in OPS:
        raise WorkloadError(f"unknown op {name!r}; known ops: {sorted(OPS)}")
    return OPS[name]


@dataclass(frozen=True)
class Workload:
    """One kernel to tune: ``op`` at a static ``shape`` with input ``dtype``.

    ``out_dtype`` defaults to the accumulation dtype (fp32 for fp16/bf16 inputs). ``epilogue``
    (an :class:`~autokernel_tvm.workloads.epilogue.Epilogue`, or its JSON) is applied to the
    fp32 accumulator before the cast to ``out_dtype``; its operands follow the op's inputs.
    ``precision`` "tf32" (fp32 inputs only) allows the multiplications at TF32 precision: the
    user's opt-in (torch's ``allow_tf32``), part of the name, held to a wider bound by the gate;
    "fast_accum" (fp8 inputs only) allows the tensor core's short running sum over all of K
    (torch's ``use_fast_accum``), likewise.
    """

    op: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    out_dtype: str = ""
    epilogue: Epilogue | None = None
    precision: str = ""

    def __post_init__(self) -> None:
        opdef = get_op(self.op)
        if isinstance(self.epilogue, dict):
            from .epilogue import Epilogue

            object.__setattr__(self, "epilogue", Epilogue.from_json(self.epilogue))
        if self.epilogue is not None and self.op.startswith("gemm_bias"):
            raise WorkloadError(
                f"op {self.op!r} has its own epilogue: use gemm_nt with the bias as an operand"
            )
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if len(self.shape) != len(opdef.dims):
            raise WorkloadError(
                f"op {self.op!r} takes shape {','.join(opdef.dims)} "
                f"({len(opdef.dims)} numbers), got {self.shape}"
            )
        for dim, size in zip(opdef.dims, self.shape):
            if size < 0 or (size == 0 and dim != "pad"):
                raise WorkloadError(f"{dim} must be positive, got {size} in {self.shape}")
        out = tuple(opdef.out_shape(self.shape))
        if any(d < 1 for d in out):  # e.g. a conv filter larger than the padded image
            raise WorkloadError(
                f"op {self.op!r} shape {','.join(map(str, self.shape))} gives an output of "
                f"shape {out}: every dim must be >= 1"
            )
        if self.dtype not in INPUT_DTYPES:
            raise WorkloadError(f"dtype must be one of {INPUT_DTYPES}, got {self.dtype!r}")
        if self.dtype not in opdef.dtypes:
            takes = [name for name, op in OPS.items() if self.dtype in op.dtypes]
            raise WorkloadError(
                f"op {self.op!r} takes inputs {opdef.dtypes}, not {self.dtype}"
                + (f" ({self.dtype} inputs: op {', '.join(takes)})" if takes else "")
            )
        if self.epilogue is not None and opdef.scalars:
            raise WorkloadError(
                f"op {self.op!r} scales its result: no epilogue expression after it"
            )
        if not self.out_dtype:
            object.__setattr__(self, "out_dtype", ACCUMULATE[self.dtype])
        if self.out_dtype not in DTYPES:
            raise WorkloadError(f"out_dtype must be one of {DTYPES}, got {self.out_dtype!r}")
        if self.precision not in PRECISIONS:
            raise WorkloadError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        takes = PRECISION_DTYPES.get(self.precision, INPUT_DTYPES)
        if self.dtype not in takes:
            raise WorkloadError(
                f"precision {self.precision} applies to {' or '.join(takes)} inputs, "
                f"not {self.dtype}"
            )

    @property
    def opdef(self) -> OpDef:
        return get_op(self.op)

    @property
    def name(self) -> str:
        dims = "_".join(f"{d}{s}" for d, s in zip(self.opdef.dims, self.shape))
        out = "" if self.out_dtype == ACCUMULATE[self.dtype] else f"_to_{self.out_dtype}"
        epilogue = f"_ep{self.epilogue.key}" if self.epilogue is not None else ""
        precision = f"_{self.precision}" if self.precision else ""
        return f"{self.op}_{dims}_{self.dtype}{precision}{out}{epilogue}"

    @property
    def acc_dtype(self) -> str:
        return ACCUMULATE[self.dtype]

    @property
    def flops(self) -> int:
        return int(self.opdef.flops(self.shape))

    @property
    def inputs(self) -> list[ArgSpec]:
        scalars = self.opdef.scalars
        args = [
            ArgSpec(n, s, "float32" if n in scalars else self.dtype)
            for n, s in self.opdef.arg_shapes(self.shape)
        ]
        if self.epilogue is not None:
            out = tuple(self.opdef.out_shape(self.shape))
            for i in range(len(self.epilogue.operands)):
                args.append(ArgSpec(f"x{i}", self.epilogue.operand_shape(i, out), self.dtype))
        return args

    @property
    def output(self) -> ArgSpec:
        return ArgSpec("out", tuple(self.opdef.out_shape(self.shape)), self.out_dtype)

    def prim_func(self):
        """The TensorIR function ``main(*inputs, out)``."""
        from tvm import te

        if self.epilogue is None:
            ins, out = self.opdef.compute(self.shape, self.dtype, self.out_dtype)
        else:
            ins, out = self._epilogue_compute()
        func = te.create_prim_func([*ins, out])
        return func.with_attr("global_symbol", "main")

    def _epilogue_compute(self):
        """The op in fp32, then one ``epilogue`` block: expression, then cast to out_dtype."""
        from tvm import te

        ins, acc = self.opdef.compute(self.shape, self.dtype, self.acc_dtype)
        ep, out_shape = self.epilogue, tuple(self.opdef.out_shape(self.shape))
        extra = [
            te.placeholder(ep.operand_shape(i, out_shape), self.dtype, name=f"x{i}")
            for i in range(len(ep.operands))
        ]

        def element(*idx):
            def load(i):
                return extra[i][ep.operand_index(i, idx)].astype(self.acc_dtype)

            return ep.lower(acc[idx], load).astype(self.out_dtype)

        out = te.compute(out_shape, element, name="epilogue")
        return [*ins, *extra], out

    def split_inputs(self, arrays):
        """``(op inputs, epilogue operands)``: the epilogue's operands follow the op's inputs."""
        count = len(self.opdef.arg_shapes(self.shape))
        return list(arrays[:count]), list(arrays[count:])

    def ir_module(self):
        import tvm

        return tvm.IRModule({"main": self.prim_func()})

    def reference(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """fp64 reference output for the given inputs."""
        f64 = [np.asarray(a, dtype=np.float64) for a in arrays]
        if self.epilogue is None:
            return self.opdef.reference(self.shape, f64)
        base, operands = self.split_inputs(f64)
        return self.epilogue.evaluate(self.opdef.reference(self.shape, base), operands)

    def magnitude(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """Elementwise scale of rounding error: the op on absolute values, in fp64 (carried
        through the epilogue by :meth:`Epilogue.magnitude`)."""
        f64 = [np.asarray(a, dtype=np.float64) for a in arrays]
        if self.epilogue is None:
            return self.opdef.magnitude(self.shape, [np.abs(a) for a in f64])
        base, operands = self.split_inputs(f64)
        acc_mag = self.opdef.magnitude(self.shape, [np.abs(a) for a in base])
        acc = self.opdef.reference(self.shape, base)
        return self.epilogue.magnitude(acc, acc_mag, operands)

    def random_inputs(self, rng: np.random.Generator, kind: str = "normal") -> list[np.ndarray]:
        """Inputs drawn fresh from ``rng``; ``kind`` picks the value distribution.

        ``normal``: N(0, 1). ``large``: magnitudes near what the output dtype can hold after the
        reduction. ``tiny``: around 1e-3 (fp16 products stay normal in fp32). ``mixed``: rows
        scaled across six orders of magnitude. ``edge``: zero except the last row/column/k slice,
        to catch wrong indexing at tile boundaries.
        """
        from . import values

        return values.draw(self, rng, kind)

    def to_json(self) -> dict:
        return {
            "op": self.op,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "out_dtype": self.out_dtype,
            "layout": self.opdef.layout,
            "name": self.name,
            "flops": self.flops,
            "inputs": [a.to_json() for a in self.inputs],
            "output": self.output.to_json(),
            **({"epilogue": self.epilogue.to_json()} if self.epilogue is not None else {}),
            **({"precision": self.precision} if self.precision else {}),
        }

    @classmethod
    def from_json(cls, data: dict) -> Workload:
        return cls(
            data["op"],
            tuple(data["shape"]),
            data["dtype"],
            data.get("out_dtype", ""),
            data.get("epilogue"),
            data.get("precision", ""),
        )

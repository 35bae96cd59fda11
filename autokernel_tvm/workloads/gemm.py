# SPDX-License-Identifier: Apache-2.0
"""GEMM workloads in the layouts PyTorch uses, batched, and with fused epilogues.

``gemm``: ``A@B`` (A: MxK, B: KxN). ``gemm_nt``: ``A@B.T`` (B: NxK, as ``nn.Linear`` stores its
weight). ``gemm_tn``: ``A.T@B`` (A: KxM, as ``torch.matmul(a.T, b)`` reads it: a weight gradient's
layout). ``batch_gemm[_nt|_tn]``: the same over a leading batch dim. ``gemm_bias[_relu|_gelu]``:
``act(A@B.T + bias)``, the fused ``nn.Linear`` (+activation). The reduction block is always named
``C``; epilogues follow as separate blocks that schedules inline into its write-back.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf, expit

from .base import OpDef, register_op

#: |d gelu(x)/dx| <= 1.129, so GELU scales an input error by at most this much.
GELU_LIPSCHITZ = 1.13


def _act_te(name: str, x):
    from tvm import tirx

    dtype = "float32"  # epilogues run on the fp32 accumulator
    if name == "relu":
        return tirx.max(x, tirx.const(0, dtype))
    if name == "gelu":
        half = tirx.const(0.5, dtype)
        return half * x * (tirx.const(1, dtype) + tirx.erf(x * tirx.const(0.5**0.5, dtype)))
    return x


def _act_np(name: str, x: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "gelu":
        return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))
    return x


def _matmul_op(
    name: str, *, batch: bool, trans_b: bool, bias: bool, act: str, doc: str, trans_a: bool = False
) -> OpDef:
    dims = ("B", "M", "N", "K") if batch else ("M", "N", "K")

    def split(shape):
        return (shape[0], *shape[1:]) if batch else (None, *shape)

    def arg_shapes(shape):
        b, m, n, k = split(shape)
        lead = (b,) if batch else ()
        a = ("A", (*lead, k, m) if trans_a else (*lead, m, k))
        args = [a, ("B", (*lead, n, k) if trans_b else (*lead, k, n))]
        return args + ([("bias", (n,))] if bias else [])

    def out_shape(shape):
        b, m, n, _ = split(shape)
        return ((b,) if batch else ()) + (m, n)

    def compute(shape, dtype, out_dtype):
        from tvm import te

        acc = "float32"
        ins = [te.placeholder(s, dtype, name=n) for n, s in arg_shapes(shape)]
        a, b_ = ins[0], ins[1]
        k = te.reduce_axis((0, split(shape)[3]), name="k")

        def mul(*idx):
            *lead, i, j = idx
            lhs = a[(*lead, k, i)] if trans_a else a[(*lead, i, k)]
            rhs = b_[(*lead, j, k)] if trans_b else b_[(*lead, k, j)]
            return te.sum(lhs.astype(acc) * rhs.astype(acc), axis=k)

        out = te.compute(out_shape(shape), mul, name="C")
        if bias or act:
            c = out
            out = te.compute(
                out_shape(shape),
                lambda *idx: _act_te(act, c[idx] + ins[2][idx[-1]].astype(acc) if bias else c[idx]),
                name="epilogue",
            )
        if out_dtype != acc:
            acc_out = out
            out = te.compute(out_shape(shape), lambda *i: acc_out[i].astype(out_dtype), name="cast")
        return ins, out

    def matmul(arrays):
        a, b_ = arrays[0], arrays[1]
        a = np.swapaxes(a, -1, -2) if trans_a else a
        return a @ (np.swapaxes(b_, -1, -2) if trans_b else b_)

    def reference(shape, arrays):
        out = matmul(arrays) + (arrays[2] if bias else 0.0)
        return _act_np(act, out)

    def magnitude(shape, arrays):
        out = matmul(arrays) + (arrays[2] if bias else 0.0)
        return out * (GELU_LIPSCHITZ if act == "gelu" else 1.0)

    def flops(shape):
        b, m, n, k = split(shape)
        return 2 * (b or 1) * m * n * k

    layout = ("batch " if batch else "") + ("A.T" if trans_a else "A")
    layout += "@B.T" if trans_b else "@B"
    return register_op(
        OpDef(
            name=name,
            dims=dims,
            layout=layout,
            arg_shapes=arg_shapes,
            out_shape=out_shape,
            compute=compute,
            reference=reference,
            magnitude=magnitude,
            flops=flops,
            reduction=lambda shape: split(shape)[3],
            doc=doc,
        )
    )


_matmul_op("gemm", batch=False, trans_b=False, bias=False, act="", doc="out = A @ B")
_matmul_op("gemm_nt", batch=False, trans_b=True, bias=False, act="", doc="out = A @ B.T")
_matmul_op(
    "gemm_tn", batch=False, trans_b=False, bias=False, act="", doc="out = A.T @ B", trans_a=True
)
_matmul_op("batch_gemm", batch=True, trans_b=False, bias=False, act="", doc="out[b] = A[b] @ B[b]")
_matmul_op(
    "batch_gemm_nt", batch=True, trans_b=True, bias=False, act="", doc="out[b] = A[b] @ B[b].T"
)
_matmul_op(
    "batch_gemm_tn",
    batch=True,
    trans_b=False,
    bias=False,
    act="",
    doc="out[b] = A[b].T @ B[b]",
    trans_a=True,
)
_matmul_op("gemm_bias", batch=False, trans_b=True, bias=True, act="", doc="A @ B.T + bias")
_matmul_op(
    "gemm_bias_relu", batch=False, trans_b=True, bias=True, act="relu", doc="relu(A @ B.T + bias)"
)
_matmul_op(
    "gemm_bias_gelu", batch=False, trans_b=True, bias=True, act="gelu", doc="gelu(A @ B.T + bias)"
)


# -- gated GEMM: silu(A @ Bg.T) * (A @ Bu.T), the LLaMA MLP's gate and up projections at once --
#: max |d silu(x)/dx| (at x ~ 2.4): an error in the gate accumulator grows by at most this much.
SILU_SLOPE = 1.1


def _silu_np(x: np.ndarray) -> np.ndarray:
    return x * expit(x)


def _gated_arg_shapes(shape):
    m, n, k = shape
    return [("A", (m, k)), ("B", (2, n, k))]  # B[0] = Bg, B[1] = Bu: concatenated [2N, K] rows


def _gated_compute(shape, dtype, out_dtype):
    from tvm import te, tirx

    m, n, k = shape
    acc = "float32"
    a, b = (te.placeholder(s, dtype, name=name) for name, s in _gated_arg_shapes(shape))

    # Two reductions, not one over [M, 2, N]: with one, MetaSchedule's tiling fails (an error,
    # not a rejected candidate) in reverse_compute_at of the epilogue, which reads two rows.
    def project(h, name):
        r = te.reduce_axis((0, k), name="k")
        return te.compute(
            (m, n),
            lambda i, j: te.sum(a[i, r].astype(acc) * b[h, j, r].astype(acc), axis=r),
            name=name,
        )

    c, c_up = project(0, "C"), project(1, "C_up")

    def gate(i, j):
        g = c[i, j]
        return g / (tirx.const(1.0, acc) + tirx.exp(-g)) * c_up[i, j]

    out = te.compute((m, n), gate, name="epilogue")
    if out_dtype != acc:
        gated = out
        out = te.compute((m, n), lambda i, j: gated[i, j].astype(out_dtype), name="cast")
    return [a, b], out


def _gated_reference(shape, arrays):
    a, b = arrays
    return _silu_np(a @ b[0].T) * (a @ b[1].T)


def _gated_magnitude(shape, arrays):
    a, b = arrays
    return SILU_SLOPE * (a @ b[0].T) * (a @ b[1].T)


def _gated_carry(shape, arrays, scale):
    """First order in each accumulator's error (plus their product): ``|silu'(g)| e_g |u| +
    |silu(g)| e_u + 1.1 e_g e_u``."""
    a, b = arrays
    g, u = a @ b[0].T, a @ b[1].T
    e_g, e_u = (scale * np.sqrt((a * a) @ (w * w).T) for w in (b[0], b[1]))
    sig = expit(g)
    slope = np.abs(sig * (1.0 + g * (1.0 - sig)))
    return slope * e_g * np.abs(u) + np.abs(g * sig) * e_u + SILU_SLOPE * e_g * e_u


register_op(
    OpDef(
        name="gemm_gated_nt",
        dims=("M", "N", "K"),
        layout="silu(A@Bg.T)*(A@Bu.T)",
        arg_shapes=_gated_arg_shapes,
        out_shape=lambda shape: (shape[0], shape[1]),
        compute=_gated_compute,
        reference=_gated_reference,
        magnitude=_gated_magnitude,
        flops=lambda shape: 4 * shape[0] * shape[1] * shape[2],
        reduction=lambda shape: shape[2],
        doc="silu(A @ B[0].T) * (A @ B[1].T): the gated MLP's two projections as one GEMM",
        carry=_gated_carry,
        degree=2,
    )
)

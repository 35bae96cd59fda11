# SPDX-License-Identifier: Apache-2.0
"""GEMM workloads in the layouts PyTorch uses, batched, with fused epilogues, and scaled fp8.

``gemm``: ``A@B`` (A: MxK, B: KxN). ``gemm_nt``: ``A@B.T`` (B: NxK, as ``nn.Linear`` stores its
weight). ``gemm_tn``: ``A.T@B`` (A: KxM, as ``torch.matmul(a.T, b)`` reads it: a weight gradient's
layout). ``batch_gemm[_nt|_tn]``: the same over a leading batch dim. ``gemm_bias[_relu|_gelu]``:
``act(A@B.T + bias)``, the fused ``nn.Linear`` (+activation). ``gemm_scaled_nt``: ``(A@B.T) *
scale_a * scale_b`` on fp8 inputs with fp32 per-tensor scales (``torch._scaled_mm``). The
reduction block is always named ``C``; epilogues follow as separate blocks that schedules inline
into its write-back.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .base import OpDef, register_op
from .dtypes import FP8_DTYPES
from .epilogue import gelu_np

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
        return gelu_np(x)
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


# -- scaled GEMM: (A @ B.T) * scale_a * scale_b on fp8 inputs, as torch._scaled_mm computes it --
#: fp8 formats: exponent bits, mantissa bits
FP8_FORMATS = {"float8_e4m3fn": (4, 3), "float8_e5m2": (5, 2)}


def fp8_to_f32(x, dtype: str):
    """The fp32 value of the fp8 ``x``, decoded from its bits.

    Not ``x.astype("float32")``: TVM 0.27's LLVM lowering of that cast reads an exponent field of
    0 as a normal number (e4m3fn: 0 -> 2^-7, 2^-9 -> 2^-7 + 2^-9; e5m2 alike) and e5m2's inf/NaN
    as finite, so CPU kernels came out wrong; this decode is exact for all 256 values of both.
    """
    from tvm import tirx

    e_bits, m_bits = FP8_FORMATS[dtype]
    bias, top, f32 = 2 ** (e_bits - 1) - 1, 2**e_bits - 1, "float32"
    u = tirx.reinterpret("uint8", x).astype("int32")
    e, m = (u >> m_bits) & top, u & (2**m_bits - 1)

    def pow2(p):  # 2^p from its fp32 bits: exact for every normal p
        return tirx.reinterpret(f32, (p + 127) << 23)

    subnormal = m.astype(f32) * pow2(tirx.const(1 - bias - m_bits, "int32"))
    normal = (m + 2**m_bits).astype(f32) * pow2(e - bias - m_bits)
    value = tirx.Select(e == 0, subnormal, normal)
    nan, inf = tirx.const(float("nan"), f32), tirx.const(float("inf"), f32)
    if dtype == "float8_e4m3fn":  # no infinities: only S.1111.111 is NaN
        value = tirx.Select((e == top) & (m == 2**m_bits - 1), nan, value)
    else:
        value = tirx.Select(e == top, tirx.Select(m == 0, inf, nan), value)
    return tirx.Select(u >= 128, -value, value)


def _scaled_arg_shapes(shape):
    m, n, k = shape
    return [("A", (m, k)), ("B", (n, k)), ("scale_a", (1,)), ("scale_b", (1,))]


def _scaled_compute(shape, dtype, out_dtype):
    from tvm import te

    m, n, k = shape
    a, b, scale_a, scale_b = (
        te.placeholder(s, "float32" if name.startswith("scale") else dtype, name=name)
        for name, s in _scaled_arg_shapes(shape)
    )
    r = te.reduce_axis((0, k), name="k")
    c = te.compute(
        (m, n),
        lambda i, j: te.sum(fp8_to_f32(a[i, r], dtype) * fp8_to_f32(b[j, r], dtype), axis=r),
        name="C",
    )
    # acc * (scale_a * scale_b): one factor, as cuBLASLt and the wgmma kernel apply it
    out = te.compute(
        (m, n),
        lambda i, j: (c[i, j] * (scale_a[0] * scale_b[0])).astype(out_dtype),
        name="epilogue",
    )
    return [a, b, scale_a, scale_b], out


def _scaled_reference(shape, arrays):
    a, b, scale_a, scale_b = arrays
    return (a @ b.T) * scale_a[0] * scale_b[0]


register_op(
    OpDef(
        name="gemm_scaled_nt",
        dims=("M", "N", "K"),
        layout="(A@B.T)*scale_a*scale_b",
        arg_shapes=_scaled_arg_shapes,
        out_shape=lambda shape: (shape[0], shape[1]),
        compute=_scaled_compute,
        reference=_scaled_reference,
        magnitude=_scaled_reference,  # called on |inputs| (or their squares)
        flops=lambda shape: 2 * shape[0] * shape[1] * shape[2],
        reduction=lambda shape: shape[2],
        doc="(A @ B.T) * scale_a * scale_b on fp8 A, B with fp32 per-tensor scales "
        "(torch._scaled_mm)",
        dtypes=FP8_DTYPES,
        scalars=("scale_a", "scale_b"),
    )
)

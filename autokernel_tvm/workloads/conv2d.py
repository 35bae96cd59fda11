# SPDX-License-Identifier: Apache-2.0
"""conv2d in NHWC with an OHWI (``K,R,S,C``) weight: the channels-last layout tensor cores want.

Shape: ``N,H,W,C,K,R,S,stride,pad``. The padded input is a separate block (``pad``) that
schedules inline; the reduction block is named ``C`` like every other workload.
"""

from __future__ import annotations

import numpy as np

from .base import OpDef, register_op

DIMS = ("N", "H", "W", "C", "K", "R", "S", "stride", "pad")


def _out_hw(shape):
    _, h, w, _, _, r, s, stride, pad = shape
    return (h + 2 * pad - r) // stride + 1, (w + 2 * pad - s) // stride + 1


def _arg_shapes(shape):
    n, h, w, c, k, r, s, _, _ = shape
    return [("data", (n, h, w, c)), ("weight", (k, r, s, c))]


def _out_shape(shape):
    p, q = _out_hw(shape)
    return (shape[0], p, q, shape[4])


def _compute(shape, dtype, out_dtype):
    from tvm import te, tirx

    n, h, w, c, k, r, s, stride, pad = shape
    acc = "float32"
    data = te.placeholder((n, h, w, c), dtype, name="data")
    weight = te.placeholder((k, r, s, c), dtype, name="weight")
    padded = te.compute(
        (n, h + 2 * pad, w + 2 * pad, c),
        lambda b, y, x, ch: tirx.if_then_else(
            tirx.all(y >= pad, y < h + pad, x >= pad, x < w + pad),
            data[b, y - pad, x - pad, ch],
            tirx.const(0, dtype),
        ),
        name="pad",
    )
    rr = te.reduce_axis((0, r), name="r")
    rs = te.reduce_axis((0, s), name="s")
    rc = te.reduce_axis((0, c), name="rc")
    out = te.compute(
        _out_shape(shape),
        lambda b, y, x, o: te.sum(
            padded[b, y * stride + rr, x * stride + rs, rc].astype(acc)
            * weight[o, rr, rs, rc].astype(acc),
            axis=[rr, rs, rc],
        ),
        name="C",
    )
    if out_dtype != acc:
        acc_out = out
        out = te.compute(_out_shape(shape), lambda *i: acc_out[i].astype(out_dtype), name="cast")
    return [data, weight], out


def _reference(shape, arrays):
    data, weight = arrays
    _, _, _, _, _, r, s, stride, pad = shape
    p, q = _out_hw(shape)
    padded = np.pad(data, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.zeros(_out_shape(shape), dtype=np.float64)
    for dy in range(r):
        for dx in range(s):
            window = padded[:, dy : dy + stride * p : stride, dx : dx + stride * q : stride, :]
            # BLAS, not einsum: numpy's einsum loops in C without BLAS, which made the fp64
            # reference of a 30 GFLOP layer take ~30 s (and the correctness gate minutes).
            tap = window.reshape(-1, window.shape[-1]) @ weight[:, dy, dx, :].T
            out += tap.reshape(out.shape)
    return out


def _flops(shape):
    n, _, _, c, k, r, s, _, _ = shape
    p, q = _out_hw(shape)
    return 2 * n * p * q * k * r * s * c


register_op(
    OpDef(
        name="conv2d_nhwc",
        dims=DIMS,
        layout="NHWC x KRSC -> NPQK",
        arg_shapes=_arg_shapes,
        out_shape=_out_shape,
        compute=_compute,
        reference=_reference,
        magnitude=_reference,
        flops=_flops,
        reduction=lambda shape: shape[3] * shape[5] * shape[6],
        doc="out = conv2d(data, weight) in NHWC/OHWI, fp32 accumulate",
    )
)

# SPDX-License-Identifier: Apache-2.0
"""The small TIRx kernels that run beside a ``cuda.wgmma`` GEMM: the row-padding copies of
operands the TMA cannot address, the copy of a C staged in padded rows, the stream flags."""

from __future__ import annotations

import tvm
from tvm.script import tirx as T

from .geometry import padded
from .structure import (
    PAD_THREADS,
    PIPELINE_ATTR,
    TMA_STRIDE,
    _bytes,
    storage,
)


def pad_blocks(rows: int, cols: int, dtype: str = "float16") -> int:
    """Blocks of :func:`pad_rows`'s kernel: one 16-byte chunk of the copy per thread."""
    chunk = TMA_STRIDE // _bytes(storage(dtype))
    return -(-rows * padded(cols, dtype) // chunk // PAD_THREADS)


def pad_rows(in_dtype: str, rows: int, cols: int, symbol: str) -> tvm.tirx.PrimFunc:
    """``Y[rows, padded(cols)] = X`` with zero columns after ``cols``: the copy that makes an
    operand's rows TMA-addressable. Each thread writes one 16-byte chunk (8 halves) of Y."""
    dtype = storage(in_dtype)
    vec = TMA_STRIDE // _bytes(dtype)  # elements of a 16-byte chunk
    cols8 = padded(cols, in_dtype)
    chunks = rows * cols8 // vec
    blocks = pad_blocks(rows, cols, in_dtype)
    zero = tvm.tirx.const(0, dtype)

    # fmt: off
    @T.prim_func
    def pad(x: T.handle, y: T.handle):
        X = T.match_buffer(x, (rows, cols), dtype)
        Y = T.match_buffer(y, (rows, cols8), dtype, align=16)
        T.device_entry()
        bx = T.cta_id([blocks])
        tx = T.thread_id([PAD_THREADS])
        vals = T.alloc_buffer((vec,), dtype, scope="local")
        chunk = bx * PAD_THREADS + tx
        if chunk < chunks:
            r = chunk // (cols8 // vec)
            c0 = chunk % (cols8 // vec) * vec
            for v in T.unroll(vec):
                vals[v] = T.if_then_else(c0 + v < cols, X[r, T.min(c0 + v, cols - 1)], zero)
            for v in T.vectorized(vec):
                Y[r, c0 + v] = vals[v]
    # fmt: on

    return pad.with_attrs({"global_symbol": symbol, PIPELINE_ATTR: "tirx"})


def zero_flags(count: int, symbol: str) -> tvm.tirx.PrimFunc:
    """``F[count] = 0``: the stream schedule's flags, cleared before each launch (its
    workspace is not zeroed memory)."""

    @T.prim_func
    def zero(f: T.handle):
        F = T.match_buffer(f, (count,), "int32")
        T.device_entry()
        T.cta_id([1])
        tx = T.thread_id([count])
        F[tx] = 0

    return zero.with_attrs({"global_symbol": symbol, PIPELINE_ATTR: "tirx"})


#: elements of C each thread of :func:`unpad_rows` moves: its loads are all in flight before
#: its stores (one element a thread, the H200 copied 8205 x 5921 halves in 145 us, 0.7 TB/s:
#: a block's one load round trip each, not the memory's bandwidth)
UNPAD_ELEMS = 8


def unpad_blocks(rows: int, cols: int) -> int:
    """Blocks of :func:`unpad_rows`'s kernel: :data:`UNPAD_ELEMS` elements of C a thread."""
    return -(-rows * cols // (PAD_THREADS * UNPAD_ELEMS))


def unpad_rows(dtype: str, rows: int, cols: int, symbol: str) -> tvm.tirx.PrimFunc:
    """``Y[rows, cols] = X[:, :cols]`` from ``X[rows, padded(cols)]``: a TMA-stored C whose
    rows are not 16-byte multiples, copied into the user's C. Element ``j`` of a thread's
    :data:`UNPAD_ELEMS` is ``PAD_THREADS`` elements after its element ``j - 1``, so
    consecutive threads read and write consecutive elements of a row; all of a thread's
    elements are loaded before any is stored."""
    cols8 = padded(cols, dtype)
    total, blocks = rows * cols, unpad_blocks(rows, cols)

    # fmt: off
    @T.prim_func
    def unpad(x: T.handle, y: T.handle):
        X = T.match_buffer(x, (rows, cols8), dtype, align=16)
        Y = T.match_buffer(y, (rows, cols), dtype)
        T.device_entry()
        bx = T.cta_id([blocks])
        tx = T.thread_id([PAD_THREADS])
        vals = T.alloc_buffer((UNPAD_ELEMS,), dtype, scope="local")
        for j in T.unroll(UNPAD_ELEMS):
            i = (bx * UNPAD_ELEMS + j) * PAD_THREADS + tx
            if i < total:
                vals[j] = X[i // cols, i % cols]
        for j in T.unroll(UNPAD_ELEMS):
            i = (bx * UNPAD_ELEMS + j) * PAD_THREADS + tx
            if i < total:
                Y[i // cols, i % cols] = vals[j]
    # fmt: on

    return unpad.with_attrs({"global_symbol": symbol, PIPELINE_ATTR: "tirx"})

# SPDX-License-Identifier: Apache-2.0
"""3xTF32: an fp32 GEMM at fp32 accuracy on the TF32 tensor cores, as one TF32 GEMM over 3K.

A TF32 tensor core reads 10 of an fp32 operand's 23 mantissa bits. Split each operand into a
high part (rounded to TF32) and the low rest, ``x = hi + lo`` (exact in fp32); then

    A @ B.T ~= hi(A) @ hi(B).T + hi(A) @ lo(B).T + lo(A) @ hi(B).T

drops only ``lo(A) @ lo(B).T`` (~2^-22 relative) and what TF32 cuts off ``lo`` (the same
order): fp32-level error, where one TF32 product keeps ~2^-11. The three products are one GEMM
over concatenated K: ``A3 = [lo(A) | hi(A) | hi(A)]`` and ``B3 = [hi(B) | lo(B) | hi(B)]``,
each segment zero-padded to whole 128-byte lines, ``C = A3 @ B3.T``. The small products come
first: the tensor core rounds (truncates) every addition to the running fp32 sum, so K small
terms added to the large sum cost K roundings of the large sum (1.6x over the gate's fp32 bound
on the H200), where added first they round only their own small sum. The kernel's host code
builds A3 and B3 with :func:`split_operand` (one pass over each operand, written three times)
and runs the plain TF32 kernel on them; A3 and B3 are always K-major, so the A @ B layout (B
stored ``[K, N]``) and A.T @ B's A (stored ``[K, M]``) are transposed by the copy, through a
shared-memory tile. A conv2d splits the channels of each pixel and of each filter tap the same
way (:func:`views`): the three segments are channel blocks, and the conv over ``3 x`` the
(padded) channels is the sum.

With TF32 allowed (one product), an operand stored MN-major (:func:`transposed`) takes the same
copy with one segment, its values rounded to TF32: the kernel reads that K-major copy, the other
operand as stored.
"""

from __future__ import annotations

import tvm
from tvm.script import tirx as T

SEGMENTS = {"a": ("lo", "hi", "hi"), "b": ("hi", "lo", "hi")}  # A3 @ B3.T: the 3 products
LINE = 32  # fp32 values of one 128-byte line: each segment is padded to whole lines
THREADS = 256
TILE = 32  # the transposing copy: 32 x 32 values per block, staged in shared memory
TF32_ROUND = 0x1000  # half a TF32 unit in the last place (13 mantissa bits are dropped)
TF32_MASK = 0xFFFFE000  # sign, exponent and the 10 mantissa bits TF32 keeps


def split_k(k: int, passes: int = 3) -> int:
    """K of the concatenated GEMM: ``passes`` segments of ``k`` padded to whole lines."""
    return passes * -(-k // LINE) * LINE


def segments(name: str, passes: int) -> tuple[str, ...]:
    """The parts of operand ``name`` ("a" or "b") its copy holds, in order (:data:`SEGMENTS`;
    one TF32 product: the value rounded to TF32)."""
    return SEGMENTS[name] if passes == 3 else ("hi",)


def copied(st) -> frozenset:
    """The operands a :class:`~.structure.Structure`'s kernel reads from the K-major copies
    :func:`split_operand` writes: both in 3xTF32, the MN-major ones (:func:`transposed`) in one
    TF32 product, none otherwise."""
    return frozenset("ab") if st.tf32_passes == 3 else transposed(st)


def transposed(st) -> frozenset:
    """The operands of a one-product TF32 :class:`~.structure.Structure` stored MN-major (A as
    ``[K, M]``, B as ``[K, N]``): wgmma reads 32-bit operands K-major only, so the kernel reads
    each from a K-major copy (:func:`split_operand`, one segment). 3xTF32 copies both anyway."""
    if st.in_dtype != "float32" or st.tf32_passes != 1 or st.conv or st.gated:
        return frozenset()
    return frozenset(x for x, mn_major in (("a", st.trans_a), ("b", not st.trans_b)) if mn_major)


def high(x):
    """``x`` rounded to the nearest TF32 value (ties away from zero), as an fp32 value."""
    bits = tvm.tirx.reinterpret("uint32", x) + tvm.tirx.const(TF32_ROUND, "uint32")
    mask = tvm.tirx.const(TF32_MASK, "uint32")
    return tvm.tirx.reinterpret("float32", tvm.tirx.bitwise_and(bits, mask))


def part(x, which: str):
    """The ``hi`` or ``lo`` part of ``x``: ``lo = x - hi`` is exact in fp32."""
    return high(x) if which == "hi" else x - high(x)


def views(m: int, n: int, k: int, trans_b: bool, conv: tuple = (), trans_a: bool = False) -> dict:
    """``{"a" | "b": (rows, cols, kmajor)}``: each operand as stored, per matrix, and whether
    its rows run along K (what :func:`split_operand` and :func:`split_blocks` take; A as
    ``[K, M]``, ``trans_a``, is transposed by its copy like B as ``[K, N]``). A conv2d
    ``(N, H, W, C, R, S, ...)`` splits each pixel's (each filter tap's) C channels: the
    implicit GEMM over ``R * S`` taps of ``split_k(C)`` channels sums the same three products."""
    if conv:
        img, h, w, c, r, s = conv[:6]
        return {"a": (img * h * w, c, True), "b": (n * r * s, c, True)}
    a = (k, m, False) if trans_a else (m, k, True)
    return {"a": a, "b": (n, k, True) if trans_b else (k, n, False)}


def conv_step(ks, seg: int, taps: int, select=None):
    """The K step, in the split conv's stored R x S x split_k(C) order, of the mainloop's
    ``ks``-th step: every tap's two small-product segments first (tap by tap), then every
    tap's hi x hi segment, so the small products are summed before the large sum exists (the
    split GEMM's K order; a tap-by-tap order measured 1.5x the gate's fp32 bound on the H200).
    ``seg``: K steps per segment; ``select(cond, a, b)`` for a TIR ``ks`` (a Python if for ints).
    """
    small = taps * 2 * seg
    early = ks // (2 * seg) * (3 * seg) + ks % (2 * seg)
    late = (ks - small) // seg * (3 * seg) + 2 * seg + (ks - small) % seg
    if select is None:
        return early if ks < small else late
    return select(ks < small, early, late)


def split_conv(conv: tuple) -> tuple:
    """The conv2d the TF32 kernel computes over the split copies: C is ``split_k(C)``."""
    return (*conv[:3], split_k(conv[3]), *conv[4:])


def split_blocks(rows: int, cols: int, kmajor: bool, batch: int = 0) -> int:
    """Blocks of :func:`split_operand`'s kernel (``rows x cols`` per matrix, as stored)."""
    kp = split_k(cols if kmajor else rows, 1)
    if kmajor:  # a 4-value chunk of one row per thread, the rows of every matrix
        return -(-max(batch, 1) * rows * kp // 4 // THREADS)
    return max(batch, 1) * (kp // TILE) * -(-cols // TILE)


def split_operand(
    name: str, rows: int, cols: int, *, kmajor: bool, batch: int, symbol: str, passes: int = 3
) -> tvm.tirx.PrimFunc:
    """``Y[R, split_k(K, passes)]`` from the fp32 operand ``X`` (``name``: "a" or "b", which
    sets the segment order, :func:`segments`). ``kmajor``: X is ``[..., R, K]`` (rows of K; ``rows x
    cols`` = ``R x K``), copied a 16-byte chunk per thread; else X is ``[..., K, R]`` (B of
    A @ B, A of A.T @ B; ``rows x cols`` = ``K x R``), transposed through 32 x 32
    shared-memory tiles. The values past K are zeros in every segment. Matrices are read
    through their 2-D row-major view (batched: ``[batch * rows, cols]``)."""
    nb = max(batch, 1)
    order = segments(name, passes)
    three = passes == 3
    zero = tvm.tirx.const(0, "float32")
    blocks = split_blocks(rows, cols, kmajor, batch)
    if kmajor:
        k, r_all = cols, nb * rows
        kp = split_k(k, 1)
        chunks = r_all * kp // 4

        # fmt: off
        @T.prim_func
        def split(x: T.handle, y: T.handle):
            X = T.match_buffer(x, (r_all, k), "float32")
            Y = T.match_buffer(y, (r_all, passes * kp), "float32", align=16)
            T.device_entry()
            bx = T.cta_id([blocks])
            tx = T.thread_id([THREADS])
            vals = T.alloc_buffer((4,), "float32", scope="local")
            chunk = bx * THREADS + tx
            if chunk < chunks:
                r = chunk // (kp // 4)
                c0 = chunk % (kp // 4) * 4
                for v in T.unroll(4):
                    vals[v] = T.if_then_else(c0 + v < k, X[r, T.min(c0 + v, k - 1)], zero)
                for v in T.vectorized(4):
                    Y[r, c0 + v] = part(vals[v], order[0])
                if three:
                    for v in T.vectorized(4):
                        Y[r, kp + c0 + v] = part(vals[v], order[1])
                    for v in T.vectorized(4):
                        Y[r, 2 * kp + c0 + v] = part(vals[v], order[2])
        # fmt: on
    else:
        k, n = rows, cols
        kp = split_k(k, 1)
        tiles_k, tiles_n = kp // TILE, -(-n // TILE)
        per = TILE * TILE // THREADS  # values per thread

        # fmt: off
        @T.prim_func
        def split(x: T.handle, y: T.handle):
            X = T.match_buffer(x, (nb * k, n), "float32")
            Y = T.match_buffer(y, (nb * n, passes * kp), "float32", align=16)
            T.device_entry()
            bx = T.cta_id([blocks])
            tx = T.thread_id([THREADS])
            tile = T.alloc_buffer((TILE, TILE + 1), "float32", scope="shared")
            bi = bx // (tiles_k * tiles_n)
            k0 = bx % (tiles_k * tiles_n) // tiles_n * TILE
            n0 = bx % tiles_n * TILE
            for i in T.unroll(per):  # read rows of K: a warp reads 32 consecutive columns
                e = i * THREADS + tx
                kk = k0 + e // TILE
                nn = n0 + e % TILE
                tile[e // TILE, e % TILE] = T.if_then_else(
                    kk < k and nn < n, X[bi * k + T.min(kk, k - 1), T.min(nn, n - 1)], zero)
            T.cuda.cta_sync()
            for i in T.unroll(per):  # write rows of N: a warp writes 32 consecutive K values
                e = i * THREADS + tx
                nn = n0 + e // TILE
                if nn < n:
                    v = tile[e % TILE, e // TILE]
                    Y[bi * n + nn, k0 + e % TILE] = part(v, order[0])
                    if three:
                        Y[bi * n + nn, kp + k0 + e % TILE] = part(v, order[1])
                        Y[bi * n + nn, 2 * kp + k0 + e % TILE] = part(v, order[2])
        # fmt: on

    return split.with_attr("global_symbol", symbol)

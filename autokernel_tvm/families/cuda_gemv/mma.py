# SPDX-License-Identifier: Apache-2.0
"""The ``cuda.gemv`` kernel with ``math="mma"``: the same read of B, multiplied on the tensor
cores with ``mma.sync.m16n8k16`` (B's rows as the instruction's M side, A's rows as its N side:
the operands swapped, so 16 rows of B fill an instruction where M = 1 would leave 63 of 64
wgmma rows empty).

On the CUDA cores (:mod:`.kernel`) every element of B is converted and multiplied once per row
of A, which bounds the kernel by instructions from about 8 rows of A (H100, 2026-12-06: 0.57x
cuBLAS at 16 x 4096 x 4096). Here a warp owns ``16 x rows`` rows of B; each lane loads 16
contiguous bytes of B row ``g`` and ``g + 8`` (``g = lane / 4``) and of A row ``g`` of each
8-row tile of A, at the same K offset ``8 x (lane % 4)`` of a 32-element K step. The K order
inside a step is permuted alike for both operands, so these loads are already the fragments of
two ``m16n8k16`` products: logical k ``2t, 2t + 1`` (``t = lane % 4``) of the first is element
``0, 1`` of the lane's chunk and ``2t + 8, 2t + 9`` are ``2, 3``; the second takes ``4..7``.
The block's warps split K (step ``s`` to warp ``s % warps``); their fp32 sums meet in shared
memory, and each output is finished (the epilogue) by one thread, 16 consecutive columns of C a
row of A. With ``stages`` the chunks go through shared memory first (``cp.async``, each lane
its own 16 bytes, so no barrier), ``stages - 1`` trips ahead of the products.
"""

from __future__ import annotations

import tvm
from tvm.script import tirx as T

from ..cuda_wgmma.epilogue import finish, operand_buffers
from .kernel import CHUNK_BYTES, WARP, gemv_main

QUAD = 4  # lanes sharing a row: a K step is their 4 chunks (32 halves)
MMA_ROWS = 16  # rows of B an mma takes (its M)
TILE_M = 8  # rows of A an mma takes (its N)
PTX_TYPE = {"float16": "fp16", "bfloat16": "bf16"}


def mma_tiles(m: int) -> int:
    """8-row tiles of A (mma N) a kernel of ``m`` rows multiplies."""
    return -(-m // TILE_M)


def gemv_mma_module(
    m: int, n: int, k: int, *, in_dtype: str, out_dtype: str, epilogue, warps: int, rows: int,
    unroll: int, gated: bool = False, stages: int = 0,
) -> tvm.IRModule:  # fmt: skip
    """The kernel's module (``main``: ``A, B, [bias | epilogue operands], C``), as
    :func:`.kernel.gemv_module` but ``rows`` counts 16-row groups of B a block owns and its
    ``warps`` split their K. ``stages``: 0, a trip's chunks are loaded into registers; else
    they are copied (``cp.async``) into a ring of that many trips in shared memory, each warp
    its own, ``stages - 1`` trips ahead of the one multiplied: the copies in flight hold no
    registers, so ptxas cannot issue them in turns."""
    vec = CHUNK_BYTES // 2  # elements of a chunk; K is a multiple (legal)
    chunks = k // vec
    steps = -(-chunks // QUAD)  # 32-element K steps
    iters = -(-steps // (warps * unroll))  # a warp's loop trips
    full = chunks // (QUAD * warps * unroll)  # trips that end inside K
    tiles = mma_tiles(m)
    halves = 2 if gated else 1  # rows of B an output reads: gate and up
    sets = halves * rows  # 16-row groups of B a warp loads: group s is half s // rows
    block_rows = MMA_ROWS * rows  # outputs of a block (rows of B[0])
    blocks = -(-n // block_rows)
    threads = warps * WARP
    finals = rows * tiles * MMA_ROWS * TILE_M  # sums a block finishes (some past M or N)
    rounds = -(-finals // threads)
    ptx = PTX_TYPE[in_dtype]
    ring_rows = sets * MMA_ROWS + tiles * TILE_M  # a step's rows in the ring: B's, then A's
    operands = operand_buffers(epilogue, (m, n), in_dtype)  # an expression's; [] for a name
    zero = tvm.tirx.const(0, in_dtype)
    one = tvm.tirx.const(1.0, "float32")

    def b_at(B, s, row, col):
        return B[s // rows, row, col] if gated else B[row, col]

    def total(red, s, ti, r, col):
        out = red[0, s, ti, r, col]
        for wi in range(1, warps):
            out = out + red[wi, s, ti, r, col]
        return out

    def value(red, grp, ti, r, col):
        if not gated:
            return total(red, grp, ti, r, col)
        gate, up = total(red, grp, ti, r, col), total(red, rows + grp, ti, r, col)
        return gate / (one + tvm.tirx.exp(-gate)) * up

    # fmt: off
    @T.macro
    def load(A, B, bv, av, w, t, g, r0, it, guarded):
        # Every load of the trip issued before the first mma, unconditionally unless the trip
        # ends past K (``guarded``): loads in branches were issued in turns (ptxas kept 44
        # registers for 64 of chunks). Rows of A past M read its last row: their columns of
        # the product are never stored.
        for u in T.unroll(unroll):
            ch = ((it * unroll + u) * warps + w) * QUAD + t
            for s in T.unroll(sets):
                for h in T.unroll(2):
                    if guarded and ch >= chunks:
                        for v in T.vectorized(vec):
                            bv[((u * sets + s) * 2 + h) * vec + v] = zero
                    else:
                        for v in T.vectorized(vec):
                            bv[((u * sets + s) * 2 + h) * vec + v] = b_at(
                                B, s, T.min(r0 + s % rows * MMA_ROWS + h * 8 + g, n - 1),
                                ch * vec + v)
            for ti in T.unroll(tiles):
                if guarded and ch >= chunks:
                    for v in T.vectorized(vec):
                        av[(u * tiles + ti) * vec + v] = zero
                else:
                    for v in T.vectorized(vec):
                        av[(u * tiles + ti) * vec + v] = A[
                            T.min(ti * TILE_M + g, m - 1), ch * vec + v]

    @T.macro
    def copy(A, B, ring, w, t, g, r0, it, slot, guarded):
        # the trip's chunks into the warp's ring slot, each lane its own (it reads them back
        # itself: no barrier); chunks past K are zeros stored directly
        for u in T.unroll(unroll):
            ch = ((it * unroll + u) * warps + w) * QUAD + t
            for s in T.unroll(sets):
                for h in T.unroll(2):
                    if guarded and ch >= chunks:
                        for v in T.vectorized(vec):
                            ring[w, slot, u, s * MMA_ROWS + h * 8 + g, t * vec + v] = zero
                    else:
                        T.ptx.cp.async_.cg.shared.global_(
                            T.address_of(ring[w, slot, u, s * MMA_ROWS + h * 8 + g, t * vec]),
                            T.address_of(b_at(
                                B, s, T.min(r0 + s % rows * MMA_ROWS + h * 8 + g, n - 1),
                                ch * vec)), CHUNK_BYTES)
            for ti in T.unroll(tiles):
                if guarded and ch >= chunks:
                    for v in T.vectorized(vec):
                        ring[w, slot, u, sets * MMA_ROWS + ti * TILE_M + g, t * vec + v] = zero
                else:
                    T.ptx.cp.async_.cg.shared.global_(
                        T.address_of(ring[w, slot, u, sets * MMA_ROWS + ti * TILE_M + g, t * vec]),
                        T.address_of(A[T.min(ti * TILE_M + g, m - 1), ch * vec]), CHUNK_BYTES)

    @T.macro
    def copy_trip(A, B, ring, w, t, g, r0, it):
        if it < full:
            copy(A, B, ring, w, t, g, r0, it, it % stages, False)
        else:
            if it < iters:
                copy(A, B, ring, w, t, g, r0, it, it % stages, True)
        T.ptx.cp.async_.commit_group()  # one group a trip, empty past the last

    @T.macro
    def unring(ring, bv, av, w, t, g, slot):
        for u in T.unroll(unroll):
            for s in T.unroll(sets):
                for h in T.unroll(2):
                    for v in T.vectorized(vec):
                        bv[((u * sets + s) * 2 + h) * vec + v] = ring[
                            w, slot, u, s * MMA_ROWS + h * 8 + g, t * vec + v]
            for ti in T.unroll(tiles):
                for v in T.vectorized(vec):
                    av[(u * tiles + ti) * vec + v] = ring[
                        w, slot, u, sets * MMA_ROWS + ti * TILE_M + g, t * vec + v]

    @T.macro
    def multiply(bv, av, frag, acc):
        for u in T.unroll(unroll):
            for s in T.unroll(sets):
                for p in T.unroll(2):  # elements 0..3, then 4..7 of each chunk
                    # a0: row g, k 2t..2t+1; a1: row g + 8; a2, a3: k 2t+8..2t+9
                    for q in T.unroll(2):
                        for h in T.unroll(2):
                            for e in T.unroll(2):
                                frag[q * 4 + h * 2 + e] = bv[
                                    ((u * sets + s) * 2 + h) * vec + p * 4 + q * 2 + e]
                    for ti in T.unroll(tiles):
                        T.ptx_legacy.mma(
                            "m16n8k16", "row", "col", ptx, ptx, "fp32",
                            frag.data, 0, av.data, (u * tiles + ti) * vec + p * 4,
                            acc.data, (s * tiles + ti) * 4, False, dtype="float32")

    @T.macro
    def body(A, B, C, bias):
        T.device_entry()
        bx = T.cta_id([blocks])
        tx = T.thread_id([threads])
        red = T.alloc_buffer((warps, sets, tiles, MMA_ROWS, TILE_M), "float32", scope="shared")
        acc = T.alloc_buffer((sets * tiles * 4,), "float32", scope="local")
        bv = T.alloc_buffer((unroll * sets * 2 * vec,), in_dtype, scope="local")
        av = T.alloc_buffer((unroll * tiles * vec,), in_dtype, scope="local")
        frag = T.alloc_buffer((vec,), in_dtype, scope="local")  # an mma's B-row fragment
        w = tx // WARP
        lane = tx % WARP
        g = lane // QUAD
        r0 = bx * block_rows
        for i in T.unroll(sets * tiles * 4):
            acc[i] = T.float32(0)
        if stages == 0:
            for it in T.serial(full):
                load(A, B, bv, av, w, lane % QUAD, g, r0, it, False)
                multiply(bv, av, frag, acc)
            if iters > full:  # the trip that ends past K: its chunks there are zeros
                load(A, B, bv, av, w, lane % QUAD, g, r0, full, True)
                multiply(bv, av, frag, acc)
        else:
            ring = T.alloc_buffer((max(warps, 1), max(stages, 1), unroll, ring_rows, QUAD * vec),
                                  in_dtype, scope="shared.dyn", align=128)
            for it in T.unroll(stages - 1):
                copy_trip(A, B, ring, w, lane % QUAD, g, r0, it)
            for it in T.serial(iters):
                copy_trip(A, B, ring, w, lane % QUAD, g, r0, it + stages - 1)
                T.ptx.cp.async_.wait_group(stages - 1)  # trip `it`'s group has landed
                unring(ring, bv, av, w, lane % QUAD, g, it % max(stages, 1))
                multiply(bv, av, frag, acc)
        # c0, c1: row g, columns 2t, 2t + 1 of the tile; c2, c3: row g + 8
        for s in T.unroll(sets):
            for ti in T.unroll(tiles):
                for c in T.unroll(4):
                    red[w, s, ti, g + c // 2 * 8, lane % QUAD * 2 + c % 2] = acc[
                        (s * tiles + ti) * 4 + c]
        T.cuda.cta_sync()
        for j in T.unroll(rounds):
            i = j * threads + tx
            r = i % MMA_ROWS  # consecutive threads: consecutive columns of C
            col = i // MMA_ROWS % TILE_M
            ti = i // (MMA_ROWS * TILE_M) % tiles
            grp = i // (MMA_ROWS * TILE_M * tiles)
            mi = ti * TILE_M + col
            ni = r0 + grp * MMA_ROWS + r
            if i < finals and mi < m and ni < n:
                C[mi, ni] = finish(
                    value(red, grp, ti, r, col), (mi, ni), epilogue=epilogue,
                    out_dtype=out_dtype, bias=bias, operands=operands)

    # fmt: on
    return gemv_main(body, m, n, k, in_dtype, out_dtype, gated, epilogue, operands)

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

Rows of K elements that are not 16-byte multiples (an odd hidden size) start ``d = R K mod 8``
elements past a 16-byte boundary, ``d`` the same for every row ``R`` of a class ``R mod P``
(``P = 8 / gcd(K, 8)``, :func:`row_classes`). A block takes rows of one class, so its lanes
still load B in aligned 16-byte chunks, chunk ``j`` of row ``R`` from element ``R K - d + 8 j``
(its first ``d`` elements are the row before's), and multiply them with a copy of A shifted
right by ``d`` (``A_d[m, j] = A[m, j - d]``, zeros around; one small kernel writes the ``P``
copies before the GEMV, :func:`shift_rows`; or, ``a_shift="load"`` at an even K, each lane
reads A in place at ``- d`` in 4- or 8-byte parts). Elements of B outside the row are set to
zero in the first trip and the trips that reach K's end (an infinite weight of the next row
must not meet a zero of A; A's too where read in place). Padding B instead (the tensor-core
kernels' way) reads and writes the whole weight every call: H100 2026-12-07, 1 x 11275 x 4233
fp16, the copy 62 us, the GEMM 41.

With ``splits`` the trips of a row are split over that many blocks as well (where the rows
of B give fewer blocks than the GPU has SMs: a narrow weight with a long K); each block stores
its f32 sums into a workspace, and the host code then launches the ``cuda.wgmma`` split-K
reduction (:func:`..cuda_wgmma.splitk.reduce_partials`, ``<symbol>_reduce``), which adds them
in split order (bitwise reproducible, as the gate checks) and applies the epilogue.
"""

from __future__ import annotations

import math

import tvm
from tvm.script import tirx as T

from ..cuda_wgmma.epilogue import finish, operand_buffers
from ..cuda_wgmma.splitk import REDUCE_THREADS, reduce_args, reduce_blocks, reduce_partials
from ..cuda_wgmma.structure import PAD_THREADS, PIPELINE_ATTR
from .kernel import CHUNK_BYTES, WARP, dtype_bytes, gemv_main

QUAD = 4  # lanes sharing a row: a K step is their 4 chunks (32 halves)
MMA_ROWS = 16  # rows of B an mma takes (its M)
TILE_M = 8  # rows of A an mma takes (its N)
PTX_TYPE = {"float16": "fp16", "bfloat16": "bf16"}


def row_classes(k: int, in_dtype: str) -> int:
    """Classes of rows of ``k`` elements by their start's offset from a 16-byte boundary: row
    ``R``'s is that of row ``R mod P`` (1: every row starts on a boundary)."""
    vec = CHUNK_BYTES // dtype_bytes(in_dtype)
    return vec // math.gcd(k, vec)


def shift_rows(in_dtype: str, m: int, k: int, classes: int, cols: int, symbol: str):
    """``Y[c, i, j] = A[i, j - d_c]`` (zero outside A's row), ``d_c = c k mod 8``: A shifted as
    the rows of B of class ``c`` start, ``cols`` (whole 16-byte chunks) a row. Each thread
    writes one 16-byte chunk of Y."""
    vec = CHUNK_BYTES // dtype_bytes(in_dtype)
    row_chunks = cols // vec
    total = classes * m * row_chunks
    blocks = -(-total // PAD_THREADS)
    zero = tvm.tirx.const(0, in_dtype)

    # fmt: off
    @T.prim_func
    def shift(a: T.handle, y: T.handle):
        A = T.match_buffer(a, (m, k), in_dtype)
        Y = T.match_buffer(y, (classes, m, cols), in_dtype, align=16)
        T.device_entry()
        bx = T.cta_id([blocks])
        tx = T.thread_id([PAD_THREADS])
        vals = T.alloc_buffer((vec,), in_dtype, scope="local")
        i = bx * PAD_THREADS + tx
        if i < total:
            c = i // (m * row_chunks)
            r = i // row_chunks % m
            j0 = i % row_chunks * vec - c * k % vec  # A's column of the chunk's first element
            for v in T.unroll(vec):
                vals[v] = T.if_then_else(
                    j0 + v < 0, zero,
                    T.if_then_else(j0 + v < k, A[r, T.max(T.min(j0 + v, k - 1), 0)], zero))
            for v in T.vectorized(vec):
                Y[c, r, i % row_chunks * vec + v] = vals[v]
    # fmt: on

    return shift.with_attrs({"global_symbol": symbol, PIPELINE_ATTR: "tirx"})


def chunks_of_a_row(k: int, in_dtype: str) -> int:
    """16-byte chunks a row's loads cover: from its start less ``d`` (shifted rows) to its
    last element."""
    vec = CHUNK_BYTES // dtype_bytes(in_dtype)
    classes = row_classes(k, in_dtype)
    return -(-(k + max(c * k % vec for c in range(classes))) // vec)


def mma_trips(k: int, in_dtype: str, warps: int, unroll: int) -> int:
    """Loop trips of a warp over a row: ``unroll`` 32-element K steps a warp a trip."""
    steps = -(-chunks_of_a_row(k, in_dtype) // QUAD)
    return -(-steps // (warps * unroll))


def mma_blocks(n: int, k: int, in_dtype: str, rows: int) -> int:
    """Blocks over the rows of B (before any split of K): each one class's ``16 rows``."""
    classes = row_classes(k, in_dtype)
    class_rows = -(-n // classes)  # rows of B[0] in the largest class
    return classes * -(-class_rows // (MMA_ROWS * rows))


def mma_tiles(m: int) -> int:
    """8-row tiles of A (mma N) a kernel of ``m`` rows multiplies."""
    return -(-m // TILE_M)


def gemv_mma_module(
    m: int, n: int, k: int, *, in_dtype: str, out_dtype: str, epilogue, warps: int, rows: int,
    unroll: int, gated: bool = False, stages: int = 0, splits: int = 1, a_shift: str = "copy",
    symbol: str = "ak_gemv",
) -> tvm.IRModule:  # fmt: skip
    """The kernel's module (``main``: ``A, B, [bias | epilogue operands], C``), as
    :func:`.kernel.gemv_module` but ``rows`` counts 16-row groups of B a block owns and its
    ``warps`` split their K. ``stages``: 0, a trip's chunks are loaded into registers; else
    they are copied (``cp.async``) into a ring of that many trips in shared memory, each warp
    its own, ``stages - 1`` trips ahead of the one multiplied: the copies in flight hold no
    registers. Rows of B not 16-byte multiples (the module docstring): with ``main``, the
    :func:`shift_rows` kernel ``<symbol>_shift_a`` its host code launches first. ``splits``
    (not gated): block ``bx`` takes trips ``[s p, s p + p)`` of split ``s = bx / blocks``
    (``p = ceil(iters / splits)``), its sums into ``P[s]``, then ``<symbol>_reduce``.
    ``a_shift`` (shifted rows, K even): "copy", the shifted copies of A; "load", each lane
    reads A in place at ``- d``, in loads as wide as A's rows align to (4 or 8 bytes), one
    launch less (the trips that reach outside the row clamp them into it and mask them)."""
    vec = CHUNK_BYTES // 2  # elements of a chunk
    trip = QUAD * warps * unroll  # chunks of a row a block's warps take a trip
    classes = row_classes(k, in_dtype)
    shifted = classes > 1
    direct = shifted and a_shift == "load"  # A read in place, not from the shifted copies
    a_vec = math.gcd(k, vec)  # direct: elements of A's loads (its rows start so aligned)
    # chunks of a row: from R K - d, up to its last element (d < 8); trips inside K: whole
    # chunks only (and, shifted, not the first trip, whose first chunk starts in the row before)
    chunks = chunks_of_a_row(k, in_dtype)
    iters = mma_trips(k, in_dtype, warps, unroll)  # a warp's loop trips
    per = -(-iters // splits)  # trips of a split
    full = k // vec // trip  # trips that end inside K
    tiles = mma_tiles(m)
    halves = 2 if gated else 1  # rows of B an output reads: gate and up
    sets = halves * rows  # 16-row groups of B a warp loads: group s is half s // rows
    block_rows = MMA_ROWS * rows  # outputs of a block (rows of B[0])
    blocks = mma_blocks(n, k, in_dtype, rows)  # each block one class's rows
    split = splits > 1
    threads = warps * WARP
    finals = rows * tiles * MMA_ROWS * TILE_M  # sums a block finishes (some past M or N)
    rounds = -(-finals // threads)
    ptx = PTX_TYPE[in_dtype]
    ring_rows = sets * MMA_ROWS + tiles * TILE_M  # a step's rows in the ring: B's, then A's
    cols = iters * trip * vec  # a row of a shifted copy of A: every chunk a trip reads
    operands = operand_buffers(epilogue, (m, n), in_dtype)  # an expression's; [] for a name
    zero = tvm.tirx.const(0, in_dtype)
    one = tvm.tirx.const(1.0, "float32")

    def offset(bx):
        """Shifted: ``d``, the elements block ``bx``'s rows start past a 16-byte boundary."""
        return bx % classes * k % vec

    def class_row(bx, i):
        """Shifted: row of B[0] of index ``i`` among block ``bx``'s (every ``classes``-th)."""
        return bx % classes + classes * (bx // classes * block_rows + i)

    def b_row(r0, bx, s, h, g):
        """Row of B[0] that lane row ``g`` of half ``h`` of group ``s`` reads (``r0``: block
        ``bx``'s first row); past N, the last row (shifted: the last of its class; read,
        never stored)."""
        if not shifted:
            return T.min(r0 + s % rows * MMA_ROWS + h * 8 + g, n - 1)
        r = class_row(bx, s % rows * MMA_ROWS + h * 8 + g)
        return T.if_then_else(r < n, r, r - classes * ((r - n + classes) // classes))

    def b_at(B, s, row, col):
        return B[s // rows, row, col] if gated else B[row, col]

    def b_chunk(s, row, bx):
        """Shifted: the first chunk of (gate or up) row ``row`` as an index of B's 16-byte
        chunks (the row's start less ``d``, a multiple of 8 elements: written so, the loads
        are vector loads)."""
        return ((s // rows * n + row) * k - offset(bx)) // vec

    def a_at(A, bx, row, col):
        return A[bx % classes, row, col] if shifted else A[row, col]

    def a_col(bx, ch, q, clamped):
        """Direct: A's column of part ``q`` (``a_vec`` elements) of chunk ``ch`` of the row
        shifted by ``d``; ``clamped`` (a trip reaching outside the row) into the row: a part
        lies wholly inside or outside it (0, K and d are multiples of ``a_vec``), and those
        outside are masked after the load."""
        col = ch * vec - offset(bx) + q * a_vec
        return T.min(T.max(col, 0), k - a_vec) if clamped else col

    def last_chunk(bx):
        """Shifted: the last chunk holding an element of a row (of ``bx``'s class)."""
        return (k + offset(bx) - 1) // vec

    def rows_of(bx):
        """Split: the block's rows are those of block ``bx mod blocks``."""
        return bx % blocks if split else bx

    def lo_of(bx):
        """The block's first trip (unsplit: 0)."""
        return bx // blocks * per if split else 0

    def hi_of(bx):
        """Past the block's last trip (unsplit: ``iters``)."""
        return T.min(bx // blocks * per + per, iters) if split else iters

    def in_split(bx, it):
        """Whether trip ``it`` is the block's (unsplit: a Python True, no test generated)."""
        return tvm.tirx.all(lo_of(bx) <= it, it < hi_of(bx)) if split else True

    def clip(bx, it):
        """Trip ``it`` clipped to the block's split's range (unsplit: ``it``)."""
        return T.min(T.max(it, lo_of(bx)), hi_of(bx)) if split else it

    def trip(bx, it):
        """The trip of the block's loop index ``it``."""
        return lo_of(bx) + it if split else it

    def inside(it, end):
        """Whether trip ``it`` lies inside the row: before ``end`` and, A read in place, not
        the first (its first chunk starts before the row)."""
        return tvm.tirx.all(0 < it, it < end) if direct else it < end

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
    def load(A, B, bv, av, starts, bx, w, t, g, r0, it, guarded):
        # Every load of the trip issued before the first mma, unconditionally unless the trip
        # ends past K (``guarded``): loads in branches were issued in turns (ptxas kept 44
        # registers for 64 of chunks). Rows of A past M read its last row: their columns of
        # the product are never stored.
        for u in T.unroll(unroll):
            ch = ((it * unroll + u) * warps + w) * QUAD + t
            for s in T.unroll(sets):
                for h in T.unroll(2):
                    if shifted:  # zeros outside the row are set after the loads (mask)
                        at = starts[s * 2 + h] + (T.min(ch, last_chunk(bx)) if guarded else ch)
                        for v in T.vectorized(vec):
                            bv[((u * sets + s) * 2 + h) * vec + v] = B[at * vec + v]
                    elif guarded and ch >= chunks:
                        for v in T.vectorized(vec):
                            bv[((u * sets + s) * 2 + h) * vec + v] = zero
                    else:
                        for v in T.vectorized(vec):
                            bv[((u * sets + s) * 2 + h) * vec + v] = b_at(
                                B, s, b_row(r0, bx, s, h, g), ch * vec + v)
            for ti in T.unroll(tiles):
                if direct:
                    for q in T.unroll(vec // a_vec):
                        for v in T.vectorized(a_vec):
                            av[(u * tiles + ti) * vec + q * a_vec + v] = A[
                                T.min(ti * TILE_M + g, m - 1), a_col(bx, ch, q, guarded) + v]
                elif not shifted and guarded and ch >= chunks:
                    for v in T.vectorized(vec):
                        av[(u * tiles + ti) * vec + v] = zero
                else:
                    for v in T.vectorized(vec):
                        av[(u * tiles + ti) * vec + v] = a_at(
                            A, bx, T.min(ti * TILE_M + g, m - 1), ch * vec + v)

    @T.macro
    def mask(bv, av, bx, w, t, it):
        # shifted: B's elements outside the row (K columns < 0 or >= K) to zero; read in
        # place, A's too (loaded from clamped columns)
        for u in T.unroll(unroll):
            ch = ((it * unroll + u) * warps + w) * QUAD + t
            for s in T.unroll(sets):
                for h in T.unroll(2):
                    for v in T.unroll(vec):
                        col = ch * vec - offset(bx) + v
                        bv[((u * sets + s) * 2 + h) * vec + v] = T.if_then_else(
                            col < 0, zero, T.if_then_else(
                                col < k, bv[((u * sets + s) * 2 + h) * vec + v], zero))
            if direct:
                for ti in T.unroll(tiles):
                    for v in T.unroll(vec):
                        col = ch * vec - offset(bx) + v
                        av[(u * tiles + ti) * vec + v] = T.if_then_else(
                            col < 0, zero, T.if_then_else(
                                col < k, av[(u * tiles + ti) * vec + v], zero))

    @T.macro
    def copy(A, B, ring, starts, bx, w, t, g, r0, it, slot, guarded):
        # the trip's chunks into the warp's ring slot, each lane its own (it reads them back
        # itself: no barrier); chunks past K are zeros stored directly (shifted: copied from
        # the row's last chunk, then masked)
        for u in T.unroll(unroll):
            ch = ((it * unroll + u) * warps + w) * QUAD + t
            for s in T.unroll(sets):
                for h in T.unroll(2):
                    if shifted:
                        at = starts[s * 2 + h] + (T.min(ch, last_chunk(bx)) if guarded else ch)
                        T.ptx.cp.async_.cg.shared.global_(
                            T.address_of(ring[w, slot, u, s * MMA_ROWS + h * 8 + g, t * vec]),
                            T.address_of(B[at * vec]), CHUNK_BYTES)
                    elif guarded and ch >= chunks:
                        for v in T.vectorized(vec):
                            ring[w, slot, u, s * MMA_ROWS + h * 8 + g, t * vec + v] = zero
                    else:
                        T.ptx.cp.async_.cg.shared.global_(
                            T.address_of(ring[w, slot, u, s * MMA_ROWS + h * 8 + g, t * vec]),
                            T.address_of(b_at(B, s, b_row(r0, bx, s, h, g),
                                              ch * vec)), CHUNK_BYTES)
            for ti in T.unroll(tiles):
                if direct:  # .cg copies 16 bytes only
                    for q in T.unroll(vec // a_vec):
                        T.ptx.cp.async_.ca.shared.global_(
                            T.address_of(ring[w, slot, u, sets * MMA_ROWS + ti * TILE_M + g,
                                              t * vec + q * a_vec]),
                            T.address_of(A[T.min(ti * TILE_M + g, m - 1),
                                           a_col(bx, ch, q, guarded)]),
                            a_vec * 2)
                elif not shifted and guarded and ch >= chunks:
                    for v in T.vectorized(vec):
                        ring[w, slot, u, sets * MMA_ROWS + ti * TILE_M + g, t * vec + v] = zero
                else:
                    T.ptx.cp.async_.cg.shared.global_(
                        T.address_of(ring[w, slot, u, sets * MMA_ROWS + ti * TILE_M + g, t * vec]),
                        T.address_of(a_at(A, bx, T.min(ti * TILE_M + g, m - 1), ch * vec)),
                        CHUNK_BYTES)

    @T.macro
    def copy_trip(A, B, ring, starts, bx, w, t, g, r0, it, hi):
        # hi: past the block's last trip, nothing copied
        if inside(it, T.min(full, hi) if split else full):
            copy(A, B, ring, starts, bx, w, t, g, r0, it, it % stages, False)
        else:
            if it < hi:
                copy(A, B, ring, starts, bx, w, t, g, r0, it, it % stages, True)
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
    def device(A, B, C, bias, P):
        bx = T.cta_id([blocks * splits])
        tx = T.thread_id([threads])
        red = T.alloc_buffer((warps, sets, tiles, MMA_ROWS, TILE_M), "float32", scope="shared")
        acc = T.alloc_buffer((sets * tiles * 4,), "float32", scope="local")
        bv = T.alloc_buffer((unroll * sets * 2 * vec,), in_dtype, scope="local")
        av = T.alloc_buffer((unroll * tiles * vec,), in_dtype, scope="local")
        frag = T.alloc_buffer((vec,), in_dtype, scope="local")  # an mma's B-row fragment
        w = tx // WARP
        lane = tx % WARP
        g = lane // QUAD
        r0 = rows_of(bx) * block_rows  # aligned rows: the block's first (shifted: not read)
        for i in T.unroll(sets * tiles * 4):
            acc[i] = T.float32(0)
        if shifted:  # each row's first chunk (as an index of B's chunks), once
            starts = T.alloc_buffer((sets * 2,), "int32", scope="local")
            for s in T.unroll(sets):
                for h in T.unroll(2):
                    starts[s * 2 + h] = b_chunk(s, b_row(r0, rows_of(bx), s, h, g), rows_of(bx))
        if stages == 0:  # each trip only where the block's split has it
            if shifted:  # the first trip's first chunk starts in the row before
                if in_split(bx, 0):
                    load(A, B, bv, av, starts, rows_of(bx), w, lane % QUAD, g, r0, 0,
                         full == 0 or direct)
                    mask(bv, av, rows_of(bx), w, lane % QUAD, 0)
                    multiply(bv, av, frag, acc)
            for it in T.serial(clip(bx, int(shifted)), clip(bx, max(full, int(shifted)))):
                load(A, B, bv, av, starts if shifted else acc, rows_of(bx), w, lane % QUAD, g, r0,
                     it, False)
                multiply(bv, av, frag, acc)
            for it in range(max(full, int(shifted)), iters):  # the trips that end past K
                if in_split(bx, it):
                    load(A, B, bv, av, starts if shifted else acc, rows_of(bx), w, lane % QUAD, g,
                         r0, it, True)
                    if shifted:
                        mask(bv, av, rows_of(bx), w, lane % QUAD, it)
                    multiply(bv, av, frag, acc)
        else:
            ring = T.alloc_buffer((max(warps, 1), max(stages, 1), unroll, ring_rows, QUAD * vec),
                                  in_dtype, scope="shared.dyn", align=128)
            for it in T.unroll(stages - 1):
                copy_trip(A, B, ring, starts if shifted else acc, rows_of(bx), w, lane % QUAD, g,
                          r0, trip(bx, it), hi_of(bx))
            for it in T.serial(hi_of(bx) - lo_of(bx)):
                copy_trip(A, B, ring, starts if shifted else acc, rows_of(bx), w, lane % QUAD, g,
                          r0, trip(bx, it) + stages - 1, hi_of(bx))
                T.ptx.cp.async_.wait_group(stages - 1)  # trip `it`'s group has landed
                unring(ring, bv, av, w, lane % QUAD, g, trip(bx, it) % max(stages, 1))
                if shifted:
                    if trip(bx, it) == 0 or trip(bx, it) >= full:
                        mask(bv, av, rows_of(bx), w, lane % QUAD, trip(bx, it))
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
            if shifted:
                ni = class_row(rows_of(bx), grp * MMA_ROWS + r)
            else:
                ni = r0 + grp * MMA_ROWS + r
            if i < finals and mi < m and ni < n:
                if split:  # the reduction adds the splits and applies the epilogue
                    P[bx // blocks, mi, ni] = total(red, grp, ti, r, col)
                else:
                    C[mi, ni] = finish(
                        value(red, grp, ti, r, col), (mi, ni), epilogue=epilogue,
                        out_dtype=out_dtype, bias=bias, operands=operands)

    @T.macro
    def entered(A, B, C, bias, P):
        if shifted:  # B as one flat array of aligned chunks
            flat = T.decl_buffer((halves * n * k,), in_dtype, data=B.data)
            device(A, flat, C, bias, P)
        else:
            device(A, B, C, bias, P)

    @T.macro
    def launch(A, B, C, bias):
        if split:
            P = T.alloc_buffer((splits, m, n), "float32")
            with T.attr({"tirx.device_entry": True}):  # host code follows (the reduction)
                entered(A, B, C, bias, P)
            T.call_packed(f"{symbol}_reduce_kernel", *reduce_args(C, P, bias, operands),
                          reduce_blocks(m, n, 0), REDUCE_THREADS)
        else:
            T.device_entry()
            entered(A, B, C, bias, None)

    @T.macro
    def body(A, B, C, bias):
        if shifted and not direct:
            # A shifted as each class of B's rows starts (shift_rows), then the GEMV on it
            As = T.alloc_buffer((classes, m, cols), in_dtype)
            T.call_packed(f"{symbol}_shift_a_kernel", A.data, As.data,
                          -(-classes * m * cols // vec // PAD_THREADS), PAD_THREADS)
            launch(As, B, C, bias)
        else:
            launch(A, B, C, bias)

    # fmt: on
    mod = gemv_main(body, m, n, k, in_dtype, out_dtype, gated, epilogue, operands)
    if shifted and not direct:
        shift = shift_rows(in_dtype, m, k, classes, cols, f"{symbol}_shift_a")
        mod[f"{symbol}_shift_a"] = shift
    if split:
        reduce = reduce_partials(m, n, batch=0, splits=splits, epilogue=epilogue,
                                 in_dtype=in_dtype, out_dtype=out_dtype)  # fmt: skip
        attrs = {"global_symbol": f"{symbol}_reduce", PIPELINE_ATTR: "tirx"}
        mod[f"{symbol}_reduce"] = reduce.with_attrs(attrs)
    return mod

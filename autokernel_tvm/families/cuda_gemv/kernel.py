# SPDX-License-Identifier: Apache-2.0
"""The ``cuda.gemv`` kernel: ``C[M, N] = A[M, K] @ B[N, K].T`` for a few rows of A (decode),
on the CUDA cores, written in TIRx like the ``cuda.wgmma`` kernels.

With M <= 16 the product is a read of B (``N x K`` weights, 32 MiB at 4096 x 4096 fp16)
that the tensor-core kernels tile into 64- or 128-row blocks, 1/64 of which are real
rows at M = 1: they run latency-bound (H100, 2026-12-06: 27 us for 4096 x 4096, 1.2 TB/s;
cuBLAS 24 us, torch.compile's kernel 16.8 us). Here each warp owns ``rows`` rows of B and
walks their K in 16-byte chunks (narrower where a row of K elements is not a 16-byte
multiple: :func:`chunk_bytes`), lane ``l`` taking chunks ``l, l + 32, ...``: a warp's loads
of a row are 512 contiguous bytes, and each lane has ``rows x unroll`` of them in flight
before it multiplies any (so a block of ``warps`` warps keeps ``warps x rows x unroll x 512``
bytes of B in flight; ``stages``: copied by cp.async through a ring in shared memory
instead, trips ahead). A's rows are read through L1 (every warp of a block reads the same
chunks). The fp32 sums of a lane are added across the warp with shuffles, and lane ``i % 32``
stores output ``i`` of the warp (the epilogue applied first).
"""

from __future__ import annotations

import math

import tvm
from tvm.script import tirx as T

from ...workloads.epilogue import Epilogue
from ..cuda_wgmma.epilogue import finish, operand_buffers, with_buffers
from ..cuda_wgmma.structure import PIPELINE_ATTR

WARP = 32
CHUNK_BYTES = 16  # one vector load: 8 halves, 4 floats


def dtype_bytes(dtype: str) -> int:
    return tvm.runtime.DataType(dtype).bits // 8


def chunk_bytes(k: int, dtype: str) -> int:
    """Bytes of a lane's load: 16, or where rows of ``k`` elements are not 16-byte multiples
    (an odd hidden size) the widest load that every row's start is aligned to (K = 4233 fp16:
    2 bytes; 9852: 8). A warp's loads of a row stay contiguous whatever their width; a padded
    copy of B (the tensor-core kernels' way with such rows) would move the weights twice."""
    return math.gcd(k * dtype_bytes(dtype), CHUNK_BYTES)


def gemv_module(
    m: int, n: int, k: int, *, in_dtype: str, out_dtype: str, epilogue, warps: int, rows: int,
    unroll: int, gated: bool = False, stages: int = 0,
) -> tvm.IRModule:  # fmt: skip
    """The kernel's module (``main``: ``A, B, [bias | epilogue operands], C``). ``epilogue``:
    "" / ``bias[_relu|_gelu]`` or an :class:`Epilogue` expression on the f32 sum. ``gated``:
    B is ``[2, N, K]`` (gate rows, then up rows: the gated MLP's two projections) and output
    ``n`` is ``silu(A @ B[0, n]) * (A @ B[1, n])``: a warp reads both rows of each output.
    ``stages``: 0, a trip's chunks of B are loaded into registers (ptxas may issue them in
    turns, each just before its products); else they are copied (``cp.async``) into a ring of
    that many trips in shared memory, each warp its own, ``stages - 1`` trips ahead of the one
    multiplied: copies in flight hold no registers."""
    width = chunk_bytes(k, in_dtype)  # a lane's load; cp.async copies 4, 8 or 16 (legal)
    vec = width // dtype_bytes(in_dtype)  # elements of a chunk; K is a multiple
    chunks = k // vec  # of a row
    iters = -(-chunks // (WARP * unroll))  # a lane's steps of `unroll` chunks
    full = chunks // (WARP * unroll)  # of them, the steps that end inside K
    blocks = -(-n // (warps * rows))
    threads = warps * WARP
    halves = 2 if gated else 1  # rows of B an output reads
    b_rows = halves * rows  # rows of B a warp reads: row j is half j // rows, output j % rows
    outs = m * b_rows  # sums a lane keeps
    operands = operand_buffers(epilogue, (m, n), in_dtype)  # an expression's; [] for a name
    # .cg (L2 only) copies 16 bytes only; narrower chunks go through .ca
    cp_async = (
        T.ptx.cp.async_.cg.shared.global_
        if width == CHUNK_BYTES
        else T.ptx.cp.async_.ca.shared.global_
    )
    zero = tvm.tirx.const(0, in_dtype)
    one = tvm.tirx.const(1.0, "float32")

    def b_at(B, j, row, col):
        return B[j // rows, row, col] if gated else B[row, col]

    def value(acc, i):
        """Output ``i`` of the warp (row ``i // rows`` of A, output ``i % rows``): its sum, or
        gated, silu(gate sum) * up sum."""
        if not gated:
            return acc[i]
        mi, r = i // rows, i % rows
        g, u = acc[mi * b_rows + r], acc[mi * b_rows + rows + r]
        return g / (one + tvm.tirx.exp(-g)) * u

    # fmt: off
    @T.macro
    def multiply(A, av, bv, acc, it, u, lane):
        # chunk u of the trip (in bv, a chunk a row of B) times the rows of A
        ch = (it * unroll + u) * WARP + lane
        for mi in T.unroll(m):
            for v in T.vectorized(vec):
                av[v] = A[mi, ch * vec + v]
            for j in T.unroll(b_rows):
                for v in T.unroll(vec):
                    acc[mi * b_rows + j] = acc[mi * b_rows + j] + T.Cast(
                        "float32", av[v]) * T.Cast("float32", bv[(j * unroll + u) * vec + v])

    @T.macro
    def copy(B, ring, w, lane, n0, it, guarded):
        # the trip's chunks of the warp's rows into its ring slot, each lane its own 16 bytes
        # (it reads them back itself: no barrier); none past K (those are never multiplied)
        for u in T.unroll(unroll):
            ch = (it * unroll + u) * WARP + lane
            if not guarded or ch < chunks:
                for j in T.unroll(b_rows):
                    cp_async(
                        T.address_of(ring[w, it % stages, u, j, lane * vec]),
                        T.address_of(b_at(B, j, T.min(n0 + j % rows, n - 1), ch * vec)),
                        width)

    @T.macro
    def copy_trip(B, ring, w, lane, n0, it):
        if it < full:
            copy(B, ring, w, lane, n0, it, False)
        else:
            if it < iters:
                copy(B, ring, w, lane, n0, it, True)
        T.ptx.cp.async_.commit_group()  # one group a trip, empty past the last

    @T.macro
    def unring(A, ring, av, bv, acc, w, lane, it, guarded):
        for u in T.unroll(unroll):
            if not guarded or (it * unroll + u) * WARP + lane < chunks:
                for j in T.unroll(b_rows):  # this lane's own chunks: no barrier
                    for v in T.vectorized(vec):
                        bv[(j * unroll + u) * vec + v] = ring[
                            w, it % stages, u, j, lane * vec + v]
                multiply(A, av, bv, acc, it, u, lane)

    @T.macro
    def body(A, B, C, bias):
        T.device_entry()
        bx = T.cta_id([blocks])
        tx = T.thread_id([threads])
        acc = T.alloc_buffer((outs,), "float32", scope="local")
        bv = T.alloc_buffer((b_rows * unroll * vec,), in_dtype, scope="local")
        av = T.alloc_buffer((vec,), in_dtype, scope="local")
        lane = tx % WARP
        n0 = (bx * warps + tx // WARP) * rows  # the warp's first output (row of B[0])
        for i in T.unroll(outs):
            acc[i] = T.float32(0)
        if stages == 0:
            for it in T.serial(iters):
                # every load of the step issued before the first multiply
                for u in T.unroll(unroll):
                    for j in T.unroll(b_rows):
                        ch = (it * unroll + u) * WARP + lane
                        if ch < chunks:
                            for v in T.vectorized(vec):
                                bv[(j * unroll + u) * vec + v] = b_at(
                                    B, j, T.min(n0 + j % rows, n - 1), ch * vec + v)
                        else:
                            for v in T.vectorized(vec):
                                bv[(j * unroll + u) * vec + v] = zero
                for u in T.unroll(unroll):
                    if (it * unroll + u) * WARP + lane < chunks:
                        multiply(A, av, bv, acc, it, u, lane)
        else:
            ring = T.alloc_buffer((warps, stages, unroll, b_rows, WARP * vec), in_dtype,
                                  scope="shared.dyn", align=128)
            w = tx // WARP
            for it in T.unroll(stages - 1):
                copy_trip(B, ring, w, lane, n0, it)
            for it in T.serial(iters):
                copy_trip(B, ring, w, lane, n0, it + stages - 1)
                T.ptx.cp.async_.wait_group(stages - 1)  # trip `it`'s group has landed
                if it < full:
                    unring(A, ring, av, bv, acc, w, lane, it, False)
                else:
                    unring(A, ring, av, bv, acc, w, lane, it, True)
        for i in T.unroll(outs):
            acc[i] = T.cuda.warp_sum(acc[i])
        for i in T.unroll(m * rows):
            if lane == i % WARP:
                if n0 + i % rows < n:
                    C[i // rows, n0 + i % rows] = finish(
                        value(acc, i), (i // rows, n0 + i % rows), epilogue=epilogue,
                        out_dtype=out_dtype, bias=bias, operands=operands)

    # fmt: on
    return gemv_main(body, m, n, k, in_dtype, out_dtype, gated, epilogue, operands)


def gemv_main(body, m, n, k, in_dtype, out_dtype, gated, epilogue, operands) -> tvm.IRModule:
    """The module of a GEMV kernel ``body(A, B, C, bias)`` (a macro): ``main`` takes ``A, B,
    [bias | the epilogue's operands], C``; B is ``[2, N, K]`` when ``gated``."""
    has_bias = bool(epilogue) and not isinstance(epilogue, Epilogue)
    b_shape = (2, n, k) if gated else (n, k)
    # fmt: off
    if has_bias:
        @T.prim_func
        def main(a: T.handle, b: T.handle, bias_: T.handle, c: T.handle):
            A = T.match_buffer(a, (m, k), in_dtype, align=16)
            B = T.match_buffer(b, b_shape, in_dtype, align=16)
            Bias = T.match_buffer(bias_, (n,), in_dtype)
            C = T.match_buffer(c, (m, n), out_dtype)
            body(A, B, C, Bias)
    else:
        @T.prim_func(check_well_formed=False)
        def main(a: T.handle, b: T.handle, c: T.handle):
            A = T.match_buffer(a, (m, k), in_dtype, align=16)
            B = T.match_buffer(b, b_shape, in_dtype, align=16)
            C = T.match_buffer(c, (m, n), out_dtype)
            body(A, B, C, None)
    # fmt: on

    if operands:
        main = with_buffers(main, operands, at=2)  # between B and C
    tvm.tirx.analysis.verify_well_formed(main)
    return tvm.IRModule({"main": main.with_attr(PIPELINE_ATTR, "tirx")})

# SPDX-License-Identifier: Apache-2.0
"""Split-K for ``cuda.wgmma``: the reduction that follows a kernel whose blocks each computed
one K range of an output tile (``Structure.splits``).

The kernel stores f32 partial sums ``P[splits, batch * M, N]`` into a workspace; its host code
then launches this companion's device kernel, which sums each output's partials in split order
-- the same order on every run, so the result is bitwise reproducible, which the correctness
gate's determinism check requires (atomics would not be) -- and applies the GEMM's epilogue
before the cast to C's dtype.
"""

from __future__ import annotations

import tvm
from tvm.script import tirx as T

from .epilogue import finish, operand_buffers, with_buffers

REDUCE_THREADS = 256  # one output element per thread: the partials are read coalesced


def reduce_blocks(m: int, n: int, batch: int) -> int:
    return -(-max(batch, 1) * m * n // REDUCE_THREADS)


def reduce_partials(
    m: int,
    n: int,
    *,
    batch: int,
    splits: int,
    epilogue,
    in_dtype: str,
    out_dtype: str,
    fast: bool = False,
) -> tvm.tirx.PrimFunc:
    """``C = epilogue(sum_s P[s])`` over the ``[splits, max(batch, 1) * m, n]`` f32 partials;
    its parameters are P, the epilogue's (``Bias`` or the expression's ``x<i>``), then C.
    ``fast``: the epilogue's transcendentals as :func:`.epilogue.finish` ``fast`` computes
    them."""
    nb = max(batch, 1)
    total, blocks = nb * m * n, reduce_blocks(m, n, batch)
    c_shape = (batch, m, n) if batch else (m, n)
    operands = operand_buffers(epilogue, c_shape, in_dtype)
    bias = None
    if epilogue and not operands:  # a bias[_act] epilogue
        bias = tvm.tirx.decl_buffer((n,), in_dtype, name="Bias")

    def value(x, index):
        return finish(
            x,
            index,
            epilogue=epilogue,
            out_dtype=out_dtype,
            bias=bias,
            operands=operands,
            fast=fast,
        )

    # fmt: off
    @T.prim_func(check_well_formed=False)
    def reduce(p: T.handle, c: T.handle):
        P = T.match_buffer(p, (splits, nb * m, n), "float32")
        C = T.match_buffer(c, c_shape, out_dtype)
        T.device_entry()
        bx = T.cta_id([blocks])
        tx = T.thread_id([REDUCE_THREADS])
        acc = T.alloc_buffer((1,), "float32", scope="local")
        i = bx * REDUCE_THREADS + tx
        if i < total:
            acc[0] = P[0, i // n, i % n]
            for s in range(1, splits):
                acc[0] = acc[0] + P[s, i // n, i % n]
            if batch > 0:
                C[i // n // m, i // n % m, i % n] = value(acc[0], (i // n // m, i // n % m, i % n))
            else:
                C[i // n, i % n] = value(acc[0], (i // n, i % n))
    # fmt: on

    reduce = with_buffers(reduce, ([bias] if bias is not None else []) + operands, at=1)
    tvm.tirx.analysis.verify_well_formed(reduce)
    return reduce


def reduce_args(C, P, bias, operands) -> list:
    """The data pointers of the kernel's buffers in the order of :func:`reduce_partials`'s
    device kernel parameters: TVM's host/device split passes a kernel the buffers it reads
    sorted by name (``Bias``, ``C``, ``P``, ``x0``, ...)."""
    named = [("C", C.data), ("P", P.data)]
    if bias is not None:
        named.append(("Bias", bias.data))
    named += [(f"x{i}", op.data) for i, op in enumerate(operands)]
    return [ptr for _, ptr in sorted(named, key=lambda pair: pair[0])]

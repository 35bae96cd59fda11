# SPDX-License-Identifier: Apache-2.0
"""The TensorIR rewrites behind :mod:`autokernel_tvm.rewrite`, one function per kind.

Each takes a PrimFunc and a proposal and returns the rewritten PrimFunc, built from schedule
primitives (``reindex``, ``transform_layout``, ``transform_block_layout``, ``pad_einsum``,
``rfactor``) so TVM checks every step for legality; the rewritten function goes to MetaSchedule
as a fresh task (no trace is kept). This is how MetaSchedule's own tensor-core rule turns a conv
into a matmul before tiling it, done once up front instead of inside one rule.
"""

from __future__ import annotations

from contextlib import contextmanager

from tvm import s_tir
from tvm.s_tir.schedule import ScheduleError

from .proposal import RewriteError, RewriteProposal

REDUCE = 2  # IterVar kCommReduce


def _reduction_blocks(sch: s_tir.Schedule) -> list:
    out = []
    for rv in sch.get_child_blocks(sch.get_sblock("root")):
        if any(int(iv.iter_type) == REDUCE for iv in sch.get(rv).iter_vars):
            out.append(rv)
    return out


@contextmanager
def _rewrite_failed():
    """A schedule primitive's ScheduleError as RewriteError("rewrite-failed", its last line)."""
    try:
        yield
    except ScheduleError as err:
        raise RewriteError("rewrite-failed", str(err).strip().splitlines()[-1][:200]) from err


def _gemm_block(sch: s_tir.Schedule):
    blocks = _reduction_blocks(sch)
    kinds = [[int(iv.iter_type) for iv in sch.get(b).iter_vars] for b in blocks]
    if len(blocks) != 1 or kinds[0] != [0, 0, REDUCE]:
        raise RewriteError("no-gemm-block", f"want one 3-loop SSR block, found iter kinds {kinds}")
    return blocks[0]


def implicit_gemm(func, proposal: RewriteProposal):
    """conv2d NHWC x KRSC (block ``C``: 4 spatial, 3 reduction iters) -> a 3-loop GEMM block.

    The conv block reads ``pad[b, y*st + r, x*st + s, c]`` and ``weight[o, r, s, c]``. Its
    iteration space is flattened to (M, N, K), then every operand is reindexed. The im2col
    gather ``A[M, K]`` (zero padding inlined) and the reshaped weight ``W[N, K]`` stay producer
    blocks; the GEMM result ``C[M, N]`` is copied to the NPQK output by a consumer block.
    """
    sch = s_tir.Schedule(func)
    blocks = _reduction_blocks(sch)
    kinds = [[int(iv.iter_type) for iv in sch.get(b).iter_vars] for b in blocks]
    if len(blocks) != 1 or kinds[0] != [0, 0, 0, 0, REDUCE, REDUCE, REDUCE]:
        raise RewriteError("not-conv2d", f"want one SSSSRRR conv block, found iter kinds {kinds}")
    conv = blocks[0]
    n, p, q, k, r, s, c = (int(iv.dom.extent) for iv in sch.get(conv).iter_vars)
    want = {"m": n * p * q, "n": k, "k": r * s * c}
    if dict(proposal.params) != want:
        raise RewriteError("shape-mismatch", f"proposal {dict(proposal.params)}, conv {want}")

    with _rewrite_failed():
        # Block iters first: (b, y, x) -> M, o -> N, (r, s, c) -> K. Reindexing then gives each
        # operand a buffer indexed by the new iters, i.e. A[M, K], W[N, K] and C[M, N], and
        # producer/consumer blocks that store at plain iter vars (what compute_inline needs).
        sch.transform_block_layout(
            conv, lambda b, y, x, o, rr, ss, cc: ((b * p + y) * q + x, o, (rr * s + ss) * c + cc)
        )
        sch.reindex(conv, ("write", 0))
        a_rv = sch.reindex(conv, ("read", 0))
        sch.reindex(conv, ("read", 1))
        for producer in sch.get_producers(a_rv):  # the zero-padding block: one gather producer
            sch.compute_inline(producer)
    return sch.mod["main"]


def pad(func, proposal: RewriteProposal):
    """Pad the GEMM block's (M, N, K) iteration domain up to the proposal's multiples."""
    sch = s_tir.Schedule(func)
    block = _gemm_block(sch)
    with _rewrite_failed():
        sch.pad_einsum(block, [proposal.param(d) for d in "mnk"])
    return sch.mod["main"]


def split_k(func, proposal: RewriteProposal):
    """K split into ``splits`` partial GEMMs ``C_rf[s, i, j]`` and a reduction over ``s``."""
    sch = s_tir.Schedule(func)
    block = _gemm_block(sch)
    splits = proposal.param("splits")
    k = int(sch.get(block).iter_vars[2].dom.extent)
    if splits < 2 or k % splits:
        raise RewriteError("split-not-dividing", f"splits={splits} must be >= 2 and divide K={k}")
    k_loop = sch.get_loops(block)[-1]
    outer, _ = sch.split(k_loop, [splits, None])
    sch.rfactor(outer, 0)
    return sch.mod["main"]


REWRITES = {"implicit_gemm": implicit_gemm, "pad": pad, "split_k": split_k}

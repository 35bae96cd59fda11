# SPDX-License-Identifier: Apache-2.0
"""TensorIR rewrites: proposals to rewrite the workload before any schedule rule sees it.

Read :class:`RewriteProposal`, then :func:`propose` (which rewrites a workload needs for a rule
family) and :func:`apply` (proposal x PrimFunc -> PrimFunc; the rewrites themselves are in
``tir.py``). A proposal is a frozen, JSON-serialisable value with its provenance
(which rule proposed it and why); the tuning report records it, and the correctness gate verifies
the rewritten kernel against the *original* workload's fp64 reference, so a wrong rewrite can
never ship. Every rewrite keeps the function signature (same inputs and output buffers).

Kinds:

* ``implicit_gemm``: conv2d NHWC x KRSC -> one 3-loop GEMM block
  ``C[n*p*q, k] += A[n*p*q, r*s*c] * W[k, r*s*c]``; the im2col gather (with the zero padding) is
  a producer block that the ``cuda.mma`` template inlines into its shared-memory copy.
* ``pad``: pad the GEMM block's M/N/K to multiples (``sch.pad_einsum``); the padded output is
  sliced back by a consumer block.
* ``split_k``: split K into ``splits`` partial GEMMs (``sch.rfactor``) plus a reduction block.
"""

from __future__ import annotations

import json

from .proposal import KINDS, Provenance, RewriteError, RewriteProposal

__all__ = ["GEMM_OPS", "KINDS", "Provenance", "RewriteError", "RewriteProposal"]
__all__ += ["apply", "apply_all", "from_json", "gemm_mnk", "propose", "to_json"]

#: ``pad``: a GEMM dim that is not a multiple of ALIGN (the smallest block tile every warp layout
#: of the mma.sync family can use, and BK=32, the smallest K tile of the swizzled shared layout)
#: is padded up to a multiple of PAD_TO; aligned dims keep factor 1 (a 64-wide conv stays 64).
ALIGN = {"m": 32, "n": 32, "k": 32}
PAD_TO = {"m": 64, "n": 64, "k": 32}
#: a K shorter than this (an RGB conv's R*S*C = 27, a 1x1 conv of 32 channels) is padded up to
#: it: two K steps of 32, what the shallowest cp.async pipeline (2 stages) takes
MIN_K = 64
GEMM_OPS = ("gemm", "gemm_nt", "gemm_bias", "gemm_bias_relu", "gemm_bias_gelu")


def apply(proposal: RewriteProposal, func):
    """Rewrite ``func`` (a TensorIR PrimFunc) as ``proposal`` says; raise RewriteError if it
    does not apply. The result computes the same function with the same signature."""
    from .tir import REWRITES

    return REWRITES[proposal.kind](func, proposal)


def apply_all(proposals, func):
    """Apply ``proposals`` in order; returns an ``IRModule`` with the rewritten ``main``."""
    import tvm

    for proposal in proposals:
        func = apply(proposal, func)
    return tvm.IRModule({"main": func})


def propose(workload, rule: str = "cuda.mma") -> tuple[RewriteProposal, ...]:
    """The rewrites ``workload`` needs before ``rule`` (a 3-loop GEMM template) can schedule it.

    conv2d -> implicit GEMM; a GEMM view with M or N not a multiple of 32, or K not of 32 or
    under :data:`MIN_K` -> pad (after the implicit GEMM, for a conv with odd channels). ``()``
    when none is needed or the workload is not a GEMM or conv2d.
    """
    if workload.op == "conv2d_nhwc":
        n, _, _, c, k, r, s, _, _ = workload.shape
        _, p, q, _ = workload.output.shape
        m, kk = n * p * q, r * s * c
        first = RewriteProposal(
            "implicit_gemm",
            {"m": m, "n": k, "k": kk},
            Provenance(
                f"{rule}:conv2d_nhwc",
                f"{rule} schedules 3-loop GEMM blocks; conv2d NHWC x KRSC is the GEMM "
                f"[N*P*Q={m}, R*S*C={kk}] x [K={k}, R*S*C={kk}]^T with an im2col gather",
            ),
        )
        return (first, *_pad(m, k, kk, rule, "the implicit GEMM"))
    if workload.op in GEMM_OPS:
        return _pad(*workload.shape[-3:], rule, workload.op)
    return ()


def _pad(m: int, n: int, k: int, rule: str, what: str) -> tuple[RewriteProposal, ...]:
    sizes = {"m": m, "n": n, "k": k}
    factors = {d: PAD_TO[d] if size % ALIGN[d] else 1 for d, size in sizes.items()}
    if k < MIN_K:
        factors["k"] = MIN_K
    if set(factors.values()) == {1}:
        return ()
    padded = [-(-size // factors[d]) * factors[d] for d, size in sizes.items()]
    why = (
        f"{what} is {m}x{n}x{k}, not a multiple of {ALIGN['m']}x{ALIGN['n']}x{ALIGN['k']}: "
        f"padded to {'x'.join(map(str, padded))} so mma tiles divide it; the output is sliced back"
    )
    return (RewriteProposal("pad", factors, Provenance(f"{rule}:align", why)),)


def gemm_mnk(workload, proposals) -> tuple[int, int, int]:
    """(M, N, K) of the GEMM block the family schedules after ``proposals``."""
    if workload.op in GEMM_OPS:
        m, n, k = workload.shape[-3:]
    else:
        first = next((p for p in proposals if p.kind == "implicit_gemm"), None)
        if first is None:
            raise RewriteError("no-gemm-view", f"{workload.op} without an implicit_gemm proposal")
        m, n, k = (first.param(d) for d in "mnk")
    for p in proposals:
        if p.kind == "pad":
            m, n, k = (-(-size // p.param(d)) * p.param(d) for d, size in zip("mnk", (m, n, k)))
    return m, n, k


def to_json(proposals) -> list[dict]:
    """The report form of a proposal sequence (round-trips with :func:`from_json`)."""
    return [p.to_json() for p in proposals]


def from_json(data) -> tuple[RewriteProposal, ...]:
    return tuple(RewriteProposal.from_json(json.loads(json.dumps(d))) for d in data)

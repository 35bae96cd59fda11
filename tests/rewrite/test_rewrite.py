# SPDX-License-Identifier: Apache-2.0
"""TensorIR rewrite proposals (``autokernel_tvm/rewrite``): values, which rewrites a workload gets,
and the rewritten TensorIR built for llvm (unscheduled) and run through the correctness gate
against the original workload's fp64 reference."""

from __future__ import annotations

import json

import pytest
import tvm

from autokernel_tvm import rewrite as sketch
from autokernel_tvm import verify
from autokernel_tvm.builder import build_module
from autokernel_tvm.rewrite import Provenance, RewriteError, RewriteProposal
from autokernel_tvm.targets import make_target
from autokernel_tvm.workloads import Workload

LLVM = make_target("llvm")
WHY = Provenance("test", "a test asked for it")


def split_k(splits: int) -> RewriteProposal:
    return RewriteProposal("split_k", {"splits": splits}, WHY)


def test_proposal_is_a_frozen_hashable_json_value():
    p = RewriteProposal("pad", {"n": 64, "m": 64, "k": 32}, WHY)
    assert p.params == (("k", 32), ("m", 64), ("n", 64))  # frozen, sorted
    assert hash(p) == hash(RewriteProposal("pad", (("m", 64), ("n", 64), ("k", 32)), WHY))
    data = json.loads(json.dumps(p.to_json()))
    assert RewriteProposal.from_json(data) == p
    assert sketch.from_json(sketch.to_json([p, split_k(2)])) == (p, split_k(2))
    assert "pad(k=32,m=64,n=64) by test" == p.describe()
    with pytest.raises(AttributeError):
        p.kind = "split_k"


@pytest.mark.parametrize(
    "kind, params, reason",
    [
        ("tile", {"m": 1}, "bad-kind"),
        ("pad", {"m": 64, "n": 64}, "bad-params"),
        ("split_k", {"splits": 0}, "bad-params"),
        ("split_k", {"splits": 2, "k": 4}, "bad-params"),
    ],
)
def test_invalid_proposals_raise_with_reason(kind, params, reason):
    with pytest.raises(RewriteError) as err:
        RewriteProposal(kind, params, WHY)
    assert err.value.reason == reason
    with pytest.raises(RewriteError, match="unknown-field"):
        RewriteProposal.from_json({"kind": "pad", "params": {}, "provenance": {}, "x": 1})


def test_propose_per_workload():
    conv = Workload("conv2d_nhwc", (32, 56, 56, 64, 64, 3, 3, 1, 1), "float16")
    (p,) = sketch.propose(conv)
    assert p.kind == "implicit_gemm" and dict(p.params) == {"m": 32 * 56 * 56, "n": 64, "k": 576}
    assert p.provenance.rule == "cuda.mma:conv2d_nhwc" and "im2col" in p.provenance.why
    assert sketch.gemm_mnk(conv, (p,)) == (32 * 56 * 56, 64, 576)
    assert sketch.propose(Workload("gemm", (4096, 4096, 4096), "float16")) == ()
    odd = Workload("gemm", (1000, 1000, 1000), "float16")
    (pad,) = sketch.propose(odd)
    assert pad.kind == "pad" and "1024x1024x1024" in pad.provenance.why
    assert sketch.gemm_mnk(odd, (pad,)) == (1024, 1024, 1024)
    # Only misaligned dims are padded: a 64-wide GEMM stays 64 wide.
    (pad,) = sketch.propose(Workload("gemm_nt", (1000, 64, 512), "float16"))
    assert dict(pad.params) == {"m": 64, "n": 1, "k": 1}
    rgb = Workload("conv2d_nhwc", (1, 7, 7, 3, 24, 3, 3, 1, 1), "float16")
    assert [p.kind for p in sketch.propose(rgb)] == ["implicit_gemm", "pad"]
    # R*S*C = 27: two K steps of 32, what the shallowest (2-stage) pipeline takes
    assert sketch.gemm_mnk(rgb, sketch.propose(rgb)) == (64, 64, 64)
    narrow = Workload("conv2d_nhwc", (2, 8, 8, 32, 64, 1, 1, 1, 0), "float16")  # K = 32
    assert dict(sketch.propose(narrow)[1].params) == {"m": 1, "n": 1, "k": 64}
    assert sketch.propose(Workload("batch_gemm", (2, 64, 64, 64))) == ()


CASES = [  # (workload, extra proposals after the proposed ones)
    (Workload("conv2d_nhwc", (2, 8, 8, 16, 32, 3, 3, 1, 1), "float16"), ()),
    (Workload("conv2d_nhwc", (2, 9, 9, 16, 32, 3, 3, 2, 1), "float16"), ()),
    (Workload("conv2d_nhwc", (1, 7, 7, 3, 24, 3, 3, 1, 1), "float16"), ()),  # + pad
    (Workload("conv2d_nhwc", (2, 8, 8, 8, 16, 1, 1, 1, 0)), ()),  # 1x1, no zero padding
    (Workload("gemm", (100, 70, 50), "float16"), ()),  # pad
    (Workload("gemm_bias_gelu", (100, 70, 50)), ()),  # pad under an epilogue
    (Workload("gemm_nt", (64, 48, 32)), (split_k(4),)),
    (
        Workload("conv2d_nhwc", (2, 8, 8, 16, 32, 3, 3, 1, 1), "float16"),
        (split_k(5),),
    ),  # K 144 -> 160
]


@pytest.mark.parametrize(
    "workload, extra", CASES, ids=[f"{w.name}-{len(e)}" for w, e in CASES]
)  # fmt: skip
def test_rewritten_workload_passes_the_correctness_gate(workload, extra):
    proposals = sketch.propose(workload) + extra
    assert proposals
    mod = sketch.apply_all(proposals, workload.prim_func())
    assert mod.script() != workload.ir_module().script()  # it really was rewritten
    params = [p.name for p in mod["main"].params]
    assert len(params) == len(workload.inputs) + 1  # same signature
    report = verify.verify(build_module(mod, LLVM)["main"], workload, seed=0)
    assert report.passed, report.failures


def test_implicit_gemm_is_one_3_loop_gemm_block_with_producers():
    conv = Workload("conv2d_nhwc", (2, 8, 8, 16, 32, 3, 3, 2, 1), "float16")
    func = sketch.apply(sketch.propose(conv)[0], conv.prim_func())
    sch = tvm.s_tir.Schedule(func)
    from autokernel_tvm.families.cuda_mma.schedule import gemm_shape

    assert gemm_shape(sch, sch.get_sblock("C")) == (2 * 4 * 4, 32, 144, True)
    producers = [sch.get(b).name_hint for b in sch.get_producers(sch.get_sblock("C"))]
    assert len(producers) == 2  # the im2col gather (padding inlined) and the reshaped weight
    assert [sch.get(b).name_hint for b in sch.get_producers(producers[0])] == []


def test_rewrites_that_do_not_apply_raise_sketch_error():
    conv = Workload("conv2d_nhwc", (2, 8, 8, 16, 32, 3, 3, 1, 1), "float16")
    gemm = Workload("gemm", (64, 64, 64), "float16")
    wrong = RewriteProposal("implicit_gemm", {"m": 1, "n": 32, "k": 144}, WHY)
    bad = [
        (wrong, conv, "shape-mismatch"),
        (RewriteProposal("implicit_gemm", {"m": 64, "n": 64, "k": 64}, WHY), gemm, "not-conv2d"),
        (split_k(2), conv, "no-gemm-block"),  # a conv needs implicit_gemm first
        (split_k(3), gemm, "split-not-dividing"),
    ]
    for proposal, workload, reason in bad:
        with pytest.raises(RewriteError) as err:
            sketch.apply(proposal, workload.prim_func())
        assert err.value.reason == reason, (proposal, err.value)

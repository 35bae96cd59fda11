# SPDX-License-Identifier: Apache-2.0
"""The grammar asks each family: which apply to a workload on a target (with the reasons of
those that do not), and whether a genome is legal."""

import pytest

from autokernel_tvm.space.genome import Genome, GenomeError
from autokernel_tvm.space.grammar import Grammar
from autokernel_tvm.targets import make_target, rocm_toolchain_problem
from autokernel_tvm.workloads import Workload

LLVM = Grammar(make_target("llvm"))
SM90 = Grammar(make_target("cuda", "sm_90a"))
SM80 = Grammar(make_target("cuda", "sm_80"))
SM75 = Grammar(make_target("cuda", "sm_75"))


def names(grammar, workload):
    return [f.name for f in grammar.families(workload)]


def test_families_per_target_and_workload():
    f16 = Workload("gemm", (256, 256, 256), "float16")
    assert names(LLVM, Workload("gemm", (64, 64, 64))) == ["cpu.tile"]
    assert names(SM90, f16) == ["cuda.wgmma", "cuda.mma"]
    assert names(SM80, f16) == ["cuda.mma"]
    f32 = Workload("gemm", (256, 256, 256), "float32")
    assert names(SM90, f32) == ["cuda.wgmma"]  # as 3xTF32; cuda.mma says why not
    assert "float32" in SM90.why_not(f32)["cuda.mma"]
    assert names(SM80, f32) == []  # stock fallback, with each family's reason
    assert names(SM75, f16) == [] and "sm_80" in SM75.why_not(f16)["cuda.mma"]
    if rocm_toolchain_problem() is None:
        gfx = Grammar(make_target("rocm", "gfx942"))
        assert names(gfx, Workload("gemm_nt", (256, 256, 256), "float16")) == ["rocm.mfma"]


def test_a_family_for_another_target_is_rejected_with_reason():
    with pytest.raises(GenomeError) as err:
        LLVM.check(Genome.default("cuda.mma"), Workload("gemm", (64, 64, 64)))
    assert err.value.reason == "family-not-for-target" and "CUDA" in str(err.value)


def test_legality_reads_the_targets_shared_memory():
    """4 stages of 128 x 256 x 64 fp16 tiles (192 KiB) fit sm_90a's 227 KiB, not sm_80's 163."""
    from autokernel_tvm.families import get

    wgmma = Genome.default("cuda.wgmma")
    w = Workload("gemm", (4096, 4096, 4096), "float16")
    assert SM90.check(wgmma, w)
    with pytest.raises(GenomeError, match="shared memory"):
        get("cuda.wgmma").check(wgmma.params, w, make_target("cuda", "sm_80"))


def test_every_hopper_op_and_input_dtype_has_a_generative_family():
    """Each GEMM-family op in fp16, bf16, fp32 (TF32 allowed or not) gets a family's genome on
    sm_90a: a workload without one tunes MetaSchedule's stock space, far from the tensor cores
    (fp32 A.T @ B and, with TF32 allowed, torch.matmul's fp32 A @ B did, found by a fuzz of
    `tune.py --build-only`). The one exception is named with its reason: the gated GEMM in fp32
    past a GEMV's rows (the dispatch pass keeps such a pair as two 3xTF32 GEMMs)."""
    from autokernel_tvm.families.cuda_wgmma import OPS
    from autokernel_tvm.relax.dispatch import served_by_a_family

    grammar = Grammar(make_target("cuda", "sm_90a"))
    missing = []
    for op in sorted(set(OPS) - {"gemm_scaled_nt"}):  # fp8 only: its own tests
        shape = (3, 512, 512, 512) if op.startswith("batch") else (512, 512, 512)
        if op == "conv2d_nhwc":
            shape = (8, 28, 28, 64, 64, 3, 3, 1, 1)
        for dtype, precision in (("float16", ""), ("bfloat16", ""), ("float32", ""),
                                 ("float32", "tf32")):  # fmt: skip
            if not served_by_a_family(grammar, Workload(op, shape, dtype, precision=precision)):
                missing.append((op, dtype, precision))
    assert missing == [("gemm_gated_nt", "float32", ""), ("gemm_gated_nt", "float32", "tf32")]
    from autokernel_tvm.families.cuda_wgmma import FAMILY

    gated = Workload("gemm_gated_nt", (512, 512, 512), "float32")
    assert "plain GEMMs" in FAMILY.applies(gated, grammar.target)

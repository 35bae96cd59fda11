# SPDX-License-Identifier: Apache-2.0
"""CPU-only checks of the ``rocm.mfma`` family: legality by reason, and every sampled candidate
builds.

The design space is the MFMA rule plus MetaSchedule's stock
cuda rules (ParallelizeVectorizeUnroll samples unroll 0/16/64), postprocs and mutators. Before
the pipeline unrolled after LowerWarpMemory, 176 of 288 such samples failed to build ("failed to
rewrite load to shuffle"). Numerics are NOT checked (no AMD GPU); kernels must hold ``v_mfma``.
Skipped, naming the packages to install, when the ROCm toolchain is missing. About 60 s on 2
cores, most of it the one-time import of ``tvm.s_tir.tensor_intrin``.
"""

from __future__ import annotations

import pytest
import tvm
from tvm.s_tir import meta_schedule as ms

from autokernel_tvm.candidates import sample_candidates
from autokernel_tvm.families import GenomeError
from autokernel_tvm.families.rocm_mfma import FAMILY, MfmaParams
from autokernel_tvm.families.rocm_mfma import build as rocm_build
from autokernel_tvm.families.rocm_mfma import schedule as rocm_mfma
from autokernel_tvm.space.genome import Genome
from autokernel_tvm.space.grammar import Grammar
from autokernel_tvm.targets import make_target, rocm_toolchain_problem
from autokernel_tvm.workloads import Workload

SAMPLES = 12


@pytest.fixture(scope="module")
def target() -> tvm.target.Target:
    problem = rocm_toolchain_problem()
    if problem is not None:
        pytest.skip(problem)
    return make_target("rocm", "gfx942")


@pytest.mark.parametrize(
    "op, shape, dtype, warps",
    [
        ("gemm", (512, 512, 512), "float16", None),  # A @ B
        ("gemm_nt", (512, 512, 512), "float16", None),  # A @ B.T
        ("gemm", (512, 512, 512), "float32", None),
        ("gemm", (1024, 2048, 512), "float16", (2, 1)),
        ("gemm_bias_relu", (512, 512, 512), "float16", (1, 2)),  # epilogue: a second kernel
        # 6 x 12 tiles: a tile count drawn before the wavefronts (3 -> 2 left) would not fit them
        ("gemm_nt", (96, 192, 512), "float16", (2, 2)),
    ],
)
def test_every_sampled_candidate_builds_with_mfma(target, op, shape, dtype, warps):
    params = MfmaParams(warps=warps) if warps else FAMILY.default
    workload = Workload(op, shape, dtype)
    FAMILY.check(params, workload, target)
    candidate = FAMILY.candidate(params, workload, target)
    report = sample_candidates(candidate.mod, target, candidate.space, SAMPLES)
    assert report.failures == {}, report.to_json()
    assert report.built == SAMPLES
    assert report.markers["v_mfma"] == SAMPLES


def test_explicit_unroll_over_several_fragments_builds(target):
    """The regression itself: unroll 64 (as PVU samples it) over 2 A fragments x 2 K-steps."""
    sch = tvm.s_tir.Schedule(Workload("gemm", (512, 512, 512), "float16").prim_func())
    sizes = {"warps_m": 2, "warps_n": 2, "tiles_m": 2, "tiles_n": 1, "k_chunk": 2}
    rocm_mfma.schedule_rocm_mfma(sch, "C", **sizes)
    sch.annotate(sch.get_sblock("root"), "meta_schedule.unroll_explicit", 64)
    assert ms.postproc.RewriteParallelVectorizeUnroll().apply(sch)
    asm = rocm_build.device_asm(rocm_build.build_rocm(sch.mod, target))
    assert "v_mfma_f32_16x16x16_f16" in asm


def test_grammar_checks_wavefronts_and_dtypes(target):
    """Wavefronts that do not fit the tiles are rejected before tuning, with the reason (an
    untiled kernel must never be labelled generative)."""
    grammar = Grammar(target)
    small = Workload("gemm", (48, 64, 64), "float16")  # 3 MFMA tiles along M
    with pytest.raises(GenomeError) as err:
        grammar.check(Genome.default("rocm.mfma"), small)  # 2 x 2 wavefronts
    assert err.value.reason == "mfma-structure" and "does not divide" in str(err.value)
    assert grammar.check(Genome("rocm.mfma", MfmaParams(warps=(1, 1))), small)
    assert "bfloat16" in grammar.why_not(Workload("gemm", (64, 64, 64), "bfloat16"))["rocm.mfma"]
    batched = Workload("batch_gemm", (2, 64, 64, 64), "float16")
    assert [f.name for f in grammar.families(batched)] == []  # stock space, with the reason
    assert "2-D GEMMs" in grammar.why_not(batched)["rocm.mfma"]


def test_wavefronts_that_do_not_fit_fall_back_to_stock_rules(target):
    # 3 tiles along M cannot be shared by 2 wavefronts: the rule leaves the block to the stock
    # rules (check() rejects such parameters before tuning).
    workload = Workload("gemm", (48, 64, 64), "float16")
    candidate = FAMILY.candidate(FAMILY.default, workload, target)
    report = sample_candidates(candidate.mod, target, candidate.space, 2)
    assert report.built == 2 and report.markers["v_mfma"] == 0
    # Told whose design space it is, the report counts those untiled builds as failures.
    report = sample_candidates(candidate.mod, target, candidate.space, 2, family=FAMILY)
    assert report.built == 0
    assert report.failures == {"not realised: rocm.mfma left the block untiled": 2}

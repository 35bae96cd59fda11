# SPDX-License-Identifier: Apache-2.0
"""CPU-only checks of the generative ROCm space: every sampled ``rocm.mfma`` candidate builds.

The space is ``space_for(<rocm.mfma genome>, gfx942)``: the MFMA rule plus MetaSchedule's stock
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
from autokernel_tvm.families.rocm_mfma import build as rocm_build
from autokernel_tvm.families.rocm_mfma import schedule as rocm_mfma
from autokernel_tvm.space.design_space import space_for
from autokernel_tvm.space.grammar import default_genome
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
    genome = default_genome("rocm.mfma")
    genome = genome.replace(warps=warps) if warps else genome
    mod = Workload(op, shape, dtype).ir_module()
    report = sample_candidates(mod, target, space_for(genome, target), SAMPLES)
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


def test_wavefronts_that_do_not_fit_fall_back_to_stock_rules(target):
    # 3 tiles along M cannot be shared by 2 wavefronts: the rule leaves the block to the stock
    # rules (the grammar should reject such genomes before tuning).
    mod = Workload("gemm", (48, 64, 64), "float16").ir_module()
    report = sample_candidates(mod, target, space_for(default_genome("rocm.mfma"), target), 2)
    assert report.built == 2 and report.markers["v_mfma"] == 0

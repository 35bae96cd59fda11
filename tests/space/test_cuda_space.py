# SPDX-License-Identifier: Apache-2.0
"""The generative space for CUDA sm_90a (no GPU): every sampled candidate builds with nvcc and
uses tensor cores, for plain GEMMs and GEMMs with a fused epilogue, fp16 and bf16."""

import pytest

from autokernel_tvm.candidates import sample_candidates
from autokernel_tvm.space.design_space import space_for
from autokernel_tvm.space.grammar import Grammar, default_genome
from autokernel_tvm.targets import make_target
from autokernel_tvm.workloads import Workload

TARGET = make_target("cuda", "sm_90a")


@pytest.mark.parametrize(
    "workload",
    [
        Workload("gemm", (1024, 1024, 1024), "float16"),
        Workload("gemm_nt", (1024, 2048, 512), "bfloat16"),
        Workload("gemm_bias_gelu", (1024, 1024, 1024), "float16"),
    ],
    ids=lambda w: w.name,
)
def test_generated_candidates_build_with_tensor_cores(needs_nvcc, workload):
    genome = Grammar.for_target(TARGET).check(default_genome("cuda.mma"), workload)
    report = sample_candidates(workload.ir_module(), TARGET, space_for(genome, TARGET), 2)
    assert report.built == 2, report.failures
    for marker in ("mma.sync", "ldmatrix", "cp.async"):
        assert report.markers[marker] == 2, report.markers

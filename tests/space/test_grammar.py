# SPDX-License-Identifier: Apache-2.0
import pytest

from autokernel_tvm.space.genes import decode
from autokernel_tvm.space.genome import GenomeError, Staging
from autokernel_tvm.space.grammar import DOMAINS, Grammar, default_genome
from autokernel_tvm.workloads import Workload

LLVM = Grammar("llvm", "znver4")
SM90 = Grammar("cuda", "sm_90a")
SM75 = Grammar("cuda", "sm_75")
GFX = Grammar("rocm", "gfx942")


def test_families_per_target_and_workload():
    assert LLVM.families(Workload("gemm", (64, 64, 64))) == ["cpu.tile"]
    assert SM90.families(Workload("gemm", (256, 256, 256), "float16")) == ["cuda.wgmma", "cuda.mma"]
    assert Grammar("cuda", "sm_80").families(Workload("gemm", (256, 256, 256), "float16")) == [
        "cuda.mma"
    ]
    assert SM90.families(Workload("gemm", (256, 256, 256), "float32")) == []  # stock fallback
    assert SM75.families(Workload("gemm", (256, 256, 256), "float16")) == []
    assert GFX.families(Workload("gemm_nt", (256, 256, 256), "float16")) == ["rocm.mfma"]


@pytest.mark.parametrize(
    "genome, reason",
    [
        (default_genome("cpu.tile").replace(intrinsic="mma.m16n8k16"), "intrinsic-on-cpu"),
        (default_genome("cpu.tile").replace(structure="SSRSR",
                                            binds=("parallel", "serial", "serial")),
         "cpu-innermost-not-spatial"),
        (default_genome("cpu.tile").replace(a=Staging("global", 0, 0, "pack")),
         "pack-without-vector-axis"),
        (default_genome("cpu.tile").replace(b=Staging("shared", 0, 16, "plain")), "cpu-scope"),
        (default_genome("cpu.tile").replace(vector_lanes=48), "vector-not-dividing"),
        (default_genome("cpu.tile").replace(stages=2), "gpu-field-on-cpu"),
        (default_genome("cpu.tile").replace(binds=("serial", "parallel", "serial", "serial")),
         "cpu-binds"),
        (default_genome("cuda.mma"), "family-not-for-target"),
    ],
)  # fmt: skip
def test_cpu_grammar_rejects_with_reason(genome, reason):
    with pytest.raises(GenomeError) as err:
        LLVM.check(genome, Workload("gemm", (64, 64, 64)))
    assert err.value.reason == reason


def test_every_cpu_gene_value_is_legal_somewhere():
    w = Workload("gemm_nt", (128, 128, 128))
    for gene, values in DOMAINS["cpu.tile"].items():
        for value in values:
            assert LLVM.check(decode("cpu.tile", {gene: value}), w)

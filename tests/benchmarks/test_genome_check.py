# SPDX-License-Identifier: Apache-2.0
"""benchmarks/gpu/genome_check.py without a GPU: how a genome is spelled on its command line,
and the one-line refusal where no CUDA GPU is seen."""

import importlib.util
import os

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    "genome_check", os.path.join(ROOT, "benchmarks", "gpu", "genome_check.py")
)
genome_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(genome_check)


def test_genes_parse_to_ints_and_names():
    genes = genome_check.parse_genes("schedule=stream,raster=16,block_n=64,,store=tma")
    assert genes == {"schedule": "stream", "raster": 16, "block_n": 64, "store": "tma"}
    assert genome_check.parse_genes("") == {}


def test_a_parsed_genome_is_what_the_grammar_checks():
    """The genes go over the family default as they are: the grammar sees the ints as ints (a
    string "16" would be refused as a raster value nobody offers)."""
    from autokernel_tvm.space.genome import Genome
    from autokernel_tvm.space.grammar import Grammar
    from autokernel_tvm.targets import make_target
    from autokernel_tvm.workloads import Workload

    workload = Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16")
    genes = genome_check.parse_genes("schedule=persistent,store=tma,raster=16")
    genome = Genome.default("cuda.wgmma").replace(**genes)
    target = make_target("cuda", "sm_90a")
    checked = Grammar(target).check(genome, workload)
    assert (checked.params.raster, checked.params.schedule) == (16, "persistent")
    assert genome_check.genome_of(genes, workload, target) == checked
    # family=NAME: another whole-kernel family's genes over its default
    decode = Workload("gemm_nt", (1, 4096, 4096), "float16", "float16")
    genes = genome_check.parse_genes("family=cuda.gemv,rows=4")
    gemv = genome_check.genome_of(genes, decode, target)
    assert gemv.describe() == (
        "cuda.gemv warps=4 rows=4 unroll=4 math=ffma stages=0 splits=1 a_shift=copy"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal")
def test_no_gpu_is_one_line_and_status_2(capsys):
    code = genome_check.main(["--shape", "64,4096,4096", "--genomes", "splits=2"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "error: no CUDA GPU"


def test_error_vs_torch_survives_an_overflow_in_both():
    """The fp16 gated GEMM overflows to inf where torch's product does too: the error is taken
    over the finite elements, and only non-finite elements that differ are counted as wrong."""
    inf, nan = float("inf"), float("nan")
    want = torch.tensor([1.0, inf, 3.0, -2.0], dtype=torch.float16)
    same = genome_check.error_vs_torch(want.clone(), want)
    assert same == {"rel_err_vs_torch": 0.0, "nonfinite": 1, "nonfinite_disagree": 0}
    off = genome_check.error_vs_torch(torch.tensor([1.0, inf, 3.0, -1.0]).half(), want)
    assert off["rel_err_vs_torch"] == pytest.approx(1 / (1 + 9 + 4) ** 0.5)
    wrong = genome_check.error_vs_torch(torch.tensor([1.0, nan, 3.0, -2.0]).half(), want)
    assert (wrong["nonfinite"], wrong["nonfinite_disagree"]) == (1, 1)


def test_ptxas_usage_reads_the_main_kernels_registers(needs_nvcc):
    """The registers and spills of the kernel a genome builds: regs=split shows the whole
    launch share (168 of a 384-thread block), the even budget what ptxas needed."""
    from autokernel_tvm.builder import build_module, cuda_source
    from autokernel_tvm.families.cuda_wgmma.kernel import wgmma_module
    from autokernel_tvm.targets import make_target

    target = make_target("cuda", "sm_90a")

    def usage(**genes):
        mod = wgmma_module(4096, 4096, 4096, smem_limit=232448, sm_count=132, **genes)
        return genome_check.ptxas_usage(cuda_source(build_module(mod, target)), "sm_90a")

    split, even = usage(regs="split"), usage()
    assert split == {"registers": 168, "spill_bytes": 0}
    assert even["spill_bytes"] == 0 and 128 < even["registers"] < 168

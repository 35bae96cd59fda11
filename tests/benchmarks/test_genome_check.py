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
    checked = Grammar(make_target("cuda", "sm_90a")).check(genome, workload)
    assert (checked.params.raster, checked.params.schedule) == (16, "persistent")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal")
def test_no_gpu_is_one_line_and_status_2(capsys):
    code = genome_check.main(["--shape", "64,4096,4096", "--genomes", "splits=2"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "error: no CUDA GPU"

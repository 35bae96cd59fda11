# SPDX-License-Identifier: Apache-2.0
"""The ``cuda.wgmma`` family (no GPU): legality with reasons, grammar and genes, the generator's
proposals, TIRx kernels that nvcc builds for sm_90a with wgmma + TMA + mbarriers, and the
whole-kernel measuring path of the tuner (run on llvm)."""

import json
import os
import subprocess

import pytest

from autokernel_tvm.builder import build_module, cuda_source, is_tirx
from autokernel_tvm.config import TuneConfig
from autokernel_tvm.families.cuda_wgmma import OPS, kernel_module, structure
from autokernel_tvm.families.cuda_wgmma.kernel import WgmmaStructureError, legal, wgmma_gemm
from autokernel_tvm.measure import RECORD, run_kernel
from autokernel_tvm.space.generator import Generator
from autokernel_tvm.space.genes import decode, encode
from autokernel_tvm.space.genome import GenomeError
from autokernel_tvm.space.grammar import Grammar, default_genome
from autokernel_tvm.targets import make_target
from autokernel_tvm.tuner import Tuner
from autokernel_tvm.workloads import Workload

TARGET = make_target("cuda", "sm_90a")
NT = Workload("gemm_nt", (1024, 1024, 1024), "float16")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"batch": -1}, "batch=-1"),
        ({"in_dtype": "float32"}, "in_dtype"),
        ({"block_n": 96}, "block_n=96"),
        ({"stages": 5}, "shared memory"),  # 5 x (128 + 256) x 64 x 2 B > 227 KiB
        ({"raster": 3}, "raster=3"),
        ({"epilogue": "bias_tanh"}, "epilogue"),
    ],
)
def test_illegal_structures_give_reasons(kwargs, words):
    why = legal(1024, 1024, 1024, **kwargs)
    assert why is not None and words in why
    with pytest.raises(WgmmaStructureError, match=words.split("=")[0]):
        wgmma_gemm(1024, 1024, 1024, **kwargs)


def test_unaligned_shape_is_rejected():
    assert "not a multiple" in legal(1000, 1024, 1024)
    assert "not a multiple" in legal(1024, 1024, 1000, block_n=128)
    assert legal(1024, 1024, 1024) is None


def test_family_only_on_sm90a_for_both_b_layouts_and_batches():
    grammar = Grammar.for_target(TARGET)
    assert grammar.families(NT) == ["cuda.wgmma", "cuda.mma"]
    assert "cuda.wgmma" not in Grammar.for_target(make_target("cuda", "sm_90")).families(NT)
    assert "cuda.wgmma" not in Grammar.for_target(make_target("cuda", "sm_80")).families(NT)
    assert grammar.families(Workload("gemm", (1024, 1024, 1024), "float16"))[0] == "cuda.wgmma"
    batched = Workload("batch_gemm", (4, 512, 512, 256), "bfloat16")
    assert grammar.families(batched) == ["cuda.wgmma"]  # cuda.mma has no batch dim
    assert Grammar.for_target(make_target("cuda", "sm_80")).families(batched) == []  # stock
    assert structure(default_genome("cuda.wgmma"), batched)["batch"] == 4


def test_grammar_and_rule_agree_on_the_ops():
    from autokernel_tvm.space.grammar import WGMMA_OPS

    assert set(WGMMA_OPS) == set(OPS)


def test_conv2d_patch_and_reasons():
    from autokernel_tvm.families.cuda_wgmma.kernel import conv_patch

    conv = (32, 28, 28, 256, 3, 3, 1)
    assert conv_patch(conv, 128) == (4, 32, 7, 1)  # 4 x 32 pixels: 28 rows exactly, 4 of 32 cols
    assert conv_patch((8, 14, 14, 64, 1, 1, 0), 128) == (8, 16, 2, 1)
    assert legal(32 * 784, 256, 9 * 256, conv=conv, raster=8) is None
    assert "multiple of 64" in legal(32 * 784, 256, 9 * 96, conv=(32, 28, 28, 96, 3, 3, 1))
    assert "raster=3 " in legal(32 * 784, 256, 9 * 256, conv=conv, raster=3)  # 224 M tiles
    grammar = Grammar.for_target(TARGET)
    strided = Workload("conv2d_nhwc", (8, 28, 28, 256, 256, 3, 3, 2, 1), "float16")
    with pytest.raises(GenomeError, match="stride 2"):
        grammar.check(default_genome("cuda.wgmma"), strided)


def test_genome_checks_and_gene_round_trip():
    grammar = Grammar.for_target(TARGET)
    genome = grammar.check(default_genome("cuda.wgmma"), NT)
    assert decode("cuda.wgmma", encode(genome)) == genome
    assert structure(genome, NT) == {
        "batch": 0, "conv": (), "in_dtype": "float16", "trans_b": True, "block_n": 256,
        "consumers": 2, "stages": 4, "raster": 8, "epilogue": "", "out_dtype": "float32",
    }  # fmt: skip
    with pytest.raises(GenomeError) as err:
        grammar.check(genome.replace(stages=6), NT)
    assert err.value.reason == "wgmma-structure"
    with pytest.raises(GenomeError) as err:
        grammar.check(genome.replace(warps=(2, 4)), NT)
    assert "warpgroups" in str(err.value)


def test_generator_proposes_only_legal_wgmma_genomes_and_counts_rejections():
    grammar = Grammar.for_target(TARGET)
    generator = Generator(grammar, NT, seed=3)
    genomes = generator.propose(60)
    wgmma = [g for g in genomes if g.family == "cuda.wgmma"]
    assert len(wgmma) >= 10
    for genome in wgmma:
        grammar.check(genome, NT)
    assert generator.rejections["wgmma-structure"] > 0  # 256-wide tiles with 5-6 stages


@pytest.mark.parametrize(
    "workload",
    [
        NT,
        Workload("gemm_nt", (512, 1024, 256), "bfloat16"),
        Workload("gemm_bias_gelu", (1024, 1024, 512), "float16", "float16"),
        Workload("gemm", (1024, 1024, 512), "float16"),
        Workload("batch_gemm_nt", (3, 512, 512, 256), "bfloat16"),
        Workload("conv2d_nhwc", (4, 28, 28, 128, 256, 3, 3, 1, 1), "float16"),
    ],
    ids=lambda w: w.name,
)
def test_kernels_build_with_nvcc_and_use_wgmma_and_tma(needs_nvcc, workload):
    genome = default_genome("cuda.wgmma").replace(raster=4)
    mod = kernel_module(genome, workload)
    assert is_tirx(mod)
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    ptx_type = "bf16" if workload.dtype == "bfloat16" else "f16"
    assert f"wgmma.mma_async.sync.aligned.m64n256k16.f32.{ptx_type}.{ptx_type}" in src
    assert "cp.async.bulk.tensor.2d" in src and "mbarrier" in src
    if workload.op == "conv2d_nhwc":  # the shifted input patch: a 4-D box, zero-filled at edges
        assert "cp.async.bulk.tensor.4d" in src
    # imm-trans-b: 1 reads B N-major ([K, N] storage), 0 K-major
    assert f"1, 1, 0, {0 if OPS[workload.op][0] else 1};" in src
    if workload.op == "gemm_bias_gelu":
        assert "erff(" in src and "((half)" in src  # GELU and the cast fused into the store


@pytest.mark.parametrize("out_dtype, vector", [("float32", "float2"), ("float16", "half2")])
def test_epilogue_stores_pairs_and_nothing_spills(needs_nvcc, tmp_path, out_dtype, vector):
    """Each thread stores its two adjacent columns as one 2-wide store; with four scalar half
    stores per pair the 128 accumulators spilled (348 B) and fp16 output ran ~15% slower."""
    workload = Workload("gemm_nt", (4096, 4096, 4096), "float16", out_dtype)
    mod = kernel_module(default_genome("cuda.wgmma"), workload)
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    assert f"*({vector}*)(C_ptr" in src
    (tmp_path / "k.cu").write_text(src)
    ptxas = subprocess.run(
        ["nvcc", "-arch=sm_90a", "-cubin", "-o", str(tmp_path / "k.cubin"), "-Xptxas", "-v",
         str(tmp_path / "k.cu")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "0 bytes spill stores" in ptxas.stderr + ptxas.stdout


def test_tuner_lists_kernel_candidates_for_build_only():
    tuner = Tuner(TuneConfig(target="cuda", arch="sm_90a", trials=4), progress=False)
    candidates = tuner.kernel_candidates(NT, 3)
    assert len(candidates) == 3
    assert candidates[0][0] == default_genome("cuda.wgmma")
    assert all(is_tirx(mod) for _, mod in candidates)


def test_whole_kernel_run_is_measured_resumed_and_verified(tmp_path):
    workload = Workload("gemm", (64, 64, 64), "float32")
    tuner = Tuner(TuneConfig(target="llvm", work_dir=str(tmp_path), trials=4), progress=False)
    run = run_kernel(tuner, workload, workload.ir_module(), "kernels/plain")
    assert run.kernel and run.trials == 1 and not run.failures and run.best_s < 1.0
    path = os.path.join(run.db_dir, RECORD)
    with open(path) as f:
        assert json.load(f)["latency_s"] == run.best_s
    again = run_kernel(tuner, workload, workload.ir_module(), "kernels/plain")
    assert again.best_s == run.best_s  # resumed from the record, not re-measured
    result = tuner._pick_verified(workload, [run], 1.0, {})
    assert result.verify["passed"] and "no schedule trace" in result.trace


def test_whole_kernel_that_does_not_build_is_a_counted_failure(tmp_path):
    tuner = Tuner(TuneConfig(target="llvm", work_dir=str(tmp_path), trials=4), progress=False)
    mod = kernel_module(default_genome("cuda.wgmma"), NT)  # a CUDA kernel cannot build for llvm
    run = run_kernel(tuner, NT, mod, "kernels/wgmma")
    assert run.trials == 1 and sum(run.failures.values()) == 1
    assert next(iter(run.failures)).startswith("build: ")

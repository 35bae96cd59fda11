# SPDX-License-Identifier: Apache-2.0
"""The ``cuda.wgmma`` family (no GPU): legality with reasons, grammar and parameters, the
generator's proposals, and TIRx kernels that nvcc builds for sm_90a with wgmma + TMA + mbarriers."""

import re

import pytest
from wgmma_cases import (  # shared with the GPU tests
    BATCH_EDGES,
    BIAS_PREFETCH,
    BIAS_START,
    CONSUMERS3,
    CONV_EDGES,
    FAST_MATH,
    FP8,
    HILBERT,
    K_ATOMS2,
    PRODUCER_WARPS2,
    REGS,
    ROWS,
    SHARE_A,
    STREAM_TAIL,
    STRIDED,
    SWAPPED,
    WIDE192,
)

from autokernel_tvm import builder
from autokernel_tvm.builder import build_module, cuda_source, is_tirx
from autokernel_tvm.config import TuneConfig
from autokernel_tvm.families import GenomeError, Kernel
from autokernel_tvm.families.cuda_wgmma import FAMILY, OPS, WgmmaParams, structure
from autokernel_tvm.families.cuda_wgmma.copies import UNPAD_ELEMS
from autokernel_tvm.families.cuda_wgmma.geometry import (
    batch_dims,
    consumer_regs,
    conv_patch,
    group_tile,
    hilbert_xy,
    launch_regs,
    smem_bytes,
    stream_first,
    stream_last,
    stream_share,
    stream_tail_waves,
)
from autokernel_tvm.families.cuda_wgmma.kernel import (
    wgmma_gemm,
    wgmma_module,
)
from autokernel_tvm.families.cuda_wgmma.legality import legal
from autokernel_tvm.families.cuda_wgmma.structure import (
    Structure,
    WgmmaStructureError,
)
from autokernel_tvm.families.cuda_wgmma.tf32x3 import split_k
from autokernel_tvm.hardware import limits
from autokernel_tvm.manifest import out_pitch
from autokernel_tvm.space.generator import Generator
from autokernel_tvm.space.genome import Genome
from autokernel_tvm.space.grammar import Grammar
from autokernel_tvm.space.library import Library, shipped_root
from autokernel_tvm.targets import make_target
from autokernel_tvm.tuner import Tuner
from autokernel_tvm.workloads import Workload
from autokernel_tvm.workloads.epilogue import ACC, Epilogue, F, operand

TARGET = make_target("cuda", "sm_90a")
SMEM = limits(TARGET).smem_per_block
NT = Workload("gemm_nt", (1024, 1024, 1024), "float16")
DEFAULT = Genome.default("cuda.wgmma")


def names(grammar, workload) -> list[str]:
    return [f.name for f in grammar.families(workload)]


def ptxas_report(src: str) -> str:
    """ptxas's resource report (registers, spills) of CUDA source ``src`` for sm_90a: the
    compile a ``check_nvcc`` build of it already made."""
    return builder.ptxas_report(src, "sm_90a")


def spill_free(src: str) -> bool:
    """Whether ptxas reports no spilled bytes for every kernel of CUDA ``src`` (the GEMM and
    its companions: padding copies, zeroing launches)."""
    spills = re.findall(r"(\d+) bytes spill stores", ptxas_report(src))
    return bool(spills) and set(spills) == {"0"}


def main_body(src: str) -> str:
    """The CUDA of the main kernel's body (after its declaration and its definition's head)."""
    return src.split("main_kernel(", 2)[2]


def builtin_calls(src: str, what: str) -> int:
    """Lines of the main kernel that call a TVM builtin naming ``what``: a macro's call sites,
    since the macros are inlined at each."""
    return sum(1 for line in main_body(src).splitlines() if what in line and "tvm_builtin" in line)


def kernel_module(genome, workload):
    return FAMILY.candidate(genome.params, workload, TARGET).mod


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"batch": -1}, "batch=-1"),
        ({"in_dtype": "float64"}, "in_dtype"),
        ({"block_n": 96}, "block_n=96"),
        ({"stages": 5}, "shared memory"),  # 5 x (128 + 256) x 64 x 2 B > 227 KiB
        ({"raster": 0}, "raster=0"),
        ({"epilogue": "bias_tanh"}, "epilogue"),
    ],
)
def test_illegal_structures_give_reasons(kwargs, words):
    why = legal(1024, 1024, 1024, smem_limit=SMEM, **kwargs)
    assert why is not None and words in why
    with pytest.raises(WgmmaStructureError, match=words.split("=")[0]):
        wgmma_gemm(1024, 1024, 1024, smem_limit=SMEM, **kwargs)


def test_edge_tiles_are_legal_where_tma_and_paired_stores_allow():
    """M, N and K need not be tile multiples (TMA zero-fills past the end, stores check the
    edge); what is refused is what TMA's 16-byte strides and the 2-wide stores cannot do."""
    assert legal(1000, 1000, 1000, smem_limit=SMEM, raster=1) is None
    assert legal(1, 11008, 4096, smem_limit=SMEM, consumers=1) is None  # decode: one row
    assert legal(1024, 1024, 1002, smem_limit=SMEM) is None  # rows of K * 2 B: padded copy
    assert legal(1024, 1002, 1024, smem_limit=SMEM, trans_b=False) is None
    assert legal(1024, 1001, 1024, smem_limit=SMEM) is None  # odd N: one column per store
    # batched, K tail: B's map is 3-D, so the tail is zero-filled inside each matrix
    assert legal(1024, 1024, 1000, smem_limit=SMEM, trans_b=False, batch=2) is None
    assert legal(1024, 1024, 1024, smem_limit=SMEM) is None
    # the budget is the target's: 4 stages of 128x256 tiles fit an H100, not an A100
    assert "shared memory" in legal(1024, 1024, 1024, smem_limit=166912, stages=4)


def test_family_only_on_sm90a_for_both_b_layouts_and_batches():
    grammar = Grammar(TARGET)
    assert names(grammar, NT) == ["cuda.wgmma", "cuda.mma"]
    assert "cuda.wgmma" not in names(Grammar(make_target("cuda", "sm_90")), NT)
    assert "sm_90a" in Grammar(make_target("cuda", "sm_80")).why_not(NT)["cuda.wgmma"]
    assert names(grammar, Workload("gemm", (1024, 1024, 1024), "float16"))[0] == "cuda.wgmma"
    batched = Workload("batch_gemm", (4, 512, 512, 256), "bfloat16")
    assert names(grammar, batched) == ["cuda.wgmma"]  # cuda.mma has no batch dim
    assert names(Grammar(make_target("cuda", "sm_80")), batched) == []  # stock
    assert structure(WgmmaParams(), batched)["batch"] == 4


def test_conv2d_patch_and_reasons():
    conv = (32, 28, 28, 256, 3, 3, 1)
    assert conv_patch(conv, 128) == (4, 32, 7, 1)  # 4 x 32 pixels: 28 rows exactly, 4 of 32 cols
    assert conv_patch((8, 14, 14, 64, 1, 1, 0), 128) == (8, 16, 2, 1)
    assert legal(32 * 784, 256, 9 * 256, smem_limit=SMEM, conv=conv, raster=8) is None
    odd = (32, 28, 28, 96, 3, 3, 1)  # C = 96: each tap's second K step half past C
    assert legal(32 * 784, 256, 9 * 96, smem_limit=SMEM, conv=odd, raster=8) is None
    fp32 = dict(in_dtype="float32", out_dtype="float32", tf32_passes=1)
    forty = (32, 28, 28, 40, 3, 3, 1)  # TF32: no zero-filled K steps (its split copies)
    assert "multiple of 32" in legal(32 * 784, 256, 9 * 40, smem_limit=SMEM, conv=forty, **fp32)
    twelve = (32, 28, 28, 12, 3, 3, 1)  # a pixel's 24 bytes: no TMA stride
    assert "multiple of 8" in legal(32 * 784, 256, 9 * 12, smem_limit=SMEM, conv=twelve)
    assert "multiple of 8" in legal(32 * 784, 100, 9 * 256, smem_limit=SMEM, conv=conv)
    assert legal(32 * 784, 256, 9 * 256, smem_limit=SMEM, conv=conv, raster=3) is None  # ragged
    # stride 2: 14 x 14 outputs, each box spans twice the patch's pixels
    strided = Workload("conv2d_nhwc", (8, 28, 28, 256, 256, 3, 3, 2, 1), "float16")
    assert Grammar(TARGET).check(DEFAULT, strided) == DEFAULT
    assert conv_patch((8, 28, 28, 256, 3, 3, 1, 2), 128) == (8, 16, 2, 1)
    # a box is at most 256 pixels a side: 128-pixel patches need a stride under 32
    # a box is at most 256 pixels a side: a stride of 32 leaves no 128-pixel patch
    assert conv_patch((8, 64, 64, 256, 3, 3, 1, 32), 128) is None
    assert conv_patch((8, 64, 64, 256, 3, 3, 1, 8), 128) == (8, 16, 1, 1)  # 128 x 128 boxes
    huge = (8, 64, 64, 256, 3, 3, 1, 9)  # past TMA's largest traversal stride
    assert "at most 8" in legal(8 * 64, 256, 9 * 256, smem_limit=SMEM, conv=huge, raster=1)


def test_genome_checks_and_round_trip():
    grammar = Grammar(TARGET)
    genome = grammar.check(DEFAULT, NT)
    assert Genome.from_json(genome.to_json()) == genome
    assert structure(genome.params, NT) == {
        "batch": 0, "conv": (), "in_dtype": "float16", "trans_b": True, "trans_a": False,
        "block_n": 256, "consumers": 2, "stages": 4, "raster": 8, "epilogue": "",
        "out_dtype": "float32", "gated": False, "schedule": "tile", "cluster": 1,
        "store": "direct", "splits": 1, "pad": "needed", "arrangement": "cooperative",
        "reduction": "workspace", "bias_at": "store", "epilogue_math": "exact",
        "accum": "tensor", "regs": "even", "order": "raster", "multicast": "b", "k_atoms": 1,
        "producer_warps": 1, "operands": "ab",
        "tf32_passes": 1,
    }  # fmt: skip
    with pytest.raises(GenomeError) as err:
        grammar.check(genome.replace(stages=6), NT)
    assert err.value.reason == "wgmma-structure"
    with pytest.raises(GenomeError) as err:
        genome.replace(consumers=4)
    assert err.value.reason == "bad-tile"


def test_generator_proposes_only_legal_wgmma_genomes_and_counts_rejections():
    grammar = Grammar(TARGET)
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
    genome = DEFAULT.replace(raster=4)
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
def test_epilogue_stores_pairs_and_nothing_spills(needs_nvcc, out_dtype, vector):
    """Each thread stores its two adjacent columns as one 2-wide store; with four scalar half
    stores per pair the 128 accumulators spilled (348 B) and fp16 output ran ~15% slower."""
    workload = Workload("gemm_nt", (4096, 4096, 4096), "float16", out_dtype)
    mod = kernel_module(DEFAULT, workload)
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    assert f"*({vector}*)(C_ptr" in src
    assert "0 bytes spill stores" in ptxas_report(src)


def test_tuner_draws_held_back_genes_only_when_configured(tmp_path):
    """TuneConfig.held_back_genes (tune.py --held-back-genes) reaches the generator: its
    search draws the values cuda.wgmma holds back; by default it does not."""
    held = FAMILY.held_back

    def draws(**kw):
        config = TuneConfig(target="cuda", arch="sm_90a", work_dir=str(tmp_path), **kw)
        search = Tuner(config, progress=False).search(NT)
        return [g.params for g in search.generator.propose(24) if g.family == FAMILY.name]

    def any_held(params):
        return any(getattr(p, gene) in values for p in params for gene, values in held.items())

    assert not any_held(draws()) and any_held(draws(held_back_genes=True))


def test_tuner_lists_kernel_candidates_for_build_only():
    tuner = Tuner(TuneConfig(target="cuda", arch="sm_90a", trials=4), progress=False)
    kernels = [(g, c) for g, c in tuner.candidates(NT, 32) if isinstance(c, Kernel)]
    assert len(kernels) >= 3
    assert kernels[0][0] == Genome("cuda.wgmma", FAMILY.seed(NT, TARGET))  # 32 tiles: split-K
    assert all(is_tirx(c.mod) for _, c in kernels)


GATED = Workload("gemm_gated_nt", (2048, 11008, 4096), "float16", "float16")


def test_gated_legality_uses_half_tiles_and_gives_reasons():
    kw = dict(smem_limit=SMEM, gated=True, block_n=256, consumers=2, stages=4, raster=1)
    assert legal(256, 11008, 4096, **kw) is None  # 11008 = 86 x 128: half of a 256 tile
    assert legal(256, 11008 + 64, 4096, **kw) is None  # an edge tile of gate and up rows
    assert "gated" in legal(256, 1024, 4096, **{**kw, "trans_b": False})
    assert "gated" in legal(256, 1024, 4096, **{**kw, "batch": 2})
    assert "cuda.wgmma" in names(Grammar(TARGET), GATED)


@pytest.mark.parametrize("params", [WgmmaParams(), WgmmaParams(128, 2, 5, 8)], ids=str)
def test_gated_kernel_builds_with_two_b_loads_and_no_spills(needs_nvcc, params):
    """One wgmma over [gate rows; up rows] per stage (two TMA boxes of block_n / 2 rows), SiLU
    and the product in the write-back, and the accumulators stay in registers."""
    src = cuda_source(build_module(kernel_module(Genome("cuda.wgmma", params), GATED), TARGET,
                                   check_nvcc=True))  # fmt: skip
    assert f"m64n{params.block_n}k16" in src and "expf(" in src
    loads = src.count("tvm_builtin_ptx_cp_async_bulk_tensor_g2s_cluster_async_bulk_tensor_2d_")
    assert loads == 1 + 3  # the helper's definition, then A and the gate and up halves of B
    assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize(
    "workload",
    [
        Workload("gemm_nt", (1000, 1000, 1000), "float16"),
        Workload("gemm", (777, 1000, 520), "bfloat16", "bfloat16"),
        Workload("gemm_nt", (16, 4096, 4096), "float16", "float16"),  # decode
        Workload("batch_gemm_nt", (3, 100, 200, 72), "float16"),
    ],
    ids=lambda w: w.name,
)
def test_edge_tiles_build_with_checked_stores_and_no_spills(needs_nvcc, workload):
    """Shapes off the tile grid get a ceil-div grid, a zero-filled K tail and stores that check
    the row and column; aligned shapes keep their unchecked stores (codegen identity)."""
    genome = Grammar(TARGET).check(DEFAULT.replace(raster=1), workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    m, n = workload.shape[-3], workload.shape[-2]
    assert f"< {m})" in src and f"< {n})" in src  # the store predicate on row and column
    assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize("workload, genes", STRIDED, ids=lambda x: getattr(x, "name", ""))
def test_strided_convs_read_every_uth_pixel_through_the_tma_box(needs_nvcc, workload, genes):
    """A stride-u conv loads the same tile_p x tile_q patch as a stride-1 conv: its A map's box
    spans u times the pixels with element strides (1, u, u, 1), and each tap's box starts at u
    times the patch's first output pixel."""
    genome = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    mod = kernel_module(genome, workload)
    u = workload.shape[7]
    conv = (*workload.shape[:4], *workload.shape[5:7], workload.shape[8], u)
    tile_p, tile_q, _, _ = conv_patch(conv, 128 if genome.params.consumers == 2 else 64)
    script = mod["main"].script()
    a_map = re.search(r'EncodeTiled", a_map, "\w+", 4, A.data, ([\d, ]+)\)', script)
    fields = [int(f) for f in a_map.group(1).split(", ")]
    assert fields[7:15] == [64, u * tile_q, u * tile_p, 1, 1, u, u, 1]  # box, element strides
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    assert "cp.async.bulk.tensor.4d" in src
    assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize("workload, genes, dims", BATCH_EDGES, ids=lambda x: getattr(x, "name", ""))
def test_batched_edges_use_3d_maps_inside_each_matrix(needs_nvcc, workload, genes, dims):
    """A batched K tail (B as [K, N], A as [K, M]) and a TMA-stored M edge are addressed through
    maps with the batch as a third dimension: the box is zero-filled (or clipped) at its own
    matrix's edge, not read from (or written into) the next one. Aligned shapes keep 2-D maps."""
    genome = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    st = Structure(**structure(genome.params, workload))
    m, k = workload.shape[1], workload.shape[3]
    assert batch_dims(m, k, st) == dims
    mod = kernel_module(genome, workload)
    script = mod["main"].script()
    ranks = re.findall(r'cuTensorMapEncodeTiled", (\w)_map, "\w+", (\d)', script)
    assert {name for name, rank in ranks if rank == "3"} == dims
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    assert ("cp.async.bulk.tensor.3d.shared::cluster" in src) == bool(dims & {"a", "b"})
    assert ("cp.async.bulk.tensor.3d.global.shared::cta" in src) == ("c" in dims)
    if genes.get("cluster"):
        assert "3d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast" in src
    assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize(
    "workload, pads",
    [
        (Workload("gemm_nt", (2047, 2049, 2051), "float16", "float16"), {"a", "b"}),  # odd K
        (Workload("gemm", (1000, 1001, 1024), "bfloat16"), {"b"}),  # B [K, N], odd N
        (Workload("batch_gemm_nt", (3, 100, 201, 77), "float16"), {"a", "b"}),
        (Workload("gemm_gated_nt", (1000, 1000, 1001), "float16", "float16"), {"a", "b"}),
        (Workload("gemm_bias_gelu", (1000, 999, 1000), "float16", "float16"), set()),
    ],
    ids=lambda x: x.name if isinstance(x, Workload) else "",
)
def test_unaligned_rows_are_copied_once_and_odd_n_stores_single_columns(needs_nvcc, workload, pads):
    """Rows the TMA cannot address (not 16-byte multiples) are copied into zero-padded scratch
    by companion functions of the kernel's module, which the host code calls by name before
    encoding the tensor maps on the copies; an odd N stores one column at a time."""
    genome = Grammar(TARGET).check(DEFAULT.replace(raster=1), workload)
    mod = kernel_module(genome, workload)
    companions = {f"ak_{workload.name}_pad_{p}" for p in pads}
    assert {gv.name_hint for gv in mod.functions} == {"main", *companions}
    exe = build_module(mod, TARGET, check_nvcc=True)
    src = cuda_source(exe)
    for name in companions:
        assert f"{name}_kernel(" in src
        assert name in exe.mod.inspect_source("ll")  # the host calls it by name
    n = workload.shape[-2]
    paired = re.search(r"\*\(\w+\*\)\(C_ptr", src) is not None
    assert paired == (n % 2 == 0)  # the paired store only where C's rows keep it aligned
    assert "0 bytes spill stores" in ptxas_report(src)


def test_persistent_schedule_needs_more_tiles_than_sms_and_a_known_count():
    kw = dict(smem_limit=SMEM, schedule="persistent")
    sms = limits(TARGET).sm_count
    assert legal(4096, 4096, 4096, sm_count=sms, **kw) is None  # 512 tiles of 128 x 256
    assert "one wave" in legal(1024, 1024, 1024, sm_count=sms, **kw)  # 32 tiles
    assert "multiprocessor count" in legal(4096, 4096, 4096, sm_count=0, **kw)
    assert "schedule" in legal(4096, 4096, 4096, sm_count=sms, smem_limit=SMEM, schedule="x")
    with pytest.raises(GenomeError, match="schedule"):
        WgmmaParams(schedule="stream-k")
    with pytest.raises(GenomeError, match="one wave"):
        FAMILY.check(WgmmaParams(schedule="persistent"), NT, TARGET)


@pytest.mark.parametrize(
    "workload, params",
    [
        (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"), WgmmaParams()),
        (
            Workload("batch_gemm_nt", (16, 512, 1024, 256), "float16"),
            WgmmaParams(stages=3, raster=4),
        ),
        (Workload("gemm", (2000, 5000, 1000), "bfloat16", "bfloat16"), WgmmaParams(raster=4)),
        (GATED, WgmmaParams()),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_persistent_kernel_loops_over_tiles_with_one_block_per_sm(needs_nvcc, workload, params):
    """One block per SM (the target's count), each looping over its tiles; the consumers free
    the last stage of each tile, which the next tile's loads reuse; nothing spills."""
    tile = cuda_source(build_module(kernel_module(Genome("cuda.wgmma", params), workload), TARGET))
    genome = Genome("cuda.wgmma", params.replace(schedule="persistent"))
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    sms = limits(TARGET).sm_count
    assert src != tile and f"* {sms}) + ((int)blockIdx.x)" in src
    assert "for (int ti = 0;" in src and "for (int ti = 0;" not in tile
    arrives = "mbarrier_arrive_nocount_arrive_shared_b64(tvm_builtin"
    assert src.count(arrives) == tile.count(arrives) + 1  # the last stage's release
    assert "0 bytes spill stores" in ptxas_report(src)


def test_cluster_needs_paired_tiles_and_a_plain_b_tile():
    kw = dict(smem_limit=SMEM, sm_count=limits(TARGET).sm_count, cluster=2)
    assert legal(4096, 4096, 4096, **kw, raster=8) is None
    assert "raster=1 is odd" in legal(4096, 4096, 4096, **kw, raster=1)
    assert "must divide the 23 M tiles" in legal(2944, 4096, 4096, **kw, raster=8)
    assert "gated" in legal(2048, 11008, 4096, **kw, raster=8, gated=True)
    assert "whole TMA boxes" in legal(4096, 4096, 4096, **kw, raster=8, trans_b=False, block_n=64)
    assert "cluster=3" in legal(4096, 4096, 4096, **{**kw, "cluster": 3})
    with pytest.raises(GenomeError, match="cluster"):
        WgmmaParams(cluster=4)


@pytest.mark.parametrize(
    "workload, params",
    [
        (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"), WgmmaParams(cluster=2)),
        (
            Workload("gemm", (2000, 5000, 1000), "bfloat16", "bfloat16"),
            WgmmaParams(raster=4, cluster=2, schedule="persistent"),
        ),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_cluster_kernel_multicasts_half_of_b_and_meets_its_peer(needs_nvcc, workload, params):
    """Each block of a pair loads its half of B with one multicast per box into both rings,
    frees stages in both blocks (mapa + a remote arrive), and the pair meets at cluster
    barriers after the init and before exit; the kernel is launched in clusters of 2."""
    src = cuda_source(build_module(kernel_module(Genome("cuda.wgmma", params), workload), TARGET,
                                   check_nvcc=True))  # fmt: skip
    lone = cuda_source(
        build_module(
            kernel_module(Genome("cuda.wgmma", params.replace(cluster=1)), workload), TARGET
        )  # fmt: skip
    )
    call = "complete_tx__bytes_multicast__cluster("
    b_boxes = 1 if workload.op.endswith("_nt") else params.block_n // 64 // 2
    assert src.count(call) == 1 + b_boxes and call not in lone  # the helper, then its calls
    assert src.count("tvm_builtin_ptx_mapa_u32_shared__cluster_u32(mapped") == lone.count(
        "mbarrier_arrive_nocount_arrive_shared_b64(tvm_builtin"
    )
    assert src.count("tvm_builtin_ptx_barrier_cluster_wait_cluster_wait();") == 2
    assert "%%cluster_ctarank" in src and "0 bytes spill stores" in ptxas_report(src)


def test_tma_store_takes_plain_two_byte_tiles_and_fits_its_buffers():
    kw = dict(smem_limit=SMEM, store="tma", out_dtype="float16")
    assert legal(4096, 4096, 4096, **kw) is None  # 4 stages + 32 KiB of store buffers
    assert smem_bytes(256, 2, 4, "tma") - smem_bytes(256, 2, 4) == 2 * 2 * 64 * 64 * 2
    assert legal(4096, 4096, 4096, **{**kw, "out_dtype": "float32"}) is None  # 32-float boxes
    assert legal(1024, 1022, 1024, **{**kw, "out_dtype": "float32"}) is None  # scratch rows
    assert legal(2048, 11008, 4096, **kw, gated=True) is None  # 128 C columns: two boxes
    assert "narrower" in legal(2048, 11008, 4096, **kw, gated=True, block_n=64)
    assert legal(100, 256, 64, **kw, batch=3) is None  # M edge: C's map is [batch, M, N]
    assert legal(1024, 1002, 1024, **kw) is None  # C's rows not 16-byte multiples: scratch
    with pytest.raises(GenomeError, match="store"):
        WgmmaParams(store="smem")


@pytest.mark.parametrize(
    "workload",
    [
        Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"),
        Workload("gemm", (2000, 4000, 1000), "bfloat16", "bfloat16"),  # edge tiles
        Workload("gemm_nt", (4096, 4096, 4096), "float16"),  # fp32 C: 32-column boxes
        GATED,  # silu(gate) * up staged: 128 C columns per block, two boxes
        Workload("conv2d_nhwc", (4, 28, 28, 128, 256, 3, 3, 1, 1), "float16", "float16"),
    ],
    ids=lambda w: w.name,
)
def test_tma_store_stages_swizzled_boxes_and_stores_them_in_bulk(needs_nvcc, workload):
    """Each warpgroup fills boxes of 64 rows x 128 bytes through two buffers after the ring
    (the 16-byte chunk XORed with the row: 128B swizzle), fences, and one thread bulk-stores
    each box; the kernel drains its stores before exit; the direct write-back is gone; nothing
    spills."""
    params = WgmmaParams(raster=4, store="tma")
    src = cuda_source(build_module(kernel_module(Genome("cuda.wgmma", params), workload), TARGET,
                                   check_nvcc=True))  # fmt: skip
    direct = cuda_source(
        build_module(
            kernel_module(Genome("cuda.wgmma", params.replace(store="direct")), workload), TARGET
        )  # fmt: skip
    )
    box = 32 if workload.out_dtype == "float32" else 64  # one 128-byte swizzle row
    boxes = params.block_n // box // (2 if workload.op == "gemm_gated_nt" else 1)
    rank = "4d" if workload.op == "conv2d_nhwc" else "2d"  # conv: a patch of NPQK pixels
    call = f"bulk_tensor_s2g_async_bulk_tensor_{rank}_global_shared__cta_bulk_group("
    assert src.count(call) == 1 + boxes
    assert f"(r_ptr[0] & 7)) * {box // 8})" in src  # the 16-byte chunk, swizzled
    assert "cp.async.bulk.wait_group 0;" in src
    assert "2*)(C_ptr" not in src and "(C_ptr" in direct
    assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize(
    "workload, block_n, waits",
    [
        # one box a tile: every box takes the buffer the tile before's last box took
        (
            Workload("conv2d_nhwc", (16, 64, 64, 96, 96, 1, 1, 1, 0), "float16", "float16"),
            64,
            {0: True, 1: False},
        ),
        # three: the first box of a tile takes the buffer of the tile before's third
        (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"), 192, {0: True, 1: True}),
        (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"), 256, {0: False, 1: True}),
        (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float32"), 64, {0: False, 1: True}),
    ],
    ids=lambda x: getattr(x, "name", str(x)),
)
def test_tma_store_waits_for_the_store_still_reading_a_buffer(workload, block_n, waits):
    """A box's staging buffer may be refilled only after the bulk store that read it last is
    done: with an odd number of boxes a tile (16-bit C: 64 or 192 columns), the first box of a
    tile reuses the buffer of the last box before it, the store issued last, so it waits for
    all (``wait_group.read 0``; measured on the H200: a 1 x 1 conv whose two K steps are
    shorter than a box's store read a refilled buffer and failed the gate); an even number
    keeps one store in flight (``read 1``)."""
    params = WgmmaParams(block_n=block_n, schedule="persistent", store="tma")
    src = cuda_source(build_module(kernel_module(Genome("cuda.wgmma", params), workload), TARGET))
    assert {r: builtin_calls(src, f"wait_group_read_{r}") > 0 for r in (0, 1)} == waits


@pytest.mark.parametrize(
    "workload",
    [
        Workload("gemm_nt", (8205, 5921, 2949), "float16", "float16"),
        Workload("batch_gemm", (2, 256, 1001, 512), "bfloat16", "bfloat16"),
        Workload("gemm_nt", (3000, 1022, 1024), "float16"),  # fp32 C: 4088-byte rows
    ],
    ids=lambda w: w.name,
)
def test_tma_store_of_unaligned_rows_goes_through_scratch_then_a_copy(needs_nvcc, workload):
    """C rows that are not 16-byte multiples cannot be a TMA tensor's rows: the TMA stores
    into a scratch C of whole 128-byte lines, and the host code then launches the companion
    that copies its first N columns of each row into C, after the kernel: UNPAD_ELEMS
    elements a thread, all loaded before the first is stored (one a thread ran at 0.7 TB/s)."""
    genome = Grammar(TARGET).check(DEFAULT.replace(raster=0, store="tma"), workload)
    mod = kernel_module(genome, workload)
    unpad = f"ak_{workload.name}_unpad_c"
    assert unpad in {gv.name_hint for gv in mod.functions}
    exe = build_module(mod, TARGET, check_nvcc=True)
    src = cuda_source(exe)
    host = exe.mod.inspect_source("ll").split("@__tvm_ffi_main(")[1].split("\ndefine ")[0]
    launches = re.findall(rf"call i32 %\d+\(ptr nonnull @\.tvm_func\.(main|{unpad})_kernel", host)
    assert launches == ["main", unpad]
    n = workload.shape[-2]  # N of (B,) M, N, K
    line = 128 // (4 if workload.out_dtype == "float32" else 2)
    copy = src.split(f"{unpad}_kernel(")[-1]  # the companion's body: row i / N of N columns,
    assert f"/ {n})" in copy and f"* {-(-n // line) * line})" in copy  # read from a line-row
    loads, stores = (re.findall(rf"\b{x}_ptr\[", copy) for x in ("X", "Y"))
    assert len(loads) == len(stores) == UNPAD_ELEMS > 1
    assert copy.rindex("X_ptr[") < copy.index("Y_ptr[")
    aligned = Workload(workload.op, (*workload.shape[:-2], 1024, workload.shape[-1]),
                       workload.dtype, workload.out_dtype)  # fmt: skip
    assert not any("unpad" in gv.name_hint for gv in kernel_module(genome, aligned).functions)
    # a 2-D GEMM also takes C as a view of rows padded to whole lines (torch's loader allocates
    # them): its row pitch is a parameter, and where the rows are that far apart or further
    # (16-byte multiples) the TMA stores into C and nothing is copied; plain rows take the copy,
    # other pitches are refused; a batch keeps its 3-D map of plain rows
    main = mod["main"]
    pitch = -(-n // line) * line if workload.op != "batch_gemm" else None
    assert out_pitch(main) == pitch and out_pitch(kernel_module(genome, aligned)["main"]) is None
    script = main.script()
    if pitch:
        assert 'strides=("c_pitch", 1)' in script
        assert f"C.strides[0] == {n} or C.strides[0] >= {pitch} and C.strides[0] % " in script
        assert f"if C.strides[0] != {n}:" in script  # the TMA into the view
        assert f"if C.strides[0] == {n}:" in script  # then the copy
    else:
        assert "strides=" not in script.split("\n", 2)[1]
    assert "0 bytes spill stores" in ptxas_report(src)


def _shipped_wgmma() -> list:
    entries = [e for f in ("gemm", "conv2d") for e in Library("cuda", f, shipped_root()).entries]
    return [e for e in entries if e["genome"]["family"] == "cuda.wgmma"]


def _register_kind(entry: dict) -> tuple:
    """What a kernel's register use depends on: its genome, op and epilogue, the operands' and
    the output's element sizes (fp16 and bf16 fragments are the same registers) and whether
    the edge tiles are predicated. Entries of one kind compile to the same register budget."""
    work = Workload.from_json(entry["workload"])
    sizes = tuple(d.replace("bfloat16", "float16") for d in (work.dtype, work.out_dtype))
    aligned = all(d % 64 == 0 for d in work.shape)
    return entry["key"], work.op, sizes, work.epilogue, work.precision, aligned


def _one_per_register_kind(entries: list) -> list:
    kinds = {}
    for entry in entries:
        kinds.setdefault(_register_kind(entry), entry)
    return list(kinds.values())


def test_shipped_genomes_are_legal_on_their_workloads():
    """Every cuda.wgmma genome of the shipped library is legal for the workload it was measured
    on (the build below takes one entry of each register kind)."""
    grammar = Grammar(TARGET)
    for entry in _shipped_wgmma():
        grammar.check(Genome.from_json(entry["genome"]), Workload.from_json(entry["workload"]))


@pytest.mark.parametrize(
    "entry",
    _one_per_register_kind(_shipped_wgmma()),
    ids=lambda e: e["key"] + e["workload"]["name"],
)
def test_shipped_genomes_build_on_their_workloads_without_spills(needs_nvcc, entry):
    """The shipped cuda.wgmma kernels build with nvcc with nothing spilled: one entry of each
    register kind (`_register_kind`), since the library grows by shapes of kinds it holds."""
    genome, workload = Genome.from_json(entry["genome"]), Workload.from_json(entry["workload"])
    genome = Grammar(TARGET).check(genome, workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    assert "0 bytes spill stores" in ptxas_report(src)


def test_generator_proposes_wgmma_for_unaligned_shapes():
    """8205 x 5921 x 2949 (odd K and N, 65 M tiles): every raster is legal now that the last
    raster group may be ragged, and the padded copies make the rows loadable, so the generator
    proposes cuda.wgmma kernels there rather than only the mma.sync family's padded GEMM."""
    workload = Workload("gemm_nt", (8205, 5921, 2949), "float16", "float16")
    runs = [Generator(Grammar(TARGET), workload, seed=seed).propose(16) for seed in range(4)]
    wgmma = [[g for g in run if g.family == "cuda.wgmma"] for run in runs]
    assert all(wgmma) and sum(map(len, wgmma)) >= 16  # a family draw is random: over 4 seeds
    assert {g.params.raster for run in wgmma for g in run} - {0, 1}  # groups over 65 M tiles


def test_split_k_is_legal_only_where_the_tiles_leave_multiprocessors_idle():
    """splits > 1 needs a grid smaller than the GPU (halving the splits must leave SMs idle),
    a split count that divides the K steps, plain GEMM partials and the direct store."""
    sms = limits(TARGET).sm_count
    kw = dict(smem_limit=SMEM, sm_count=sms, consumers=1, block_n=128, raster=1)
    assert legal(16, 4096, 4096, splits=4, **kw) is None  # 32 tiles x 4
    assert legal(256, 256, 524288, splits=32, **kw) is None  # 8 tiles x 32
    assert "already fill" in legal(4096, 4096, 4096, splits=2, **kw)
    assert "already fill" in legal(16, 4096, 4096, splits=16, **kw)  # 32 x 8 >= 132
    assert "does not divide" in legal(16, 4096, 1000, splits=32, **kw)  # 16 K steps
    assert "under 4" in legal(16, 4096, 1000, splits=8, **kw)  # 2 K steps per block
    assert "store=direct" in legal(16, 4096, 4096, splits=2, store="tma", **kw)
    assert "cluster=1" in legal(128, 4096, 4096, splits=2, **{**kw, "raster": 2}, cluster=2)
    assert "gated" in legal(16, 4096, 4096, splits=2, gated=True, **kw)
    assert "multiprocessor count" in legal(16, 4096, 4096, splits=2, **{**kw, "sm_count": 0})
    with pytest.raises(GenomeError, match="splits"):
        WgmmaParams(splits=3)


SPLIT_K = [
    (Workload("gemm_nt", (16, 4096, 4096), "float16", "float16"), 4, ()),
    (Workload("gemm_bias_gelu", (16, 1000, 1003), "bfloat16", "bfloat16"), 2, ("a", "b")),
    (Workload("gemm", (64, 1001, 4096), "float16"), 2, ("b",)),  # odd N: single columns
    (Workload("batch_gemm_nt", (3, 100, 201, 500), "float16", "float16"), 2, ("a", "b")),
    (
        Workload(
            "gemm_nt",
            (16, 4096, 4096),
            "float16",
            "float16",
            Epilogue(F("silu", F("add", ACC, operand(0))), ("n",)),
        ),
        2,
        (),
    ),  # fmt: skip
]


@pytest.mark.parametrize("workload, splits, pads", SPLIT_K, ids=lambda x: getattr(x, "name", ""))
def test_split_k_stores_partials_and_a_companion_sums_them_after_the_kernel(
    needs_nvcc, workload, splits, pads
):
    """With splits > 1 the kernel never writes C: its blocks store f32 partials into a
    workspace, and the host code then launches the reduction companion with the pointers in
    its kernel's parameter order; the reduction applies the epilogue."""
    genome = Grammar(TARGET).check(
        DEFAULT.replace(consumers=1, block_n=128, raster=0, splits=splits), workload
    )
    mod = kernel_module(genome, workload)
    reduce = f"ak_{workload.name}_reduce"
    pad_names = {f"ak_{workload.name}_pad_{p}" for p in pads}
    assert {gv.name_hint for gv in mod.functions} == {"main", reduce, *pad_names}
    exe = build_module(mod, TARGET, check_nvcc=True)
    src = cuda_source(exe)
    main_sig = re.search(r"void __launch_bounds__\(\d+\) main_kernel\(([^)]*)\)", src).group(1)
    assert "P_ptr" in main_sig and "C_ptr" not in main_sig
    red_sig = re.search(rf"{reduce}_kernel\(([^)]*)\)", src).group(1)
    names = re.findall(r"(\w+)_ptr", red_sig)
    assert names == sorted(names) and {"C", "P"} <= set(names)
    assert ("Bias" in names) == (workload.op == "gemm_bias_gelu")
    assert ("x0" in names) == (workload.epilogue is not None)
    if splits > 2:  # the fixed summation order (one step for 2 is unrolled)
        assert f"for (int s = 1; s < {splits}; ++s)" in src
    host = exe.mod.inspect_source("ll").split("@__tvm_ffi_main(")[1].split("\ndefine ")[0]
    launches = re.findall(rf"call i32 %\d+\(ptr nonnull @\.tvm_func\.(main|{reduce})_kernel", host)
    assert launches == ["main", reduce]  # the reduction after the kernel, in main's host code
    assert "0 bytes spill stores" in ptxas_report(src)


def test_cluster_reduction_is_legal_only_for_a_tile_schedule_of_at_most_8_splits():
    """reduction=cluster makes a tile's splits one cluster: it needs split-K, a portable cluster
    (8 blocks) and blocks launched per tile; the search never draws it where no split is legal."""
    kw = {"smem_limit": SMEM, "sm_count": 132, "block_n": 128, "consumers": 1, "raster": 1}
    assert legal(64, 4096, 4096, splits=4, reduction="cluster", **kw) is None
    assert "splits > 1" in legal(64, 4096, 4096, reduction="cluster", **kw)
    assert "portable cluster" in legal(16, 1024, 65536, splits=16, reduction="cluster", **kw)
    assert "schedule=tile" in legal(
        64, 4096, 4096, splits=4, reduction="cluster", schedule="persistent", **kw
    )
    assert "reduction" in legal(64, 4096, 4096, splits=4, reduction="atomic", **kw)
    wide = {**kw, "block_n": 256, "consumers": 2}  # a 128 KiB f32 tile: 2 stages hold 96 KiB
    assert legal(256, 256, 65536, splits=8, reduction="cluster", **wide, stages=3) is None
    assert "parks the f32 tile" in legal(
        256, 256, 65536, splits=8, reduction="cluster", **wide, stages=2
    )
    with pytest.raises(GenomeError, match="reduction"):
        WgmmaParams(reduction="atomic")
    square = Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16")
    assert FAMILY.impossible(square, TARGET)["reduction"] == ("cluster",)  # 512 tiles: no split
    decode = Workload("gemm_nt", (16, 4096, 4096), "float16", "float16")
    assert "reduction" not in FAMILY.impossible(decode, TARGET)


CLUSTER_SPLITS = [
    (Workload("gemm_nt", (64, 4096, 4096), "float16", "float16"), 4, 128),
    (Workload("gemm_bias_gelu", (16, 1000, 4091), "bfloat16", "bfloat16"), 8, 64),
    (Workload("batch_gemm_nt", (3, 100, 201, 500), "float16", "float16"), 2, 128),
]


@pytest.mark.parametrize("workload, splits, block_n", CLUSTER_SPLITS, ids=lambda x: str(x))
def test_cluster_reduction_sums_the_splits_in_shared_memory_in_one_launch(
    needs_nvcc, workload, splits, block_n
):
    """With reduction=cluster there is no workspace and no second kernel: the kernel launches a
    tile's splits as one cluster, each block parks its f32 tile in its shared memory, reads its
    share of every block's tile through the cluster window in rank order, and writes C."""
    genes = {"consumers": 1, "block_n": block_n, "raster": 0, "splits": splits}
    genome = Grammar(TARGET).check(DEFAULT.replace(reduction="cluster", **genes), workload)
    mod = kernel_module(genome, workload)
    assert not any(gv.name_hint.endswith("_reduce") for gv in mod.functions)
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    main_sig = re.search(r"void __launch_bounds__\(\d+\) main_kernel\(([^)]*)\)", src).group(1)
    assert "C_ptr" in main_sig and "P_ptr" not in main_sig
    assert "%%cluster_ctarank" in src and "ld.shared::cluster.f32" in src
    # every block's mapped window, loaded in rank order 0 .. splits-1 for each fragment
    loads = re.findall(r"ld_shared__cluster_f32\(got_ptr\[(\d+)\], \(base_ptr\[(\d+)\]", src)
    assert [int(r) for _, r in loads[:splits]] == list(range(splits))
    assert len(loads) == 4 * splits
    assert src.count("barrier_cluster_arrive_cluster_arrive();") >= 3  # producer, consumers, end
    workspace = kernel_module(Grammar(TARGET).check(DEFAULT.replace(**genes), workload), workload)
    assert any(gv.name_hint.endswith("_reduce") for gv in workspace.functions)
    assert "0 bytes spill stores" in ptxas_report(src)


def test_generator_proposes_split_k_for_decode_and_not_for_large_grids():
    """The grammar admits split-K by shape: a 16-row decode GEMM (32 tiles of 64 x 128) gets
    split proposals; 4096^3 (512 tiles) gets none."""
    decode = Workload("gemm_nt", (16, 4096, 4096), "float16", "float16")
    generator = Generator(Grammar(TARGET), decode, seed=0)
    proposals = generator.propose(40, families={"cuda.wgmma"})  # (cuda.gemv takes decode too)
    assert {g.params.splits for g in proposals} - {1}
    assert generator.probabilities("cuda.wgmma", "splits")[8] > 0
    large = Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16")
    square = Generator(Grammar(TARGET), large, seed=0)
    assert {g.params.splits for g in square.propose(40) if g.family == "cuda.wgmma"} == {1}


def test_the_family_seeds_split_k_where_the_default_grid_leaves_sms_idle():
    """The family's own first proposal follows the shape: for decode, one-warpgroup tiles and
    the (block_n, splits) that fill the last wave best, fewest splits first, summed in the
    cluster; split-K with the most legal splits for large K over a small output (measured
    first, ahead of the library's genomes for similar workloads, which may be illegal there);
    elsewhere the default tile, persistent with the TMA store where C allows it, else with C
    written in row runs."""
    from autokernel_tvm.space.search import Search

    decode = Workload("gemm_nt", (16, 4096, 4096), "float16", "float16")
    seed = FAMILY.seed(decode, TARGET)
    # 64 tiles x 2 splits = 128 blocks (as full a wave as 32 x 4 or 16 x 8, fewer splits)
    assert (seed.consumers, seed.block_n, seed.splits, seed.reduction) == (1, 64, 2, "cluster")
    wide = FAMILY.seed(Workload("gemm_nt", (64, 11008, 4096), "bfloat16", "bfloat16"), TARGET)
    # 172 or 86 tiles fill 65% of their last wave whatever the split: none, the wider tile
    assert (wide.consumers, wide.block_n, wide.splits, wide.store) == (1, 128, 1, "tma")
    vocab = FAMILY.seed(Workload("gemm_nt", (16, 128256, 4096), "float16", "float16"), TARGET)
    # 64-row tiles; the widest whose 6 stages fit in shared memory
    assert (vocab.consumers, vocab.block_n, vocab.splits) == (1, 128, 1)
    large_k = FAMILY.seed(Workload("gemm_nt", (256, 256, 524288), "float16"), TARGET)
    assert (large_k.consumers, large_k.block_n, large_k.splits) == (2, 256, 64)
    big = FAMILY.seed(Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"), TARGET)
    assert big == DEFAULT.params.replace(schedule="persistent", store="tma")
    odd = FAMILY.seed(Workload("gemm_nt", (8205, 5921, 2949), "float16", "float16"), TARGET)
    # C's 5921-column rows: TMA-stored into rows padded to 5952 (the result a view of them);
    # 65 x 31 tiles 192 wide in 16 rounds fill the SMs as 65 x 24 tiles 256 wide in 12 do
    assert odd == DEFAULT.params.replace(schedule="persistent", store="tma", block_n=192)
    small = FAMILY.seed(Workload("gemm", (2047, 2049, 2051), "bfloat16", "bfloat16"), TARGET)
    assert (small.block_n, small.store) == (192, "tma")  # 176 tiles against 144: both 2 rounds
    odd32 = FAMILY.seed(Workload("gemm_nt", (8205, 5921, 2949), "float16", "float32"), TARGET)
    assert odd32 == DEFAULT.params.replace(schedule="persistent", store="tma")  # rows spill
    assert FAMILY.seed(NT, TARGET).splits == 2  # 1024^3: 32 tiles, 16 K steps, 8 per block
    up = FAMILY.seed(Workload("gemm_nt", (2048, 11008, 4096), "float16", "float16"), TARGET)
    assert up == DEFAULT.params.replace(
        schedule="streamk", store="tma", splits=2, reduction="cluster"
    )  # 688 tiles: 5 waves of 132 and 28 tiles, split over 56 blocks
    # 9 x 15 tiles 256 wide (the last column of tiles a quarter full): a wave and 3 tiles in
    # halves, 384 columns on the busiest SM; 192 wide fits N = 2112: 165 tiles, 192 + 96
    tail = FAMILY.seed(Workload("gemm_nt", (1845, 2112, 9852), "float16", "float16"), TARGET)
    assert tail == up.replace(block_n=192)
    # the same columns (or within 3%) keep 256-wide tiles: 2048 x 32000 x 4096, 3936 vs 3968
    vocab = FAMILY.seed(Workload("gemm_nt", (2048, 32000, 4096), "float16", "float16"), TARGET)
    assert vocab == up
    # the first tensor-core genome measured (cuda.gemv's default goes before it: a whole-kernel
    # family the first rung leaves out gets a trial first)
    search, measured = Search(Grammar(TARGET), decode, 8), []
    for genome, trials in search:
        measured.append(genome)
        search.learn(genome, trials, 1.0)
    assert next(g for g in measured if g.family == "cuda.wgmma") == Genome("cuda.wgmma", seed)


@pytest.mark.parametrize(
    "workload",
    [
        Workload("gemm_nt", (8205, 5921, 2949), "float16", "float16"),  # 192 wide, row stores
        Workload("gemm", (2047, 2049, 2051), "bfloat16", "bfloat16"),  # the same, B as [K, N]
        Workload("gemm_nt", (1845, 2112, 9852), "float16", "float16"),  # 192-wide streamk
        Workload("gemm_scaled_nt", (4096,) * 3, "float8_e4m3fn", "bfloat16"),  # K-step pairs
        Workload("gemm_scaled_nt", (8192,) * 3, "float8_e4m3fn", "bfloat16"),  # 192, promoted
    ],
    ids=lambda w: f"{w.op}_{w.dtype}_{w.shape[0]}",
)
def test_seeds_build_without_spills(needs_nvcc, workload):
    """The family's first proposals where they are tiles 192 wide or sum fp8 in fp32: what the
    tuner measures first must not spill (a spilling seed costs every run its first trial)."""
    genome = Grammar(TARGET).check(Genome("cuda.wgmma", FAMILY.seed(workload, TARGET)), workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET))
    assert spill_free(src)


@pytest.mark.parametrize(
    "size, genes",
    [
        (4096, {"block_n": 128, "accum": "pipelined"}),  # 4 rounds of 128-wide tiles: 97% full
        (8192, {"block_n": 192, "accum": "promoted"}),  # 21 rounds of 192-wide tiles: 98.5%
    ],
)
def test_fp8_seeds_sum_in_fp32_on_the_tiles_that_fill_the_sms(size, genes):
    """fp8 at torch._scaled_mm's default accuracy: 192-wide tiles with split registers where
    they fill the SMs' rounds at least as well as 128-wide ones, else 128-wide tiles summing
    K-step pairs; both legal, both through the grammar's check."""
    workload = Workload("gemm_scaled_nt", (size,) * 3, "float8_e4m3fn", "bfloat16")
    seed = FAMILY.seed(workload, TARGET)
    assert {g: getattr(seed, g) for g in genes} == genes and seed.regs == "split"
    Grammar(TARGET).check(Genome("cuda.wgmma", seed), workload)


@pytest.mark.parametrize(
    "workload, more",
    [
        (Workload("gemm_nt", (2048, 4096, 1000), "float16", "float16"), {"a", "b"}),  # K rows
        (Workload("gemm", (777, 1000, 520), "bfloat16", "bfloat16"), {"a", "b"}),  # K, N rows
        (Workload("gemm_nt", (2047, 2049, 2051), "float16", "float16"), set()),  # copied anyway
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_pad_lines_also_copies_rows_that_are_not_whole_lines(needs_nvcc, workload, more):
    """pad=lines copies operands whose rows are 16-byte but not 128-byte multiples (which the
    TMA loaded ~25% slower on the H200); where that adds no copy it is a duplicate, refused."""
    needed = Grammar(TARGET).check(DEFAULT.replace(raster=1), workload)
    lines = DEFAULT.replace(raster=1, pad="lines")
    if not more:
        with pytest.raises(GenomeError, match="nothing more"):
            Grammar(TARGET).check(lines, workload)
        return
    lines = Grammar(TARGET).check(lines, workload)
    names = {gv.name_hint for gv in kernel_module(needed, workload).functions}
    padded = kernel_module(lines, workload)
    added = {gv.name_hint for gv in padded.functions} - names
    assert added == {f"ak_{workload.name}_pad_{p}" for p in more}
    src = cuda_source(build_module(padded, TARGET, check_nvcc=True))
    assert all(f"ak_{workload.name}_pad_{p}_kernel(" in src for p in more)
    with pytest.raises(GenomeError, match="pad"):
        WgmmaParams(pad="always")


def test_the_generator_never_draws_gene_values_the_shape_rules_out():
    """Values no genome may take on a workload (pad=lines where every row is a whole line,
    splits that even the fewest tiles leave no room for) are masked out of the draws, so
    samples are not spent on them; values some genome may take stay."""
    square = Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16")
    ruled = FAMILY.impossible(square, TARGET)
    assert ruled["pad"] == ("lines",) and set(ruled["splits"]) == {2, 4, 8, 16, 32, 64}
    decode = FAMILY.impossible(Workload("gemm_nt", (16, 4096, 4096), "float16"), TARGET)
    assert set(decode["splits"]) == {32, 64}  # 16 tiles of 128 x 256: 16 x 16 >= 132
    assert decode["order"] == ("hilbert",) and "order" not in ruled  # one row of tiles
    odd = FAMILY.impossible(Workload("gemm_nt", (2048, 4096, 1000), "float16"), TARGET)
    assert "pad" not in odd
    generator = Generator(Grammar(TARGET), square, seed=0)
    assert generator.probabilities("cuda.wgmma", "pad")["lines"] == 0
    drawn = [g for g in generator.propose(30) if g.family == "cuda.wgmma"]
    assert drawn and all(g.params.splits == 1 and g.params.pad == "needed" for g in drawn)


@pytest.mark.parametrize(
    "dtype, genes",
    [
        ("float8_e4m3fn", {}),
        ("float8_e5m2", {"schedule": "persistent", "store": "tma", "raster": 8}),
    ],
)
def test_fp8_kernel_reads_bytes_and_scales_the_product(needs_nvcc, dtype, genes):
    """fp8 A @ B.T (the layout wgmma reads fp8 in): A and B are bytes to the TMA and the ring,
    a K step is one 128-byte row of 128 values and each wgmma takes K = 32; the per-tensor
    scales are parameters between B and C, as torch._scaled_mm takes them."""
    kw = {"in_dtype": dtype, "out_dtype": "bfloat16", "raster": 1, **genes}
    mod = wgmma_module(4096, 4096, 4001, smem_limit=SMEM, sm_count=132, symbol="ak_f8", **kw)
    assert len(mod["main"].params) == 5  # A, B, scale_a, scale_b, C
    # the caller's fp8 tensors, as they are (bytes inside the kernel only)
    assert re.search(
        rf'A: T.Buffer\(\(4096, 4001\), "{dtype}".*B: T.Buffer\(\(4096, 4001\), '
        rf'"{dtype}"',
        mod["main"].script(),
    )
    assert {gv.name_hint for gv in mod.functions} == {"main", "ak_f8_pad_a", "ak_f8_pad_b"}
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    kind = {"float8_e4m3fn": "e4m3", "float8_e5m2": "e5m2"}[dtype]
    assert f"m64n256k32.f32.{kind}.{kind}" in src
    assert re.search(r"main_kernel\([^)]*scale_a_ptr, float\* __restrict__ scale_b_ptr\)", src)
    assert "ak_f8_pad_a_kernel(uchar* __restrict__ X_ptr" in src  # 16-value chunks of bytes
    assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize("workload, genes", FP8, ids=lambda x: str(x)[:60])
def test_fp8_workloads_tune_in_the_family(needs_nvcc, workload, genes):
    """gemm_scaled_nt (torch._scaled_mm) is a workload of the family: the grammar takes its
    genomes, the seed is the persistent TMA-store structure (measured at 1.08x
    torch._scaled_mm with 256-wide tiles and fast accumulation, H200, kernel level; where the
    sums are promoted, at 4096^3 128-wide tiles summing K-step pairs), and each case of the
    GPU gate builds: fp8 bytes to the TMA, wgmma k32, the scales read in the write-back;
    promoted: each K step's first wgmma
    overwrites its accumulators (scale-d 0), waited for and added into a second set; without
    spills where C is stored by the TMA (a direct store with edges spills 8-12 bytes, as it
    does in no 16-bit case)."""
    assert FAMILY.applies(workload, TARGET) is None
    seed = FAMILY.seed(workload, TARGET)
    promoted = workload.precision != "fast_accum"
    assert seed.accum in (("promoted", "pipelined") if promoted else ("tensor",))
    if workload.shape == (4096, 4096, 4096):
        assert (seed.schedule, seed.store, seed.block_n) == (
            "persistent", "tma", 128 if promoted else 256
        )  # fmt: skip
    genome = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    kind = {"float8_e4m3fn": "e4m3", "float8_e5m2": "e5m2"}[workload.dtype]
    assert f"k32.f32.{kind}.{kind}" in src and "scale_b_ptr[0]" in src
    body = main_body(src)
    assert ("total_ptr" in body) == promoted
    # each wgmma's last argument (a constant 1 is printed "(uint)1")
    scale_d = re.findall(r"desc_b_ptr\[0\], (?:\(uint\))?([01])\);", body)
    assert set(scale_d) == ({"0", "1"} if promoted else {"1"})
    if genome.params.store == "tma":
        assert "0 bytes spill stores" in ptxas_report(src)


def test_fp8_sums_are_promoted_unless_fast_accumulation_is_allowed():
    """torch._scaled_mm sums fp8 products in fp32 by default: such a workload takes only
    accum=promoted genomes (the grammar never draws the tensor core's ~14-bit sum over all of
    K, nor 256-wide tiles, whose two accumulator sets fit in no thread); fast_accum takes both;
    16-bit inputs never promote."""
    fp8 = Workload("gemm_scaled_nt", (4096, 4096, 4096), "float8_e4m3fn", "bfloat16")
    fast = Workload(fp8.op, fp8.shape, fp8.dtype, fp8.out_dtype, precision="fast_accum")
    assert FAMILY.impossible(fp8, TARGET)["accum"] == ("tensor",)
    assert 256 in FAMILY.impossible(fp8, TARGET)["block_n"]
    assert "accum" not in FAMILY.impossible(fast, TARGET)
    assert FAMILY.impossible(NT, TARGET)["accum"] == ("promoted", "pipelined")
    with pytest.raises(GenomeError, match="accum=promoted"):
        FAMILY.check(DEFAULT.params.replace(block_n=128), fp8, TARGET)
    kw = dict(smem_limit=SMEM, sm_count=132, in_dtype="float8_e4m3fn", accum="promoted")
    assert "296 registers" in legal(4096, 4096, 4096, block_n=256, consumers=1, **kw)
    assert "fp8 only" in legal(4096, 4096, 4096, **{**kw, "in_dtype": "float16"})
    assert legal(4096, 4096, 4096, block_n=128, **kw) is None
    assert (
        "accum=promoted" in FAMILY.notes(FAMILY.seed(fp8, TARGET), fp8)[0]
        or "promoted" in (FAMILY.notes(FAMILY.seed(fp8, TARGET), fp8)[0])
    )


def test_register_budgets_per_role():
    """regs=split moves the producer warpgroup's registers to the consumers (setmaxnreg): 232 a
    consumer thread of a 384-thread block instead of its launch share of 168, which is what
    two promoted fp8 sets of 64 and a third in flight need; one consumer has 255 already."""
    lim = limits(TARGET)
    regs = (lim.regs_per_block, lim.regs_per_thread)
    assert launch_regs(2, *regs) == 168 and launch_regs(1, *regs) == 255
    assert consumer_regs(Structure(), *regs) == 168
    assert consumer_regs(Structure(regs="split"), *regs) == 232
    # what the producer gives back covers the consumers' increase exactly
    assert 128 * (168 - 40) >= 256 * (232 - 168)
    kw = dict(smem_limit=SMEM, sm_count=132)
    assert "already has 255" in legal(4096, 4096, 4096, consumers=1, regs="split", **kw)
    assert "regs 'some'" in legal(4096, 4096, 4096, regs="some", **kw)
    with pytest.raises(GenomeError, match="regs="):
        WgmmaParams(regs="some")
    fp8 = dict(kw, in_dtype="float8_e4m3fn", block_n=128, accum="pipelined")
    assert "232 registers" in legal(4096, 4096, 4096, **fp8) and "its 168" in legal(
        4096, 4096, 4096, **fp8
    )
    assert legal(4096, 4096, 4096, regs="split", **fp8) is None
    assert "424 registers" in legal(4096, 4096, 4096, **{**fp8, "block_n": 256, "regs": "split"})
    assert "fp8 only" in legal(4096, 4096, 4096, **{**fp8, "in_dtype": "float16"})


@pytest.mark.parametrize("workload, genes", REGS, ids=lambda x: str(x)[:60])
def test_split_registers_build_with_setmaxnreg_and_nothing_spills(needs_nvcc, workload, genes):
    """regs=split: the producer warpgroup's setmaxnreg.dec to 40 and the consumers' .inc to
    232, where every warp of the group runs it; ptxas launches the kernel at exactly its
    launch-bounds share (168): the consumers' increase is drawn from what the block was
    launched with, so a kernel launched with fewer would leave .inc waiting forever."""
    genome = Grammar(TARGET).check(DEFAULT.replace(regs="split", **genes), workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    body = main_body(src)
    dec, inc = (
        body.index("setmaxnreg_dec_sync_aligned_u32_40();"),
        body.index("setmaxnreg_inc_sync_aligned_u32_232();"),
    )
    assert dec < inc  # the producer's branch comes first, the consumers' in its else
    report = ptxas_report(src)
    assert "Used 168 registers" in report and "0 bytes spill stores" in report
    even = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    assert "setmaxnreg" not in cuda_source(build_module(kernel_module(even, workload), TARGET))


@pytest.mark.parametrize("workload, genes", WIDE192, ids=lambda x: str(x)[:60])
def test_wide192_tiles_build_without_spills(needs_nvcc, workload, genes):
    """block_n=192: wgmma m64n192 (96 accumulators a thread), B boxes of 192 rows (or three of
    64 columns, or two 96-row multicast halves), and where the sums are promoted fp8 the two
    sets of 96 in the 232 registers of regs=split; nothing spills."""
    genome = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    assert re.search(r"m64n192k(16|32)", src)
    assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize("workload, genes", CONSUMERS3, ids=lambda x: str(x)[:60])
def test_three_consumers_build_without_spills(needs_nvcc, workload, genes):
    """consumers=3: a 512-thread block, 192-row tiles; each warpgroup's 64 rows and its
    write-back barrier (ids 1-3, the consumers' common one 4); nothing spills in the 128
    registers a thread has (152 with regs=split)."""
    genome = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    assert "__launch_bounds__(512)" in src
    assert "0 bytes spill stores" in ptxas_report(src)


def test_three_consumers_legality():
    kw = dict(smem_limit=SMEM, sm_count=132, consumers=3)
    assert legal(4096, 4096, 4096, block_n=192, **kw) is None
    assert "its 128" in legal(4096, 4096, 4096, block_n=256, **kw)
    assert "its 152" in legal(4096, 4096, 4096, block_n=256, regs="split", **kw)
    assert "pingpong" in legal(4096, 4096, 4096, block_n=128, schedule="persistent",
                               arrangement="pingpong", **kw)  # fmt: skip
    assert "shared memory" in legal(4096, 4096, 4096, block_n=192, stages=4, store="tma", **kw)
    assert FAMILY.held_back["consumers"] == (3,)


@pytest.mark.parametrize("workload, genes", K_ATOMS2, ids=lambda x: str(x)[:60])
def test_two_k_slices_a_stage_build_without_spills(needs_nvcc, workload, genes):
    """k_atoms=2: each stage's barrier expects both slices' bytes, its loads are two boxes
    per operand (the second 64 elements further along K) into consecutive ring slots, and its
    wgmmas read both slots: twice the wgmmas per barrier wait; nothing spills."""
    genome = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    one = Grammar(TARGET).check(genome.replace(k_atoms=1), workload)
    two_src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    one_src = cuda_source(build_module(kernel_module(one, workload), TARGET))

    for what, times in (("_g2s_", 2), ("mma_async", 2), ("mbarrier_wait", 1)):
        assert builtin_calls(two_src, what) == times * builtin_calls(one_src, what), what
    assert "0 bytes spill stores" in ptxas_report(two_src)


@pytest.mark.parametrize("workload, genes", PRODUCER_WARPS2, ids=lambda x: str(x)[:60])
def test_two_producer_warps_build_without_spills(needs_nvcc, workload, genes):
    """producer_warps=2: the full barriers expect two arrivals, each loading thread arrives
    with its operand's bytes (together the stage's) and issues that operand's copies alone, the
    same copies one thread issues; nothing spills."""
    genome = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    one = Grammar(TARGET).check(genome.replace(producer_warps=1), workload)
    two_src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    one_src = cuda_source(build_module(kernel_module(one, workload), TARGET))

    assert builtin_calls(two_src, "_g2s_") == builtin_calls(one_src, "_g2s_")

    def counts(src, call):  # the (uint) constant each call passes last
        return re.findall(call + r".*?\(uint\)(\d+)\);", main_body(src))

    assert counts(two_src, r"init_shared_b64\(.*?full_ptr") == ["2"]
    assert counts(one_src, r"init_shared_b64\(.*?full_ptr") == ["1"]
    whole = [int(x) for x in counts(one_src, "expect_tx_shared_b64")]
    parts = [int(x) for x in counts(two_src, "expect_tx_shared_b64")]  # A's then B's, each site
    assert len(parts) == 2 * len(whole) and sum(parts) == sum(whole)
    assert "0 bytes spill stores" in ptxas_report(two_src)


def test_two_producer_warps_legality():
    kw = dict(smem_limit=SMEM, sm_count=132)
    assert legal(4096, 4096, 4096, producer_warps=2, **kw) is None
    assert "producer_warps=3" in legal(4096, 4096, 4096, producer_warps=3, **kw)
    with pytest.raises(GenomeError, match="bad-producer-warps|producer_warps=4"):
        DEFAULT.replace(producer_warps=4)
    assert FAMILY.held_back["producer_warps"] == (2,)


def test_two_k_slices_legality():
    kw = dict(smem_limit=SMEM, sm_count=132, k_atoms=2)
    assert legal(4096, 4096, 4096, block_n=128, stages=3, **kw) is None
    assert "shared memory" in legal(4096, 4096, 4096, block_n=256, stages=3, **kw)
    assert "16-bit 2-D GEMMs" in legal(4096, 4096, 4096, in_dtype="float8_e4m3fn", **kw)
    assert "16-bit 2-D GEMMs" in legal(4096, 4096, 4096, batch=2, block_n=128, stages=3, **kw)
    assert "k_atoms=3" in legal(4096, 4096, 4096, **{**kw, "k_atoms": 3})
    # K steps are counted in stages: 4096 / 128 = 32, split 8 ways leaves 4 a block, 16 ways 2
    decode = dict(block_n=256, consumers=1, raster=1, stages=2, **kw)  # 16 tiles
    assert legal(64, 4096, 4096, splits=8, **decode) is None
    assert "2 K steps per block, under 4" in legal(64, 4096, 4096, splits=16, **decode)
    assert legal(64, 4096, 4096, splits=16, **{**decode, "k_atoms": 1}) is None
    assert "k_atoms" not in FAMILY.held_back  # released: decode 0.972 vs 0.967x (H200)


def test_wide192_legality():
    kw = dict(smem_limit=SMEM, sm_count=132, block_n=192)
    assert legal(4096, 4096, 4096, stages=5, **kw) is None  # 5 x (128 + 192) x 128 B
    assert "whole TMA boxes" in legal(4096, 4096, 4096, trans_b=False, cluster=2, raster=2, **kw)
    assert legal(4096, 4096, 4096, trans_b=True, cluster=2, raster=2, **kw) is None
    fp8 = dict(kw, in_dtype="float8_e4m3fn", accum="promoted")
    assert "its 168" in legal(4096, 4096, 4096, **fp8)
    assert legal(4096, 4096, 4096, regs="split", **fp8) is None
    assert "328 registers" in legal(4096, 4096, 4096, regs="split", **{**fp8, "accum": "pipelined"})
    # gated: 96 C columns a block, not whole 64-column TMA store boxes
    gated = dict(kw, gated=True, out_dtype="float16", store="tma")
    assert "64-column boxes" in legal(2048, 11008, 4096, **gated)


@pytest.mark.parametrize("side", [2, 4, 8, 16])
def test_hilbert_curve_visits_each_square_tile_once_by_neighbours(side):
    points = [hilbert_xy(d, side) for d in range(side * side)]
    assert sorted(points) == [(x, y) for x in range(side) for y in range(side)]
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip(points, points[1:]))
    assert points[0] == (0, 0) and points[-1] == (side - 1, 0)


@pytest.mark.parametrize(
    "grid_m, grid_n, raster", [(65, 24, 16), (32, 16, 8), (8, 8, 4), (5, 9, 2)]
)
def test_tile_orders_cover_the_grid_once(grid_m, grid_n, raster):
    """Both orders are permutations of the tiles (the ragged last group and the last partial
    square in column order); within whole squares the Hilbert order steps to a neighbour."""
    group = raster * grid_n

    def order(kind):
        out = []
        for t in range(grid_m * grid_n):
            g, spot = t // group, t % group
            rows = min(raster, grid_m - g * raster)
            m, n = group_tile(spot, rows, g < grid_m // raster, raster, grid_n, kind)
            out.append((g * raster + m, n))
        return out

    for kind in ("raster", "hilbert"):
        tiles = order(kind)
        assert sorted(tiles) == [(m, n) for m in range(grid_m) for n in range(grid_n)], kind
    raster_order, hilbert = order("raster"), order("hilbert")
    assert hilbert != raster_order
    square = raster * raster  # the first group's first square: one step between neighbours
    assert all(
        abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1
        for a, b in zip(hilbert[:square], hilbert[1:square])
    )


@pytest.mark.parametrize("grid_m, grid_n, raster", [(8, 16, 8), (5, 6, 2), (3, 4, 4)])
def test_cluster_pairs_along_n_cover_the_grid_once(grid_m, grid_n, raster):
    """multicast=a: tiles 2i and 2i + 1 (a cluster pair, ranks 0 and 1) are the same M tile
    and adjacent N tiles, and every tile is taken once (ragged last group included)."""
    group = raster * grid_n
    tiles = []
    for t in range(grid_m * grid_n):
        g, spot = t // group, t % group
        rows = min(raster, grid_m - g * raster)
        m, n = group_tile(spot, rows, True, raster, grid_n, "raster", pairs=True)
        tiles.append((g * raster + m, n))
    assert sorted(tiles) == [(m, n) for m in range(grid_m) for n in range(grid_n)]
    assert all(a[0] == b[0] and b[1] == a[1] + 1 for a, b in zip(tiles[::2], tiles[1::2]))


def test_share_a_legality():
    kw = dict(smem_limit=SMEM, sm_count=132, cluster=2, multicast="a", raster=1)
    assert legal(4096, 4096, 4096, **kw) is None
    assert legal(4096, 4096, 4096, **{**kw, "raster": 3}) is None  # pairs within a row: any
    assert "cluster=2" in legal(4096, 4096, 4096, **{**kw, "cluster": 1})
    assert "odd" in legal(4096, 4096 - 256, 4096, **kw)  # 15 N tiles
    assert "cooperative" in legal(4096, 4096, 4096, **kw, schedule="persistent",
                                  arrangement="pingpong")  # fmt: skip
    assert "conv" in legal(32 * 784, 256, 2304, **{**kw, "block_n": 128},
                           conv=(32, 28, 28, 256, 3, 3, 1))  # fmt: skip
    assert "multicast 'c'" in legal(4096, 4096, 4096, **{**kw, "multicast": "c"})
    assert FAMILY.held_back["multicast"] == ("a",)


@pytest.mark.parametrize("workload, genes", SHARE_A, ids=lambda x: str(x)[:60])
def test_share_a_builds_a_multicast_of_a_and_a_whole_b(needs_nvcc, workload, genes):
    """multicast=a: the producer's A load is a multicast of its half of the rows (offset by
    the cluster rank), B a whole tile; nothing spills."""
    genome = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    body = main_body(src)
    loads = [line for line in body.splitlines() if "cp_async_bulk_tensor_g2s" in line]
    assert all(("a_map" in line) == ("multicast__cluster" in line) for line in loads), loads
    assert "0 bytes spill stores" in ptxas_report(src)


def test_hilbert_order_legality():
    kw = dict(smem_limit=SMEM, sm_count=132, order="hilbert")
    assert legal(4096, 4096, 4096, raster=8, **kw) is None
    assert "not a power of 2" in legal(4096, 4096, 4096, raster=6, **kw)
    assert "not a power of 2" in legal(4096, 4096, 4096, raster=1, **kw)
    assert "cluster=1" in legal(4096, 4096, 4096, raster=8, cluster=2, **kw)
    assert "no 16 x 16 square" in legal(4096, 2048, 4096, raster=16, **kw)  # 8 column tiles
    assert "order 'zigzag'" in legal(4096, 4096, 4096, raster=8, order="zigzag", smem_limit=SMEM)
    with pytest.raises(GenomeError, match="order="):
        WgmmaParams(order="zigzag")


@pytest.mark.parametrize("workload, genes", HILBERT, ids=lambda x: str(x)[:60])
def test_hilbert_order_builds(needs_nvcc, workload, genes):
    """order=hilbert computes each tile once (a local per tile, not the curve re-evaluated at
    every use) and builds with nvcc without spills."""
    genome = Grammar(TARGET).check(DEFAULT.replace(order="hilbert", **genes), workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    raster = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    plain = cuda_source(build_module(kernel_module(raster, workload), TARGET))
    assert src != plain and len(src) < 1.5 * len(plain)
    assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize("k, steps", [(4096, 32), (1100, 9)])
def test_pipelined_fp8_sums_add_one_step_while_the_next_runs(needs_nvcc, k, steps):
    """accum=pipelined: K steps in pairs, two register sets both in flight; the first set is
    added into the fp32 sums after a wait that leaves the second running (wait_group 1), the
    second after wait_group 0; an odd count ends with one step as accum=promoted does. ptxas
    keeps every wgmma asynchronous (no "serialized" warning: a set carried from one pair to
    the next, or chosen at run time, serialized them all) and spills nothing at 232
    registers."""
    kw = dict(in_dtype="float8_e4m3fn", out_dtype="bfloat16", block_n=128, regs="split")
    mod = wgmma_module(4096, 4096, k, smem_limit=SMEM, sm_count=132, accum="pipelined", **kw)
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    body = main_body(src)
    loop = body[body.index("for (int j = 0; j < " + str(steps // 2) + "; ++j)") :]
    first = loop.index("wait_group_sync_aligned_1();")
    assert loop.index("odd_ptr[0], odd_ptr[1]") < first  # the second set issued before it
    assert loop.index("+ acc_ptr[0])", first) < loop.index("wait_group_sync_aligned_0();")
    singles = body.count("total_ptr[0] = (total_ptr[0] + acc_ptr[0]);")
    assert singles == (2 if steps % 2 else 1)  # the pair's first set (+ the odd last step)
    report = ptxas_report(src)
    assert "serialized" not in report and "0 bytes spill stores" in report
    promoted = wgmma_module(4096, 4096, k, smem_limit=SMEM, sm_count=132, accum="promoted", **kw)
    assert "odd_ptr" not in cuda_source(build_module(promoted, TARGET))


def test_fp8_legality_names_what_wgmma_cannot_do():
    kw = dict(smem_limit=SMEM, sm_count=132, in_dtype="float8_e4m3fn", raster=1)
    assert legal(4096, 4096, 4096, **kw) is None
    assert "K-major" in legal(4096, 4096, 4096, trans_b=False, **kw)
    assert "epilogue" in legal(4096, 4096, 4096, epilogue="bias", **kw)
    assert "split-K" in legal(16, 4096, 4096, splits=2, consumers=1, block_n=128, **kw)
    assert "split-K" in legal(4096, 4096, 4096, gated=True, **kw)


def test_tf32_kernel_builds_but_fp32_workloads_get_3xtf32(needs_nvcc):
    """fp32 operands run on TF32 tensor cores (wgmma k8, K-major, no transposes, 32 values a
    K step, 16-byte pad chunks of 4): the one-product kernel builds, with split-K and a fused
    epilogue, but an fp32 workload, whose gate asks for fp32 accuracy, gets three products."""
    kw = dict(smem_limit=SMEM, sm_count=132, in_dtype="float32", consumers=1, block_n=128)
    kw.update(raster=1, epilogue="bias_relu", splits=2)
    mod = wgmma_module(100, 300, 1001, symbol="ak_tf32", **kw)
    names = {gv.name_hint for gv in mod.functions}
    assert names == {"main", "ak_tf32_pad_a", "ak_tf32_pad_b", "ak_tf32_reduce"}
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    assert "m64n128k8.f32.tf32.tf32" in src
    assert "0 bytes spill stores" in ptxas_report(src)
    # B as [K, N]: read from a K-major copy (tf32x3.transposed); no gated TF32 GEMM
    assert legal(1000, 1000, 1000, **{**kw, "trans_b": False, "splits": 1}) is None
    assert "no gated GEMM" in legal(1000, 1000, 1000, **{**kw, "gated": True, "splits": 1})
    workload = Workload("gemm_nt", (1024, 1024, 1024), "float32")
    assert FAMILY.applies(workload, TARGET) is None
    assert structure(FAMILY.default, workload)["tf32_passes"] == 3
    assert (
        structure(FAMILY.default, Workload("gemm_nt", (64, 64, 64), "float16"))["tf32_passes"] == 1
    )


@pytest.mark.parametrize(
    "shape, trans_b, batch",
    [((4096, 4096, 4096), True, 0), ((1000, 300, 1001), False, 0), ((512, 256, 100), False, 3)],
)
def test_3xtf32_runs_the_tf32_gemm_over_split_copies(needs_nvcc, shape, trans_b, batch):
    """3xTF32: the host code writes [hi | hi | lo] of A and [hi | lo | hi] of B (K-major, each
    segment padded to 128-byte lines; A @ B's B transposed by the copy) and the TF32 kernel
    reads them over K' = 3 * K: the parameters stay the user's fp32 operands."""
    m, n, k = shape
    kw = dict(smem_limit=SMEM, sm_count=132, in_dtype="float32", trans_b=trans_b, batch=batch)
    kw.update(tf32_passes=3, raster=1)
    mod = wgmma_module(m, n, k, symbol="ak_x3", **kw)
    assert {gv.name_hint for gv in mod.functions} == {"main", "ak_x3_split_a", "ak_x3_split_b"}
    script = mod["main"].script()
    lead = f"{batch}, " if batch else ""
    b_shape = f"({lead}{n}, {k})" if trans_b else f"({lead}{k}, {n})"
    assert f"B: T.Buffer({b_shape}" in script
    k3 = split_k(k)
    assert k3 == 3 * -(-k // 32) * 32
    assert f"T.alloc_buffer(({max(batch, 1) * m}, {k3}))" in script  # A's split copy
    assert script.index("ak_x3_split_a_kernel") < script.index("cuTensorMapEncodeTiled")
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    assert "k8.f32.tf32.tf32" in src
    assert ("tile_ptr" in src) == (not trans_b)  # the transposing copy stages a tile
    assert "0 bytes spill stores" in ptxas_report(src)


def test_3xtf32_legality():
    kw = dict(smem_limit=SMEM, sm_count=132, in_dtype="float32", tf32_passes=3, raster=1)
    assert legal(4096, 4096, 4096, trans_b=False, **kw) is None  # either B layout
    assert "fp32 operands" in legal(4096, 4096, 4096, **{**kw, "in_dtype": "float16"})
    assert "pad=needed" in legal(4096, 4096, 4095, pad="lines", **kw)
    assert "1 (TF32) or 3" in legal(4096, 4096, 4096, **{**kw, "tf32_passes": 2})


def test_pingpong_needs_two_consumers_on_a_persistent_plain_gemm():
    kw = dict(smem_limit=SMEM, sm_count=132, schedule="persistent", arrangement="pingpong")
    assert legal(4096, 4096, 4096, **kw) is None
    assert legal(4096, 4096, 4096, **kw, store="tma", out_dtype="float16") is None
    assert "persistent" in legal(4096, 4096, 4096, **{**kw, "schedule": "tile"})
    assert "persistent" in legal(4096, 4096, 4096, **kw, consumers=1)
    for genes in ({"gated": True}, {"splits": 2}):
        assert "no conv" in legal(4096, 4096, 4096, **kw, **genes), genes
    assert legal(4096, 4096, 4096, **kw, cluster=2, raster=8) is None  # the pair multicasts B
    assert "one of" in legal(4096, 4096, 4096, **{**kw, "arrangement": "stacked"})
    # each stage holds one warpgroup's 64 A rows, not both consumers' 128
    assert smem_bytes(256, 2, 4, "direct", "pingpong") == smem_bytes(256, 2, 4) - 4 * 64 * 128
    with pytest.raises(GenomeError, match="arrangement"):
        WgmmaParams(arrangement="stacked")
    pingpong = WgmmaParams(schedule="persistent", arrangement="pingpong")
    assert pingpong.added_genes() == {"schedule": "persistent", "arrangement": "pingpong"}
    assert "arrangement" not in WgmmaParams().text()  # stored genomes keep their keys
    features = FAMILY.features(pingpong, NT, TARGET)
    cooperative = FAMILY.features(pingpong.replace(arrangement="cooperative"), NT, TARGET)
    assert features["pingpong"] == 1 and cooperative["pingpong"] == 0
    assert features["log_tiles"] == cooperative["log_tiles"] + 1  # 64-row tiles: twice as many


@pytest.mark.parametrize(
    "workload, genes",
    [
        (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"), {"store": "tma"}),
        (Workload("gemm_bias_gelu", (2048, 4096, 1024), "float16", "float16"), {}),
        (Workload("gemm", (2000, 5000, 1000), "bfloat16", "bfloat16"), {"store": "tma"}),
        (Workload("batch_gemm_nt", (16, 512, 1024, 256), "float16"), {"stages": 3}),
        (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"), {"cluster": 2}),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_pingpong_deals_tiles_to_warpgroups_in_turn(needs_nvcc, workload, genes):
    """Each warpgroup takes every other tile of its block (64 rows: twice the cooperative
    kernel's tiles, 64-row A boxes), waits for the other's previous mainloop on a turns barrier
    and signals its own; each stage is freed by one warpgroup's 4 warps; nothing spills."""
    params = WgmmaParams(raster=4, schedule="persistent", **genes)
    pingpong = Genome("cuda.wgmma", params.replace(arrangement="pingpong"))
    src = cuda_source(build_module(kernel_module(pingpong, workload), TARGET, check_nvcc=True))
    coop = cuda_source(build_module(kernel_module(Genome("cuda.wgmma", params), workload), TARGET))
    assert "turns_ptr[2]" in src and "turns_ptr" not in coop
    assert "& 1) == wg_ptr[0])" in src  # tiles dealt out in turn
    assert "(&(turns_ptr[(1 - wg_ptr[0])]))" in src  # wait for the other's mainloop
    assert "(&(turns_ptr[wg_ptr[0]]))" in src  # then signal this one's
    init = "tvm_builtin_cuda_cvta_generic_to_shared((&(empty_ptr[s]))), (uint)"
    pair = params.cluster  # with clusters each stage is freed in both blocks of the pair
    assert f"{init}{4 * pair})" in src and f"{init}{8 * pair})" in coop
    tiles = lambda text: int(re.search(r"blockIdx.x\)\) < (\d+)\)", text).group(1))  # noqa: E731
    assert tiles(src) == 2 * tiles(coop)
    assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize(
    "workload, genes, pads",
    [
        (Workload("gemm_tn", (1024, 1024, 1024), "float16"), {}, set()),
        (Workload("gemm_tn", (777, 1001, 999), "bfloat16", "bfloat16"), {}, {"a", "b"}),
        (Workload("batch_gemm_tn", (3, 128, 256, 128), "float16"), {"consumers": 1}, set()),
        (
            Workload("gemm_tn", (2048, 4096, 1024), "float16", "float16"),
            {"schedule": "persistent", "arrangement": "pingpong", "store": "tma"},
            set(),
        ),
        (
            Workload("gemm_tn", (2048, 4096, 1024), "float16", "float16"),
            {"schedule": "persistent", "cluster": 2, "raster": 4},
            set(),
        ),
        (
            Workload("gemm_tn", (16, 4096, 4096), "float16", "float16"),
            {"consumers": 1, "block_n": 128, "splits": 4},
            set(),
        ),
    ],
    ids=lambda x: x.name if isinstance(x, Workload) else "",
)
def test_transposed_a_is_loaded_in_column_boxes_and_read_through_the_transpose(
    needs_nvcc, workload, genes, pads
):
    """A stored [K, M] (``A.T @ B``): A is a parameter of that shape, its rows of M are loaded
    as 64-column TMA boxes (one per 64 rows of the tile) and every wgmma reads it with the
    A-transpose flag set; rows the TMA cannot address (M % 8) are copied first, like B's."""
    genome = Grammar(TARGET).check(DEFAULT.replace(raster=1).replace(**genes), workload)
    mod = kernel_module(genome, workload)
    *lead, m, n, k = workload.shape
    assert [int(d) for d in mod["main"].params[0].shape] == [*lead, k, m]
    assert {gv.name_hint[len(f"ak_{workload.name}_pad_"):] for gv in mod.functions
            if "_pad_" in gv.name_hint} == pads  # fmt: skip
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    flags = re.findall(r"wgmma\.mma_async[^\"]*ps0, 1, 1, (\d), (\d);", src)
    assert flags and set(flags) == {("1", "1")}  # A and B ([K, N]) both transposed
    assert "0 bytes spill stores" in ptxas_report(src)


def test_transposed_a_legality_names_what_wgmma_cannot_transpose():
    kw = dict(smem_limit=SMEM, sm_count=132, trans_a=True, trans_b=False, raster=1)
    assert legal(1024, 1024, 1024, **kw) is None
    nt = {**kw, "trans_b": True}
    assert "16-bit" in legal(1024, 1024, 1024, in_dtype="float8_e4m3fn", **nt)
    assert legal(1024, 1024, 1024, in_dtype="float32", **nt) is None  # A's K-major TF32 copy
    # 3xTF32 reads split copies, which are K-major whatever A's layout: its copy transposes A
    assert legal(1024, 1024, 1024, in_dtype="float32", tf32_passes=3, **nt) is None
    assert legal(100, 200, 72, batch=3, **nt) is None  # K tail: A's map is [batch, K, M]
    assert legal(100, 200, 128, batch=3, **kw) is None
    tn = Workload("gemm_tn", (1024, 1024, 1024), "float32")
    assert FAMILY.applies(tn, TARGET) is None
    assert structure(WgmmaParams(), tn)["tf32_passes"] == 3
    # allowed TF32: one pass in every layout, MN-major operands read from K-major copies
    for op in ("gemm_tn", "gemm_nt", "gemm"):
        allowed = Workload(op, (1024, 1024, 1024), "float32", precision="tf32")
        assert structure(WgmmaParams(), allowed)["tf32_passes"] == 1
        assert Grammar(TARGET).check(DEFAULT.replace(raster=1), allowed).family == "cuda.wgmma"
        assert "TF32 (allowed)" in FAMILY.notes(WgmmaParams(), allowed)[0]
    assert FAMILY.applies(Workload("batch_gemm_tn", (2, 64, 64, 64), "bfloat16"), TARGET) is None
    assert structure(WgmmaParams(), tn)["trans_a"] and OPS["gemm_tn"][3]


def test_streamk_is_legal_only_where_the_last_wave_splits_into_its_clusters():
    """schedule=streamk splits the partial last wave's tiles over clusters of `splits` blocks:
    it needs a partial wave whose tiles x splits fit the SMs, whole K ranges, the cluster
    reduction, and a ring that holds the f32 tile."""
    kw = {"smem_limit": SMEM, "sm_count": 132, "schedule": "streamk", "reduction": "cluster"}
    up = (2048, 11008, 4096)  # 16 x 43 = 688 tiles: 5 waves and 28 tiles
    assert legal(*up, splits=2, **kw) is None
    assert legal(*up, splits=2, store="tma", **kw) is None
    assert "cluster of 2" in legal(*up, splits=4, **kw)  # measured 0.54-0.57x: not resident
    assert "whole waves" in legal(4096, 8448, 4096, splits=2, **kw)  # 32 x 33 = 1056 = 8 x 132
    assert "116 tiles x 2 splits" in legal(4096, 4096, 4096, splits=2, **kw)  # 512 = 3 x 132 + 116
    assert "one wave" in legal(1024, 1024, 4096, splits=2, **kw)
    assert "cluster of 2" in legal(*up, splits=1, **kw)
    assert "reduction=cluster" in legal(*up, splits=2, **{**kw, "reduction": "workspace"})
    assert "K steps" in legal(2048, 11008, 4096 + 64, splits=2, **kw)  # 65 K steps
    assert "clusters of 2" in legal(*up, splits=2, **{**kw, "sm_count": 133})
    assert "unknown" in legal(*up, splits=2, **{**kw, "sm_count": 0})
    assert "parks the f32 tile" in legal(*up, splits=2, stages=2, **kw)
    # gated: 16 x 86 tiles of 128 output columns = 10 waves and 56 tiles
    assert legal(2048, 11008, 4096, splits=2, gated=True, **kw) is None
    assert "fp16/bf16" in legal(*up, splits=2, in_dtype="float32", **kw)
    with pytest.raises(GenomeError, match="schedule"):
        WgmmaParams(schedule="stream-k")
    # the grammar keeps the splits streamk can use on a shape no split-K tile schedule takes
    up_w = Workload("gemm_nt", up, "float16", "float16")
    assert 2 not in FAMILY.impossible(up_w, TARGET).get("splits", ())
    assert "reduction" not in FAMILY.impossible(up_w, TARGET)
    square = Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16")
    assert FAMILY.impossible(square, TARGET)["reduction"] == ("cluster",)


STREAMK = [
    (Workload("gemm_nt", (2048, 11008, 4096), "float16", "float16"), {"splits": 2, "store": "tma"}),
    (Workload("gemm_nt", (2047, 2561, 4096), "bfloat16", "bfloat16"), {"splits": 2, "raster": 0}),
    (Workload("batch_gemm", (3, 1000, 2048, 1024), "float16", "float16"), {"splits": 2}),
    (Workload("conv2d_nhwc", (20, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16"),
     {"splits": 2, "store": "tma", "raster": 4}),
    (Workload("gemm_gated_nt", (2048, 11008, 4096), "bfloat16", "bfloat16"),
     {"splits": 2, "store": "tma"}),
]  # fmt: skip


@pytest.mark.parametrize("workload, genes", STREAMK, ids=lambda x: str(x))
def test_streamk_builds_whole_waves_then_the_split_tail_in_one_launch(needs_nvcc, workload, genes):
    """One block per SM launched as clusters of `splits`; the whole-wave loop, then the
    cluster's split of a last-wave tile: its K range starts at the block's rank times K /
    splits, and the partials are read through the cluster window in rank order. No workspace,
    no second kernel, no spills."""
    genome = Grammar(TARGET).check(
        DEFAULT.replace(schedule="streamk", reduction="cluster", **genes), workload
    )
    mod = kernel_module(genome, workload)
    assert not any(gv.name_hint.endswith("_reduce") for gv in mod.functions)
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    splits = genes["splits"]
    assert "%%cluster_ctarank" in src and "ld.shared::cluster.f32" in src
    loads = re.findall(r"ld_shared__cluster_f32\(got_ptr\[(\d+)\], \(base_ptr\[(\d+)\]", src)
    assert [int(r) for _, r in loads[:splits]] == list(range(splits))
    m, n, k = workload.shape[-3:] if workload.op != "conv2d_nhwc" else (0, 0, 256 * 9)
    assert f"(((int)blockIdx.x) & 1) * {k // splits}" in src  # the split's first K element
    assert src.count("barrier_cluster_arrive_cluster_arrive();") >= 3  # producer, consumers, end
    assert "0 bytes spill stores" in ptxas_report(src)
    if workload.op == "gemm_gated_nt":  # each gate group's sum brings its up group's: the
        # fragments acc_n / 2 = 64 further in the parked tile ([fragment, thread]: 64 KiB on)
        ups = [int(i) for i, _ in loads if int(i) >= 4 * splits]
        assert len(ups) == 4 * splits and "* 4)) + 65536))" in src


def test_stream_is_legal_where_the_tiles_leave_a_partial_wave():
    """schedule=stream deals every tile's K steps out in equal shares: legal with the default
    genes elsewhere (no splits, clusters or ping-pong), not where the tiles are whole waves;
    kept out of the search's domain until it has passed the GPU gate."""
    kw = {"smem_limit": SMEM, "sm_count": 132, "schedule": "stream"}
    assert legal(4096, 4096, 4096, **kw) is None  # 512 tiles: 3.88 waves
    conv = {**kw, "conv": (32, 28, 28, 256, 3, 3, 1), "store": "tma"}
    assert legal(32 * 28 * 28, 256, 2304, **conv) is None  # 224 patch tiles: 1.7 waves
    assert "whole waves" in legal(4096, 8448, 4096, **kw)  # 1056 = 8 x 132
    assert "splits=1" in legal(4096, 4096, 4096, splits=2, **kw)
    assert "splits=1" in legal(4096, 4096, 4096, cluster=2, raster=2, **kw)
    assert "unknown" in legal(4096, 4096, 4096, **{**kw, "sm_count": 0})
    assert "fewer than" in legal(64, 256, 256, **{**kw, "block_n": 128, "consumers": 1})
    # named, not drawn (stream_tail, which won at 8192^3 on the H200, is)
    assert FAMILY.held_back["schedule"] == ("stream",)
    assert WgmmaParams(schedule="stream").schedule == "stream"


def test_stream_tail_keeps_the_whole_waves_and_deals_out_the_last_ones_k_steps():
    """schedule=stream_tail: the most whole waves that leave the partial one at least
    SPLIT_MIN_STEPS K steps a block; illegal where none does (plain stream's case) or the tiles
    are whole waves."""
    assert stream_tail_waves(512, 64, 132) == 3  # 4096^3: 116 tiles x 64 steps, 56 a block
    assert stream_tail_waves(274, 64, 132) == 2  # 10 tiles: 4 steps a block
    assert stream_tail_waves(269, 64, 132) == 1  # 5 tiles: 2 a block; two: 137 tiles, 66
    assert stream_tail_waves(100, 64, 132) == 0
    kw = {"smem_limit": SMEM, "sm_count": 132, "schedule": "stream_tail", "store": "tma"}
    assert legal(4096, 4096, 4096, **kw) is None
    assert legal(4096, 4096, 4096, **{**kw, "store": "direct", "block_n": 128}) is None
    assert "no whole wave" in legal(1024, 2048, 4096, **kw)  # 64 tiles
    assert "whole waves" in legal(4096, 8448, 4096, **kw)
    assert "splits=1" in legal(4096, 4096, 4096, cluster=2, raster=2, **kw)
    assert "bias_at=start" in legal(4096, 4096, 4096, bias_at="start", epilogue="bias", **kw)


STREAM = [
    (Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16"),
     {"store": "tma", "raster": 16}),
    (Workload("gemm_gated_nt", (2048, 11008, 4096), "float16", "float16"), {"store": "tma"}),
    (Workload("gemm_nt", (2047, 2561, 4091), "bfloat16", "bfloat16"), {"raster": 0}),
    (Workload("batch_gemm", (3, 1000, 2048, 1024), "float16", "float16"), {"raster": 0}),
]  # fmt: skip


@pytest.mark.parametrize("workload, genes", STREAM, ids=lambda x: str(x))
def test_stream_runs_equal_shares_and_fixes_split_tiles_up_in_block_order(
    needs_nvcc, workload, genes
):
    """Block g's share starts at g * W / sm_count; the block holding a tile's last K step
    waits, with an acquire load, for each earlier block's flag and adds its share from the
    workspace in block order; the others write their share and release their flag. The host
    code zeroes the flags in a companion launch before the kernel. No spills."""
    genome = Grammar(TARGET).check(DEFAULT.replace(schedule="stream", **genes), workload)
    mod = kernel_module(genome, workload)
    zero = f"ak_{workload.name}_zero"
    assert zero in {gv.name_hint for gv in mod.functions}
    exe = build_module(mod, TARGET, check_nvcc=True)
    src = cuda_source(exe)
    assert "ld.acquire.gpu.global.b32" in src and "st.release.gpu.global.b32" in src
    assert "fence.acq_rel.gpu" in src
    # block order, from the block holding the tile's first K step up to this one
    assert re.search(r"for \(int h = .*; h < \(\(int\)blockIdx\.x\); \+\+h\)", src)
    host = exe.mod.inspect_source("ll").split("@__tvm_ffi_main(")[1].split("\ndefine ")[0]
    launches = re.findall(rf"call i32 %\d+\(ptr nonnull @\.tvm_func\.(main|{zero})_kernel", host)
    assert launches[0] == zero and launches[-1] == "main"  # the flags are zero first
    assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize("workload, genes", STREAM_TAIL, ids=lambda x: str(x)[:60])
def test_stream_tail_builds_the_whole_waves_before_the_shares(needs_nvcc, workload, genes):
    """stream_tail: the whole waves' tiles loaded and computed ahead of the shares (which fix
    their split tiles up as stream's do, after the zeroing launch); no spills."""
    genome = Grammar(TARGET).check(DEFAULT.replace(schedule="stream_tail", **genes), workload)
    mod = kernel_module(genome, workload)
    assert f"ak_{workload.name}_zero" in {gv.name_hint for gv in mod.functions}
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    plain = cuda_source(build_module(kernel_module(genome.replace(schedule="stream"), workload),
                                     TARGET))  # fmt: skip
    # the whole waves' TMA loads, ahead of the shares'
    assert builtin_calls(src, "_g2s_") > builtin_calls(plain, "_g2s_")
    assert "ld.acquire.gpu.global.b32" in src and "st.release.gpu.global.b32" in src
    assert spill_free(src)


def _segments(start: int, end: int, k_tiles: int):
    """(tile, first iteration, end iteration) of each tile the share [start, end) touches, in
    the order the kernel runs them: its last tile first (`segment`, `bounds`)."""
    t = (end - 1) // k_tiles
    while end > start and (t + 1) * k_tiles > start:
        yield t, max(start, t * k_tiles), min(end, (t + 1) * k_tiles)
        t -= 1


@pytest.mark.parametrize("tail", [False, True], ids=["stream", "stream_tail"])
@pytest.mark.parametrize(
    "tiles, k_tiles, ctas",
    [(224, 36, 132), (512, 64, 132), (1376, 64, 132), (274, 64, 132), (5, 100, 132),
     (133, 1, 132), (7, 9, 3), (256, 172, 132), (1024, 64, 132)],
)  # fmt: skip
def test_stream_shares_cover_every_k_step_once_and_name_each_tiles_helpers(
    tiles, k_tiles, ctas, tail
):
    """The kernel's loops, modelled: (stream_tail) block g first computes tiles g + i * ctas of
    the whole waves whole, then the segments of [share(g), share(g + 1)) that fall in each tile
    it touches, last tile first. Every (tile, K step) runs exactly once; the block holding a
    tile's last K step waits on exactly the blocks stream_first(t) .. g - 1 -- those whose
    first segment run (the only one that can end mid-tile) is an earlier part of that tile --
    so every share it adds exists, and none is missed; each block's ring counts its
    iterations in the order it runs them (`before`)."""
    waves = stream_tail_waves(tiles, k_tiles, ctas) if tail else 0
    first = waves * ctas * k_tiles
    work = tiles * k_tiles - first
    runs = [0] * (tiles * k_tiles)
    helpers, stores = {}, {}
    for g in range(ctas):
        for ti in range(waves):
            t = g + ti * ctas
            stores[t] = []
            for i in range(t * k_tiles, (t + 1) * k_tiles):
                runs[i] += 1
        start, end = first + stream_share(g, work, ctas), first + stream_share(g + 1, work, ctas)
        ring = waves * k_tiles  # the block's ring iterations so far
        for t, lo, hi in _segments(start, end, k_tiles):
            assert ring == waves * k_tiles + end - hi  # the kernel's before(g, hi)
            for i in range(lo, hi):
                runs[i] += 1
            ring += hi - lo
            if hi == (t + 1) * k_tiles:
                earlier = list(range(stream_first(t, k_tiles, work, ctas, first), g))
                assert stream_last(t, k_tiles, work, ctas, first) == g
                stores[t] = earlier if lo > t * k_tiles else []
            else:
                assert hi == end and ring == waves * k_tiles + hi - lo  # run first
                helpers.setdefault(t, []).append(g)
    assert runs == [1] * (tiles * k_tiles)
    assert sorted(stores) == list(range(tiles))
    assert all(stores[t] == helpers.get(t, []) for t in range(tiles))


@pytest.mark.parametrize(
    "tiles, k_tiles", [(256, 172), (1024, 64), (224, 36), (1376, 64), (688, 64)]
)  # fmt: skip
def test_stream_tail_blocks_walk_k_together(tiles, k_tiles):
    """stream_tail's shares are shorter than a tile, and each runs its last tile's head (from K
    step 0) before its first tile's end: at its i-th iteration every block is at K step i to i
    + k_tiles - share, so the tiles reading the same operand slices read them within that
    window (the LLaMA down projection: 10 of its 172 K steps) -- in tile order they would be
    spread over all of K."""
    ctas = 132
    waves = stream_tail_waves(tiles, k_tiles, ctas)
    first = waves * ctas * k_tiles
    work = tiles * k_tiles - first
    assert waves and work // ctas < k_tiles
    for g in range(ctas):
        start, end = first + stream_share(g, work, ctas), first + stream_share(g + 1, work, ctas)
        # the K steps the block runs, in the kernel's order
        order = [i % k_tiles for _, lo, hi in _segments(start, end, k_tiles) for i in range(lo, hi)]
        assert all(0 <= kt - i <= k_tiles - (end - start) for i, kt in enumerate(order))


def test_bias_at_start_needs_a_bias_and_tiles_one_block_computes():
    """The accumulators can start from a per-column vector the epilogue adds to acc itself
    (bias, or an expression's acc + x[n]); not where nothing is added that way, nor where
    several blocks share a tile's K steps (each would start from the bias), nor into fp32 C."""
    start = DEFAULT.replace(bias_at="start")
    plain = Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16")
    with pytest.raises(GenomeError, match="adds no per-column vector"):
        Grammar(TARGET).check(start, plain)
    scaled = Workload(
        "gemm_nt", (4096, 4096, 4096), "float16", "float16",
        epilogue=Epilogue(F("add", F("mul", ACC, operand(0)), operand(1)), ("n", "n")),
    )  # fmt: skip
    with pytest.raises(GenomeError, match="adds no per-column vector"):
        Grammar(TARGET).check(start, scaled)  # acc * x0 + x1: x1 is not added to acc itself
    assert FAMILY.impossible(plain, TARGET)["bias_at"] == ("start", "prefetch")
    bias = Workload("gemm_bias_relu", (256, 4096, 65536), "float16", "float16")
    assert "bias_at" not in FAMILY.impossible(bias, TARGET)
    with pytest.raises(GenomeError, match="split tile"):
        Grammar(TARGET).check(start.replace(splits=4, block_n=128, raster=1), bias)
    assert Grammar(TARGET).check(start.replace(raster=1), bias).params.bias_at == "start"
    # an fp32 C keeps the rounding of the bias in every K step's sum (past the gate's bound on
    # the H200): 16-bit outputs only
    fp32_out = Workload("gemm_bias_relu", (256, 4096, 1024), "float16", "float32")
    with pytest.raises(GenomeError, match="fp32 output keeps the rounding"):
        Grammar(TARGET).check(start.replace(raster=1), fp32_out)
    assert FAMILY.impossible(fp32_out, TARGET)["bias_at"] == ("start",)
    with pytest.raises(GenomeError, match="bias_at"):
        WgmmaParams(bias_at="end")


@pytest.mark.parametrize("workload, genes", BIAS_START, ids=lambda x: str(x)[:60])
def test_bias_at_start_loads_the_bias_into_the_accumulators_not_the_write_back(
    needs_nvcc, workload, genes
):
    """The vector is read once per tile, into the accumulators, before the first wgmma, and
    not again in the write-back; the store's other work (an activation, other operands)
    stays; edge columns past N start from 0; nothing spills."""
    genome = Grammar(TARGET).check(DEFAULT.replace(bias_at="start", **genes), workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    before = cuda_source(
        build_module(kernel_module(genome.replace(bias_at="store"), workload), TARGET)
    )
    vector = "Bias_ptr[" if workload.epilogue is None else "x0_ptr["
    body = main_body(src)
    first_load, first_mma = body.index(vector), body.index("_mma_async_sync_aligned_m64")
    assert first_load < first_mma  # loaded before the tile's first wgmma
    assert body.count(vector) <= main_body(before).count(vector)
    write_back = body[body.rindex("wait_group_sync_aligned_0") :]  # after the last mainloop
    assert vector not in write_back and vector in before[before.rindex("aligned_0") :]
    if workload.op != "conv2d_nhwc" and workload.shape[-2] % 256:  # N's edge: 0, unread
        assert "if (" in body[first_load - 200 : first_load]
    assert "0 bytes spill stores" in ptxas_report(src)


def test_bias_at_prefetch_needs_a_column_vector_and_whole_tiles_and_takes_fp32_c():
    """The prefetched vector is the same one "start" starts from, on the same tiles (a tile's K
    steps in one block); it is added at the store, so an fp32 C may take it; operands=ba adds
    its bias at the store only (C's columns are the tile's rows there)."""
    prefetch = DEFAULT.replace(bias_at="prefetch")
    plain = Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16")
    with pytest.raises(GenomeError, match="bias_at=prefetch: the epilogue adds no per-column"):
        Grammar(TARGET).check(prefetch, plain)
    assert FAMILY.impossible(plain, TARGET)["bias_at"] == ("start", "prefetch")
    bias = Workload("gemm_bias_relu", (256, 4096, 65536), "float16", "float16")
    with pytest.raises(GenomeError, match="bias_at=prefetch: a tile's K steps in one block"):
        Grammar(TARGET).check(prefetch.replace(splits=4, block_n=128, raster=1), bias)
    fp32_out = Workload("gemm_bias_relu", (256, 4096, 1024), "float16", "float32")
    assert Grammar(TARGET).check(prefetch.replace(raster=1), fp32_out).params.bias_at == (
        "prefetch"
    )
    assert FAMILY.impossible(fp32_out, TARGET)["bias_at"] == ("start",)
    # the slices take shared memory at the inputs' width: 4 bytes a column for fp32 inputs
    # (measured on a ring too deep to fit, where the message counts the bytes)
    kw = {"smem_limit": SMEM, "sm_count": 132}

    def smem(at, dtype):
        params = prefetch.params.replace(raster=1, stages=6, bias_at=at)
        workload = Workload("gemm_bias_relu", (256, 4096, 1024), dtype, "float32")
        why = legal(256, 4096, 1024, **{**structure(params, workload), **kw})
        return int(re.search(r"(\d+) B of shared memory", why).group(1))

    assert smem("prefetch", "float32") - smem("store", "float32") == 2 * 256 * 4
    assert smem("prefetch", "float16") - smem("store", "float16") == 2 * 256 * 2
    # the first proposal prefetches where it may, and keeps the bias at the store where the
    # seed splits K (256 x 4096 x 65536: split-K tiles)
    relu = Workload("gemm_bias_relu", (4096, 4096, 4096), "float16", "float16")
    square = Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16")
    assert FAMILY.seed(relu, TARGET) == FAMILY.seed(square, TARGET).replace(bias_at="prefetch")
    assert FAMILY.seed(bias, TARGET).splits > 1 and FAMILY.seed(bias, TARGET).bias_at == "store"
    features = {at: FAMILY.features(DEFAULT.params.replace(bias_at=at), bias, TARGET)
                for at in ("store", "start", "prefetch")}  # fmt: skip
    assert [f["bias_prefetch"] for f in features.values()] == [0.0, 0.0, 1.0]
    assert [f["bias_start"] for f in features.values()] == [0.0, 1.0, 0.0]
    conv = Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16",
                    epilogue=Epilogue(F("relu", F("add", ACC, operand(0))), ("n",)))  # fmt: skip
    swapped = prefetch.replace(operands="ba", block_n=112, store="tma", raster=1)
    assert "bias_at=store" in legal(
        32 * 28 * 28, 256, 9 * 256, **{**structure(swapped.params, conv), "smem_limit": SMEM,
                                       "sm_count": 132})  # fmt: skip


@pytest.mark.parametrize("workload, genes", BIAS_PREFETCH, ids=lambda x: str(x)[:60])
def test_bias_at_prefetch_loads_the_slice_before_the_mainloop_and_adds_it_from_shared_memory(
    needs_nvcc, workload, genes
):
    """Each consumer thread loads its two columns of the tile's slice before the first wgmma;
    the write-back reads the vector only from shared memory, where the slice is stored between
    two of the warpgroup's barriers (the first: its previous tile's reads are done); the
    store's other work stays; nothing spills."""
    genome = Grammar(TARGET).check(DEFAULT.replace(bias_at="prefetch", **genes), workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    vector = "Bias_ptr[" if workload.epilogue is None else "x0_ptr["
    body = main_body(src)
    assert body.rindex(vector) < body.index("_mma_async_sync_aligned_m64")  # every load before
    write_back = body[body.rindex("wait_group_sync_aligned_0") :]  # after the last mainloop
    assert vector not in write_back and "vec_s_ptr[" in write_back
    stored = write_back.index("vec_s_ptr[")
    syncs = [m.start() for m in re.finditer(r"bar\.sync|named_barrier|warpgroup_sync",
                                            write_back)]  # fmt: skip
    assert any(x < stored for x in syncs) and any(x > stored for x in syncs)
    if workload.epilogue is not None and len(workload.epilogue.operands) > 1:
        assert "x1_ptr[" in write_back  # the expression's other operand, read at the store
    assert "0 bytes spill stores" in ptxas_report(src)


def test_epilogue_math_fast_needs_a_transcendental_and_a_16_bit_c_and_is_the_seed():
    """The approximate intrinsics replace GELU, SiLU, sigmoid and tanh only: elsewhere the gene
    would build the same kernel twice; an fp32 C would keep their few-ulp errors. The first
    proposal takes them wherever they are legal (the chains' GELU, the gated GEMM's SiLU)."""
    fast = DEFAULT.replace(epilogue_math="fast")
    relu = Workload("gemm_bias_relu", (4096, 4096, 4096), "float16", "float16")
    with pytest.raises(GenomeError, match="epilogue_math=fast: the epilogue applies no GELU"):
        Grammar(TARGET).check(fast, relu)
    assert FAMILY.impossible(relu, TARGET)["epilogue_math"] == ("fast",)
    fp32 = Workload("gemm_bias_gelu", (1024, 1024, 1024), "float16", "float32")
    with pytest.raises(GenomeError, match="16-bit outputs only"):
        Grammar(TARGET).check(fast.replace(raster=1), fp32)
    assert FAMILY.impossible(fp32, TARGET)["epilogue_math"] == ("fast",)
    for workload, genes in FAST_MATH:
        assert "epilogue_math" not in FAMILY.impossible(workload, TARGET)
        checked = Grammar(TARGET).check(fast.replace(**genes), workload)
        assert checked.params.epilogue_math == "fast"
        assert any("approximate exp" in note for note in FAMILY.notes(checked.params, workload))
    gelu = Workload("gemm_bias_gelu", (2048, 16384, 4096), "float16", "float16")
    assert FAMILY.seed(gelu, TARGET) == FAMILY.seed(relu, TARGET).replace(epilogue_math="fast")
    gated = Workload("gemm_gated_nt", (2048, 11008, 4096), "bfloat16", "bfloat16")
    assert FAMILY.seed(gated, TARGET).epilogue_math == "fast"
    assert FAMILY.seed(fp32, TARGET).epilogue_math == "exact"
    assert FAMILY.seed(relu, TARGET).epilogue_math == "exact"
    features = [FAMILY.features(DEFAULT.params.replace(epilogue_math=m), gelu, TARGET)
                for m in ("exact", "fast")]  # fmt: skip
    assert [f["fast_math"] for f in features] == [0.0, 1.0]


def test_upgrade_carries_a_library_genome_to_the_fast_functions_where_legal():
    """A genome measured before epilogue_math existed (exact) comes back with the fast
    functions where they are legal; elsewhere, and for a genome illegal here, unchanged."""
    gelu = Workload("gemm_bias_gelu", (2048, 16384, 4096), "bfloat16", "bfloat16")
    entry = DEFAULT.params.replace(bias_at="start", regs="split", raster=16)
    assert FAMILY.upgrade(entry, gelu, TARGET) == entry.replace(epilogue_math="fast")
    relu = Workload("gemm_bias_relu", (4096, 4096, 4096), "float16", "float16")
    fp32 = Workload("gemm_bias_gelu", (1024, 1024, 1024), "float16", "float32")
    assert FAMILY.upgrade(entry, relu, TARGET) == entry
    assert FAMILY.upgrade(entry, fp32, TARGET) == entry
    illegal = entry.replace(consumers=3)  # 128 accumulators a consumer thread: no registers
    assert FAMILY.upgrade(illegal, gelu, TARGET) == illegal


def _device_code(src: str) -> str:
    """The kernels' CUDA (after the header's declarations), without the constants' notes."""
    return re.sub(r"/\*.*?\*/", "", src[src.index('extern "C" __global__') :])


@pytest.mark.parametrize("workload, genes", FAST_MATH, ids=lambda x: str(x)[:60])
def test_epilogue_math_fast_writes_back_through_the_approximate_intrinsics(
    needs_nvcc, workload, genes
):
    """With epilogue_math=fast every kernel of the module (split-K's reduction too) computes
    the epilogue's functions through ``exp2f`` and ``__fdividef``: no ``erff``, ``expf``,
    ``tanhf`` or IEEE division of the exact lowering, which the same genome without the gene
    has; nothing spills."""
    exact = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    fast = Grammar(TARGET).check(DEFAULT.replace(epilogue_math="fast", **genes), workload)
    before = _device_code(cuda_source(build_module(kernel_module(exact, workload), TARGET)))
    src = cuda_source(build_module(kernel_module(fast, workload), TARGET))
    after = _device_code(src)
    libm = re.compile(r"(?<!_)\b(erff|expf|tanhf)\(")
    assert libm.search(before) and not libm.search(after)
    assert "exp2f(" in after and "__fdividef(" in after
    if workload.op == "gemm_bias_gelu" and exact.params.splits > 1:
        start = re.search(r"_reduce_kernel\([^)]*\)\s*\{", after).end()  # its definition
        reduce = after[start:].split('extern "C"')[0]
        assert "exp2f(" in reduce and "_mma_async" not in reduce
    assert spill_free(src)  # nvcc builds it (ptxas_report fails where it does not)


def test_store_rows_is_for_c_rows_the_tma_cannot_store():
    """store=rows writes staged tiles where C's rows are not 16-byte multiples; where they are,
    the TMA stores them (rows would be a slower duplicate), and conv outputs always are."""
    rows = DEFAULT.replace(store="rows")
    aligned = Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16")
    with pytest.raises(GenomeError, match="store=tma does"):
        Grammar(TARGET).check(rows, aligned)
    assert FAMILY.impossible(aligned, TARGET)["store"] == ("rows",)
    odd = Workload("gemm_nt", (8205, 5921, 2949), "float16", "float16")
    assert "store" not in FAMILY.impossible(odd, TARGET)
    assert Grammar(TARGET).check(rows, odd).params.store == "rows"
    four = Workload("gemm_nt", (1000, 1001, 1000), "float16", "float32")  # 4-byte C, N odd
    assert Grammar(TARGET).check(rows.replace(raster=1), four).params.store == "rows"
    batched = Workload("batch_gemm_nt", (3, 100, 201, 72), "bfloat16", "bfloat16")
    tma = Grammar(TARGET).check(rows.replace(store="tma", raster=1), batched)  # 3-D C map
    assert tma.params.store == "tma"
    assert Grammar(TARGET).check(rows.replace(raster=1), batched).params.store == "rows"


@pytest.mark.parametrize("workload, genes", ROWS, ids=lambda x: str(x)[:60])
def test_store_rows_writes_the_staged_tile_in_row_runs_without_a_copy_out(
    needs_nvcc, workload, genes
):
    """The tile is staged in shared memory as for the TMA store, then stored from there by the
    consumer threads, a row's consecutive columns on consecutive threads, checked at the edges:
    no bulk store, no scratch C and no copy-out kernel; nothing spills."""
    genome = Grammar(TARGET).check(DEFAULT.replace(store="rows", **genes), workload)
    mod = kernel_module(genome, workload)
    assert not any("unpad" in str(g) for g in mod.get_global_vars())
    src = cuda_source(build_module(mod, TARGET, check_nvcc=True))
    body = main_body(src)
    assert "bulk_tensor" in body  # the TMA loads
    assert "s2g" not in body and "cp_async_bulk_commit_group" not in body  # no TMA store
    stores = [line for line in body.split("\n") if "C_ptr[" in line and " = " in line]
    assert stores and all("pool_ptr" in line.split(" = ")[1] for line in stores)  # from smem
    assert "0 bytes spill stores" in ptxas_report(src)


def test_swapped_conv_legality():
    """operands=ba: 16-bit convs (and a 16-bit C) whose output rows tile block_n, with the TMA
    store, one block per tile's K steps, no cluster or ping-pong; block_n=112 is its width
    only; drawn only where it can be (the generator's mask), held back until the GPU gate."""
    kw = dict(smem_limit=SMEM, sm_count=132, raster=1, out_dtype="float16", store="tma")
    conv = dict(conv=(32, 28, 28, 256, 3, 3, 1), **kw)
    m, n, k = 32 * 28 * 28, 256, 2304
    assert legal(m, n, k, operands="ba", block_n=112, **conv) is None
    assert legal(m, n, k, operands="ba", block_n=112, schedule="persistent", **conv) is None
    assert "whole rows of 28" in legal(m, n, k, operands="ba", block_n=128, **conv)
    assert "operands=ba" in legal(m, n, k, block_n=112, **conv)  # 112 is the swapped width
    assert "store=tma" in legal(m, n, k, operands="ba", block_n=112, **{**conv, "store": "direct"})
    assert "16-bit C" in legal(
        m, n, k, operands="ba", block_n=112, **{**conv, "out_dtype": "float32"}
    )
    assert "16-bit conv2d" in legal(4096, 4096, 4096, operands="ba", block_n=112, **kw)
    assert "operands 'ab2'" in legal(m, n, k, operands="ab2", **conv)
    square = FAMILY.impossible(Workload("gemm_nt", (4096,) * 3, "float16", "float16"), TARGET)
    assert square["operands"] == ("ba",) and 112 in square["block_n"]
    resnet = Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16")
    assert "operands" not in FAMILY.impossible(resnet, TARGET)
    wide = Workload("conv2d_nhwc", (8, 32, 32, 64, 128, 3, 3, 1, 1), "float16", "float16")
    assert "operands" not in FAMILY.impossible(wide, TARGET)  # 2 or 4 rows of 32: 64, 128
    assert 112 in FAMILY.impossible(wide, TARGET)["block_n"]
    assert FAMILY.held_back["operands"] == ("ba",)


@pytest.mark.parametrize("workload, genes", SWAPPED, ids=lambda x: str(x)[:60])
def test_swapped_conv_puts_channels_on_m_and_pixel_rows_on_n(needs_nvcc, workload, genes):
    """operands=ba: wgmma m64n112 (the filter's 64 channels a warpgroup on M, 112 pixels on
    N); A's ring rows come through the filter's 2-D map, B's through the image's 4-D box
    (one per filter tap and 64 channels), and each warpgroup's tile leaves through one 4-D TMA
    store of its 64 channels; no spills. The unswapped conv loads the image into A's rows."""
    genome = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    plain = genome.replace(operands="ab", block_n=128, schedule="tile", store="tma")
    plain_src = cuda_source(build_module(kernel_module(plain, workload), TARGET))

    def loads(cuda, dims):  # the maps the kernel's TMA loads of `dims` dimensions read
        return set(re.findall(rf"tensor_{dims}d_shared__cluster.*?&\((\w)_map\)", main_body(cuda)))

    assert "m64n112k16" in src and "m64n128k16" in plain_src
    assert loads(src, 4) == {"b"} and loads(src, 2) == {"a"}
    assert loads(plain_src, 4) == {"a"} and loads(plain_src, 2) == {"b"}
    assert "s2g_async_bulk_tensor_4d" in src
    assert spill_free(src)


@pytest.mark.parametrize("workload, genes", CONV_EDGES, ids=lambda x: str(x)[:60])
def test_conv_edges_read_taps_through_a_3d_filter_map_and_guard_channels(
    needs_nvcc, workload, genes
):
    """A conv whose C is not a multiple of 64 runs ceil(C / 64) K steps a filter tap, the
    filter read through a [K, R * S, C] map (a box of one tap's 64 channels, zero past C; a
    2-D map would read the next tap's channels there); output channels past a multiple of 64
    are checked before any store (or left to the TMA store's clipping); nothing spills."""
    genome = Grammar(TARGET).check(DEFAULT.replace(**genes), workload)
    n, c, r, s = workload.shape[4], workload.shape[3], workload.shape[5], workload.shape[6]
    script = kernel_module(genome, workload)["main"].script()
    b_map = re.search(r'EncodeTiled", b_map, "\w+", (\d), B.data, ([\d, ]+)\)', script)
    rank, fields = int(b_map.group(1)), [int(f) for f in b_map.group(2).split(", ")]
    if c % 64:
        assert rank == 3 and fields[:3] == [c, r * s, n] and fields[5:8][:2] == [64, 1]
    else:
        assert rank == 2 and fields[:2] == [r * s * c, n]
    src = cuda_source(build_module(kernel_module(genome, workload), TARGET, check_nvcc=True))
    body = main_body(src)
    tail = n % genome.params.block_n != 0
    assert (f" < {n})" in body) == (
        tail and genome.params.store != "tma" or bool(workload.epilogue and tail)
    )
    assert spill_free(src)


def test_conv_edges_legality():
    """Edges are taken only where no tile fits whole (C or K not a multiple of 64), for
    16-bit inputs and operands=ab; a K that is a multiple of 64 still needs a block width that
    divides it."""
    ragged = Workload("conv2d_nhwc", (32, 28, 28, 96, 96, 3, 3, 1, 1), "float16", "float16")
    grammar = Grammar(TARGET)
    assert grammar.check(DEFAULT, ragged) == DEFAULT  # 256 wide over 96 channels: legal
    whole = Workload("conv2d_nhwc", (32, 28, 28, 96, 128, 3, 3, 1, 1), "float16", "float16")
    with pytest.raises(GenomeError, match="not a multiple of the 128x256x64 tile"):
        grammar.check(DEFAULT, whole)
    assert grammar.check(DEFAULT.replace(block_n=128), whole)
    swapped = DEFAULT.replace(operands="ba", block_n=112, store="tma", raster=1)
    wide = Workload("conv2d_nhwc", (32, 28, 28, 96, 256, 3, 3, 1, 1), "float16", "float16")
    with pytest.raises(GenomeError, match="C and K .* multiples of 64"):
        grammar.check(swapped, wide)
    assert "cuda.wgmma" in names(grammar, ragged)
    # the seed's tile width fills the SMs' rounds best, the wider of near-ties: 96 channels of
    # 16 x 64 x 64 pixels take 128-wide tiles (25% past K) over 64-wide ones (the same rounds)
    pointwise = Workload("conv2d_nhwc", (16, 64, 64, 96, 96, 1, 1, 1, 0), "float16", "float16")
    seed = FAMILY.seed(pointwise, TARGET)
    assert (seed.block_n, seed.schedule, seed.store) == (128, "persistent", "tma")

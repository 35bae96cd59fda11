# SPDX-License-Identifier: Apache-2.0
"""Numerics of every CUDA family on the GPU, through the correctness gate (fp64 reference).

Marked ``gpu``: skipped where torch sees no CUDA device. Each case builds the family's default
parameters for the workload (a whole kernel, or one sampled candidate of the design space after
its rewrites), runs it on the GPU and passes it through :func:`autokernel_tvm.verify.verify`.
Run on the GPU machine: ``python -m pytest tests/gpu -m gpu -v``.
"""

from __future__ import annotations

import itertools

import pytest
import tvm
from tvm.s_tir import meta_schedule as ms
from wgmma_cases import (  # tests/wgmma_cases.py, shared with the CPU tests
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

from autokernel_tvm.builder import build_module
from autokernel_tvm.families import GenomeError, Kernel, get
from autokernel_tvm.intrin import import_stock_intrinsics, register_all
from autokernel_tvm.space.genome import Genome
from autokernel_tvm.space.grammar import Grammar
from autokernel_tvm.targets import detect_cuda_arch, make_target
from autokernel_tvm.verify import verify
from autokernel_tvm.workloads import Workload
from autokernel_tvm.workloads.epilogue import ACC, Epilogue, F, operand

pytestmark = pytest.mark.gpu

SILU_BIAS = Epilogue(F("silu", F("add", ACC, operand(0))), ("n",))

CASES = [
    ("cuda.wgmma", Workload("gemm_nt", (1024, 1024, 1024), "float16")),
    ("cuda.wgmma", Workload("gemm", (1024, 2048, 512), "bfloat16", "bfloat16")),
    ("cuda.wgmma", Workload("batch_gemm_nt", (4, 512, 512, 256), "float16")),
    ("cuda.wgmma", Workload("gemm_bias_gelu", (1024, 1024, 512), "float16", "float16")),
    ("cuda.wgmma", Workload("conv2d_nhwc", (4, 28, 28, 128, 256, 3, 3, 1, 1), "float16")),
    ("cuda.wgmma", Workload("gemm_gated_nt", (1024, 1536, 512), "bfloat16", "bfloat16")),
    ("cuda.wgmma", Workload("gemm_gated_nt", (2048, 11008, 4096), "float16", "float16")),
    # edge tiles: ceil-div grids, zero-filled K tails, checked stores
    ("cuda.wgmma", Workload("gemm_nt", (1000, 1000, 1000), "float16")),
    ("cuda.wgmma", Workload("gemm", (777, 1000, 520), "bfloat16", "bfloat16")),
    ("cuda.wgmma", Workload("gemm_nt", (16, 4096, 4096), "float16", "float16")),
    ("cuda.wgmma", Workload("batch_gemm_nt", (3, 100, 200, 72), "float16")),
    ("cuda.wgmma", Workload("gemm_gated_nt", (1000, 1000, 1000), "float16", "float16")),
    # rows the TMA cannot address (K, or N of B [K, N], not a multiple of 8): padded copies
    ("cuda.wgmma", Workload("gemm_nt", (2047, 2049, 2051), "float16", "float16")),
    ("cuda.wgmma", Workload("gemm", (777, 1001, 999), "bfloat16", "bfloat16")),
    ("cuda.wgmma", Workload("batch_gemm_nt", (3, 100, 201, 77), "float16")),
    ("cuda.wgmma", Workload("gemm_gated_nt", (1000, 1000, 1001), "float16", "float16")),
    ("cuda.wgmma", Workload("gemm_bias_gelu", (1000, 999, 1003), "bfloat16", "bfloat16")),
    # fp32 inputs as 3xTF32, held to the fp32 bound: both layouts, edges, batched, bias + ReLU
    ("cuda.wgmma", Workload("gemm", (1024, 1024, 1024), "float32")),
    ("cuda.wgmma", Workload("gemm_nt", (1000, 999, 1003), "float32")),
    ("cuda.wgmma", Workload("batch_gemm", (3, 100, 200, 77), "float32")),
    ("cuda.wgmma", Workload("gemm_bias_relu", (512, 768, 4096), "float32")),
    # A.T @ B: A ([K, M]) transposed by its split copy (wgmma transposes 16-bit inputs only)
    ("cuda.wgmma", Workload("gemm_tn", (1000, 999, 777), "float32")),
    ("cuda.wgmma", Workload("batch_gemm_tn", (3, 200, 130, 77), "float32", precision="tf32")),
    # TF32 allowed, B as [K, N]: three passes over the split copies (one reads K-major only)
    ("cuda.wgmma", Workload("gemm", (1000, 1000, 999), "float32", precision="tf32")),
    # TF32 allowed by the user: one product, held to the TF32 bound
    ("cuda.wgmma", Workload("gemm_nt", (1024, 1024, 1000), "float32", precision="tf32")),
    # fp32 conv2d: 3xTF32 over split channels (any C: the segments are padded), TF32 if allowed
    ("cuda.wgmma", Workload("conv2d_nhwc", (8, 28, 28, 64, 128, 3, 3, 1, 1), "float32")),
    ("cuda.wgmma", Workload("conv2d_nhwc", (4, 30, 30, 3, 64, 3, 3, 1, 1), "float32")),
    # 9 taps of 256 channels: summed tap by tap, the small products of later taps were added to
    # the large running sum (1.5x the fp32 bound); all taps' small products come first now
    ("cuda.wgmma", Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float32")),
    (
        "cuda.wgmma",
        Workload("conv2d_nhwc", (8, 28, 28, 128, 128, 3, 3, 2, 1), "float32", precision="tf32"),
    ),  # fmt: skip
    # a few rows of A on the CUDA cores: N and K edges, fp32, bias + GELU, an expression
    ("cuda.gemv", Workload("gemm_nt", (1, 4096, 4096), "float16", "float16")),
    ("cuda.gemv", Workload("gemm_nt", (3, 1001, 4104), "bfloat16", "bfloat16")),
    ("cuda.gemv", Workload("gemm_nt", (16, 777, 1000), "float32")),
    ("cuda.gemv", Workload("gemm_bias_gelu", (8, 2048, 512), "float16", "float16")),
    ("cuda.gemv", Workload("gemm_gated_nt", (2, 1000, 1024), "bfloat16", "bfloat16")),
    ("cuda.gemv", Workload("gemm_gated_nt", (16, 4096, 4096), "float16", "float16")),
    # rows of B not 16-byte multiples: 2-, 4- and 8-byte loads, the K edge inside a chunk row
    ("cuda.gemv", Workload("gemm_nt", (11, 1275, 4233), "float16", "float16")),
    ("cuda.gemv", Workload("gemm_gated_nt", (3, 1000, 1030), "bfloat16", "bfloat16")),
    ("cuda.gemv", Workload("gemm_bias_gelu", (1, 2112, 9852), "float16", "float16")),
    (
        "cuda.gemv",
        Workload("gemm_nt", (2, 1000, 4096), "bfloat16", "bfloat16", epilogue=SILU_BIAS),
    ),  # fmt: skip
    ("cuda.mma", Workload("gemm", (1024, 1024, 1024), "float16")),
    ("cuda.mma", Workload("gemm_nt", (512, 1024, 256), "bfloat16")),
    ("cuda.mma", Workload("gemm", (1000, 1000, 1000), "float16")),  # padded by a rewrite
    ("cuda.mma", Workload("gemm_bias_relu", (512, 512, 512), "float16")),
    ("cuda.mma", Workload("conv2d_nhwc", (4, 16, 16, 64, 128, 3, 3, 1, 1), "float16")),
]


@pytest.fixture(scope="module")
def target():
    arch = detect_cuda_arch()
    if arch is None:
        pytest.skip("no CUDA GPU")
    import_stock_intrinsics()
    register_all()
    return make_target("cuda", arch)


def _kernel(family, params, workload, target, seed: int):
    candidate = family.candidate(params, workload, target)
    if isinstance(candidate, Kernel):
        return candidate.mod
    ctx = ms.TuneContext(
        mod=candidate.mod, target=target, space_generator=candidate.space, rand_state=seed
    )
    (sch, *_) = ctx.generate_design_space()
    assert all(p.apply(sch) for p in ctx.space_generator.postprocs)
    return sch.mod


def _ids(cases) -> list[str]:
    """Test ids of (workload, genes) cases: the workload's name, then each gene's value."""
    return [w.name + "".join(f"_{v}" for v in g.values()) for w, g in cases]


def _wgmma_passes_gate(target, workload, genome):
    """The grammar's check of a ``cuda.wgmma`` genome, its build, then the correctness gate."""
    genome = Grammar(target).check(genome, workload)
    exe = build_module(_kernel(get("cuda.wgmma"), genome.params, workload, target, 1), target)
    report = verify(exe["main"], workload, tvm.cuda(0))
    assert report.passed, (genome.describe(), report.failures)


def _legal(grammar, name, workload) -> Genome:
    """The family default if legal here, else the first legal genome the generator proposes
    (e.g. a raster group that divides this workload's tile count)."""
    from autokernel_tvm.families import GenomeError
    from autokernel_tvm.space.generator import Generator

    try:
        return grammar.check(Genome.default(name), workload)
    except GenomeError:
        proposals = Generator(grammar, workload, seed=0).propose(40)
        return next(g for g in proposals if g.family == name)


@pytest.mark.parametrize("name, workload", CASES, ids=[f"{n}-{w.name}" for n, w in CASES])
def test_family_numerics_pass_the_gate(target, name, workload):
    family = get(name)
    if family.applies(workload, target) is not None:
        pytest.skip(f"{name}: {family.applies(workload, target)}")
    genome = _legal(Grammar(target), name, workload)
    for seed in (1, 2):  # design spaces: two sampled candidates; a whole kernel: the same twice
        exe = build_module(_kernel(family, genome.params, workload, target, seed), target)
        report = verify(exe["main"], workload, tvm.cuda(0))
        assert report.passed, (genome.describe(), report.failures)


PERSISTENT = [
    (Workload("gemm_nt", (2048, 4096, 512), "float16", "float16"), {}),
    (Workload("gemm", (2000, 5000, 1000), "bfloat16", "bfloat16"), {}),  # edge tiles
    (Workload("batch_gemm_nt", (16, 512, 1024, 256), "float16"), {"stages": 3}),  # 4 % 3 K steps
    (Workload("gemm_gated_nt", (2048, 11008, 4096), "float16", "float16"), {}),
    (Workload("gemm_nt", (2048, 4096, 512), "float16", "float16"), {"cluster": 2}),
    (Workload("gemm", (2000, 5000, 1000), "bfloat16", "bfloat16"), {"cluster": 2}),
    (Workload("batch_gemm_nt", (16, 512, 1024, 256), "float16"), {"stages": 3, "cluster": 2}),
    (Workload("gemm_nt", (2048, 4096, 512), "float16", "float16"), {"store": "tma"}),
    (Workload("gemm", (2000, 5000, 1000), "bfloat16", "bfloat16"), {"store": "tma"}),
    (Workload("gemm_bias_gelu", (2048, 4096, 1024), "float16", "float16"), {"store": "tma"}),
    (Workload("batch_gemm_nt", (16, 512, 1024, 256), "float16", "float16"), {"store": "tma"}),
    (Workload("gemm_gated_nt", (2048, 11008, 4096), "float16", "float16"), {"store": "tma"}),
    (Workload("gemm_nt", (2048, 4096, 512), "float16"), {"store": "tma"}),  # fp32 C
    (Workload("gemm", (2000, 5000, 1000), "bfloat16", "float32"), {"store": "tma"}),
    (
        Workload("conv2d_nhwc", (32, 28, 28, 128, 256, 3, 3, 1, 1), "float16", "float16"),
        {"store": "tma"},
    ),  # fmt: skip
    (Workload("gemm_gated_nt", (2000, 2000, 1000), "bfloat16", "bfloat16"), {"store": "tma"}),
    # an odd number of store boxes a tile (64 or 192 columns of 16-bit C) and two K steps: a
    # tile's first box refills the buffer the tile before stored from last
    (
        Workload("gemm_nt", (2048, 4032, 128), "float16", "float16"),
        {"store": "tma", "block_n": 192},
    ),
    (Workload("gemm_nt", (2048, 4096, 128), "float16", "float16"), {"store": "tma", "block_n": 64}),
    # C rows that are not 16-byte multiples: TMA-stored into scratch rows, then copied into C
    (Workload("gemm_nt", (2051, 2049, 2051), "float16", "float16"), {"store": "tma"}),
    (Workload("gemm", (2000, 5001, 1000), "bfloat16", "float32"), {"store": "tma"}),
    (Workload("batch_gemm_nt", (16, 512, 1001, 256), "float16", "float16"), {"store": "tma"}),
    (Workload("gemm_bias_gelu", (2048, 4093, 1024), "bfloat16", "bfloat16"), {"store": "tma"}),
    # ping-pong: each warpgroup its own 64-row tile, in turn (parities across skipped tiles)
    (Workload("gemm_nt", (2048, 4096, 512), "float16", "float16"), {"arrangement": "pingpong"}),
    (
        Workload("gemm_bias_gelu", (2048, 4096, 1024), "float16", "float16"),
        {"arrangement": "pingpong", "store": "tma"},
    ),
    (
        Workload("gemm", (2000, 5000, 1000), "bfloat16", "bfloat16"),
        {"arrangement": "pingpong", "store": "tma"},
    ),  # edge tiles, B as [K, N]
    (
        Workload("batch_gemm_nt", (16, 512, 1024, 256), "float16"),
        {"arrangement": "pingpong", "stages": 3},
    ),
    (
        Workload("gemm_nt", (2048, 4096, 4096), "float16", "float16"),
        {"arrangement": "pingpong", "store": "tma"},
    ),  # 64 K steps per tile: a consumer skips 16 rings of the other's
    (
        Workload("gemm_nt", (2048, 4096, 1024), "float16", "float16"),
        {"arrangement": "pingpong", "cluster": 2, "store": "tma"},
    ),  # the pair's warpgroups free each multicast stage in both blocks
]


@pytest.mark.parametrize(
    "workload, genes",
    PERSISTENT,
    ids=_ids(PERSISTENT),
)
def test_persistent_schedule_passes_the_gate(target, workload, genes):
    """A block per SM looping over tiles, the ring's phases carried across them: a phase off by
    one hangs or reads a stage before its load lands, which the gate's inputs catch. With
    clusters, each block's B half arrives by the peer's multicast."""
    genome = Genome.default("cuda.wgmma").replace(schedule="persistent", raster=4, **genes)
    _wgmma_passes_gate(target, workload, genome)


SPLIT_K = [
    (Workload("gemm_nt", (16, 4096, 4096), "float16", "float16"), {"splits": 4}),
    (Workload("gemm_nt", (1, 4096, 4096), "float16", "float16"), {"splits": 4, "block_n": 64}),
    (Workload("gemm", (64, 11008, 4096), "bfloat16", "bfloat16"), {"splits": 2}),
    (Workload("gemm_bias_gelu", (16, 1000, 1003), "bfloat16", "bfloat16"), {"splits": 2}),
    (Workload("batch_gemm_nt", (3, 100, 201, 500), "float16", "float16"), {"splits": 2}),
    (Workload("gemm_nt", (256, 256, 65536), "float16"), {"splits": 16}),  # large K, fp32 C
    (Workload("gemm", (64, 1001, 4096), "float16"), {"splits": 2}),  # odd N
    (Workload("gemm_nt", (16, 4096, 4096), "float16", "float16", SILU_BIAS), {"splits": 2}),
]


@pytest.mark.parametrize(
    "workload, genes", SPLIT_K, ids=[w.name + str(g["splits"]) for w, g in SPLIT_K]
)
def test_split_k_passes_the_gate(target, workload, genes):
    """Blocks sharing a tile's K steps store f32 partials; the companion sums them in split order
    and applies the epilogue. A partial written to the wrong split or row, a K range read
    twice, or a reduction launched with its pointers out of order fails the fp64 check; an
    order that changed from run to run would fail the gate's bitwise determinism check."""
    genes = {"consumers": 1, "block_n": 128, "raster": 0, **genes}
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize(
    "workload, genes",
    [(w, g) for w, g in SPLIT_K if g["splits"] <= 8]
    + [(Workload("gemm_nt", (256, 256, 65536), "float16"), {"splits": 8, "consumers": 2})],
    ids=[w.name + str(g["splits"]) for w, g in SPLIT_K if g["splits"] <= 8] + ["large_k_c2"],
)
def test_cluster_split_k_passes_the_gate(target, workload, genes):
    """The same split-K cases with the partials summed in the cluster's shared memory: a block
    reading a peer's window before the peer wrote it, a fragment summed by two blocks or by
    none, or a block leaving while a peer still reads it fails the fp64 check or hangs."""
    genes = {"consumers": 1, "block_n": 128, "raster": 0, "reduction": "cluster", **genes}
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


STREAMK = [
    (Workload("gemm_nt", (2048, 11008, 4096), "float16", "float16"), {"splits": 2, "store": "tma"}),
    (Workload("gemm_nt", (2047, 2561, 4096), "bfloat16", "bfloat16"), {"splits": 2, "raster": 0}),
    (Workload("batch_gemm", (3, 1000, 2048, 1024), "float16", "float16"), {"splits": 2}),
    (Workload("gemm_bias_gelu", (2048, 11008, 4096), "float16", "float16"), {"splits": 2}),
    (Workload("conv2d_nhwc", (20, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16"),
     {"splits": 2, "store": "tma", "raster": 4}),
    # gated: each split's gate and up accumulators summed, then silu(gate) * up
    (Workload("gemm_gated_nt", (2048, 11008, 4096), "bfloat16", "bfloat16"),
     {"splits": 2, "store": "tma"}),
    (Workload("gemm_gated_nt", (2047, 11000, 4096), "float16", "float16"), {"splits": 2}),
]  # fmt: skip


@pytest.mark.parametrize(
    "workload, genes",
    STREAMK,
    ids=_ids(STREAMK),
)
def test_streamk_passes_the_gate(target, workload, genes):
    """Whole waves of tiles, then each last-wave tile split over a cluster and summed in its
    shared memory: a split reading the wrong K range, a tail tile mapped to the wrong blocks or
    stored twice, a ring phase off by the tail's shorter K loop (a hang), or a block leaving
    while its peer still reads it fails the fp64 check or the gate's determinism check."""
    genes = {"schedule": "streamk", "reduction": "cluster", **genes}
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


STREAM = [
    (Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16"),
     {"store": "tma", "raster": 16}),
    (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"), {"store": "tma"}),
    (Workload("gemm_gated_nt", (2048, 11008, 4096), "bfloat16", "bfloat16"), {}),
    (Workload("gemm_nt", (2047, 2561, 4091), "bfloat16", "bfloat16"), {"raster": 0}),
    (Workload("batch_gemm", (3, 1000, 2048, 1024), "float16", "float16"), {"raster": 0}),
    (Workload("gemm_bias_gelu", (2048, 4096, 11008), "float16", "float16"), {}),
]  # fmt: skip


@pytest.mark.parametrize(
    "workload, genes",
    STREAM,
    ids=_ids(STREAM),
)
def test_stream_passes_the_gate(target, workload, genes):
    """stream-K: equal shares of all tiles' K steps, each run last tile first, the tiles split
    between blocks fixed up by the block holding their last K step from the earlier blocks'
    workspace shares, in block order: a share read before its flag, a flag not cleared
    between launches (the gate runs the kernel more than once), a wrong K offset or a missing
    share fails the fp64 check or the determinism check; a wait with no writer hangs."""
    _wgmma_passes_gate(
        target, workload, Genome.default("cuda.wgmma").replace(schedule="stream", **genes)
    )


@pytest.mark.parametrize("workload, genes", STREAM_TAIL, ids=_ids(STREAM_TAIL))
def test_stream_tail_passes_the_gate(target, workload, genes):
    """stream_tail: the whole waves as persistent tiles, then stream-K over the partial last
    wave: a ring iteration off by the whole waves' K steps, a share taken from the wrong
    offset or a split tile not fixed up fails the fp64 or the determinism check; a wait with
    no writer hangs."""
    genome = Genome.default("cuda.wgmma").replace(schedule="stream_tail", **genes)
    _wgmma_passes_gate(target, workload, genome)


@pytest.mark.parametrize("workload, genes", SWAPPED, ids=_ids(SWAPPED))
def test_swapped_conv_passes_the_gate(target, workload, genes):
    """operands=ba: the filter's channels on wgmma's M, whole output rows of pixels on N, the
    tile stored transposed: a swizzle, tap or channel offset wrong, a pixel row past P stored,
    or a channel's epilogue operand read for the wrong pixel fails the fp64 check."""
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", CONV_EDGES, ids=_ids(CONV_EDGES))
def test_conv_edges_pass_the_gate(target, workload, genes):
    """C or output channels not a multiple of 64: a tap's channels past C read from the next
    tap (not zeros), or a channel past K stored or its bias operand read from past its end,
    fails the gate's fp64 check."""
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


PAD_LINES = [
    Workload("gemm_nt", (2048, 4096, 1000), "float16", "float16"),
    Workload("gemm", (777, 1000, 520), "bfloat16", "bfloat16"),
    Workload("batch_gemm_nt", (3, 100, 200, 72), "float16"),
]


@pytest.mark.parametrize("workload", PAD_LINES, ids=[w.name for w in PAD_LINES])
def test_pad_lines_passes_the_gate(target, workload):
    """Operands with 16-byte but not 128-byte rows read through zero-padded copies: a copy
    with the wrong row length or a tensor map still on the original fails the fp64 check."""
    genome = Genome.default("cuda.wgmma").replace(raster=1, pad="lines")
    _wgmma_passes_gate(target, workload, genome)


TRANS_A = [
    (Workload("gemm_tn", (1024, 1024, 1024), "float16"), {}),
    (Workload("gemm_tn", (777, 1001, 999), "bfloat16", "bfloat16"), {}),  # A and B padded, edges
    (Workload("batch_gemm_tn", (3, 100, 200, 128), "float16"), {"consumers": 1}),
    (Workload("gemm_tn", (2048, 4096, 1024), "float16", "float16"),
     {"schedule": "persistent", "store": "tma"}),
    (Workload("gemm_tn", (2048, 4096, 1024), "bfloat16", "bfloat16"),
     {"schedule": "persistent", "arrangement": "pingpong", "store": "tma"}),
    (Workload("gemm_tn", (2048, 4096, 1024), "float16", "float16"),
     {"schedule": "persistent", "cluster": 2, "raster": 4}),
    (Workload("gemm_tn", (16, 4096, 4096), "float16", "float16"),
     {"consumers": 1, "block_n": 128, "splits": 4}),
]  # fmt: skip


@pytest.mark.parametrize(
    "workload, genes",
    TRANS_A,
    ids=_ids(TRANS_A),
)
def test_transposed_a_passes_the_gate(target, workload, genes):
    """A stored [K, M], read through wgmma's transpose: a box loaded at the wrong M or K
    coordinate, a descriptor stepping K along the wrong axis or a missing transpose flag
    computes another product, which the fp64 check catches."""
    genome = Genome.default("cuda.wgmma").replace(raster=1).replace(**genes)
    _wgmma_passes_gate(target, workload, genome)


@pytest.mark.parametrize("workload, genes", BIAS_START, ids=_ids(BIAS_START))
def test_bias_at_start_passes_the_gate(target, workload, genes):
    """Accumulators started from the bias: a bias added twice (or not at all), a column off by
    the fragment layout, an edge column read past N or a tile of a persistent block started
    from the previous tile's columns fails the fp64 check."""
    genes = {"bias_at": "start", **genes}
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", BIAS_PREFETCH, ids=_ids(BIAS_PREFETCH))
def test_bias_at_prefetch_passes_the_gate(target, workload, genes):
    """The vector's slice staged in shared memory: a column off by the slice's offset, a tile
    that reads the previous tile's slice (a missing barrier), a slice half filled on 128-wide
    tiles or an edge column read past N fails the fp64 check or the NaN-poisoned output
    check."""
    genes = {"bias_at": "prefetch", **genes}
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", FAST_MATH, ids=_ids(FAST_MATH))
def test_epilogue_math_fast_passes_the_gate(target, workload, genes):
    """GELU, SiLU, sigmoid and tanh through ``exp2f`` and ``__fdividef``: a wrong
    coefficient, a sign lost in the normal CDF's two branches, or a quotient that overflows
    to NaN in a tail fails the fp64 check against the exact functions (the gate's inputs
    reach |acc| in the tens, both tails)."""
    genes = {"epilogue_math": "fast", **genes}
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", ROWS, ids=_ids(ROWS))
def test_store_rows_passes_the_gate(target, workload, genes):
    """C rows that start anywhere, written from the staged tile in row runs: a run shifted by
    the swizzle, a row or column past the edge written (into the next row, or the next
    matrix of a batch) or a buffer refilled before every warp has read it fails the fp64
    check, the NaN-poisoned output check or the determinism check."""
    _wgmma_passes_gate(
        target, workload, Genome.default("cuda.wgmma").replace(store="rows", **genes)
    )


@pytest.mark.parametrize("workload, genes", FP8, ids=_ids(FP8))
def test_fp8_passes_the_gate(target, workload, genes):
    """fp8 A @ B.T scaled by its per-tensor scales, held to the bound of the tensor core's fp8
    accumulator (verify.FP8_ACC_BITS): a wrong K step of 32, a scale applied twice or not at
    all, or an edge byte read past K fails the fp64 or the exact check."""
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", CONSUMERS3, ids=_ids(CONSUMERS3))
def test_three_consumers_pass_the_gate(target, workload, genes):
    """192-row tiles of three consumer warpgroups: a stage released after two warpgroups'
    arrivals (not three) is refilled under the third's wgmma, and a warpgroup's rows stored at
    another's offset, fail the fp64 check."""
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", K_ATOMS2, ids=_ids(K_ATOMS2))
def test_two_k_slices_a_stage_pass_the_gate(target, workload, genes):
    """Stages of two K slices: a second slice loaded at the first's K (or into the wrong
    slot), a barrier released after one slice, or the K tail's empty slice read as data fails
    the fp64 check."""
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", PRODUCER_WARPS2, ids=_ids(PRODUCER_WARPS2))
def test_two_producer_warps_pass_the_gate(target, workload, genes):
    """A by one warp, B by another: a barrier expecting the wrong bytes of either (or one
    arrival) hands the consumers a half-loaded stage, which fails the fp64 check, or never
    completes (the run hangs: run with a time limit)."""
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", SHARE_A, ids=_ids(SHARE_A))
def test_share_a_passes_the_gate(target, workload, genes):
    """1 x 2 clusters multicasting halves of A: a half landing at the wrong rows of the peer's
    ring, or a pair whose blocks compute different M tiles, fails the fp64 check."""
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", HILBERT, ids=_ids(HILBERT))
def test_hilbert_order_passes_the_gate(target, workload, genes):
    """Tiles in Hilbert order: a tile computed twice and another never (its C left as the
    gate's NaN poison), or two blocks storing one tile, fails the NaN-poisoned output check
    or the fp64 check."""
    genes = {"order": "hilbert", **genes}
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", WIDE192, ids=_ids(WIDE192))
def test_wide192_tiles_pass_the_gate(target, workload, genes):
    """128 x 192 tiles: a B box, a multicast half or a gated half of 96 rows placed at the
    wrong offset, or an edge column of the 31st tile stored, fails the fp64 or the
    NaN-poisoned output check."""
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", REGS, ids=_ids(REGS))
def test_split_registers_pass_the_gate(target, workload, genes):
    """Register budgets per role (setmaxnreg): the kernels compute what the even budgets do.
    A consumer .inc asking for more than the producer gave back would never return (the run
    hangs rather than fails: run with a time limit)."""
    genes = {"regs": "split", **genes}
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize(
    "workload, genes", [c[:2] for c in BATCH_EDGES], ids=_ids([c[:2] for c in BATCH_EDGES])
)
def test_batched_edges_pass_the_gate(target, workload, genes):
    """K tails and M edges of batched GEMMs through 3-D TMA maps: a K tail read from the next
    matrix's rows (not zero-filled), or an edge box stored into the next matrix, fails the fp64
    check or the NaN-poisoned output check."""
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


@pytest.mark.parametrize("workload, genes", STRIDED, ids=_ids(STRIDED))
def test_strided_convs_pass_the_gate(target, workload, genes):
    """Strided convs through a TMA box with element strides: a box that loads every pixel (not
    every u-th), a tap's start not scaled by the stride, or an edge pixel read past the image
    fails the fp64 check."""
    _wgmma_passes_gate(target, workload, Genome.default("cuda.wgmma").replace(**genes))


GEMV = Workload("gemm_nt", (5, 1003, 1032), "bfloat16", "bfloat16")  # both edges, odd M


def test_every_legal_gemv_genome_passes_the_gate(target):
    """Each (warps, rows, unroll) the grammar admits, on a shape whose N and K end mid-step."""
    family = get("cuda.gemv")
    grammar = Grammar(target)
    passed = 0
    for values in itertools.product(*family.domain.values()):
        params = family.default.replace(**dict(zip(family.domain, values)))
        try:
            genome = grammar.check(Genome("cuda.gemv", params), GEMV)
        except GenomeError:
            continue
        exe = build_module(_kernel(family, genome.params, GEMV, target, 1), target)
        report = verify(exe["main"], GEMV, tvm.cuda(0))
        assert report.passed, (genome.describe(), report.failures)
        passed += 1
    assert passed >= 20


GEMV_MMA = [  # math=mma: B's rows as the mma's M side; edges, one and two 8-row tiles of A
    Workload("gemm_nt", (1, 4096, 4096), "float16", "float16"),
    Workload("gemm_nt", (3, 1001, 4104), "bfloat16", "bfloat16"),
    Workload("gemm_nt", (16, 4096, 4096), "float16", "float16"),
    Workload("gemm_nt", (13, 999, 1032), "bfloat16", "float32"),
    Workload("gemm_bias_gelu", (8, 2048, 512), "float16", "float16"),
    Workload("gemm_gated_nt", (4, 1000, 1024), "bfloat16", "bfloat16"),
    Workload("gemm_gated_nt", (16, 4096, 4096), "float16", "float16"),
    Workload("gemm_nt", (2, 1000, 4096), "bfloat16", "bfloat16", epilogue=SILU_BIAS),
]
# rows of B not 16-byte multiples, read by class of their start (8, 4 and 2 classes): the N edge
# clamped inside a class, the row before in the first chunk and the next row past K masked
GEMV_MMA_ODD_K = [
    Workload("gemm_nt", (6, 3735, 11051), "float16", "float16"),
    Workload("gemm_nt", (11, 1275, 4233), "float16", "float16"),
    Workload("gemm_nt", (16, 9, 77), "bfloat16", "float32"),
    Workload("gemm_gated_nt", (3, 1000, 1030), "bfloat16", "bfloat16"),
    Workload("gemm_bias_gelu", (1, 2112, 9852), "float16", "float16"),
    # past 16 rows of A (up to 64 at such K): 4 and 8 tiles of A
    Workload("gemm_nt", (27, 3849, 1321), "float16", "float16"),
    Workload("gemm_nt", (64, 300, 1001), "bfloat16", "float32"),
]


# K split over blocks (a narrow weight, a long K): each split's f32 sums added by the reduction
# kernel in split order; shifted rows (a K tail in the last split, the row before's elements in
# the first split's first trip), aligned rows, an epilogue in the reduction
GEMV_SPLIT = [
    (Workload("gemm_nt", (58, 1098, 14942), "float16", "float16"), 4, 0),
    (Workload("gemm_nt", (58, 1098, 14942), "float16", "float16"), 2, 3),
    (Workload("gemm_bias_gelu", (8, 1024, 8192), "bfloat16", "bfloat16"), 4, 3),
    (Workload("gemm_nt", (27, 300, 4001), "bfloat16", "float32"), 8, 0),
]


@pytest.mark.parametrize(
    "workload, splits, stages", GEMV_SPLIT, ids=lambda v: getattr(v, "name", str(v))
)
def test_gemv_split_k_passes_the_gate(target, workload, splits, stages):
    family = get("cuda.gemv")
    params = family.default.replace(rows=1, unroll=2, math="mma", stages=stages, splits=splits)
    genome = Grammar(target).check(Genome("cuda.gemv", params), workload)
    exe = build_module(_kernel(family, genome.params, workload, target, 1), target)
    report = verify(exe["main"], workload, tvm.cuda(0))
    assert report.passed, (genome.describe(), report.failures)


# A read in place at the shift of each class of B's rows (no shifted copies): 8-byte loads
# (K = 1204) and 4-byte (K = 14942, 1030), registers and the ring, split, an epilogue, 64 rows
GEMV_A_LOAD = [
    (Workload("gemm_nt", (22, 3558, 1204), "float16", "float16"), dict(warps=2, stages=4)),
    (Workload("gemm_nt", (22, 3558, 1204), "float16", "float16"), dict()),
    (Workload("gemm_nt", (58, 1098, 14942), "float16", "float16"), dict(splits=8)),
    (Workload("gemm_bias_gelu", (16, 1001, 1030), "bfloat16", "bfloat16"), dict(stages=3)),
    (Workload("gemm_nt", (64, 3136, 1522), "bfloat16", "float32"), dict(stages=3, splits=2)),
]


@pytest.mark.parametrize("workload, genes", GEMV_A_LOAD, ids=lambda v: getattr(v, "name", str(v)))
def test_gemv_a_read_in_place_passes_the_gate(target, workload, genes):
    """Each lane reads A at its class's shift, clamped into the row in the first and the tail
    trips and masked: a part of A from the row before or after (or before A's start) fails
    the fp64 check or the edge poisoning."""
    family = get("cuda.gemv")
    params = family.default.replace(rows=1, unroll=2, math="mma", a_shift="load", **genes)
    genome = Grammar(target).check(Genome("cuda.gemv", params), workload)
    exe = build_module(_kernel(family, genome.params, workload, target, 1), target)
    report = verify(exe["main"], workload, tvm.cuda(0))
    assert report.passed, (genome.describe(), report.failures)


@pytest.mark.parametrize(
    "workload", [*GEMV_MMA, Workload("gemm_nt", (16, 777, 1000), "float32")], ids=lambda w: w.name
)
def test_gemv_ring_on_the_cuda_cores_passes_the_gate(target, workload):
    """math=ffma with its chunks copied through a ring of 3 trips: a slot read before its copy
    landed (a wrong wait count), a chunk read back from another lane's or trip's place, or a
    tail trip that multiplies chunks past K fails the fp64 check."""
    family = get("cuda.gemv")
    genome = Grammar(target).check(Genome("cuda.gemv", family.default.replace(stages=3)), workload)
    exe = build_module(_kernel(family, genome.params, workload, target, 1), target)
    report = verify(exe["main"], workload, tvm.cuda(0))
    assert report.passed, (genome.describe(), report.failures)


@pytest.mark.parametrize("stages", [0, 3], ids=["registers", "ring3"])
@pytest.mark.parametrize("workload", GEMV_MMA + GEMV_MMA_ODD_K, ids=lambda w: w.name)
def test_gemv_on_the_tensor_cores_passes_the_gate(target, workload, stages):
    """math=mma with its chunks loaded into registers and copied through a ring of 3 trips
    (2 chunks a lane past 16 rows of A: 4 hold neither the registers nor the ring there)."""
    family = get("cuda.gemv")
    unroll = family.default.unroll if workload.shape[0] <= 16 else 2
    params = family.default.replace(rows=1, math="mma", stages=stages, unroll=unroll)
    genome = Grammar(target).check(Genome("cuda.gemv", params), workload)
    exe = build_module(_kernel(family, genome.params, workload, target, 1), target)
    report = verify(exe["main"], workload, tvm.cuda(0))
    assert report.passed, (genome.describe(), report.failures)

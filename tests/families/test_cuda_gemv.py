# SPDX-License-Identifier: Apache-2.0
"""``cuda.gemv``: which workloads it takes (with the reasons for those it does not), the genes'
legality, and the generated CUDA -- 16-byte loads of B all issued before the multiplies, the
warp's shuffle sum, the N and K edges guarded, no spills -- built with nvcc for sm_90a.
The numerics run on the GPU (``tests/gpu``: the correctness gate)."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import pytest
from test_cuda_wgmma import ptxas_report

from autokernel_tvm.builder import build_module, cuda_source
from autokernel_tvm.families import GenomeError
from autokernel_tvm.families.cuda_gemv import FAMILY, MAX_M, SPLITS, GemvParams
from autokernel_tvm.families.cuda_gemv.kernel import chunk_bytes
from autokernel_tvm.families.cuda_gemv.mma import mma_blocks, row_classes
from autokernel_tvm.hardware import limits
from autokernel_tvm.space.generator import Generator
from autokernel_tvm.space.genome import Genome
from autokernel_tvm.space.grammar import Grammar
from autokernel_tvm.space.search import Search
from autokernel_tvm.targets import make_target
from autokernel_tvm.workloads import Workload
from autokernel_tvm.workloads.epilogue import ACC, Epilogue, F, operand

SM90 = make_target("cuda", "sm_90a")
DECODE = Workload("gemm_nt", (1, 4096, 4096), "float16", "float16")
SILU_BIAS = Epilogue(F("silu", F("add", ACC, operand(0))), ("n",))


def source(params, workload) -> str:
    return cuda_source(build_module(FAMILY.candidate(params, workload, SM90).mod, SM90))


def test_takes_a_few_rows_of_a_times_b_transposed_and_says_why_not_otherwise():
    assert FAMILY.applies(DECODE, SM90) is None
    assert FAMILY.applies(Workload("gemm_bias_gelu", (16, 11008, 4096), "bfloat16"), SM90) is None
    assert FAMILY.applies(Workload("gemm_nt", (3, 100, 1000), "float32"), SM90) is None
    assert FAMILY.applies(Workload("gemm_gated_nt", (4, 11008, 4096), "float16"), SM90) is None
    # rows that are not 16-byte multiples (8200 bytes; an odd K) with narrower loads
    assert FAMILY.applies(Workload("gemm_nt", (1, 4096, 4100), "float16"), SM90) is None
    assert FAMILY.applies(Workload("gemm_nt", (11, 11275, 4233), "float16"), SM90) is None
    # up to 64 rows of 16-bit A there, on the tensor cores (the others would copy B)
    assert FAMILY.applies(Workload("gemm_nt", (64, 3849, 1321), "bfloat16"), SM90) is None
    why = {
        "M = 17": Workload("gemm_nt", (MAX_M + 1, 4096, 4096), "float16"),
        "M = 65": Workload("gemm_nt", (65, 3849, 1321), "float16"),
        "M = 27": Workload("gemm_nt", (27, 3849, 1321), "float32"),
        "fewer than the 8 classes": Workload("gemm_nt", (40, 5, 1001), "float16"),
        "A @ B.T": Workload("gemm", (1, 4096, 4096), "float16"),  # B as [K, N]
        "op gemm_scaled_nt": Workload(
            "gemm_scaled_nt", (1, 4096, 4096), "float8_e4m3fn", "bfloat16"
        ),
    }
    for reason, workload in why.items():
        assert reason in FAMILY.applies(workload, SM90), workload.name
    assert "CUDA" in FAMILY.applies(DECODE, make_target("llvm"))
    assert "sm_75" in FAMILY.applies(DECODE, make_target("cuda", "sm_75"))


def test_the_grammar_offers_it_beside_the_tensor_cores_for_small_m_only():
    grammar = Grammar(SM90)
    assert [f.name for f in grammar.families(DECODE)][:2] == ["cuda.gemv", "cuda.wgmma"]
    big = Workload("gemm_nt", (64, 4096, 4096), "float16", "float16")
    assert "cuda.gemv" not in [f.name for f in grammar.families(big)]
    assert "M = 64" in grammar.why_not(big)["cuda.gemv"]
    # a tuning run of a decode shape measures a GEMV genome however few its trials
    search, measured = Search(grammar, DECODE, trials=4), []
    for genome, trials in search:
        measured.append(genome.family)
        search.learn(genome, trials, 1.0)
    assert "cuda.gemv" in measured and "cuda.wgmma" in measured


def test_registers_bound_the_sums_and_chunks_a_lane_keeps():
    FAMILY.check(GemvParams(rows=2, unroll=8), DECODE, SM90)  # 2 sums + 2 x 8 x 4 registers
    with pytest.raises(GenomeError, match="132 registers"):
        FAMILY.check(GemvParams(rows=4, unroll=8), DECODE, SM90)  # 4 + 4 x 8 x 4
    sixteen = Workload("gemm_nt", (16, 4096, 4096), "float16", "float16")
    FAMILY.check(GemvParams(rows=4, unroll=4), sixteen, SM90)  # 64 + 64
    with pytest.raises(GenomeError) as err:
        FAMILY.check(GemvParams(rows=4, unroll=8), sixteen, SM90)  # 64 + 128
    assert err.value.reason == "registers" and "192 registers" in str(err.value)
    with pytest.raises(GenomeError, match="positive"):
        GemvParams(rows=0)
    assert Genome("cuda.gemv", GemvParams()).describe() == (
        "cuda.gemv warps=4 rows=2 unroll=4 math=ffma stages=0 splits=1 a_shift=copy"
    )


def test_the_kernel_loads_b_in_flight_then_sums_across_the_warp():
    params = GemvParams(warps=4, rows=2, unroll=4)
    src = source(params, DECODE)
    body = src.split("main_kernel(")[-1]
    loads = [m.start() for m in re.finditer(r"= \*\(uint4\*\)\(B_ptr", body)]
    first_fma = body.index("acc_ptr[0] = (acc_ptr[0] +")
    assert len(loads) == params.rows * params.unroll  # one 16-byte load per row and chunk
    assert max(loads) < first_fma  # all of a step's loads issued before its first multiply
    assert body.count("*(uint4*)(av_ptr") == params.unroll  # A: a chunk per step, through L1
    assert body.count("warp_reduce_sum_32(acc_ptr") == params.rows  # one sum per output
    assert "__launch_bounds__(128)" in src and "for (int it = 0; it < 4; ++it)" in body
    assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize(
    "workload, params",
    [
        # N not a multiple of a block's rows, K not of a step's chunks: both edges guarded
        (Workload("gemm_nt", (3, 1001, 4104), "bfloat16", "bfloat16"), GemvParams(rows=4)),
        (Workload("gemm_nt", (16, 777, 1000), "float32"), GemvParams(rows=2, unroll=2)),
        (Workload("gemm_bias_gelu", (8, 2048, 512), "float16", "float16"), GemvParams()),
        (
            Workload("gemm_nt", (2, 11008, 4096), "float16", "float16", epilogue=SILU_BIAS),
            GemvParams(warps=8, rows=1, unroll=8),
        ),
    ],
    ids=lambda x: x.name if isinstance(x, Workload) else f"{x.warps}x{x.rows}x{x.unroll}",
)
def test_edges_epilogues_and_dtypes_build_without_spills(workload, params):
    FAMILY.check(params, workload, SM90)
    src = source(params, workload)
    m, n, k = workload.shape
    body = src.split("main_kernel(")[-1]
    vec = 4 if workload.dtype == "float32" else 8
    assert f"< {k // vec})" in body  # a lane's chunk past K: not loaded, zeros
    assert f"{n - 1})" in body  # rows of B past N: clamped to the last (their sums dropped)
    assert re.search(rf"if \(\(?n0_ptr\[0\]\)? < {n}\)", body)  # and not stored
    assert "0 bytes spill stores" in ptxas_report(src)
    if workload.op == "gemm_bias_gelu":
        assert "erf" in body and "bias" in body.lower()


def test_every_legal_genome_of_the_domain_builds_at_sixteen_rows():
    workload = Workload("gemm_nt", (16, 4096, 4096), "float16", "float16")
    legal = []
    domain = {**FAMILY.domain, "splits": (1,)}  # splits: test_split_k_*
    for values in itertools.product(*domain.values()):
        params = GemvParams(**dict(zip(domain, values)))
        try:
            FAMILY.check(params, workload, SM90)
        except GenomeError:
            continue
        legal.append(params)
    ffma = [p for p in legal if p.math == "ffma"]
    mma = [p for p in legal if p.math == "mma" and p.stages == 0]
    assert {p.stages for p in ffma} == {p.stages for p in legal} == {0, 3, 4}
    in_registers = [p for p in ffma if p.stages == 0]
    assert 20 <= len(in_registers) < 36 and 20 <= len(mma) < 36  # registers reject the widest
    for params in legal[::10]:  # a spread of them (each ~1-2 s with nvcc)
        assert "0 bytes spill stores" in ptxas_report(source(params, workload))


def test_the_gated_mlp_reads_both_rows_of_each_output():
    """gemm_gated_nt (B as [2, N, K]: gate rows, then up rows): a warp loads the gate and the up
    row of each of its outputs, N x K elements apart, keeps both sums, and stores
    silu(gate) * up; twice the rows count against the register budget."""
    workload = Workload("gemm_gated_nt", (2, 11008, 4096), "bfloat16", "bfloat16")
    params = GemvParams(rows=1, unroll=4)
    src = source(params, workload)
    body = src.split("main_kernel(")[-1]
    loads = re.findall(r"= \*\(uint4\*\)\(B_ptr \+ \(([^;]*)\)\);", body)
    assert len(loads) == 2 * params.unroll
    assert sum(load.endswith(f"+ {11008 * 4096}") for load in loads) == params.unroll  # up rows
    assert body.count("warp_reduce_sum_32(acc_ptr") == 2 * 2  # 2 rows of A x (gate, up)
    assert body.count("expf(") == 2  # silu of each output's gate sum
    assert "0 bytes spill stores" in ptxas_report(src)
    sixteen = Workload("gemm_gated_nt", (16, 4096, 4096), "float16", "float16")
    FAMILY.check(GemvParams(rows=2, unroll=4), sixteen, SM90)  # 64 sums + 4 x 4 x 4
    with pytest.raises(GenomeError, match="registers"):
        FAMILY.check(GemvParams(rows=2, unroll=8), sixteen, SM90)  # 64 + 128


SIXTEEN = Workload("gemm_nt", (16, 4096, 4096), "float16", "float16")


def test_mma_math_multiplies_b_rows_on_the_tensor_cores():
    """math=mma: a lane's 16-byte chunks of B rows g and g + 8 and of A row g of each 8-row
    tile are all loaded, without branches, before the first mma of a trip; two m16n8k16
    products a chunk and A tile; the warps' sums meet in shared memory after one barrier."""
    params = GemvParams(warps=4, rows=1, unroll=4, math="mma")
    src = source(params, SIXTEEN)
    body = src.split("main_kernel(")[-1]
    b_loads = [m.start() for m in re.finditer(r"= \*\(uint4\*\)\(B_ptr", body)]
    a_loads = [m.start() for m in re.finditer(r"= \*\(uint4\*\)\(A_ptr", body)]
    mmas = [m.start() for m in re.finditer(r"mma\.sync\.aligned\.m16n8k16\.row\.col", body)]
    assert len(b_loads) == 2 * params.unroll and len(a_loads) == 2 * params.unroll
    assert len(mmas) == params.unroll * 2 * 2  # chunks x halves of a chunk x tiles of A
    assert max(b_loads + a_loads) < min(mmas)
    loop = body[body.index("for (int it = 0;") : min(mmas)]
    assert "if (" not in loop  # loads of trips inside K unconditional; A rows clamped to M
    assert ".f32.f16.f16.f32" in body and body.count("tvm_builtin_cuda_cta_sync()") == 1
    # 4096 / 8 chunks in steps of 4 lanes x 4 warps x 4 chunks: 8 trips
    assert "for (int it = 0; it < 8; ++it)" in body and "__shared__" in body
    assert "0 bytes spill stores" in ptxas_report(src)
    bf16 = source(params, Workload("gemm_nt", (3, 1001, 4104), "bfloat16", "bfloat16"))
    assert ".f32.bf16.bf16.f32" in bf16
    # K's last chunk ends the 9th trip: 8 unguarded, the 9th loads zeros past K; B rows clamped
    assert "for (int it = 0; it < 8; ++it)" in bf16 and "if (513 <= ch" in bf16
    assert "1000)" in bf16


def test_mma_math_takes_16_bit_inputs_within_the_register_budget():
    with pytest.raises(GenomeError) as err:
        FAMILY.check(GemvParams(math="mma"), Workload("gemm_nt", (4, 512, 512), "float32"), SM90)
    assert err.value.reason == "gemv-math" and "16-bit" in str(err.value)
    FAMILY.check(GemvParams(rows=1, unroll=8, math="mma"), DECODE, SM90)  # 8 x 3 x 4 + 4 = 100
    with pytest.raises(GenomeError, match="136 registers"):  # two 8-row tiles of A
        FAMILY.check(GemvParams(rows=1, unroll=8, math="mma"), SIXTEEN, SM90)
    with pytest.raises(GenomeError, match="bad-gemv"):
        GemvParams(math="hmma")


def test_the_first_proposal_takes_the_tensor_cores_from_8_rows_of_16_bit_a():
    def seed(m, dtype="float16"):
        workload = Workload("gemm_nt", (m, 4096, 4096), dtype)
        params = FAMILY.seed(workload, SM90)
        FAMILY.check(params, workload, SM90)
        return params

    assert seed(4) == FAMILY.default and seed(16, "float32") == FAMILY.default
    # one row of A: the CUDA cores' 3-trip ring, 2 chunks a lane a trip (fp32 A too)
    ring = GemvParams(unroll=2, stages=3)
    assert seed(1) == ring and seed(1, "bfloat16") == ring and seed(1, "float32") == ring
    gated = Workload("gemm_gated_nt", (1, 11008, 4096), "float16", "float16")
    assert FAMILY.seed(gated, SM90) == FAMILY.default  # not measured through the ring
    # chunks through a 3-trip cp.async ring: 2 a lane a trip for one 8-row tile of A, 4 for two
    assert seed(8) == GemvParams(rows=1, unroll=2, math="mma", stages=3)
    assert seed(16, "bfloat16") == GemvParams(rows=1, unroll=4, math="mma", stages=3)
    for m, unroll in ((8, 2), (16, 4)):  # the gated MLP's gate and up groups fit the same ring
        gated = Workload("gemm_gated_nt", (m, 11008, 4096), "float16", "float16")
        want = GemvParams(rows=1, unroll=unroll, math="mma", stages=3)
        assert FAMILY.seed(gated, SM90) == want
        FAMILY.check(want, gated, SM90)


@pytest.mark.parametrize(
    "shape, a_shift", [((22, 3558, 1204), "load"), ((59, 6711, 1037), "copy"),
                       ((27, 3849, 1321), "copy")]
)  # fmt: skip
def test_the_first_proposal_at_a_short_odd_k_takes_2_warps_and_a_ring_of_4(shape, a_shift):
    """Rows of B not 16-byte multiples, more than 8 rows of A, K short (5-6 trips of 4 warps
    x 2 chunks): the tuner's winners on the H200 (SHORT_TRIPS); A read in place where its
    loads are 8 bytes (K = 1204), copied shifted where they would be 2 (odd K)."""
    workload = Workload("gemm_nt", shape, "float16", "float16")
    seed = FAMILY.seed(workload, SM90)
    FAMILY.check(seed, workload, SM90)
    want = GemvParams(warps=2, rows=1, unroll=1, math="mma", stages=4, a_shift=a_shift)
    assert seed == want
    long = replace(workload, shape=(shape[0], shape[1], 4 * shape[2] + 2))  # 20+ trips
    assert FAMILY.seed(long, SM90).warps == 4
    one_tile = replace(workload, shape=(8, *shape[1:]))  # the 1-tile ring (3 trips, 2 chunks)
    assert FAMILY.seed(one_tile, SM90) == GemvParams(rows=1, unroll=2, math="mma", stages=3)


@pytest.mark.parametrize(
    "op, shape, splits, stages",
    [("gemm_nt", (58, 1098, 14942), 8, 0),  # 4 classes x 18 blocks: registers
     ("gemm_nt", (8, 1024, 8192), 8, 0),  # 64 blocks; 4 trips a split: too few for the ring
     ("gemm_nt", (8, 512, 32768), 8, 3),  # 32 blocks; 16 trips a split: the ring
     ("gemm_nt", (40, 500, 1204), 4, 0),  # 32 blocks; 19 trips of 2 warps: 8 leave one none
     ("gemm_nt", (16, 4096, 4096), 1, 3),  # 256 blocks fill the GPU
     ("gemm_gated_nt", (8, 1024, 8192), 1, 3)],  # the gated MLP does not split
)  # fmt: skip
def test_the_first_proposal_splits_k_where_the_rows_of_b_leave_multiprocessors_idle(
    op, shape, splits, stages
):
    """58 x 1098 x 14942 through the tuner: 0.81x cuBLAS split (H100, session 49), 0.63x
    unsplit (H200, session 48); the split seed's numbers in SPLIT_BLOCKS_PER_SM's note."""
    workload = Workload(op, shape, "float16", "float16")
    seed = FAMILY.seed(workload, SM90)
    FAMILY.check(seed, workload, SM90)
    assert (seed.math, seed.rows, seed.splits, seed.stages) == ("mma", 1, splits, stages)
    blocks = mma_blocks(shape[1], shape[2], "float16", 1)
    sms = limits(SM90).sm_count
    if splits > 1:  # the fewest that give 4 blocks a multiprocessor, at most 8 ...
        assert blocks < sms and blocks * splits // 2 < 4 * sms
        if blocks * splits < 4 * sms and splits < SPLITS[-1]:  # ... that leave each a trip
            with pytest.raises(GenomeError, match="a split would have none"):
                FAMILY.check(seed.replace(splits=splits * 2), workload, SM90)
    elif op == "gemm_nt":
        assert blocks >= sms


def test_mma_math_gated_mlp_reads_gate_and_up_groups():
    workload = Workload("gemm_gated_nt", (4, 11008, 4096), "float16", "float16")
    params = GemvParams(warps=4, rows=1, unroll=2, math="mma")
    FAMILY.check(params, workload, SM90)
    body = source(params, workload).split("main_kernel(")[-1]
    loads = re.findall(r"= \*\(uint4\*\)\(B_ptr \+ \(([^;]*)\)\);", body)
    assert len(loads) == 2 * 2 * params.unroll  # (gate, up) x rows g, g + 8 x chunks
    assert sum(load.endswith(f"+ {11008 * 4096}") for load in loads) == 2 * params.unroll
    assert body.count("expf(") == 1  # silu of the gate sum, once per output a thread stores


def test_mma_ring_copies_trips_ahead_through_shared_memory():
    """stages=3: each lane copies (cp.async, 16 bytes) its chunks of a trip into its warp's ring
    slot two trips ahead of the one it multiplies, one commit group a trip, and waits for the
    oldest before reading its own chunks back; chunks past K are zeros stored directly."""
    params = GemvParams(warps=4, rows=1, unroll=2, math="mma", stages=3)
    FAMILY.check(params, SIXTEEN, SM90)
    src = source(params, SIXTEEN)
    body = src.split("main_kernel(")[-1]
    loop = body[body.index("for (int it = 0; it < 16; ++it)") :]
    copies = "tvm_builtin_ptx_cp_async_cg_async_cg_shared_global_16("
    # prologue: 2 trips x 2 chunks x (2 rows of B + 2 tiles of A); the loop: one trip
    assert body.count(copies) == 3 * 2 * 4 and loop.count(copies) == 2 * 4
    assert "cp.async.wait_group 2;" in src and body.count("commit_group()") == 3
    assert loop.index("wait_group_2()") < loop.index("mma.sync")
    assert "extern __shared__" in body and "0 bytes spill stores" in ptxas_report(src)
    tail = source(params, Workload("gemm_nt", (3, 1001, 4104), "bfloat16", "bfloat16"))
    assert "if (513 <= ch" in tail  # the trip past K stores zeros instead of copying


def test_ffma_ring_copies_trips_ahead_through_shared_memory():
    """stages=3 on the CUDA cores: each lane copies (cp.async, 16 bytes) its chunk of each of
    its warp's rows of B for each unrolled step of a trip into the warp's ring slot two trips
    ahead, one commit group a trip, waits for the oldest, then reads back its own chunks and
    multiplies; no branch around a full trip's copies, none past K on the last; no spills."""
    params = GemvParams(warps=4, rows=2, unroll=4, stages=3)
    FAMILY.check(params, DECODE, SM90)
    src = source(params, DECODE)
    body = src.split("main_kernel(")[-1]
    loop = body[body.index("for (int it = 0; it < 4; ++it)") :]  # 512 chunks a row: 4 trips
    copies = "tvm_builtin_ptx_cp_async_cg_async_cg_shared_global_16("
    # prologue: 2 trips x 4 steps x 2 rows; the loop: one trip
    assert body.count(copies) == 3 * 4 * 2 and loop.count(copies) == 4 * 2
    assert "cp.async.wait_group 2;" in src and body.count("commit_group()") == 3
    waited = loop.index("wait_group_2()")
    assert waited < loop.index("*(uint4*)(ring_ptr +") < loop.index("acc_ptr[0] = ")
    assert "if (ch" not in body  # K = 4096 ends on a trip: nothing guarded
    assert "extern __shared__" in body and "0 bytes spill stores" in ptxas_report(src)
    tail = source(params, Workload("gemm_nt", (3, 1001, 4104), "bfloat16", "bfloat16"))
    assert "if (ch_ptr_12[0] < 513)" in tail  # the trip that ends past K copies up to it


def test_the_ring_must_fit_shared_memory():
    with pytest.raises(GenomeError) as err:  # 8 warps x 4 trips x 8 steps x 2 rows x 512 bytes
        FAMILY.check(GemvParams(warps=8, rows=2, unroll=8, stages=4), DECODE, SM90)
    assert err.value.reason == "shared-memory" and "262144 bytes" in str(err.value)
    with pytest.raises(GenomeError, match="bad-gemv"):
        GemvParams(math="mma", stages=1)
    gated = Workload("gemm_gated_nt", (16, 4096, 4096), "float16", "float16")
    with pytest.raises(GenomeError) as err:  # 8 x 4 x 2 steps of 96 rows x 64 bytes
        FAMILY.check(GemvParams(warps=8, rows=2, unroll=2, math="mma", stages=4), gated, SM90)
    assert err.value.reason == "shared-memory" and "over 232448" in str(err.value)
    assert FAMILY.held_back == {}  # the rings are drawn: they won at 8 rows (H100, 2026-12-06)


@pytest.mark.parametrize(
    "k, dtype, width, load",
    [(4233, "float16", 2, "= B_ptr["), (9852, "float16", 8, "= *(half4*)(B_ptr"),
     (1030, "bfloat16", 4, "= *(nv_bfloat162*)(B_ptr"), (1001, "float32", 4, "= B_ptr[")],
)  # fmt: skip
def test_rows_of_any_k_are_read_in_the_widest_loads_their_starts_align_to(k, dtype, width, load):
    """K = 4233 fp16 (8466-byte rows) took no GEMV: the tensor-core kernels copied the whole
    of B into padded rows every call (H100 2026-12-07, 11 x 11275 x 4233: 0.74x cuBLAS). Now
    a lane loads ``gcd(row bytes, 16)`` bytes a chunk, more chunks in flight in the first
    proposal, the K edge guarded at the narrower chunk; the tensor-core math and the
    cp.async ring, whose copies are 16 (mma) or at least 4 bytes, are refused with the
    reason."""
    workload = Workload("gemm_nt", (11, 1275, k), dtype, dtype)
    assert chunk_bytes(k, dtype) == width
    seed = GemvParams(rows=4, unroll=8)  # on the CUDA cores: the first proposal at one row
    assert FAMILY.seed(replace(workload, shape=(1, 1275, k)), SM90) == seed
    FAMILY.check(seed, workload, SM90)
    src = source(seed, workload)
    body = src.split("main_kernel(")[-1]
    vec = width // (4 if dtype == "float32" else 2)
    assert f"< {k // vec})" in body  # the K edge at this chunk
    if width < 16:
        assert "uint4" not in body
    assert load in body  # a chunk of B: one load of `width` bytes
    assert "0 bytes spill stores" in ptxas_report(src)
    if width < 4:
        with pytest.raises(GenomeError, match="cp.async copies 4, 8 or 16"):
            FAMILY.check(GemvParams(stages=3), workload, SM90)
    elif width < 16:  # a ring of narrower copies builds
        ring = GemvParams(unroll=2, stages=3)
        FAMILY.check(ring, workload, SM90)
        assert f"cp.async.ca.shared.global [%0], [%1], {width}" in source(ring, workload)


@pytest.mark.parametrize(
    "shape, dtype, classes",
    [((6, 3735, 11051), "float16", 8), ((16, 1001, 1030), "bfloat16", 4),
     ((8, 2048, 9852), "float16", 2)],
)  # fmt: skip
def test_mma_reads_rows_of_any_k_in_16_byte_chunks_by_class_of_their_start(shape, dtype, classes):
    """Rows of K = 11051 fp16 start 0..7 halves past a 16-byte boundary; row R's offset is
    row (R mod 8)'s. A block takes rows of one class, loads B in aligned 16-byte chunks from
    the row's start less the offset, and multiplies them with A shifted alike (a small kernel
    beside the GEMV, launched by its host code); the elements outside the row are masked in
    the first trip and the trips that reach K's end only. The first proposal from 2 rows of
    16-bit A (H100 2026-12-07, 6 x 3735 x 11051: the padded tensor-core kernel 0.58x cuBLAS,
    the copy of B most of it)."""
    workload = Workload("gemm_nt", shape, dtype, dtype)
    assert row_classes(shape[2], dtype) == classes and chunk_bytes(shape[2], dtype) < 16
    seed = FAMILY.seed(workload, SM90)
    # one 8-row tile of A through the ring, more from registers (measured, the seed's note);
    # 8 x 2048 x 9852 (128 blocks) splits K, through registers; 16 x 1001 x 1030, a short K
    # (2 warps, 1 chunk) in 64 blocks: 4 splits (8 would leave one none), through registers
    assert (seed.math, seed.rows) == ("mma", 1)
    want = {(6, 3735, 11051): (3, 1), (16, 1001, 1030): (0, 4), (8, 2048, 9852): (0, 8)}
    assert (seed.stages, seed.splits) == want[shape]
    seed = seed.replace(splits=1)
    for params in (seed.replace(stages=3), seed.replace(stages=0)):
        FAMILY.check(params, workload, SM90)
        mod = FAMILY.candidate(params, workload, SM90).mod
        assert f"ak_{workload.name}_shift_a" in [gv.name_hint for gv in mod.functions]
        src = cuda_source(build_module(mod, SM90))
        body = src.split("main_kernel(")[-1]
        assert "= B_ptr[" not in body and "_shift_a_kernel(" in src  # no narrow loads
        if params.stages:  # the ring: masked after the first and the last trips' copies
            assert "cp_async_cg_async_cg_shared_global_16(" in body
            assert "if ((it == 0) || (" in body
        else:  # registers: the first trip peeled, no mask or clamp in the trips inside K
            assert body.count("= *(uint4*)(B_ptr + (") >= 2 * params.unroll
            if "for (int it = 1;" in body:  # K = 1030: one trip between, unrolled
                loop = body[body.index("for (int it = 1;") :]
                assert "if (" not in loop[: loop.index("\n  }\n")]
        assert "0 bytes spill stores" in ptxas_report(src)


@pytest.mark.parametrize("shape", [(27, 3849, 1321), (64, 3136, 1521)])
def test_mma_by_class_takes_up_to_64_rows_of_a_without_spills(shape):
    """Past 16 rows of A only where B's rows are not 16-byte multiples, on the tensor cores
    (8 tiles of 8 rows of A a lane at 64), at these short Ks (6 trips of 4 warps x 2 chunks)
    first 2 warps, 1 chunk a trip, a ring of 4 (SHORT_TRIPS), then from registers; the CUDA
    cores' register sums stop at 16 rows."""
    workload = Workload("gemm_nt", shape, "float16", "float16")
    seed = FAMILY.seed(workload, SM90)
    assert (seed.math, seed.warps, seed.stages, seed.rows, seed.unroll) == ("mma", 2, 4, 1, 1)
    for params in (seed, GemvParams(rows=1, unroll=2, math="mma")):
        FAMILY.check(params, workload, SM90)
        src = cuda_source(build_module(FAMILY.candidate(params, workload, SM90).mod, SM90))
        assert "0 bytes spill stores" in ptxas_report(src)
    with pytest.raises(GenomeError, match=f"math=ffma: M = {shape[0]}"):
        FAMILY.check(GemvParams(), workload, SM90)


@pytest.mark.parametrize(
    "shape, dtype, load",
    [((22, 3558, 1204), "float16", "= *(half4*)(A_ptr"),
     ((16, 1001, 1030), "bfloat16", "= *(nv_bfloat162*)(A_ptr")],
)  # fmt: skip
def test_mma_reads_a_in_place_at_each_classs_shift_with_a_shift_load(shape, dtype, load):
    """a_shift=load: no shifted copies of A (one launch less: 22 x 3558 x 1204 ran two, 14.1
    us against torch.compile's 11.6 on the H200); each lane reads A in place, as wide as its
    rows align (K = 1204 fp16: 8 bytes; 1030 bf16: 4), the ring through cp.async.ca; the
    first trip and those reaching K's end clamp A's columns into the row and mask them. Where
    it cannot go, the reason."""
    workload = Workload("gemm_nt", shape, dtype, dtype)
    width = chunk_bytes(shape[2], dtype)
    for stages in (0, 3):
        params = GemvParams(rows=1, unroll=2, math="mma", stages=stages, a_shift="load")
        FAMILY.check(params, workload, SM90)
        mod = FAMILY.candidate(params, workload, SM90).mod
        assert [gv.name_hint for gv in mod.functions] == ["main"]
        src = cuda_source(build_module(mod, SM90))
        assert "_shift_a_kernel(" not in src
        clamp = f"), 0), {shape[2] - width // 2})"  # max(col, 0), then min(col, K - part)
        assert clamp in src
        if stages:
            assert f"cp.async.ca.shared.global [%0], [%1], {width}" in src
        else:
            assert load in src
        if stages:  # (from registers at 22 rows ptxas spills 12 bytes at 80 registers)
            assert "0 bytes spill stores" in ptxas_report(src)
    with pytest.raises(GenomeError, match="odd: A's rows align to 2 bytes"):
        FAMILY.check(GemvParams(rows=1, math="mma", a_shift="load"),
                     Workload("gemm_nt", (8, 1000, 1201), "float16"), SM90)  # fmt: skip
    with pytest.raises(GenomeError, match="A needs no shift"):
        FAMILY.check(GemvParams(rows=1, math="mma", a_shift="load"),
                     Workload("gemm_nt", (8, 1000, 1024), "float16"), SM90)  # fmt: skip
    with pytest.raises(GenomeError, match="tensor-core math only"):
        FAMILY.check(GemvParams(a_shift="load"), replace(workload, shape=(8, *shape[1:])), SM90)
    with pytest.raises(GenomeError, match="a_shift 'x'"):
        GemvParams(a_shift="x")


def test_mma_by_class_says_where_it_cannot_go():
    few = Workload("gemm_nt", (4, 7, 1001), "float16", "float16")  # 8 classes, 7 rows
    with pytest.raises(GenomeError, match="fewer than the 8 classes"):
        FAMILY.check(GemvParams(rows=1, math="mma"), few, SM90)
    gated = Workload("gemm_gated_nt", (4, 1001, 1001), "float16", "float16")
    with pytest.raises(GenomeError, match="up rows start unlike the gate rows"):
        FAMILY.check(GemvParams(rows=1, math="mma"), gated, SM90)
    FAMILY.check(GemvParams(rows=1, math="mma"), replace(gated, shape=(4, 1000, 1001)), SM90)


@pytest.mark.parametrize(
    "workload, splits, stages",
    [
        (Workload("gemm_nt", (58, 1098, 14942), "float16", "float16"), 4, 0),  # shifted rows
        (Workload("gemm_bias_gelu", (8, 1024, 8192), "bfloat16", "bfloat16"), 2, 3),
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_split_k_takes_a_range_of_trips_a_block_and_reduces_in_a_second_kernel(
    workload, splits, stages
):
    """A narrow weight with a long K gives few blocks (58 x 1098 x 14942: 4 classes x 18
    blocks for 132 SMs): ``splits`` blocks share each block's rows, each its range of trips;
    their f32 sums go to a workspace and the wgmma family's split-K reduction adds them in
    split order and applies the epilogue (the GEMV's own write-back stores no C)."""
    params = GemvParams(rows=1, unroll=2, math="mma", stages=stages, splits=splits)
    FAMILY.check(params, workload, SM90)
    src = source(params, workload)
    body = src.split("main_kernel(")[-1].split('extern "C"')[0]  # up to the next kernel
    reduce = f"ak_{workload.name}_reduce_kernel("
    assert reduce in src and "P_ptr[" in body and "C_ptr[" not in body
    bias_in_reduce = src.split(reduce)[-1]
    if workload.op == "gemm_bias_gelu":
        assert "Bias" in bias_in_reduce and "erf" in bias_in_reduce
    assert "0 bytes spill stores" in ptxas_report(src)
    one = source(replace(params, splits=1), workload)
    assert reduce not in one and "C_ptr[" in one.split("main_kernel(")[-1].split('extern "C"')[0]


def test_split_k_says_where_it_cannot_go():
    narrow = Workload("gemm_nt", (8, 1024, 8192), "float16", "float16")
    with pytest.raises(GenomeError, match="the tensor-core math only"):
        FAMILY.check(GemvParams(splits=2), narrow, SM90)
    gated = Workload("gemm_gated_nt", (4, 1024, 8192), "float16", "float16")
    with pytest.raises(GenomeError, match="not the gated MLP"):
        FAMILY.check(GemvParams(rows=1, math="mma", splits=2), gated, SM90)
    short = Workload("gemm_nt", (8, 1024, 256), "float16", "float16")  # 8 steps: 1 trip
    with pytest.raises(GenomeError, match="a split would have none"):
        FAMILY.check(GemvParams(rows=1, unroll=2, math="mma", splits=2), short, SM90)
    with pytest.raises(GenomeError, match="splits=0"):
        GemvParams(splits=0)


@pytest.mark.parametrize(
    "op, shape, dtype, ruled",
    [("gemm_nt", (58, 1098, 14942), "float16",  # mma only; 8 tiles of A: 1-2 chunks, 1-2 groups
      {"rows": (4,), "unroll": (4, 8), "math": ("ffma",)}),
     ("gemm_nt", (1, 4096, 4096), "bfloat16", {"a_shift": ("load",)}),  # rows 16-byte aligned
     ("gemm_nt", (4, 100, 64), "float16",  # one trip a row
      {"splits": (2, 4, 8), "a_shift": ("load",)}),
     ("gemm_gated_nt", (4, 1000, 1204), "float16", {"splits": (2, 4, 8)}),
     ("gemm_nt", (4, 1000, 1201), "float32", {"math": ("mma",), "splits": (2, 4, 8),
                                              "a_shift": ("load",)}),
     ("gemm_nt", (22, 3558, 1204), "float16",  # 19 trips of 2 warps: 8 splits leave one none
      {"unroll": (8,), "math": ("ffma",), "splits": (8,)})],
)  # fmt: skip
def test_the_generator_never_draws_what_no_legal_genome_takes(op, shape, dtype, ruled):
    """`impossible`, read off every genome of the domain; the generator's draws avoid it."""
    workload = Workload(op, shape, dtype, dtype)
    assert FAMILY.impossible(workload, SM90) == ruled
    grammar = Grammar(SM90)
    drawn = [g for g in Generator(grammar, workload, seed=0).propose(24) if g.family == FAMILY.name]
    assert drawn
    for genome in drawn:
        assert all(getattr(genome.params, gene) not in v for gene, v in ruled.items()), genome

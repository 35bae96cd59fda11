# SPDX-License-Identifier: Apache-2.0
"""What a ``cuda.wgmma`` genome stands for on a workload (:class:`Structure`), the gene
values and hardware constants the kernel template is written against, and the K-step sizes."""

from __future__ import annotations

from dataclasses import dataclass

import tvm

from ...hardware import TABLE as ARCH_LIMITS
from ...workloads.dtypes import FP8_DTYPES

BLOCK_K = 64  # one 128-byte swizzle row of 2-byte elements: TMA box and descriptor agree on it
WG_THREADS = 128
WG_ROWS = 64  # wgmma's M per warpgroup
#: wgmma N: 32..256 in steps of 8; 256 is the TMA box limit. 192: a 128 x 192 tile's two
#: promoted fp8 sets (96 + 96) fit a consumer under regs=split; fewer edge columns than 256
#: where N is not a multiple of 256
BLOCK_NS = (64, 112, 128, 192, 256)
SWAPPED_NS = (112,)  # operands="ba" conv tiles only: whole rows of pixels (4 of a 28-wide image)
CONSUMERS = (1, 2, 3)  # warpgroups issuing wgmma; 2 x m64n256 f32 = 128 accumulators each
STAGES = (2, 3, 4, 5, 6)
#: K of a ring stage in 128-byte swizzle rows (atoms): 1 (64 halves, one TMA box per operand)
#: or 2 (128 halves: two boxes per operand, half the barrier waits and commits per product)
K_ATOMS = (1, 2)
#: producer warps issuing a stage's TMA copies: 1 (one elected thread loads A and B) or 2 (warp 0
#: of the producer warpgroup loads A, warp 1 loads B, each arriving on the stage's barrier with
#: its own byte count: two issue streams, so B's boxes start without waiting behind A's)
PRODUCER_WARPS = (1, 2)
#: one tile per block / one block per SM looping over tiles / persistent over the whole waves,
#: then each tile of the partial last wave split over a cluster of blocks (stream-K's tail) /
#: stream-K: every block an equal, contiguous share of all tiles' K steps / stream_tail: the
#: whole waves as persistent tiles, then stream-K over the partial last wave's K steps only
SCHEDULES = ("tile", "persistent", "streamk", "stream", "stream_tail")
#: the order of a raster group's tiles: down each column of `raster` M tiles, column after
#: column ("raster"), or along a Hilbert curve through each raster x raster square of them
#: ("hilbert": each tile a neighbour of the one before, so a block's consecutive tiles -- and a
#: wave's -- share A rows and B columns in both directions; a last partial square and a
#: ragged last group keep the raster order)
ORDERS = ("raster", "hilbert")
CLUSTERS = (1, 2)  # blocks per cluster, sharing (multicasting) one operand's tile
#: the operand a cluster pair shares: B, by blocks of adjacent M tiles (a 2 x 1 cluster), or A,
#: by blocks of adjacent N tiles (1 x 2)
MULTICASTS = ("b", "a")
#: which operand's rows are wgmma's M: "ab" A's (a conv's output pixels on M, 64 per
#: warpgroup, its channels on N) or "ba" (conv: the filter's output channels on M, a patch of
#: whole output rows on N -- which any multiple of 8 up to 256 may be, so a 28-wide image's
#: 4 rows are one 112-pixel tile, where 64-row M tiles leave 4 of every 32 columns empty)
OPERANDS = ("ab", "ba")
#: the write-back: registers -> global, or -> shared -> TMA store, or -> shared -> global in
#: whole row runs (C rows the TMA cannot store: not 16-byte multiples)
STORES = ("direct", "tma", "rows")
STAGED_STORES = ("tma", "rows")  # the write-backs that stage the tile in shared memory
SPLITS = (1, 2, 4, 8, 16, 32, 64)  # K ranges per output tile (split-K), summed by .splitk
PADS = ("needed", "lines")  # copy rows the TMA cannot address / rows that are not whole lines
#: consumer warpgroups on one tile (each 64 of its rows) / each on its own 64-row tile, in turn
ARRANGEMENTS = ("cooperative", "pingpong")
#: how split-K's partials are summed: a workspace and a second kernel, or in the cluster's
#: distributed shared memory (one launch, no f32 traffic through L2)
REDUCTIONS = ("workspace", "cluster")
#: where a per-column bias joins the accumulators: added at the store, or the accumulators start
#: from it (its loads leave the write-back, which holds the tensor cores idle between tiles), or
#: added at the store from shared memory, the tile's slice loaded when its mainloop starts
BIAS_AT = ("store", "start", "prefetch")
#: how the write-back computes GELU, SiLU, sigmoid and tanh: CUDA's erff, expf and IEEE
#: division ("exact"), or its approximate exponential and division ("fast",
#: :mod:`autokernel_tvm.intrin.cuda_math`: within ~1e-6 of the result's scale, a third of the
#: instructions; 16-bit outputs)
EPILOGUE_MATHS = ("exact", "fast")
#: how fp8 products are summed: all of K in the wgmma accumulator ("tensor": the tensor core's
#: running sum keeps ~14 bits, cuBLASLt's fast accumulation), or each K step's (128 products)
#: added into separate fp32 registers ("promoted": torch._scaled_mm's default accuracy; the
#: warpgroup waits for each step's wgmma before adding it), or the same sums with that wait
#: hidden ("pipelined": K steps in pairs into two register sets, the first added while the
#: second's wgmma runs)
ACCUMS = ("tensor", "promoted", "pipelined")
PROMOTED = ("promoted", "pipelined")  # the accums that sum each K step's products in fp32
#: registers a consumer thread needs beside its accumulators (ptxas: 168 in all with 128
#: accumulators; 151 with 64 and their 64 promoted sums)
THREAD_REGS = 40
#: the same, with one set (ptxas: 122 registers with 96 accumulators, no spills)
TENSOR_REGS = 32
#: register budgets per role: every warpgroup keeps the launch's equal share (``even``), or
#: the producer hands most of its share to the consumers (``split``: ``setmaxnreg``)
REGS = ("even", "split")
#: a producer thread's registers under regs=split: it issues TMA copies and waits on barriers
#: (CUTLASS's warp-specialized kernels give their producers 40 as well)
PRODUCER_REGS = 40
REG_GRANULE = 8  # setmaxnreg counts, and a thread's share of a warp's allocation, step by 8
SM90 = ARCH_LIMITS["sm_90a"]  # the one arch the kernel is built for: legal()'s default limits
#: blocks per cluster any sm_90 launch may use (16 needs the non-portable opt-in)
PORTABLE_CLUSTER = 8
#: streamk's blocks per last-wave tile: one cluster each, and clusters of 2 tile every GPC
STREAMK_SPLITS = 2
SPLIT_MIN_STEPS = 4  # K steps a split block keeps at least: fewer, and the ring never fills
STORE_BOX = 64  # TMA store box: 64 rows of one 128-byte swizzle row (64 halves, 32 floats)
SWIZZLE_ROW = 128  # bytes of a 128B-swizzle row; its 16-byte chunks are XORed with the row % 8
STORE_BUFFERS = 2  # per consumer warpgroup: one fills while the previous one drains
TMA_STORE = "cp.async.bulk.tensor.2d.global.shared::cta.bulk_group"
TMA_STORE_3D = TMA_STORE.replace(".2d.", ".3d.")
TMA_STORE_4D = TMA_STORE.replace(".2d.", ".4d.")
TMA_STRIDE = 16  # bytes: TMA's global row strides are multiples of 16 B (a pad-copy chunk)
PAD_THREADS = 256  # threads per block of the row-padding copy (pad_rows)
SMEM_ALIGN_SLACK = 1024  # the kernel aligns its dynamic shared memory to 1 KiB (128B swizzle)
IN_DTYPES = {
    "float16": "f16", "bfloat16": "bf16", "float8_e4m3fn": "e4m3", "float8_e5m2": "e5m2",
    "float32": "tf32",  # TF32 tensor cores: fp32 operands, ~10 mantissa bits used
}  # fmt: skip
FP8 = FP8_DTYPES  # 1-byte inputs, copied as bytes (uint8) in the kernel
SWIZZLE_128B = 3  # CUtensorMapSwizzle enum; TVM's descriptor encoder maps it to wgmma's code
SBO_16B = 1024 // 16  # stride between 8-row core-matrix groups: 8 rows x 128 B
MN_ATOM = 64  # MN-major operand: M or N columns per 128-byte swizzle row (a TMA box, an LBO step)
MN_LBO_16B = MN_ATOM * BLOCK_K * 2 // 16  # MN-major operand: from one 64-column chunk to the next
L2_PROMOTE_256B = 3
TMA = "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
TMA_3D = TMA.replace(".2d.", ".3d.")
TMA_4D = TMA.replace(".2d.", ".4d.")
TMA_MULTICAST = TMA + ".multicast::cluster"
TMA_MULTICAST_3D = TMA_3D + ".multicast::cluster"
TILE_QS = (128, 64, 32, 16, 8)  # conv: output columns per block patch (ties go to the widest)
TMA_BOX = 256  # elements of a TMA box along any one dimension, at most
TMA_ELEMENT_STRIDE = 8  # a TMA box's traversal stride along a dimension, at most
EPILOGUES = ("", "bias", "bias_relu", "bias_gelu")  # fused into the register write-back
OUT_DTYPES = ("float32", "float16", "bfloat16")
#: PrimFunc attribute that routes a module through ``tir_pipeline="tirx"`` in the builder.
PIPELINE_ATTR = "autokernel.tir_pipeline"


class WgmmaStructureError(ValueError):
    """A structure that the wgmma kernel template cannot build for a given workload."""


@dataclass(frozen=True)
class Structure:
    """One kernel structure: what a ``cuda.wgmma`` genome stands for on a workload.

    batch : 0 for 2-D operands, else the size of a leading batch dim of A, B and C.
    conv : ``(N, H, W, C, R, S, pad)``, or ``(..., pad, stride)`` for a stride other than 1: A
        is an NHWC image, B a KRSC filter, C is NPQK, and the GEMM's ``m, n, k`` are the
        implicit GEMM's ``N*P*Q, K, R*S*C``.
    in_dtype : "float16" or "bfloat16" (A and B; accumulation is f32).
    trans_b : True: B is ``[N, K]`` (K-major, ``nn.Linear``'s weight); False: B is ``[K, N]``.
    trans_a : True: A is ``[K, M]`` (M-major: ``A.T @ B``, a weight gradient's layout): the
        TMA loads 64-column boxes of its rows as it loads an MN-major B, and wgmma reads it
        through the descriptor's transpose (16-bit inputs only; 2-D or batched GEMMs).
    block_n : N of the block tile and of each wgmma (64, 128 or 256).
    consumers : warpgroups computing (1, 2 or 3); the block tile is ``64 * consumers`` rows
        (three: 192 rows, at most 192 columns in the 128 registers a thread of a 512-thread
        block has).
    stages : depth of the TMA -> shared-memory ring.
    raster : M tiles per rasterization group (1 = row-major tile order).
    epilogue : "" or ``bias[_relu|_gelu]``: ``act(A @ B.T + bias)`` with ``bias[N]`` in
        ``in_dtype``, applied to the f32 accumulators before the store; or an
        :class:`~autokernel_tvm.workloads.epilogue.Epilogue` expression, evaluated the same way,
        whose operands (``in_dtype``) are parameters after B.
    out_dtype : C's dtype; the f32 result is cast on the store.
    schedule : "tile" (a block per output tile) or "persistent" (``sm_count`` blocks, each
        looping over the tiles ``blockIdx.x + i * sm_count`` with one ring across them), or
        "streamk": persistent over the tiles of the whole waves, then each tile of the partial
        last wave computed by a cluster of ``splits`` (2) blocks, each over half its K steps,
        summed through the cluster's shared memory as ``reduction="cluster"`` sums a split
        tile (the last wave's ``t`` tiles take ``2 t`` blocks for half as long: 688 tiles on
        132 SMs, 6 rounds as tiles, are 5.5 this way); or "stream" (stream-K): block ``g`` runs
        the (tile, K step) iterations ``[g W / sm_count, (g + 1) W / sm_count)`` of all ``W``,
        one ring across them, the share's last tile first (so that a share shorter than a
        tile is at K step i to i + K steps - share at its i-th iteration, as every other
        block is, and the tiles reading the same operand slices read them together, from
        L2); a tile is stored by the block holding its last K step, after adding, in block
        order, the f32 shares the earlier blocks wrote to a workspace (each writes its share
        first thing and releases a flag; the flags are zeroed by a companion launch before
        the kernel). 224 tiles of 36 K steps on 132 SMs: 61 steps each
        instead of 72. "stream_tail": the tiles of :func:`stream_tail_waves` whole waves as
        "persistent" deals them, then the rest of the tiles' K steps dealt out as "stream"
        deals all of them (4096^3: 3 waves of 128 x 256 tiles, then 116 tiles' 64 K steps over
        132 blocks, 56 each: 3.88 tile times instead of 4, the K order of the whole waves, whose
        operands the blocks read together, kept).
    cluster : blocks per thread-block cluster along M (1 or 2); 2 multicasts B to the pair.
    store : the write-back, "direct" (each thread stores its pairs) or "tma" (staged in shared
        memory, boxes of 64 rows x 128 bytes stored by the TMA, asynchronously; where C's rows
        are not 16-byte multiples, which TMA strides must be, into a scratch C of whole
        128-byte rows that :func:`unpad_rows` then copies into C), or "rows" (where C's rows
        are not 16-byte multiples: staged the same way, then written from shared memory by the
        consumer warps, consecutive threads on consecutive columns of a row, so each store of
        a warp is one 64- or 128-byte run instead of direct stores' single columns spread over
        8 rows; no scratch C and no copy-out).
    splits : split-K: each output tile's K steps are divided among ``splits`` blocks, which
        store f32 partial sums into a ``[splits, M, N]`` workspace; the host code then launches
        :func:`.splitk.reduce_partials`, which sums them in split order (deterministic) and
        applies the epilogue. For grids with fewer tiles than multiprocessors: decode (small
        M) and large K over a small M x N.
    reduction : how split-K's partials are summed: "workspace" (as above) or "cluster" (the
        ``splits`` blocks of a tile are one thread-block cluster; each writes its f32 tile into
        its own shared memory, then sums ``1 / splits`` of the tile's fragments over the
        cluster's blocks in rank order -- deterministic -- and stores them with the epilogue:
        one launch, no partials through L2; schedule "tile", at most 8 splits).
    pad : which operands the host code copies into zero-padded scratch first (:func:`row_pads`):
        "needed", those whose rows the TMA cannot address (not 16-byte multiples); "lines",
        also those whose rows are not whole 128-byte lines (TMA boxes of such rows loaded ~25%
        slower on the H200; the copy is one pass over the operand).
    arrangement : "cooperative": the consumer warpgroups split one ``64 * consumers``-row tile;
        "pingpong" (persistent, 2 consumers): each warpgroup computes its own 64-row tile, the
        block's tiles dealt out in turn, so one warpgroup's write-back (an erf GELU, the
        staging for the TMA store) runs while the other's wgmma keeps the tensor cores busy.
        The producer loads the tiles in order through one ring; a pair of ``turns`` barriers
        orders the two mainloops, and each ring stage is freed by one warpgroup (with
        clusters: by one in each block of the pair, which multicast the B tile they share).
    bias_at : where the epilogue's per-column vector (``bias`` or an expression's ``acc + x_i``
        over N, :func:`.epilogue.column_bias`) joins the f32 accumulators: "store", added in
        the write-back; "start", each tile's accumulators are loaded from it before the first
        wgmma (for tiles whose K steps one block computes: no split-K, streamk or stream), so
        the write-back reads nothing but the accumulators (and any other operands);
        "prefetch", added in the write-back from shared memory: each consumer thread loads two
        of the tile's columns into a register before the mainloop and stores them there when
        it ends (the loads' latency hides behind the mainloop; the sums stay as "store" rounds
        them, so an fp32 C may take it; the same tiles as "start").
    epilogue_math : how the write-back computes GELU, SiLU (the gated GEMM's too), sigmoid
        and tanh (:data:`EPILOGUE_MATHS`): "exact", CUDA's ``erff``, ``expf`` and IEEE
        division; "fast", :class:`autokernel_tvm.intrin.cuda_math.FastMath` (Abramowitz-Stegun's
        erf and quotients through ``exp2f`` and ``__fdividef``), where the output is 16-bit.
    accum : fp8 only: "tensor", the wgmma accumulator sums all of K (the tensor core keeps ~14
        bits of the running sum, truncated: cuBLASLt's ``use_fast_accum``); "promoted", each K
        step's wgmma (128 products) starts from zero and is then added into a second set of
        fp32 registers (``torch._scaled_mm``'s default accuracy; a wait for the step's wgmma
        each step, and twice the accumulator registers); "pipelined", the same sums over K
        steps in pairs: both steps' wgmma in flight into two register sets, the first set
        added while the second's wgmma runs (three sets of registers: regs="split" at 128
        wide).
    regs : register budgets per role: "even", every thread of the block may use the launch's
        equal share (168 of a 384-thread block); "split", the producer warpgroup gives its
        registers back (``setmaxnreg.dec`` to ``PRODUCER_REGS``) and the consumers take them
        (``setmaxnreg.inc`` to :func:`consumer_regs`: 232 with two consumers), room for more
        accumulators or a heavier write-back without spills.
    k_atoms : K of a ring stage, in 128-byte swizzle rows (:data:`K_ATOMS`): 1, or 2 (each
        stage holds two 64-element K slices of A and B, loaded as two boxes each and read by
        twice the wgmmas per barrier wait; 16-bit 2-D GEMMs).
    producer_warps : producer warps issuing the TMA copies (:data:`PRODUCER_WARPS`): 1, one
        thread issues A's and B's; 2, one thread of warp 0 issues A's and one of warp 1 B's, the
        stage's full barrier expecting both arrivals.
    multicast : with ``cluster=2``, the operand the pair shares (:data:`MULTICASTS`): "b", two
        blocks of adjacent M tiles each load half of the B tile and multicast it to both; "a",
        two blocks of adjacent N tiles (the raster group's tiles taken in pairs along N) each
        load half of the A tile's rows and multicast them.
    order : the order of a raster group's tiles (:data:`ORDERS`): "raster", down each column of
        the group's ``raster`` M tiles, column after column; "hilbert", along a Hilbert curve
        (:func:`hilbert_xy`) through each ``raster x raster`` square of the group, squares in
        column order (``raster`` a power of two; not with cluster pairs, which share a column).
    tf32_passes : fp32 inputs only: 1, one TF32 product (TF32's ~10-bit mantissa; an operand
        stored MN-major is read from a K-major copy, :func:`.tf32x3.transposed`); 3, 3xTF32
        (:mod:`.tf32x3`: each operand split into TF32 high and low parts, three products as one
        GEMM over concatenated K, fp32-level accuracy; any layout). The host code writes the
        copies before the GEMM.
    gated : the gated GEMM ``silu(A @ Bg.T) * (A @ Bu.T)`` (``trans_b``, 2-D): B is ``[2, N, K]``
        (Bg rows, then Bu rows); a block loads ``block_n / 2`` rows of each into one B tile, so
        one wgmma computes both and each thread holds a gate column and its up column
        ``block_n / 2`` apart; C is ``[M, N]`` (``block_n / 2`` columns per block).
    """

    batch: int = 0
    conv: tuple = ()
    in_dtype: str = "float16"
    trans_b: bool = True
    trans_a: bool = False
    block_n: int = 256
    consumers: int = 2
    stages: int = 4
    raster: int = 1
    epilogue: str = ""
    out_dtype: str = "float32"
    gated: bool = False
    schedule: str = "tile"
    cluster: int = 1
    store: str = "direct"
    splits: int = 1
    pad: str = "needed"
    tf32_passes: int = 1
    arrangement: str = "cooperative"
    reduction: str = "workspace"
    bias_at: str = "store"
    epilogue_math: str = "exact"
    accum: str = "tensor"
    regs: str = "even"
    order: str = "raster"
    multicast: str = "b"
    k_atoms: int = 1
    producer_warps: int = 1
    operands: str = "ab"


def tile_rows(consumers: int, arrangement: str = "cooperative") -> int:
    """M rows of one output tile: every consumer's 64, or (ping-pong) one warpgroup's."""
    return WG_ROWS if arrangement == "pingpong" else WG_ROWS * consumers


def _bytes(dtype: str) -> int:
    return tvm.DataType(dtype).bits // 8


def storage(in_dtype: str) -> str:
    """The dtype A, B and their shared-memory ring are declared with: fp8 as bytes (only the
    TMA and wgmma read them, and wgmma takes the fp8 format from its instruction)."""
    return "uint8" if in_dtype in FP8 else in_dtype


def pipe_step(st: Structure) -> int:
    """Elements of K one ring stage holds: ``k_atoms`` swizzle rows."""
    return k_step(st.in_dtype) * st.k_atoms


def k_step(in_dtype: str) -> int:
    """Elements of a K step: one 128-byte swizzle row (64 halves, 128 fp8 values)."""
    return SWIZZLE_ROW // _bytes(storage(in_dtype))


def k_steps(k: int, st: Structure) -> int:
    """Ring stages of a whole K range: ``k / pipe_step`` rounded up, the last one zero-filled
    past K by the TMA; a conv's per filter tap (a step never straddles two taps), the last of a
    tap's steps zero-filled past C where C is not a multiple of a step."""
    if st.conv:
        c, r, s = st.conv[3:6]
        return r * s * -(-c // pipe_step(st))
    return -(-k // pipe_step(st))

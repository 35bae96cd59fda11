# SPDX-License-Identifier: Apache-2.0
"""``cuda.wgmma``: Hopper GEMM (sm_90a) with TMA, an mbarrier ring and warp-specialized
``wgmma.mma_async``, generated as one whole TIRx kernel by :func:`.kernel.wgmma_gemm`
(:func:`.kernel.wgmma_module` adds the row-padding copies of unaligned operands).

MetaSchedule cannot express a warpgroup accumulator, TMA or mbarriers, so a parameter value is
not a design space but one kernel (every number fixed), measured as a single candidate; it goes
through the same builder, correctness gate, export and library as the scheduled families. Ops:
2-D and batched GEMM with either B layout, the fused ``nn.Linear`` epilogues, the gated GEMM
of a LLaMA MLP (gate and up projections in one kernel), and NHWC conv2d (implicit GEMM
over TMA image patches); fp16/bf16 inputs, fp32 GEMMs as 3xTF32 (:mod:`.tf32x3`), and the
fp8 GEMM with per-tensor scales (``gemm_scaled_nt``, what ``torch._scaled_mm`` computes).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from ...hardware import limits
from ..base import Family, GenomeError, Kernel, Params
from .epilogue import approximable, column_bias
from .geometry import (
    c_unaligned,
    conv_edges,
    conv_grid,
    conv_k,
    conv_out,
    row_pads,
    smem_bytes,
    swap_widths,
)
from .kernel import wgmma_module
from .legality import (
    legal,
    split_reason,
)
from .structure import (
    ACCUMS,
    ARRANGEMENTS,
    BIAS_AT,
    BLOCK_NS,
    CLUSTERS,
    CONSUMERS,
    EPILOGUE_MATHS,
    FP8,
    K_ATOMS,
    MULTICASTS,
    OPERANDS,
    ORDERS,
    PADS,
    PORTABLE_CLUSTER,
    PRODUCER_WARPS,
    PROMOTED,
    REDUCTIONS,
    REGS,
    SCHEDULES,
    SPLITS,
    STAGES,
    STORES,
    SWAPPED_NS,
    WG_ROWS,
    Structure,
    k_step,
    k_steps,
    tile_rows,
)
from .tf32x3 import transposed

#: fp32: as 3xTF32 (fp32 accuracy); fp8: the scaled GEMM (gemm_scaled_nt, torch._scaled_mm)
TUNED_DTYPES = ("float16", "bfloat16", "float32", *FP8)
#: the seed takes 192-wide streamk tiles over its 256-wide structure where the busiest SM's
#: work (:func:`_busiest`) is at most this share of the 256-wide one's (H100 2026-12-07,
#: 1845 x 2112 x 9852 fp16: 288 against 384 columns, 189.9 against 222.2 us with the pads;
#: a 192-wide tile does about as much a column, so near-ties keep 256)
WIDE_MARGIN = 0.97
SEED_SPLIT_STEPS = 8  # K steps per block the seed keeps (decode 16 x 4096 x 4096: 8 splits)
#: op -> (B is K-major, leading batch dim, fused epilogue, A is M-major)
OPS = {
    "gemm": (False, False, "", False),
    "gemm_nt": (True, False, "", False),
    "gemm_tn": (False, False, "", True),
    "batch_gemm": (False, True, "", False),
    "batch_gemm_nt": (True, True, "", False),
    "batch_gemm_tn": (False, True, "", True),
    "gemm_bias": (True, False, "bias", False),
    "gemm_bias_relu": (True, False, "bias_relu", False),
    "gemm_bias_gelu": (True, False, "bias_gelu", False),
    "conv2d_nhwc": (True, False, "", False),  # implicit GEMM: see kernel.py's docstring
    "gemm_gated_nt": (True, False, "", False),  # silu(A @ Bg.T) * (A @ Bu.T): Structure.gated
    "gemm_scaled_nt": (True, False, "", False),  # fp8, scaled in the write-back (in_dtype fp8)
}


#: the genes a WgmmaParams checks against the values the kernel builds
_GENE_VALUES = {
    "store": STORES, "cluster": CLUSTERS, "schedule": SCHEDULES, "pad": PADS,
    "arrangement": ARRANGEMENTS, "splits": SPLITS, "reduction": REDUCTIONS, "bias_at": BIAS_AT,
    "epilogue_math": EPILOGUE_MATHS, "accum": ACCUMS, "regs": REGS, "order": ORDERS,
    "k_atoms": K_ATOMS, "multicast": MULTICASTS, "producer_warps": PRODUCER_WARPS,
    "operands": OPERANDS,
}  # fmt: skip


@dataclass(frozen=True)
class WgmmaParams(Params):
    """block_n: N of the block tile and of each ``wgmma m64nNk16``; consumers: warpgroups issuing
    wgmma (the block tile is ``64 * consumers`` rows); stages: TMA ring depth; raster: M tiles per
    rasterization group (0 = row-major); schedule: "tile" (a block per output tile), "persistent" (a
    block per SM looping over tiles, the epilogue overlapping the next tile's loads), "streamk"
    (persistent over the whole waves, then each tile of the partial last wave split over a cluster
    of 2 blocks, ``splits=2``, summed in its shared memory: ``reduction="cluster"``) or "stream"
    (stream-K: each block an equal contiguous share of all tiles' K steps; a share's last tile
    first, so the blocks walk K together; a tile's earlier shares go through a workspace to the
    block that stores it; not yet drawn by the search) or "stream_tail"
    (the whole waves as "persistent", then stream-K over the partial last wave's K steps); cluster:
    blocks per thread-block cluster along M (2: the pair shares the B tile through TMA multicast);
    store: the write-back, "direct" from registers or "tma" (staged in shared memory and stored by
    the TMA while the next tile computes) or "rows" (staged the same way, then written by the
    consumer warps in whole row runs: for a C whose rows are not 16-byte multiples, which the TMA
    cannot store and direct stores write a column at a time); splits: blocks sharing one output
    tile's K steps (split-K: f32 partials, then a deterministic reduction that applies the
    epilogue), for grids with fewer tiles than SMs; pad: "lines" copies operands whose rows are not
    whole 128-byte lines into padded scratch first, "needed" only those the TMA cannot address at
    all; arrangement: "cooperative" (the consumers split one tile) or "pingpong" (persistent, two
    consumers: each its own 64-row tile, in turn, one's write-back overlapping the other's wgmma);
    reduction: how split-K's partials are summed, "workspace" (f32 partials through L2, then a
    second kernel) or "cluster" (a tile's splits are one thread-block cluster and sum through its
    distributed shared memory: one launch); bias_at: where the epilogue's bias (or an expression's
    ``acc + x[n]``) joins the accumulators, "store" (in the write-back) or "start" (each tile's
    accumulators start from it: no loads of it in the write-back; tiles one block computes whole) or
    "prefetch" (added in the write-back from shared memory, the tile's slice loaded before its
    mainloop; the same tiles); epilogue_math: GELU, SiLU, sigmoid and tanh in the write-back through
    CUDA's erff, expf and IEEE division ("exact") or its approximate exponential and division
    ("fast": a third of the instructions, within ~1e-6 of the result's scale; 16-bit outputs);
    accum: how fp8 products are summed, "tensor" (all of K in the wgmma accumulator, ~14 bits kept:
    cuBLASLt's fast accumulation) or "promoted" (each K step's 128 products then added into fp32
    registers: torch._scaled_mm's default accuracy) or "pipelined" (the same sums, K steps in pairs
    into two register sets, one summed while the other's wgmma runs); regs: register budgets per
    role, "even" (every thread the launch's share) or "split" (``setmaxnreg``: the producer
    warpgroup's registers go to the consumers, 232 each with two); order: the tile order within a
    raster group, "raster" (down each column of M tiles) or "hilbert" (along a Hilbert curve through
    each raster x raster square of tiles); multicast: the operand a cluster pair shares, "b" (blocks
    of adjacent M tiles: a 2 x 1 cluster) or "a" (adjacent N tiles: 1 x 2); k_atoms: K of a ring
    stage in 128-byte swizzle rows, 1 (64 halves) or 2 (128); producer_warps: warps issuing the TMA
    copies, 1 (one thread loads A and B) or 2 (one thread of warp 0 loads A, one of warp 1 B);
    operands: whose rows are wgmma's M, "ab" (A's: a conv's pixels) or "ba" (conv: the filter's
    output channels on M, ``block_n`` pixels of whole output rows on N: 112 = 4 rows of a 28-wide
    image)."""

    block_n: int = 256
    consumers: int = 2
    stages: int = 4
    raster: int = 8
    schedule: str = "tile"
    cluster: int = 1
    store: str = "direct"
    splits: int = 1
    pad: str = "needed"
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
    later_genes = (
        "schedule", "cluster", "store", "splits", "pad", "arrangement", "reduction", "bias_at",
        "epilogue_math", "accum", "regs", "order", "multicast", "k_atoms", "producer_warps",
        "operands",
    )  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.block_n not in BLOCK_NS or self.consumers not in CONSUMERS:
            raise GenomeError("bad-tile", f"block_n={self.block_n} consumers={self.consumers}")
        for gene, values in _GENE_VALUES.items():
            value = getattr(self, gene)
            if value not in values:
                reason = "bad-" + gene.replace("_", "-")
                raise GenomeError(reason, f"{gene}={value!r}: one of {values}")
        if self.stages not in STAGES or self.raster < 0:
            raise GenomeError("bad-pipeline", f"stages={self.stages} raster={self.raster}")


def _conv(workload) -> tuple:
    """``(N, H, W, C, R, S, pad)`` of a conv2d workload, and its stride after those where it
    is not 1; () for a GEMM."""
    if workload.op != "conv2d_nhwc":
        return ()
    img, h, w, c, _, r, s, stride, pad = workload.shape
    return (img, h, w, c, r, s, pad) + ((stride,) if stride != 1 else ())


def _mnk(workload) -> tuple[int, int, int]:
    conv = _conv(workload)
    if conv:
        p, q = conv_out(conv)
        return conv[0] * p * q, workload.shape[4], conv_k(conv)
    return tuple(workload.shape[-3:])


def structure(params: WgmmaParams, workload) -> dict:
    """The :class:`.structure.Structure` keywords that ``params`` stands for on ``workload``."""
    trans_b, batched, epilogue, trans_a = OPS[workload.op]
    return {
        "batch": workload.shape[0] if batched else 0,
        "conv": _conv(workload),
        "in_dtype": workload.dtype,
        "trans_b": trans_b,
        "trans_a": trans_a,
        "block_n": params.block_n,
        "consumers": params.consumers,
        "stages": params.stages,
        "raster": max(params.raster, 1),
        "epilogue": workload.epilogue if workload.epilogue is not None else epilogue,
        "out_dtype": workload.out_dtype or "float32",
        "gated": workload.op == "gemm_gated_nt",
        "schedule": params.schedule,
        "cluster": params.cluster,
        "store": params.store,
        "splits": params.splits,
        "pad": params.pad,
        "arrangement": params.arrangement,
        "reduction": params.reduction,
        "bias_at": params.bias_at,
        "epilogue_math": params.epilogue_math,
        "accum": params.accum,
        "regs": params.regs,
        "order": params.order,
        "multicast": params.multicast,
        "k_atoms": params.k_atoms,
        "producer_warps": params.producer_warps,
        "operands": params.operands,
        # fp32 workloads keep fp32 accuracy (three TF32 products, .tf32x3) unless the user
        # allowed TF32 (Workload.precision): then one
        "tf32_passes": tf32_passes(workload),
    }


def tf32_passes(workload) -> int:
    """TF32 products an fp32 workload is computed in: 3 (3xTF32, fp32-level accuracy) unless
    the user allowed TF32, then 1 (an operand stored MN-major is read from a K-major copy
    rounded to TF32, :func:`.tf32x3.transposed`: wgmma reads 32-bit operands K-major only)."""
    if workload.dtype != "float32":
        return 1
    return 1 if workload.precision else 3


class CudaWgmma(Family):
    name = "cuda.wgmma"
    params = WgmmaParams
    whole_kernels = True
    tile_genes = ("block_n", "consumers")
    domain = {
        "block_n": (256, 192, 128, 64),
        "consumers": (2, 1, 3),
        "stages": (3, 4, 5, 6),
        "raster": (0, 4, 8, 16),
        "schedule": SCHEDULES,
        "cluster": CLUSTERS,
        "store": STORES,
        "splits": SPLITS,
        "pad": PADS,
        "arrangement": ARRANGEMENTS,
        "reduction": REDUCTIONS,
        "bias_at": BIAS_AT,
        "epilogue_math": EPILOGUE_MATHS,
        "accum": ACCUMS,
        "regs": REGS,
        "order": ORDERS,
        "multicast": MULTICASTS,
        "k_atoms": K_ATOMS,
        "producer_warps": PRODUCER_WARPS,
        "operands": OPERANDS,
    }
    held_back = {
        # stream-K proper passes the GPU gate (6 cases, H200 2026-12-04) but measured slower
        # where it was timed (ResNet conv 0.81 vs 0.89x cuDNN, 4096^3 0.91 vs 1.00x cuBLAS: its
        # fix-up traffic); where_time_goes.sh times it at 1.09 waves. stream_tail (stream-K
        # over the last wave only, the whole waves as persistent's) is drawn: through the GPU
        # gate and 1.042x cuBLAS at 8192^3 (15.5 waves; the persistent seed 1.023x in the same
        # call, H200 2026-12-06; 1.044x vs 1.027x on the H100, 2026-12-07), though slower
        # where the waves are few (H100 2026-12-07, shares last tile first: 4096^3 0.953x,
        # LLaMA down 0.973x, the ResNet conv 0.940x cuDNN, each 4-20 us behind persistent)
        "schedule": ("stream",),
        # through the GPU gate (H200 2026-12-05: the 37 cases of structures.sh part 1 pass,
        # none hangs) and not shown to win where timed (genome_check.py, against the persistent
        # TMA-store seed): fp16 4096^3 seed 0.999x cuBLAS, Hilbert order 0.995x, 1 x 2 clusters
        # sharing A 0.985x (2 x 1 sharing B 0.992x), two producer warps 0.993x, three consumers
        # 0.821x; 8192^3 seed 1.026x, three consumers 0.930x, A shared 1.019x. Released on
        # the same day's second run, each winning or tied where it is aimed: 192-wide tiles
        # (gated 2048 x 11008 x 4096 1.224 vs 1.172x persistent, 8205 x 5921 x 2949 with row
        # stores 525 vs 534 us), regs=split (bias + GELU 1.013 vs 0.997x, conv 0.887 vs
        # 0.882x), fp8 step pairs (4096^3 0.910 vs 0.891x), two K slices (decode 0.972 vs 0.967x)
        "consumers": (3,),
        "order": ("hilbert",),
        "multicast": ("a",),
        "producer_warps": (2,),
        # the conv with channels on M and whole pixel rows on N (no 4 x 32 patch columns past
        # a 28-wide image's rows): through the GPU gate, 0.81-0.83x cuDNN on the ResNet 3x3
        # against the seed's 0.887x (H200 2026-12-06)
        "operands": ("ba",),
    }
    default = WgmmaParams()  # H100: 82% of cuBLAS at 4096^3 fp16 before tuning

    def applies(self, workload, target) -> str | None:
        if target.kind.name != "cuda" or str(target.attrs.get("arch", "")) != "sm_90a":
            return "needs CUDA sm_90a (wgmma and TMA are arch-specific Hopper instructions)"
        if workload.dtype not in TUNED_DTYPES:
            return f"inputs {workload.dtype}: the tuner's wgmma kernels take {TUNED_DTYPES}"
        if workload.op not in OPS:
            return f"op {workload.op}: the wgmma kernel implements {sorted(OPS)}"
        if workload.dtype == "float32" and workload.op == "gemm_gated_nt":
            return "fp32 gemm_gated_nt: TF32 is built for plain GEMMs and conv2d only"
        return None

    def check(self, params: WgmmaParams, workload, target) -> None:
        if _needs_promotion(workload) and params.accum not in PROMOTED:
            raise GenomeError(
                "wgmma-structure",
                "fp8 at torch._scaled_mm's default accuracy: accum=promoted or pipelined (fast "
                "accumulation over all of K only where the workload allows it: fast_accum)",
            )
        lim = limits(target)
        regs = {"regs_per_block": lim.regs_per_block, "regs_per_thread": lim.regs_per_thread}
        why = legal(*_mnk(workload), **_limits(target), **regs, **structure(params, workload))
        if why:
            raise GenomeError("wgmma-structure", why)

    def seed(self, workload, target) -> WgmmaParams:
        """:meth:`_promoted_seed`, else :meth:`_seed`'s structure; where the epilogue adds a
        per-column vector (a bias) to the sums, the same with that vector prefetched
        (``bias_at="prefetch"``) where that is legal: its loads leave the write-back, where
        the tensor cores wait on them. Where the write-back applies GELU, SiLU, sigmoid or
        tanh into a 16-bit C, those through CUDA's approximate exponential and division
        (``epilogue_math="fast"``): the write-back of a 128 x 256 tile with CUDA's erff takes
        about a sixth of its mainloop's time at K = 4096 (2048 x 16384 x 4096 fp16, H100
        2026-12-06: 445 us with the bias + GELU, ~400 without), and the fast GELU is a third
        of the instructions (:meth:`upgrade`). Where each is legal is :func:`.legality.legal`'s
        to say."""
        if _needs_promotion(workload):
            params = self._promoted_seed(workload, target)
        else:
            params = self._seed(workload, target)
        prefetched = params.replace(bias_at="prefetch")
        return self.upgrade(self.first_legal([prefetched, params], workload, target), workload,
                            target)  # fmt: skip

    def upgrade(self, params: WgmmaParams, workload, target) -> WgmmaParams:
        """``epilogue_math="fast"`` where legal: on every structure measured it ran the GELU
        write-back faster or as fast (H100 2026-12-06, bias + GELU 2048 x 16384 x 4096, fp16
        and bf16: 1.04x on the seed's structure, 1.03-1.04x on the one linear_gelu's library
        entry holds; a tie on the gated GEMM). The library's entries for such epilogues were
        measured before the gene existed: the tuner's 16 trials kept linear_gelu's exact
        entry and never tried it with the fast functions."""
        fast = params.replace(epilogue_math="fast")
        try:
            self.check(fast, workload, target)
        except GenomeError:  # no such function, a 32-bit C, or a genome illegal here anyway
            return params
        return fast

    def _promoted_seed(self, workload, target) -> WgmmaParams:
        """fp8 summed in fp32 (the default accuracy): :meth:`_seed`'s structure with
        ``accum="promoted"`` on tiles at most 128 wide (two accumulator sets)."""
        params = self._seed(replace(workload, precision="fast_accum"), target)
        # H200 2026-12-05 against torch._scaled_mm (promoted), e4m3 -> bf16, persistent + TMA
        # store: 4096^3 128 wide 0.891x, in step pairs with split registers 0.910x, 192 wide
        # split 0.824x; 8192^3 0.818x, 0.844x, 0.878x: 192-wide tiles where they fill the
        # waves at least as well as 128-wide ones (8192^3: 98.5% / 97.0%; 4096^3: 86% / 97%)
        sms = limits(target).sm_count
        split = params.replace(regs="split")
        pairs = [split.replace(accum="pipelined", block_n=128)]
        wide = [split.replace(accum="promoted", block_n=192)]
        wide_first = _fill(workload, 192, sms) >= _fill(workload, 128, sms)
        widths = [b for b in (params.block_n, 128, 64) if b <= params.block_n]
        narrower = [params.replace(accum="promoted", block_n=b) for b in widths]
        last = WgmmaParams(block_n=64, consumers=1, raster=0, accum="promoted")
        ordered = [*wide, *pairs] if wide_first else [*pairs, *wide]
        return self.first_legal([*ordered, *narrower, last], workload, target)

    def _seed(self, workload, target) -> WgmmaParams:
        """Decode (M < 128): :meth:`_narrow_seed`. Split-K where the default's 128 x 256 tiles
        would not give every SM a block (large K over a small output): those tiles with the
        most splits legal that keep ``SEED_SPLIT_STEPS`` K steps per block (the f32 partials
        cost a pass over the output per split). H200: 0.95-1.02x cuBLAS on 256 x 256 x 524288.

        Where the tiles fill the GPU: the default tile on the persistent schedule with the TMA
        store (or, where that is illegal, the persistent schedule alone). H200, the same
        structure otherwise, against cuBLAS: 4096^3 0.89 -> 1.00x, 8192^3 0.97 -> 1.03x,
        2048 x 8192 x 1024 0.69 -> 1.01x, 2048 x 11008 x 4096 0.85 -> 0.94x, bf16 4096^3
        0.89 -> 1.00x (``benchmarks/results/README.md``, kernel structures); 8 tuning trials
        did not always reach it from the default. Where the last wave's tiles fit clusters of 2
        blocks, the streamk schedule first: 2048 x 11008 x 4096 0.945 -> 1.00x fp16, 0.943 ->
        0.997x bf16, 2048 x 32000 x 4096 0.99 -> 1.01x. Where C's rows are not 16-byte
        multiples: the TMA store into C's rows padded to the next multiple (the padding is the
        kernel's scratch, the result a view of the rows), then the tile staged and written in
        whole row runs (store=rows). H100 2026-12-06: 8205 x 5921 x 2949 fp16 478.9 us
        through the view, 532.7 in row runs, 4.91x / 4.44x cuBLAS; 2047 x 2049 x 2051 bf16 57.2
        against 62.9 us (H200 2026-12-05: rows 529 us against 597 stored from registers). A
        16-bit C only: with an fp32 C the persistent rows kernel spills (768 bytes, ptxas).
        Those tiles 192 wide where that fills the SMs' rounds at least as well (:func:`_fill`):
        525 against 534 us in row runs (the same 93.6% fill, 2026-12-05)."""
        m, n, k = _mnk(workload)
        if m < 2 * WG_ROWS:
            return self._narrow_seed(workload, target)
        conv = _conv(workload)
        if conv and "k" in conv_edges(conv, n, workload.dtype):  # output channels past a tile
            return self._conv_edge_seed(workload, target)
        if _tiles(workload, 2 * WG_ROWS, 256) >= limits(target).sm_count:
            streamk = {"schedule": "streamk", "store": "tma", "splits": 2, "reduction": "cluster"}
            persistent = {"schedule": "persistent"}
            genes = (streamk, {**persistent, "store": "tma"}, persistent)
            sms = limits(target).sm_count
            default = self.first_legal((self.default.replace(**g) for g in genes), workload,
                                       target)  # fmt: skip
            narrow = self.default.replace(**streamk, block_n=192)
            if (
                _busiest(workload, 192, sms, 2)
                <= WIDE_MARGIN
                * _busiest(
                    workload, 256, sms, default.splits if default.schedule == "streamk" else 1
                )
                and self.first_legal([narrow], workload, target) == narrow
            ):
                genes = ({**streamk, "block_n": 192}, *genes)
            st = Structure(**structure(self.default, workload))
            if c_unaligned(n, st) and st.out_dtype != "float32":  # fp32 rows spill (ptxas)
                rows = {**persistent, "store": "rows"}
                sms = limits(target).sm_count
                wide = max((256, 192), key=lambda b: (_fill(workload, b, sms), -b))
                view = {**persistent, "store": "tma", "block_n": wide}
                genes = (view, {**rows, "block_n": wide}, rows, persistent)
            return self.first_legal((self.default.replace(**g) for g in genes), workload, target)
        base = WgmmaParams(block_n=256, consumers=2, stages=4, raster=0)
        steps = -(-k // k_step(workload.dtype))
        splits = (s for s in sorted(SPLITS, reverse=True) if steps // s >= SEED_SPLIT_STEPS)
        return self.first_legal((base.replace(splits=s) for s in splits), workload, target)

    def _conv_edge_seed(self, workload, target) -> WgmmaParams:
        """A conv whose output channels are not a multiple of 64 (conv_edges): the widest tile
        whose rounds hold within 2% as much of the output as the best (:func:`_fill`) -- 128
        for 96 channels, 192 for 160: a 64-wide wgmma reads its A tile from shared memory
        twice as often per product -- on the persistent schedule with the TMA store where its
        tiles outnumber the SMs, else one tile per block."""
        sms = limits(target).sm_count
        fills = {b: _fill(workload, b, sms) for b in BLOCK_NS if b not in SWAPPED_NS}
        width = max(b for b, f in fills.items() if f >= 0.98 * max(fills.values()))
        persistent = {"schedule": "persistent", "store": "tma", "block_n": width}
        genes = (persistent, {"block_n": width})
        return self.first_legal((self.default.replace(**g) for g in genes), workload, target)

    def _narrow_seed(self, workload, target) -> WgmmaParams:
        """Decode (M < 128): one-warpgroup tiles, the (block_n, splits) whose blocks fill the
        last wave best (the weight is read once: every SM should stream its share of it), the
        fewest splits among those, then the wider tile; a split's partials summed in the
        cluster where it can be. H200, 64 x 4096 x 4096 fp16, each 128 blocks: 64-wide tiles
        split in 2 0.96x cuBLAS, 128-wide in 4 0.73x, 256-wide in 8 0.70x; 128-wide in 8
        (the earlier seed, 256 blocks) 0.74x."""
        _, _, k = _mnk(workload)
        sms = limits(target).sm_count
        steps = -(-k // k_step(workload.dtype))
        options = []
        for block_n in (64, 128, 256):
            for splits in SPLITS:
                units = _tiles(workload, WG_ROWS, block_n) * splits
                if splits > 1 and steps // splits < SEED_SPLIT_STEPS:
                    break
                fill = round(units / (-(-units // sms) * sms), 6)  # equal fills tie exactly
                options.append((-fill, splits, -block_n))
        base = WgmmaParams(block_n=128, consumers=1, stages=6, raster=0)
        candidates = (
            base.replace(block_n=-block_n, splits=splits, **more)
            for _, splits, block_n in sorted(options)
            for more in ([{"reduction": "cluster"}, {}] if splits > 1 else [{"store": "tma"}, {}])
        )
        return self.first_legal(candidates, workload, target)

    def impossible(self, workload, target) -> dict[str, tuple]:
        """pad=lines where no operand has rows that are 16-byte but not 128-byte multiples;
        the splits the kernel's split check refuses even for the fewest tiles (128 x 256), as
        split-K and as the last wave of the streamk schedule (whose tail depends on the tile:
        the grammar offers streamk's splits where the default tile leaves a partial wave that
        they fit); bias_at=start and prefetch where the epilogue adds no bias to the accumulator
        (start also where C is fp32); epilogue_math=fast where the epilogue applies no GELU,
        SiLU, sigmoid or tanh, or C is fp32;
        store=rows where the TMA can store C's rows; accum=promoted and pipelined for inputs
        that are not fp8, accum=tensor for fp8 that must be summed in fp32; order=hilbert where
        even 64 x 64 tiles leave fewer rows or columns of tiles than the smallest raster;
        operands=ba and its pixel-row widths (112) but for 16-bit convs whose output rows
        tile them."""
        m, n, k = _mnk(workload)
        st = structure(self.default, workload)
        out = {}
        if row_pads(m, n, k, **{**st, "pad": "lines"}) == row_pads(m, n, k, **st):
            out["pad"] = ("lines",)
        if column_bias(st["epilogue"]) is None:
            out["bias_at"] = ("start", "prefetch")
        elif st["out_dtype"] == "float32":
            out["bias_at"] = ("start",)
        if not approximable(st["epilogue"], st["gated"]) or st["out_dtype"] == "float32":
            out["epilogue_math"] = ("fast",)
        if st["in_dtype"] not in FP8:
            out["accum"] = PROMOTED  # 16-bit and TF32 products are summed in fp32
        elif _needs_promotion(workload):
            out["accum"] = ("tensor",)
            out["block_n"] = (256,)  # two sets of 128 accumulators fit in no consumer thread
        if not c_unaligned(n, Structure(**st)):
            out["store"] = ("rows",)  # C's rows are 16-byte multiples (or conv): tma stores them
        fewest = _tiles(workload, 2 * WG_ROWS, 128 if st["gated"] else 256)
        plain = {**st, "store": "direct", "cluster": 1}  # what a split needs of the other genes
        sms = limits(target).sm_count
        streamk = Structure(**{**plain, "schedule": "streamk", "reduction": "cluster"})
        out["splits"] = tuple(
            s
            for s in SPLITS
            if split_reason(Structure(**{**plain, "splits": s}), k, fewest, sms)
            and split_reason(replace(streamk, splits=s), k, fewest, sms)
        )
        if all(s in out["splits"] for s in SPLITS if 1 < s <= PORTABLE_CLUSTER):
            out["reduction"] = ("cluster",)  # no split a cluster can hold
        conv, sixteen = st["conv"], {"float16", "bfloat16"}
        widths = swap_widths(conv) if conv and {st["in_dtype"], st["out_dtype"]} <= sixteen else ()
        if not widths:
            out["operands"] = ("ba",)  # channels on M: 16-bit convs whose rows fit a tile
        if not set(SWAPPED_NS) & set(widths):
            out["block_n"] = (*out.get("block_n", ()), *SWAPPED_NS)
        side = min(r for r in self.domain["raster"] if r > 1)
        narrowest = min(BLOCK_NS) // (2 if st["gated"] else 1)  # C columns of a block, fewest
        if min(-(-m // WG_ROWS), -(-n // narrowest)) < side:
            out["order"] = ("hilbert",)  # even the smallest tiles hold no square to walk
        return out

    def features(self, params: WgmmaParams, workload, target) -> dict[str, float]:
        """The workload, the genes, and what they make of each other on this GPU: how many
        waves of blocks the grid is, K steps per block, the share of the tiles' area past the
        edges, shared memory, and whether rows are copied first."""
        m, n, k = _mnk(workload)
        st = structure(params, workload)
        lead = max(st["batch"], 1)
        block_m = tile_rows(params.consumers, params.arrangement)
        block_c = params.block_n // 2 if st["gated"] else params.block_n
        tiles = _tiles(workload, block_m, block_c)
        # a conv's pixel patches: 4 x 32 of a 28-wide image, or whole rows (operands=ba)
        grid = st["conv"] and conv_grid(st["conv"], n, block_m, params.block_n, params.operands)
        if grid:
            tiles = grid[1] * grid[2]
        sms = max(limits(target).sm_count, 1)
        streamk = params.schedule == "streamk"  # only the last wave's tiles are split
        units = tiles + tiles % sms * (params.splits - 1) if streamk else tiles * params.splits
        return {
            "log_m": math.log2(m), "log_n": math.log2(n), "log_k": math.log2(k),
            "log_batch": math.log2(lead), "bf16": float(workload.dtype == "bfloat16"),
            "out_bytes": 4.0 if st["out_dtype"] == "float32" else 2.0,
            "trans_b": float(st["trans_b"]),
            "epilogue": float(bool(st["epilogue"])), "gated": float(st["gated"]),
            "conv": float(bool(st["conv"])), "block_n": float(params.block_n),
            "consumers": float(params.consumers), "stages": float(params.stages),
            "raster": float(max(params.raster, 1)),
            "persistent": float(params.schedule != "tile"),
            "cluster": float(params.cluster), "tma_store": float(params.store == "tma"),
            "pingpong": float(params.arrangement == "pingpong"),
            "cluster_reduce": float(params.reduction == "cluster"),
            "log_splits": math.log2(params.splits),
            "split_regs": float(params.regs == "split"),
            "paired_sums": float(params.accum == "pipelined"),
            "hilbert": float(params.order == "hilbert"),
            "shares_a": float(params.cluster > 1 and params.multicast == "a"),
            "producer_warps": float(params.producer_warps),
            "swapped": float(params.operands == "ba"),
            "bias_start": float(params.bias_at == "start"),
            "bias_prefetch": float(params.bias_at == "prefetch"),
            "fast_math": float(params.epilogue_math == "fast"),
            "log_tiles": math.log2(tiles), "waves": units / sms,
            "k_steps": k_steps(k, Structure(**st)) / (1 if streamk else params.splits),
            "edge_waste": tiles * block_m * block_c / (lead * m * n) - 1.0,
            "smem_kb": smem_bytes(
                params.block_n, params.consumers, params.stages, params.store,
                params.arrangement, params.k_atoms,
            ) / 1024,
            "row_copies": float(len(row_pads(m, n, k, **st)) + len(transposed(Structure(**st)))),
        }  # fmt: skip

    def notes(self, params: WgmmaParams, workload) -> list[str]:
        out = []
        if workload.dtype == "float32" and tf32_passes(workload) == 1:
            out.append("fp32 as TF32 (allowed): one tensor-core product, 10-bit mantissas")
        elif workload.dtype == "float32":
            out.append("fp32 as 3xTF32: three TF32 tensor-core products, fp32-level accuracy")
        elif workload.dtype in FP8 and params.accum == "tensor":
            out.append(
                "fp8 fast accumulation (allowed): the tensor core's ~14-bit sum over all of K"
            )
        elif workload.dtype in FP8 and params.accum == "pipelined":
            out.append(
                "fp8 sums promoted: each 128 products' tensor-core sum added in fp32 while the "
                "next 128 are multiplied"
            )
        elif workload.dtype in FP8:
            out.append("fp8 sums promoted: each 128 products' tensor-core sum added in fp32")
        if params.epilogue_math == "fast":
            out.append(
                "epilogue GELU / SiLU / sigmoid / tanh through CUDA's approximate exp and "
                "division (within ~1e-6 of the result's scale)"
            )
        return out

    def candidate(self, params: WgmmaParams, workload, target) -> Kernel:
        mod = wgmma_module(
            *_mnk(workload),
            symbol=f"ak_{workload.name}",
            **_limits(target),
            **structure(params, workload),
        )
        return Kernel(mod)

    def from_legacy(self, genome: dict) -> WgmmaParams:
        match = re.fullmatch(r"wgmma\.m64n(\d+)k16", genome["intrinsic"])
        return WgmmaParams(
            block_n=int(match.group(1)),
            consumers=genome["warps"][0] // 4,
            stages=genome["stages"],
            raster=genome["raster"],
        )


def _needs_promotion(workload) -> bool:
    """fp8 whose sums must be fp32's (torch._scaled_mm's default): each K step's wgmma sum is
    added into fp32 registers; the tensor core's own ~14-bit sum over all of K only where the
    workload allows fast accumulation."""
    return workload.dtype in FP8 and workload.precision != "fast_accum"


def _tiles(workload, block_m: int, block_c: int) -> int:
    """Output tiles of ``block_m x block_c`` over the workload's M x N (and batch)."""
    m, n, _ = _mnk(workload)
    lead = workload.shape[0] if OPS[workload.op][1] else 1
    return lead * -(-m // block_m) * -(-n // block_c)


def _busiest(workload, block_n: int, sms: int, splits: int = 1) -> float:
    """Columns of C in 128-row tiles ``block_n`` wide (half that of a gated GEMM's: its tile
    holds gate and up columns) the busiest SM computes: its rounds of whole tiles (a block per
    SM, the tiles dealt in turn), and with streamk's split tail (``splits`` > 1) one tile's
    ``1 / splits`` share after the whole waves."""
    block_c = block_n // 2 if workload.op == "gemm_gated_nt" else block_n
    tiles = _tiles(workload, 2 * WG_ROWS, block_c)
    if splits == 1:
        return -(-tiles // sms) * block_c
    return tiles // sms * block_c + (block_c / splits if tiles % sms else 0)


def _fill(workload, block_n: int, sms: int) -> float:
    """The share of the busiest SM's 128 x ``block_n`` tile rounds (:func:`_busiest`) that lies
    inside the output: what tile padding and a partial last wave leave of the work the SMs are
    busy for."""
    m, n, _ = _mnk(workload)
    lead = workload.shape[0] if OPS[workload.op][1] else 1
    return lead * m * n / (_busiest(workload, block_n, sms) * sms * 2 * WG_ROWS)


def _limits(target) -> dict:
    lim = limits(target)
    return {"smem_limit": lim.smem_per_block, "sm_count": lim.sm_count}


FAMILY = CudaWgmma()

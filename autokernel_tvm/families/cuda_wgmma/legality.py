# SPDX-License-Identifier: Apache-2.0
"""Why a ``cuda.wgmma`` structure cannot build a workload on a GPU (:func:`legal`), one reason
per gene, before anything is built."""

from __future__ import annotations

from ...workloads.epilogue import Epilogue
from .epilogue import approximable, column_bias
from .geometry import (
    c_unaligned,
    consumer_regs,
    conv_edges,
    conv_grid,
    conv_k,
    conv_out,
    conv_stride,
    launch_regs,
    row_pads,
    rows_patch,
    smem_bytes,
    stream_tail_waves,
)
from .structure import (
    ACCUMS,
    ARRANGEMENTS,
    BIAS_AT,
    BLOCK_K,
    BLOCK_NS,
    CLUSTERS,
    CONSUMERS,
    EPILOGUE_MATHS,
    EPILOGUES,
    FP8,
    IN_DTYPES,
    K_ATOMS,
    MN_ATOM,
    MULTICASTS,
    OPERANDS,
    ORDERS,
    OUT_DTYPES,
    PADS,
    PORTABLE_CLUSTER,
    PRODUCER_WARPS,
    REDUCTIONS,
    REGS,
    SCHEDULES,
    SM90,
    SMEM_ALIGN_SLACK,
    SPLIT_MIN_STEPS,
    SPLITS,
    STAGES,
    STORE_BOX,
    STORE_BUFFERS,
    STORES,
    STREAMK_SPLITS,
    SWAPPED_NS,
    SWIZZLE_ROW,
    TENSOR_REGS,
    THREAD_REGS,
    TMA_BOX,
    TMA_ELEMENT_STRIDE,
    TMA_STRIDE,
    WG_THREADS,
    Structure,
    _bytes,
    k_step,
    k_steps,
    pipe_step,
    storage,
    tile_rows,
)
from .tf32x3 import split_conv, split_k, transposed


def _operands_reason(st: Structure, n: int, block_m: int) -> str | None:
    """Why ``st.operands`` cannot be, or None."""
    if st.operands not in OPERANDS:
        return f"operands {st.operands!r}: one of {OPERANDS}"
    if st.operands == "ab":
        if st.block_n in SWAPPED_NS:
            return f"block_n={st.block_n}: whole rows of a conv's pixels, for operands=ba"
        return None
    if not st.conv or _bytes(storage(st.in_dtype)) != 2 or st.tf32_passes != 1:
        return "operands=ba: 16-bit conv2d (channels on M, whole output rows of pixels on N)"
    if _bytes(st.out_dtype) != 2:
        return "operands=ba: a 16-bit C (a warpgroup's 64 channels are one 128-byte box row)"
    plain = st.cluster == 1 and st.arrangement == "cooperative" and st.splits == 1
    if st.store != "tma" or not plain or st.bias_at != "store":
        return (
            "operands=ba: store=tma (the tile staged transposed, one box per warpgroup), "
            "cluster=1, cooperative, splits=1, bias_at=store"
        )
    if st.block_n > STORE_BUFFERS * STORE_BOX:
        return f"operands=ba: a warpgroup stages {st.block_n} pixel rows in its two buffers"
    if rows_patch(st.conv, st.block_n) is None:
        q = conv_out(st.conv)[1]
        return f"operands=ba: block_n={st.block_n} pixels are not whole rows of {q}"
    if n % block_m:
        return f"operands=ba: {n} channels are not a multiple of the {block_m}-row tile"
    return None


def _conv_reason(conv, m, n, k, *, batch, trans_b, epilogue, bk=BLOCK_K, es=2) -> str | None:
    if len(conv) not in (7, 8) or conv_stride(conv) < 1:
        return f"conv={conv}: (N, H, W, C, R, S, pad[, stride]) of an NHWC x KRSC conv2d"
    if isinstance(epilogue, Epilogue):
        epilogue = ""  # an expression reads the NPQK output index: fused like any GEMM's
    img, _, _, c, r, s, _ = conv[:7]
    p, q = conv_out(conv)
    if c % bk and (es != 2 or c % (TMA_STRIDE // es)):
        return (
            f"conv C={c}: a multiple of {bk}, or for 16-bit inputs a multiple of "
            f"{TMA_STRIDE // 2} (a pixel's channels are TMA strides, 16-byte multiples; a tap's "
            "last K step is zero-filled past C)"
        )
    if n % (TMA_STRIDE // es):
        return f"conv K={n}: a multiple of {TMA_STRIDE // es} (16-byte rows of the output's pixels)"
    if conv_stride(conv) > TMA_ELEMENT_STRIDE:
        return f"conv stride {conv_stride(conv)}: a TMA box's element strides are at most 8"
    if (m, k) != (img * p * q, r * s * c) or batch or not trans_b or epilogue:
        return f"conv: m, k = N*P*Q, R*S*C ({img * p * q}, {r * s * c}); no batch/trans_b/epilogue"
    return None


def _cluster_reason(st: Structure, m_tiles: int, n_tiles: int) -> str | None:
    if st.cluster not in CLUSTERS:
        return f"cluster={st.cluster}: one of {CLUSTERS}"
    if st.multicast not in MULTICASTS:
        return f"multicast {st.multicast!r}: one of {MULTICASTS}"
    if st.cluster == 1:
        if st.multicast != "b":
            return f"multicast={st.multicast}: a cluster pair shares an operand (cluster=2)"
        return None
    if st.multicast == "a":
        return _share_a_reason(st, n_tiles)
    if st.conv or st.gated:
        return "cluster=2 multicasts a plain B tile: not for conv2d or the gated GEMM"
    if m_tiles % st.raster:  # a ragged last group could split a pair
        return (
            f"cluster=2 pairs the tiles of full raster groups: raster={st.raster} must divide "
            f"the {m_tiles} M tiles"
        )
    if st.raster % 2:  # with full groups, an even raster pairs every tile
        return f"cluster=2 pairs adjacent M tiles of one raster group: raster={st.raster} is odd"
    if not st.trans_b and st.block_n % (2 * MN_ATOM):
        return (
            f"cluster=2 with B as [K, N]: block_n={st.block_n} does not halve into whole TMA "
            f"boxes of {MN_ATOM} columns"
        )
    return None


def _regs_reason(st: Structure, regs_per_block: int, regs_per_thread: int) -> str | None:
    if st.regs not in REGS:
        return f"regs {st.regs!r}: one of {REGS}"
    if st.regs == "even":
        return None
    launch = launch_regs(st.consumers, regs_per_block, regs_per_thread)
    if consumer_regs(st, regs_per_block, regs_per_thread) <= launch:
        return (
            f"regs=split: a consumer thread of a {(st.consumers + 1) * WG_THREADS}-thread block "
            f"already has {launch} registers, all one thread can use"
        )
    return None


def _order_reason(st: Structure, m_tiles: int, n_tiles: int) -> str | None:
    if st.order not in ORDERS:
        return f"order {st.order!r}: one of {ORDERS}"
    if st.order == "raster":
        return None
    side = st.raster
    if side < 2 or side & (side - 1):
        return f"order=hilbert walks raster x raster squares: raster={side} is not a power of 2"
    if st.cluster > 1:
        return "order=hilbert: a cluster pair takes two adjacent tiles in a row (cluster=1)"
    if m_tiles < side or n_tiles < side:
        return (
            f"order=hilbert: {m_tiles} x {n_tiles} tiles hold no {side} x {side} square "
            "(the raster order throughout)"
        )
    return None


def _k_atoms_reason(st: Structure) -> str | None:
    if st.k_atoms not in K_ATOMS:
        return f"k_atoms={st.k_atoms}: one of {K_ATOMS}"
    if st.k_atoms == 1:
        return None
    if _bytes(storage(st.in_dtype)) != 2 or st.conv or st.gated or st.batch:
        return (
            f"k_atoms={st.k_atoms}: 16-bit 2-D GEMMs (no fp8, TF32, conv, gated GEMM or batch: "
            "their K steps are laid out by the single-row stage)"
        )
    return None


def _producer_reason(st: Structure) -> str | None:
    if st.producer_warps not in PRODUCER_WARPS:
        return f"producer_warps={st.producer_warps}: one of {PRODUCER_WARPS}"
    return None


def _share_a_reason(st: Structure, n_tiles: int) -> str | None:
    """Why a 1 x 2 cluster (blocks of adjacent N tiles multicasting halves of the A tile) cannot
    be built, or None."""
    if st.conv or st.gated or st.trans_a:
        return "multicast=a: halves of a K-major A tile's rows (no conv, gated GEMM or trans_a)"
    if st.arrangement != "cooperative":
        return "multicast=a: one A tile for both consumers (arrangement=cooperative)"
    if n_tiles % 2:
        return f"multicast=a pairs adjacent N tiles: the {n_tiles} N tiles are odd"
    return None


def _accum_reason(st: Structure, regs_per_block: int, regs_per_thread: int) -> str | None:
    """Why ``st.accum`` cannot be built (None if it can): the promoted sums are a second set of
    accumulators, which must fit in what a consumer thread of the block can have."""
    if st.accum not in ACCUMS:
        return f"accum {st.accum!r}: one of {ACCUMS}"
    if st.accum == "tensor":
        regs = consumer_regs(st, regs_per_block, regs_per_thread)
        if st.block_n // 2 + TENSOR_REGS > regs:
            return (
                f"block_n={st.block_n}: {st.block_n // 2} accumulators and {TENSOR_REGS} more "
                f"registers a consumer thread > its {regs} ({st.consumers} consumers, "
                f"regs={st.regs})"
            )
        return None
    if st.in_dtype not in FP8:
        return f"accum={st.accum}: fp8 only (16-bit and TF32 products are summed in fp32 already)"
    regs = consumer_regs(st, regs_per_block, regs_per_thread)
    sets = 3 if st.accum == "pipelined" else 2  # the fp32 sums and one (two) wgmma sets
    need = sets * (st.block_n // 2) + THREAD_REGS
    if need > regs:
        return (
            f"accum={st.accum}: {need} registers a consumer thread ({sets} sets of "
            f"{st.block_n // 2} accumulators) > its {regs} (regs={st.regs})"
        )
    return None


def _arrangement_reason(st: Structure) -> str | None:
    if st.arrangement not in ARRANGEMENTS:
        return f"arrangement {st.arrangement!r}: one of {ARRANGEMENTS}"
    if st.arrangement == "cooperative":
        return None
    if st.schedule != "persistent" or st.consumers != 2:
        return "pingpong: two consumer warpgroups taking turns over a persistent block's tiles"
    if st.conv or st.gated or st.splits > 1:
        return "pingpong: plain or batched GEMM tiles (no conv, gated GEMM or split-K)"
    return None


def _store_reason(st: Structure, m: int, n: int) -> str | None:
    if st.store not in STORES:
        return f"store {st.store!r}: one of {STORES}"
    if st.store == "direct":
        return None
    if st.store == "rows" and not c_unaligned(n, st):
        return (
            "store=rows writes the staged tile in row runs where the TMA cannot store C (rows "
            "not 16-byte multiples): here store=tma does"
        )
    box = SWIZZLE_ROW // _bytes(st.out_dtype)  # C columns per box
    if st.operands == "ba":  # C's columns are the tile's rows: 64 channels a warpgroup
        return None
    if (st.block_n // 2 if st.gated else st.block_n) % box:
        return f"store=tma stores {box}-column boxes: a block's C tile is narrower"
    return None


def _bias_reason(st: Structure) -> str | None:
    if st.bias_at not in BIAS_AT:
        return f"bias_at {st.bias_at!r}: one of {BIAS_AT}"
    if st.bias_at == "store":
        return None
    at = f"bias_at={st.bias_at}"
    if column_bias(st.epilogue) is None:
        return f"{at}: the epilogue adds no per-column vector (a bias) to the accumulator"
    if st.bias_at == "start" and st.out_dtype == "float32":
        # Started from the bias, every K step rounds the running sum at the bias's magnitude;
        # a 16-bit output's rounding hides that, an fp32 one keeps it (seen on the H200: up to
        # 2.7x the gate's bound, which is the bias added once, at the store).
        return (
            "bias_at=start: an fp32 output keeps the rounding of the bias in every K step's sum; "
            "16-bit outputs only"
        )
    if st.splits > 1 or st.schedule not in ("tile", "persistent"):
        return (
            f"{at}: a tile's K steps in one block (splits=1, schedule tile or persistent); "
            "a split tile's blocks would each add the vector"
        )
    return None


def _math_reason(st: Structure) -> str | None:
    if st.epilogue_math not in EPILOGUE_MATHS:
        return f"epilogue_math {st.epilogue_math!r}: one of {EPILOGUE_MATHS}"
    if st.epilogue_math == "exact":
        return None
    if not approximable(st.epilogue, st.gated):
        return "epilogue_math=fast: the epilogue applies no GELU, SiLU, sigmoid or tanh"
    if st.out_dtype == "float32":
        return (
            "epilogue_math=fast: 16-bit outputs only (an fp32 C would keep the approximate "
            "exponential's few-ulp errors)"
        )
    return None


def split_reason(st: Structure, k: int, tiles: int, sm_count: int) -> str | None:
    """Why ``st.splits`` cannot split the K steps of ``tiles`` output tiles, or None."""
    if st.splits not in SPLITS:
        return f"splits={st.splits}: one of {SPLITS}"
    if st.schedule == "streamk":
        return _streamk_reason(st, k, tiles, sm_count)
    if st.schedule in ("stream", "stream_tail"):
        return _stream_reason(st, k, tiles, sm_count)
    if st.splits == 1:
        return _reduction_reason(st)
    if st.conv or st.gated:
        return "splits > 1 sums plain GEMM partials: not for conv2d or the gated GEMM"
    if st.store != "direct" or st.cluster != 1:
        return "splits > 1 stores f32 partials directly: store=direct, cluster=1"
    k_tiles = k_steps(k, st)
    if k_tiles % st.splits:
        return f"splits={st.splits} does not divide the {k_tiles} K steps of {pipe_step(st)}"
    if k_tiles // st.splits < SPLIT_MIN_STEPS:
        steps = k_tiles // st.splits
        return f"splits={st.splits} leaves {steps} K steps per block, under {SPLIT_MIN_STEPS}"
    if sm_count < 1:
        return "splits > 1: the target's multiprocessor count is unknown"
    if tiles * (st.splits // 2) >= sm_count:  # half the splits would already fill the GPU
        return f"splits={st.splits}: {tiles} tiles x {st.splits // 2} already fill {sm_count} SMs"
    return _reduction_reason(st)


def _streamk_reason(st: Structure, k: int, tiles: int, sm_count: int) -> str | None:
    """Why ``schedule="streamk"`` cannot split the last wave of ``tiles`` tiles, or None."""
    if sm_count < 1:
        return "streamk: the target's multiprocessor count is unknown"
    if st.splits != STREAMK_SPLITS:
        # every block of the grid must be resident at once: clusters of 4 left SMs of the H200's
        # GPCs idle, and the clusters that did not fit ran after the others (0.54-0.57x cuBLAS)
        return f"streamk splits a last-wave tile over a cluster of {STREAMK_SPLITS} blocks"
    if st.reduction != "cluster" or st.cluster != 1:
        return "streamk sums a tile's splits in their cluster: reduction=cluster, cluster=1"
    if st.in_dtype not in ("float16", "bfloat16"):
        return "streamk: fp16/bf16 inputs"
    if sm_count % st.splits:
        return f"streamk: {sm_count} blocks do not group into clusters of {st.splits}"
    tail = tiles % sm_count
    if tiles < sm_count:
        return f"streamk: {tiles} tiles are less than one wave of {sm_count} (split-K's case)"
    if tail == 0:
        return f"streamk: {tiles} tiles are whole waves of {sm_count}: no partial wave to split"
    if tail * st.splits > sm_count:
        return (
            f"streamk: the last wave's {tail} tiles x {st.splits} splits need more than "
            f"{sm_count} blocks"
        )
    k_tiles = k_steps(k, st)
    if k_tiles % st.splits or k_tiles // st.splits < SPLIT_MIN_STEPS:
        return (
            f"streamk: splits={st.splits} must divide the {k_tiles} K steps into ranges of at "
            f"least {SPLIT_MIN_STEPS}"
        )
    return _parking_reason(st, "streamk")


def _stream_reason(st: Structure, k: int, tiles: int, sm_count: int) -> str | None:
    """Why ``schedule="stream"`` (or "stream_tail") cannot deal ``tiles`` tiles' K steps out to
    the SMs, or None."""
    if sm_count < 1:
        return "stream: the target's multiprocessor count is unknown"
    k_tiles = k_steps(k, st)
    if st.schedule == "stream_tail" and not stream_tail_waves(tiles, k_tiles, sm_count):
        return (
            f"stream_tail: {tiles} tiles leave no whole wave of {sm_count} before a partial one "
            f"of {SPLIT_MIN_STEPS}+ K steps a block (schedule=stream deals them all)"
        )
    plain = st.cluster == 1 and st.arrangement == "cooperative" and st.reduction == "workspace"
    if st.splits != 1 or not plain:
        return (
            "stream: K ranges come from the schedule: splits=1, cluster=1, cooperative, "
            "reduction=workspace"
        )
    if st.in_dtype not in ("float16", "bfloat16"):
        return "stream: fp16/bf16 inputs"
    work = tiles * k_steps(k, st)
    if tiles % sm_count == 0:
        return f"stream: {tiles} tiles are whole waves of {sm_count}: nothing to balance"
    if work // sm_count < SPLIT_MIN_STEPS:
        return f"stream: {work} K steps leave a block fewer than {SPLIT_MIN_STEPS}"
    if work * (sm_count + 1) >= 2**31:
        return f"stream: {work} K steps overflow the schedule's 32-bit indexing"
    return None


def _reduction_reason(st: Structure) -> str | None:
    if st.reduction not in REDUCTIONS:
        return f"reduction {st.reduction!r}: one of {REDUCTIONS}"
    if st.reduction == "workspace":
        return None
    if st.splits == 1:
        return "reduction=cluster sums the partials of split-K: splits > 1"
    if st.splits > PORTABLE_CLUSTER:
        return f"reduction=cluster: {st.splits} splits > a portable cluster of {PORTABLE_CLUSTER}"
    if st.schedule != "tile":
        return "reduction=cluster: a cluster is one tile's splits launched together (schedule=tile)"
    return _parking_reason(st, "reduction=cluster")


def _parking_reason(st: Structure, who: str) -> str | None:
    """Why the block's f32 tile, summed across a cluster, does not fit over the drained ring."""
    ring = smem_bytes(st.block_n, st.consumers, st.stages, k_atoms=st.k_atoms)  # ring alone
    tile = tile_rows(st.consumers) * st.block_n * 4
    if tile > ring:
        return f"{who} parks the f32 tile ({tile} B) in the ring ({ring} B)"
    return None


def _pad_reason(m: int, n: int, k: int, pad: str, structure: dict) -> str | None:
    if pad not in PADS:
        return f"pad {pad!r}: one of {PADS}"
    if pad == "lines" and row_pads(m, n, k, **structure) == row_pads(
        m, n, k, **{**structure, "pad": "needed"}
    ):
        return "pad=lines copies nothing more here: every other operand's rows are whole lines"
    return None


def legal(
    m: int,
    n: int,
    k: int,
    *,
    smem_limit: int,
    sm_count: int = 0,
    regs_per_block: int = SM90.regs_per_block,
    regs_per_thread: int = SM90.regs_per_thread,
    **structure,
) -> str | None:
    """Why the :class:`Structure` of these keywords cannot build an ``m x n x k`` GEMM on a GPU
    granting ``smem_limit`` bytes of shared memory and ``regs_per_block`` registers (at most
    ``regs_per_thread`` a thread) per block and having ``sm_count`` multiprocessors (0:
    unknown), or None if it can."""
    st = Structure(**structure)
    limits = {"smem_limit": smem_limit, "sm_count": sm_count, "regs_per_block": regs_per_block,
              "regs_per_thread": regs_per_thread}  # fmt: skip
    batch, conv, in_dtype, trans_b = st.batch, st.conv, st.in_dtype, st.trans_b
    block_n, consumers, stages, raster = st.block_n, st.consumers, st.stages, st.raster
    epilogue, out_dtype = st.epilogue, st.out_dtype
    known = isinstance(epilogue, Epilogue) or epilogue in EPILOGUES
    if not known or out_dtype not in OUT_DTYPES:
        return f"epilogue {epilogue!r} / out_dtype {out_dtype!r}: not in {EPILOGUES} / {OUT_DTYPES}"
    if in_dtype not in IN_DTYPES:
        return f"in_dtype {in_dtype!r}: wgmma f32-accumulate is implemented for {tuple(IN_DTYPES)}"
    if st.tf32_passes not in (1, 3):
        return f"tf32_passes={st.tf32_passes}: 1 (TF32) or 3 (3xTF32)"
    if st.tf32_passes == 3:
        if in_dtype != "float32" or st.gated or st.pad != "needed":
            return "3xtf32: fp32 operands of a GEMM or conv2d (no gated GEMM), pad=needed"
        # the TF32 GEMM (conv) over the split copies
        internal = {**structure, "trans_b": True, "trans_a": False, "tf32_passes": 1}
        if conv:
            internal["conv"] = split_conv(conv)
            k = conv_k(internal["conv"])
        else:
            k = split_k(k)
        return legal(m, n, k, **limits, **internal)
    if in_dtype == "float32" and st.gated:
        return "tf32: no gated GEMM"
    if transposed(st):  # the TF32 GEMM over K-major copies of the MN-major operands (its pads
        # judged here: the copies are not among them)
        internal = {**structure, "trans_b": True, "trans_a": False, "pad": "needed"}
        return _pad_reason(m, n, k, st.pad, structure) or legal(m, n, k, **limits, **internal)
    fp8_plain = trans_b and not (conv or st.gated or epilogue or st.splits > 1)
    if in_dtype in FP8 and not fp8_plain:
        return (
            "fp8: A @ B.T only (wgmma reads fp8 operands K-major), scaled by the per-tensor "
            "scales with no other epilogue; no conv, gated GEMM or split-K"
        )
    if st.trans_a and (_bytes(storage(in_dtype)) != 2 or conv or st.gated):
        return (
            "trans_a: A as [K, M] is read through wgmma's transpose, which takes 16-bit inputs "
            "only (no fp8; fp32 transposes A in its TF32 copy), in plain or batched "
            "GEMMs (no conv or gated GEMM)"
        )
    if batch < 0:
        return f"batch={batch}: 0 (no batch dim) or the batch size"
    if block_n not in BLOCK_NS or consumers not in CONSUMERS or stages not in STAGES:
        return (
            f"block_n={block_n}, consumers={consumers}, stages={stages}: must be in "
            f"{BLOCK_NS}, {CONSUMERS}, {STAGES}"
        )
    why = _arrangement_reason(st)
    if why:
        return why
    block_m = tile_rows(consumers, st.arrangement)
    why = _operands_reason(st, n, block_m)
    if why:
        return why
    swapped = st.operands == "ba"
    if conv:
        why = _conv_reason(
            conv, m, n, k, batch=batch, trans_b=trans_b, epilogue=epilogue, bk=k_step(in_dtype),
            es=_bytes(storage(in_dtype)),
        )  # fmt: skip
        if why:
            return why
        grid = conv_grid(conv, n, block_m, block_n, st.operands)
        if grid is None:
            return f"conv stride {conv_stride(conv)}: no patch's TMA box is {TMA_BOX} pixels a side"
        _, m_tiles, n_tiles = grid  # swapped: channel tiles on M, row patches on N
    else:
        m_tiles = -(-m // block_m)
    if st.gated and (batch or conv or not trans_b):
        return "gated: a 2-D GEMM with B as [2, N, K] (no batch, conv or A@B layout)"
    block_c = block_n // 2 if st.gated else block_n  # C columns per block
    if conv and not swapped and n % block_c and "k" not in conv_edges(conv, n, in_dtype):
        return f"{m}x{n}x{k} is not a multiple of the {block_m}x{block_c}x{k_step(in_dtype)} tile"
    if conv and swapped and any(conv_edges(conv, n, in_dtype)):
        return "operands=ba: convs whose C and K (output channels) are multiples of 64"
    if raster < 1:
        return f"raster={raster}: M tiles per group, at least 1"
    if raster > max(m_tiles, 1):  # one group either way: a duplicate kernel
        return f"raster={raster} > the {m_tiles} M tiles: the same tile order as a smaller one"
    if st.schedule not in SCHEDULES:
        return f"schedule {st.schedule!r}: one of {SCHEDULES}"
    if not conv:
        n_tiles = -(-n // block_c)
    why = (
        _cluster_reason(st, m_tiles, n_tiles)
        or _store_reason(st, m, n)
        or _bias_reason(st)
        or _math_reason(st)
        or _order_reason(st, m_tiles, n_tiles)
        or _k_atoms_reason(st)
        or _producer_reason(st)
        or _regs_reason(st, regs_per_block, regs_per_thread)
        or _accum_reason(st, regs_per_block, regs_per_thread)
    )
    if why:
        return why
    why = _pad_reason(m, n, k, st.pad, structure)
    if why:
        return why
    tiles = max(batch, 1) * m_tiles * n_tiles
    why = split_reason(st, k, tiles, sm_count)
    if why:
        return why
    if st.schedule == "persistent" and tiles * st.splits <= sm_count:
        return f"persistent: {tiles * st.splits} work units fit in one wave of {sm_count} blocks"
    if st.schedule == "persistent" and sm_count < 1:
        return "persistent: the target's multiprocessor count is unknown"
    if st.schedule == "persistent" and sm_count % st.cluster:
        return f"persistent: {sm_count} blocks do not pair into clusters of {st.cluster}"
    budget = smem_limit - SMEM_ALIGN_SLACK
    need = smem_bytes(block_n, consumers, stages, st.store, st.arrangement, st.k_atoms)
    if st.bias_at == "prefetch":  # each consumer's slice of the vector (of the inputs' type)
        need += consumers * block_c * _bytes(in_dtype)
    if need > budget:
        return f"{need} B of shared memory > {budget}"
    return None

# SPDX-License-Identifier: Apache-2.0
"""Hopper GEMM kernel template: TMA -> 128B-swizzled shared memory -> ``wgmma.mma_async``,
warp-specialized.

Read `wgmma_gemm` first. MetaSchedule's schedule primitives stop at mma.sync: there is no s_tir
tensor intrinsic for a warpgroup-wide accumulator, no TMA copy and no mbarrier. So this family is
not a schedule rule over the workload's loops but a whole kernel written in TIRx (TVM 0.27's
``tvm.backend.cuda`` layer, ``tir_pipeline="tirx"``), generated from a structure; the generator
picks the structure and the tuner measures it like any other candidate. The folder's other
modules: ``structure`` (what a genome stands for, the template's constants), ``legality``
(``legal``: the reason a structure cannot be used for a workload, before anything is built),
``geometry`` (tile orders, conv patches, TMA-map shapes, stream-K shares, registers),
``copies`` (the padding copies and flags that run beside the GEMM), ``epilogue``, ``splitk``
(the split-K reduction) and ``tf32x3``.

Kernel produced for ``C[M, N] (f32) = A[M, K] @ B[N, K].T`` (K-major B, ``trans_b``) or
``A[M, K] @ B[K, N]`` (MN-major B), with A as ``[K, M]`` too (``trans_a``: MN-major A, loaded
like an MN-major B and read through wgmma's A transpose), optionally over a leading batch dim::

    blockIdx.x -> (batch, bm, bn) tile, rasterized in groups of `raster` M tiles (L2 reuse of B);
        persistent schedule: one block per SM, looping over tiles blockIdx.x + i * gridDim.x
        streamk: persistent over the whole waves, then the last wave's tiles split over
        clusters of 2 blocks (summed in shared memory); stream: stream-K, each block an equal
        share of all tiles' K steps (split tiles summed through a workspace)
    warpgroup `consumers` (producer, one elected thread):
        for k: wait empty[s]; expect_tx full[s]; TMA A[bm, k] and B[bn, k] -> stage s
               (MN-major B: BN / 64 TMA boxes of 64 K-rows x 64 N-columns, one swizzle atom wide)
    warpgroups 0 .. consumers-1 (64 rows of C each, accumulators in registers):
        for k: wait full[s]; BK/16 x wgmma m64n{BN}k16 (smem descriptors, 128B swizzle);
               commit; wait for the previous k's group; release its stage (empty)
        epilogue: registers -> global (`store="direct"`), or registers -> shared -> TMA
        (`store="tma"`: boxes of 64 rows x 128 bytes through two 128B-swizzled buffers per
        warpgroup; the bulk stores drain while the next tile's wgmma runs)

With ``cluster=2`` two blocks of adjacent M tiles (the same N tile: raster groups are even) run
as a thread-block cluster: each producer loads half of the shared B tile and multicasts it into
both blocks' rings, so B crosses from L2 once per pair. A stage is free again only when the
consumers of both blocks released it (each consumer warp arrives on its own and on the peer's
``empty`` barrier), and both blocks meet at cluster barriers after the barriers' init and
before exit (the peer may still write into this block's shared memory until then).

Persistent, the ring and its barrier phases run on across a block's tiles (iteration
``i * k_tiles + k``), so the producer loads the next tile's first stages while the consumers
store the last one: the epilogue overlaps the loads, and no block pays a launch or a prologue
per tile.

The ring of `stages` shared-memory stages holds ``(BM + BN) x 64`` halves each; a 64-element K
tile is exactly one 128-byte swizzle row, the layout the TMA writes and the descriptors read
(fp8: the same bytes, 128 values a row, each wgmma taking K = 32 instead of 16). An
MN-major B stage is ``BN / 64`` chunks of ``64 (K) x 64 (N)``; its descriptor strides are
``LBO`` = one chunk (the next 64 N-columns) and ``SBO`` = 8 K-rows, and the wgmma transposes B.
Batched operands are addressed as 2-D ``[batch * rows, cols]`` tensors: rows an edge tile reads
past its matrix feed only accumulators the store drops. Where a box would carry another
matrix's values into the sum (a ragged K tail across rows) or store into it (a TMA-stored M
edge), that tensor's map has the batch as a third dimension (:func:`batch_dims`).

conv2d (``conv``: NHWC input, KRSC weight) is the same kernel as an implicit GEMM
``[N*P*Q, R*S*C] @ [K, R*S*C].T``: a block's 64 * consumers rows are a ``tile_p x tile_q`` patch
of output pixels, and each 64-channel K step loads that patch shifted by its filter tap with a
4-D TMA box ``(64 C, tile_q W, tile_p H, 1 N)``; the TMA zero-fills the box where it leaves the
image, which is the convolution's padding. With a stride u the box spans ``u * tile_q`` x
``u * tile_p`` input pixels and its element strides ``(1, u, u, 1)`` load every u-th of them:
the same ``tile_p x tile_q`` pixels land in shared memory. Pixels of edge patches beyond P x Q
are masked at the store.
"""

from __future__ import annotations

from dataclasses import replace

import tvm
from tvm.script import tirx as T

from ...intrin.cuda_math import fast_function
from ...manifest import OUT_PITCH_ATTR
from ...workloads.epilogue import Epilogue
from . import tf32x3
from .copies import (
    pad_blocks,
    pad_rows,
    unpad_blocks,
    unpad_rows,
    zero_flags,
)
from .epilogue import column_bias, operand_buffers, with_buffers
from .epilogue import finish as epilogue_value
from .geometry import (
    batch_dims,
    c_through_scratch,
    c_view,
    consumer_regs,
    conv_grid,
    conv_k,
    conv_out,
    conv_stride,
    group_tile,
    padded,
    row_pads,
    stream_first,
    stream_share,
    stream_tail_waves,
)
from .legality import legal
from .splitk import REDUCE_THREADS, reduce_args, reduce_blocks, reduce_partials
from .structure import (
    FP8,
    IN_DTYPES,
    L2_PROMOTE_256B,
    MN_ATOM,
    MN_LBO_16B,
    PAD_THREADS,
    PIPELINE_ATTR,
    PRODUCER_REGS,
    PROMOTED,
    SBO_16B,
    SM90,
    STAGED_STORES,
    STORE_BOX,
    STORE_BUFFERS,
    SWIZZLE_128B,
    SWIZZLE_ROW,
    TMA,
    TMA_3D,
    TMA_4D,
    TMA_MULTICAST,
    TMA_MULTICAST_3D,
    TMA_STORE,
    TMA_STORE_3D,
    TMA_STORE_4D,
    WG_ROWS,
    WG_THREADS,
    Structure,
    WgmmaStructureError,
    _bytes,
    k_step,
    storage,
    tile_rows,
)
from .tf32x3 import THREADS as SPLIT_THREADS
from .tf32x3 import copied, split_blocks, split_conv, split_k, split_operand
from .tf32x3 import views as split_views


def wgmma_gemm(
    m: int,
    n: int,
    k: int,
    *,
    smem_limit: int,
    sm_count: int = 0,
    symbol: str = "ak_wgmma",
    **structure,
) -> tvm.tirx.PrimFunc:
    """The TIRx kernel of the :class:`Structure` of these keywords for ``C = A @ B.T`` (or
    ``A @ B``, batched, or a conv2d); compile with ``tir_pipeline="tirx"``. ``smem_limit``,
    ``sm_count``: the target's shared memory per block and multiprocessors
    (:func:`autokernel_tvm.hardware.limits`). ``symbol``: the prefix of the companion
    functions (``<symbol>_pad_a``, ``_pad_b``: :func:`wgmma_module`) the host code calls, one
    per kernel of a library."""
    reason = legal(m, n, k, smem_limit=smem_limit, sm_count=sm_count, **structure)
    if reason:
        raise WgmmaStructureError(reason)
    st = Structure(**structure)
    batch, conv, dt, trans_b = st.batch, st.conv, st.in_dtype, st.trans_b
    block_n, consumers, stages, raster = st.block_n, st.consumers, st.stages, st.raster
    epilogue, out_dtype = st.epilogue, st.out_dtype
    x3 = st.tf32_passes == 3  # the TF32 GEMM over the split copies: K-major, K = split_k(k)
    user_k, user_trans_b, user_conv, user_trans_a = k, trans_b, conv, st.trans_a
    copies = copied(st)  # operands read from K-major copies (x3: split; else MN-major ones)
    if copies:  # A as [K, M] is transposed by its copy, B as [K, N] too
        st = replace(st, trans_a=False)
        trans_b = trans_b or not conv
    if x3 and conv:  # the TF32 conv over the split copies: split_k(C) channels
        conv = split_conv(conv)
        k = conv_k(conv)
    elif x3:
        k = split_k(k)
    sdt, es = storage(dt), _bytes(storage(dt))  # A and B as stored: fp8 as bytes
    pingpong = st.arrangement == "pingpong"
    bm_rows, bn_rows, bk = tile_rows(consumers, st.arrangement), block_n, k_step(dt)
    k_mma = 32 // es  # K of one wgmma: 32 bytes of each operand row
    scaled = dt in FP8  # C = (A @ B.T) * scale_a * scale_b
    promoted = st.accum in PROMOTED  # fp8: each K step's sum added into fp32 registers
    pipelined = st.accum == "pipelined"  # ... from two wgmma register sets in turn
    split_regs = st.regs == "split"  # setmaxnreg: the producer's registers to the consumers
    mma_regs = consumer_regs(st, SM90.regs_per_block, SM90.regs_per_thread)
    gated = st.gated
    fast = st.epilogue_math == "fast"  # GELU, SiLU, ... through exp2f and __fdividef
    block_c = bn_rows // 2 if gated else bn_rows  # C columns per block
    grid_m, grid_n = -(-m // bm_rows), -(-n // block_c)  # edge tiles: see batch_dims
    edges = bool(not st.conv and (m % bm_rows or n % block_c))  # stores check row and column
    # A as a TMA tensor: rank, dims (innermost first), byte strides, box; 2-D rows of K, or
    # (conv) the NHWC image read as a tile_p x tile_q pixel patch of 64 channels.
    pads = row_pads(m, n, k, **structure)  # operands read through an aligned scratch copy
    a_cols = m if st.trans_a else k  # A's row length (M-major A: rows of M)
    a_cols = padded(a_cols, dt) if "a" in pads or "a" in copies else a_cols  # as the TMA reads it
    b_cols = k if trans_b else n  # B's (a padded copy's, if any)
    b_cols = padded(b_cols, dt) if "b" in pads or "b" in copies else b_cols
    scratch_a, scratch_b = (x in pads or x in copies for x in "ab")  # the TMA reads A8, B8
    pairs = n % 2 == 0  # a thread stores its two adjacent columns at once (aligned when N even)
    # batched tensors whose maps have the batch as a third dimension (edges within a matrix)
    bdims = batch_dims(m, k, replace(st, trans_b=trans_b))
    share_a = st.cluster > 1 and st.multicast == "a"  # a 1 x 2 cluster: A rows in halves
    share_b = st.cluster > 1 and st.multicast == "b"
    a_part = bm_rows // st.cluster if share_a else bm_rows  # A rows a block loads
    a_tma = (2, a_cols, max(batch, 1) * m, a_cols * es, bk, a_part, 1, 1)
    if st.trans_a:  # rows of M read 64 columns (one swizzle atom) per box, like an MN-major B
        a_tma = (2, a_cols, max(batch, 1) * k, a_cols * es, MN_ATOM, bk, 1, 1)
    if "a" in bdims:  # [batch, K, M]: the K tail of one A zero-filled, not the next A's rows
        a_tma = (3, a_cols, k, batch, a_cols * es, k * a_cols * es, MN_ATOM, bk, 1, 1, 1, 1)
    u = 1  # conv stride
    swapped = st.operands == "ba"  # conv: channels on wgmma's M, whole pixel rows on its N
    if conv:
        img, h, w, c, fr, fs, pad = conv[:7]  # fr x fs filter (s is the ring stage below)
        u = conv_stride(conv)  # the box reads every u-th pixel of u * tile_q (u * tile_p)
        p_out, q_out = conv_out(conv)
        patch, grid_m, grid_n = conv_grid(conv, n, bm_rows, bn_rows, st.operands)
        tile_p, tile_q, tiles_p, tiles_q = patch
        c_steps = -(-c // bk)  # the last zero-filled past C where bk does not divide it
        strides = (c * es, w * c * es, h * w * c * es)
        image_tma = (4, c, w, h, img, *strides, bk, u * tile_q, u * tile_p, 1)
        image_tma += (1, u, u, 1)  # element strides
        # swapped: A's map is the filter's rows (M: channels), the image's is B's (below)
        a_tma = (2, k, n, k * es, bk, bm_rows, 1, 1) if swapped else image_tma
    is_conv = bool(conv)
    # conv edges (conv_edges): C past a tap's last K step, output channels past the last tile
    ragged_c = is_conv and not x3 and c % bk != 0
    cout_edge = is_conv and n % block_c != 0
    tiles, nb = grid_m * grid_n, max(batch, 1)
    streamk = st.schedule == "streamk"
    stream = st.schedule in ("stream", "stream_tail")
    persistent = st.schedule != "tile"  # a block per SM
    tma_store = st.store == "tma"
    rows_store = st.store == "rows"  # staged like tma_store, written out by the warpgroup
    staged_store = st.store in STAGED_STORES
    atoms = st.k_atoms  # K slices (swizzle rows) a ring stage holds, in consecutive slots
    ring_elems = stages * atoms * (bm_rows + bn_rows) * bk  # a multiple of 1024 B
    out_bytes = _bytes(out_dtype)
    box_cols = SWIZZLE_ROW // out_bytes  # C columns per TMA store box
    odd_boxes = block_c // box_cols % STORE_BUFFERS != 0  # boxes of a tile's C columns
    chunk = 16 // out_bytes  # C columns per 16-byte swizzle chunk
    staged_elems = consumers * STORE_BUFFERS * STORE_BOX * box_cols  # in C's dtype
    # C as a TMA tensor (like a_tma): 2-D rows of N, or (conv) NPQK stored as a warpgroup's
    # 64 pixels of the block patch, box_p rows of box_q pixels
    # an unaligned C is stored into scratch rows of nc (whole 128-byte lines), then copied out
    c_pad = c_through_scratch(n, st)
    nc = padded(n, out_dtype) if c_pad else n
    # ... unless the caller hands C as a view of rows padded to 16 bytes (c_view): its row
    # pitch is then a parameter, and the host code stores into C itself where it allows
    viewed = c_view(n, st)
    pitch = tvm.tirx.Var("c_pitch", "int32") if viewed else None
    c_strides = (pitch, 1) if viewed else None
    # whether the TMA stores into a C view (decided at run time: rows at least nc apart, so
    # a partial box past column n stays inside its row), else into C or (c_pad) the scratch
    # rows, copied out after the kernel (at run time where viewed: plain rows)
    into_view = pitch != n if viewed else False
    copy_out = pitch == n if viewed else c_pad
    c_tma = (2, n, nb * m, nc * out_bytes, box_cols, STORE_BOX, 1, 1)
    if "c" in bdims:  # [batch, M, N]: an M edge box clipped at its matrix's last row
        c_tma = (3, n, m, nb, nc * out_bytes, m * nc * out_bytes, box_cols, STORE_BOX, 1)
        c_tma += (1, 1, 1)
    if conv:
        box_q = min(tile_q, WG_ROWS)
        box_p = tile_p if swapped else WG_ROWS // box_q  # swapped: a warpgroup's whole patch
        c_tma = (4, n, q_out, p_out, img, n * out_bytes, q_out * n * out_bytes)
        c_tma += (p_out * q_out * n * out_bytes, box_cols, box_q, box_p, 1, 1, 1, 1, 1)
    cluster = st.cluster
    k_tiles = fr * fs * c_steps if conv else -(-k // (bk * atoms))
    splits = st.splits
    dsmem = splits > 1 and st.reduction == "cluster"  # partials summed across the cluster
    workspace = splits > 1 and not dsmem  # partials summed by the .splitk companion
    kts = k_tiles if streamk else k_tiles // splits  # K steps of one work unit (a tile's K range)
    # split-major: units u and u + nb * tiles share a tile; (dsmem) split-minor: a tile's
    # splits are adjacent blocks, one cluster
    units = nb * tiles * splits
    threads = consumers * WG_THREADS  # consumer threads of a block
    ctas = min(units, sm_count) if persistent else units
    rounds = -(-units // ctas)  # units of the busiest block
    if streamk:  # whole tiles over `whole` rounds, then the last wave's tiles, split
        ctas, tail = sm_count, nb * tiles % sm_count
        whole = nb * tiles // sm_count
    if stream:  # block g: the (tile, K step) iterations [g * work // ctas, (g+1) * work // ctas)
        # after the first `waves` x ctas tiles (stream_tail: persistent tiles, K order kept)
        ctas = sm_count
        waves = stream_tail_waves(nb * tiles, k_tiles, ctas) if st.schedule != "stream" else 0
        first = waves * ctas * k_tiles  # iterations before the shares
        work = nb * tiles * k_tiles - first
        segs = -(-work // ctas) // k_tiles + 2  # tiles a share can touch, at most
    acc_n = block_n // 2  # f32 accumulators per thread of an m64nN warpgroup tile
    # fragment groups (4 accumulators: 2 rows x 2 columns) a thread stores; gated: the gate
    # groups, each stored with its up group acc_n / 2 accumulators later
    groups = acc_n // 8 if gated else acc_n // 4
    halves = 2 if gated else 1  # accumulator halves a stored group reads (gated: gate, up)
    stage_bytes = atoms * (bm_rows + bn_rows) * bk * es
    a_bytes = atoms * bm_rows * bk * es  # a stage's A tile (producer_warps=2: warp 0's count)
    loaders = st.producer_warps
    group = raster * grid_n
    mma = f"wgmma.mma_async.sync.aligned.m64n{block_n}k{k_mma}.f32.{IN_DTYPES[dt]}.{IN_DTYPES[dt]}"
    # scale-d, imm-scale-a, imm-scale-b, then (16-bit types only) the transposes of A and B
    mma_flags = (1, 1) if es != 2 else (1, 1, int(st.trans_a), 0 if trans_b else 1)
    # one arrive per consumer warp (of both blocks) that reads the stage
    releases = (1 if pingpong else consumers) * 4 * cluster
    expression = epilogue if isinstance(epilogue, Epilogue) else None
    has_bias = bool(epilogue) and expression is None
    started = st.bias_at == "start"  # the accumulators start from column_bias's vector
    prefetched = st.bias_at == "prefetch"  # column_bias's vector staged in shared memory
    # the vector's operand (-1: the bias; every operand is of the inputs' type)
    start_operand = column_bias(epilogue)[0] if started or prefetched else None
    # B as a 2-D TMA tensor (innermost dim first) and its box: K-major rows of K, or MN-major
    # rows of N read 64 columns (one swizzle atom) per box; B rows (K-major) or columns
    # (MN-major) a block loads: half of them where a cluster pair shares B
    b_part = bn_rows // cluster if share_b else bn_rows
    b_tma = (2, b_cols, nb * n, b_cols * es, bk, b_part, 1, 1)
    if not trans_b:
        b_tma = (2, b_cols, nb * k, b_cols * es, MN_ATOM, bk, 1, 1)
    if "b" in bdims:  # [batch, K, N]: as A's map above
        b_tma = (3, b_cols, k, nb, b_cols * es, k * b_cols * es, MN_ATOM, bk, 1, 1, 1, 1)
    if gated:  # B as [2N, K] rows; a box is half a tile: block_c gate rows, then block_c up rows
        b_tma = (2, b_cols, 2 * n, b_cols * es, bk, block_c, 1, 1)
    if swapped:  # the image's patch of whole rows, into B's rows of the ring
        b_tma = image_tma
    if ragged_c:  # the filter as [K, R * S, C]: a box of one tap's channels, zero past C
        b_tma = (3, c, fr * fs, n, c * es, fr * fs * c * es, bk, 1, b_part, 1, 1, 1)
    b_lbo = 1 if trans_b else MN_LBO_16B
    b_k16 = (0, k_mma) if trans_b else (16, 0)  # (ring rows, columns) from one wgmma K to the next
    b_loads = 1 if trans_b else b_part // MN_ATOM  # TMA boxes of B per block and stage
    a_shape, b_shape = ((k, m) if st.trans_a else (m, k)), ((n, k) if trans_b else (k, n))
    a_lbo = MN_LBO_16B if st.trans_a else 1
    a_k16 = (16, 0) if st.trans_a else (0, k_mma)  # as b_k16, for A
    a_loads = bm_rows // MN_ATOM if st.trans_a else 1  # TMA boxes of A per block and stage
    c_shape = (m, n)
    if batch:
        a_shape, b_shape, c_shape = (batch, *a_shape), (batch, *b_shape), (batch, *c_shape)
    if conv:
        c_user = user_conv[3]  # the parameters' channels (x3: the kernel reads split copies)
        a_shape, b_shape = (img, h, w, c_user), (n, fr, fs, c_user)
        c_shape = (img, p_out, q_out, n)
    if gated:
        b_shape = (2, n, k)
    if copies and not conv:  # the parameters are the user's operands; the GEMM reads copies
        lead = (batch,) if batch else ()
        a_shape = (*lead, user_k, m) if user_trans_a else (*lead, m, user_k)
        b_shape = (*lead, n, user_k) if user_trans_b else (*lead, user_k, n)

    operands = operand_buffers(expression, c_shape, dt)
    scales = [tvm.tirx.decl_buffer((1,), "float32", name=n) for n in ("scale_a", "scale_b")]

    ragged = grid_m % raster != 0  # the last raster group has fewer M tiles
    # the copies' shapes: rows of K whole lines (x3: split_k(k)); a conv's (x3): pixels and
    # filter taps of split_k(C) channels
    a_split, b_split = (nb * m, a_cols), (nb * n, b_cols)
    if x3 and conv:
        a_split, b_split = (img * h * w, conv[3]), (n * fr * fs, conv[3])

    def loads(tid):  # the threads issuing TMA copies (the producer warpgroup's lead lanes)
        if loaders == 1:
            return tid == consumers * WG_THREADS
        return tvm.tirx.all(tid % 32 == 0, tid < consumers * WG_THREADS + 32 * loaders)

    def role_of(tid):  # which operand a loading thread copies: 0 A, 1 B (None: both)
        return None if loaders == 1 else tid % WG_THREADS // 32

    def group_rows(t):
        """M tiles in the raster group of tile index ``t``."""
        if not ragged:
            return raster
        return tvm.tirx.min(raster, grid_m - t % tiles // group * raster)

    def takes(ti, wg):
        """Whether warpgroup ``wg`` computes its block's tile ``ti``: every one of them
        (cooperative: a Python True, no check emitted), or (ping-pong) every other, in turn."""
        return ti % 2 == wg if pingpong else True

    def wg_row(wg):
        """First row of warpgroup ``wg``'s 64 in its tile (ping-pong: a tile of its own)."""
        return 0 if pingpong else wg * WG_ROWS

    def local(t):
        """(M, N) tile of ``t`` within its raster group (:func:`group_tile`)."""
        whole = t % tiles // group < grid_m // raster  # not a ragged last group
        return group_tile(t % tiles % group, group_rows(t), whole, raster, grid_n, st.order,
                          tvm.tirx.Select, tvm.tirx.all, share_a)  # fmt: skip

    def tile_m(t):
        """M tile of a block's (batch, tile) index ``t``: `raster` M tiles per group."""
        return t % tiles // group * raster + local(t)[0]

    def tile_n(t):
        return local(t)[1]

    def share(g):
        return first + stream_share(g, work, ctas) if first else stream_share(g, work, ctas)

    def before(g, hi):
        """Ring iterations block ``g`` ran before its segment that ends at iteration ``hi``:
        its whole-wave tiles' (stream_tail), then the share's segments after this one, which
        it runs first (:func:`segment`)."""
        return share(g + 1) - hi + waves * k_tiles if waves else share(g + 1) - hi

    def segment(g, j):
        """The tile of the ``j``-th segment block ``g`` runs of the ``segs`` its share can
        touch: its last tile first (see :func:`bounds`); a tile before the share's first for
        the last ``j``, an empty segment."""
        return (share(g + 1) - 1) // k_tiles - j

    def bounds(g, t):
        """(first iteration, end iteration) of block ``g``'s share in tile ``t``; empty (first
        >= end) for a tile outside it. Last tile first, every block walks K in step with the
        others: a share shorter than a tile runs the head of its last tile (K steps from 0)
        and then the end of its first (up to the tile's last K step), so at its i-th iteration
        a block is at K step i to i + k_tiles - share; in tile order the blocks' K steps would
        be spread over all of K, and the tiles that read the same operand slices would read
        them far apart in time (LLaMA's down projection, K = 11008: L2 hits 49% against the
        persistent kernel's 81%, DRAM throughput 2.7 times, 0.64x cuBLAS; H100, session 44).
        ``t`` is the kernel's variable, so that the bounds are computed from it (from the
        block index, each would be a value of its own, live through the kernel)."""
        return T.max(share(g), t * k_tiles), T.min(share(g + 1), t * k_tiles + k_tiles)

    def at(ti, kt, base):
        """Ring iteration of K step ``kt``: from the block's tile index ``ti``, or (stream)
        from ``base``, the iterations the block ran before this tile's range."""
        return step(ti, kt) if base is None else base + kt

    def step(ti, kt):
        """Iteration of the ring at K step ``kt`` of a block's tile ``ti`` (a Python 0 for one
        tile per block, which keeps that kernel's indexing as it was)."""
        return kt if isinstance(ti, int) and ti == 0 else ti * kts + kt

    def k_index(k0, kt):
        """K step ``kt`` of a unit starting at K step ``k0`` (``kt`` itself for a Python 0)."""
        return kt if isinstance(k0, int) and k0 == 0 else k0 + kt

    def k_stored(ks):
        """The K step of the operands as stored that the mainloop's ``ks``-th step reads: ``ks``
        itself, except for a 3xTF32 conv, whose small products are all summed first."""
        return tf32x3.conv_step(ks, c_steps // 3, fr * fs, T.if_then_else) if x3 and conv else ks

    def k_at(k0, kt):
        """K coordinate of K step ``kt`` of a unit whose range starts at K step ``k0`` (a
        Python 0 without split-K, which keeps that kernel's indexing as it was)."""
        return k_stored(k_index(k0, kt)) * bk * atoms

    def split_of(u):
        """Split (K range) of work unit ``u``: a Python 0 without split-K."""
        if dsmem:
            return u % splits
        return u // (nb * tiles) if splits > 1 else 0

    def tile_of(u):
        """(Batch, tile) index of work unit ``u``."""
        if dsmem:
            return u // splits
        return u % (nb * tiles) if splits > 1 else u

    def gate(acc, i):
        """Accumulator ``i`` -- or, gated, silu(gate accumulator i) * its up accumulator, the
        same column block_c further, which this thread holds ``acc_n / 2`` registers later."""
        if not gated:
            return acc[i]
        g = acc[i]
        if fast:
            return fast_function("silu", g) * acc[i + acc_n // 2]
        return g / (tvm.tirx.const(1.0, "float32") + tvm.tirx.exp(-g)) * acc[i + acc_n // 2]

    def finish(x, bias, index):
        """``bias``: the bias, or (prefetched) the tile's staged slice of column_bias's vector,
        addressed by C's column."""
        pre_added = started
        if prefetched and expression is not None:  # the staged column operand, then the rest
            x = x + tvm.tirx.Cast("float32", bias[index[-1]])
            pre_added = True
        if scaled:  # fp8: the per-tensor scales of A and B as one factor, as cuBLASLt applies
            # them (a direct store with edges spilled 12 bytes with the two apart, 8 with one)
            x = x * (scales[0][0] * scales[1][0])
        return epilogue_value(
            x,
            index,
            epilogue=epilogue,
            out_dtype=out_dtype,
            bias=bias,
            operands=operands,
            started=pre_added,
            fast=fast,
        )

    def column_vector(bias):
        """The vector ``bias_at`` start or prefetch reads: the bias, or the expression's column
        operand (:func:`.epilogue.column_bias`)."""
        return bias if start_operand < 0 else operands[start_operand]

    def prefetch_value(bias, col):
        """Column ``col``'s element of the prefetched vector, 0 past N (a warpgroup's 128
        threads load two columns each, whatever the tile's width: past a narrower tile they
        read columns nobody stores)."""
        vector = column_vector(bias)
        if n % block_c == 0 and block_c == 2 * WG_THREADS:
            return vector[col]
        return tvm.tirx.if_then_else(col < n, vector[col], tvm.tirx.const(0, dt))

    def start_value(bias, col):
        """The f32 value column ``col``'s accumulators start from (``bias_at="start"``): its
        element of the bias or of the expression's column operand; 0 past N (edge tiles)."""
        value = tvm.tirx.Cast("float32", column_vector(bias)[col])
        if n % block_c == 0:
            return value
        return tvm.tirx.if_then_else(col < n, value, tvm.tirx.const(0, "float32"))

    def strided(out_pixel):
        """The input pixel (before the tap's shift) of output pixel ``out_pixel``."""
        return out_pixel * u if u > 1 else out_pixel

    def pixel(bm, row):
        """``(image, y, x)`` of conv output pixel ``row`` of block tile ``bm``: the block's
        rows are a ``tile_p x tile_q`` patch, row-major. (`store` spells the same mapping out
        as let-bindings, which keeps its generated code as it was.)"""
        patch = bm % (tiles_p * tiles_q)
        y = patch // tiles_q * tile_p + row // tile_q
        return bm // (tiles_p * tiles_q), y, patch % tiles_q * tile_q + row % tile_q

    def guarded(acc, i, bias, bi, bm, row, col):
        """The finished value of accumulator ``i`` at row ``row`` of block tile ``bm``, column
        ``col``, or 0 where that lies past an edge of C (or of the conv's P x Q): its epilogue
        operands are not read there, and the TMA store drops it."""
        zero = tvm.tirx.const(0, out_dtype)
        if is_conv:
            img_i, y, xq = pixel(bm, row)
            value = finish(acc[i], bias, (img_i, y, xq, col))
            if cout_edge and (has_bias or expression is not None):  # not read past K
                return tvm.tirx.if_then_else(
                    tvm.tirx.all(y < p_out, xq < q_out, col < n), value, zero
                )
            if expression is None or (tiles_p * tile_p == p_out and tiles_q * tile_q == q_out):
                return value
            return tvm.tirx.if_then_else(tvm.tirx.all(y < p_out, xq < q_out), value, zero)
        index = (bi, bm * bm_rows + row, col) if batch else (bm * bm_rows + row, col)
        value = finish(gate(acc, i), bias, index)
        if not edges:
            return value
        return tvm.tirx.if_then_else(inside(bm * bm_rows + row, col), value, zero)

    def inside(row, col):
        """Whether C row ``row`` and column ``col`` (and ``col + 1``, when stored in pairs: N is
        even) exist: a Python True, so no check is emitted, on shapes without edge tiles."""
        return True if not edges else tvm.tirx.all(row < m, col < n)

    @T.macro
    def store(C, bias, acc, i0, bi, bm, row, col):
        # acc[i0], acc[i0 + 1] -> row `row` of the block tile, columns col, col + 1 (one store)
        if is_conv:
            patch = bm % (tiles_p * tiles_q)
            y = patch // tiles_q * tile_p + row // tile_q
            xq = patch % tiles_q * tile_q + row % tile_q
            img_i = bm // (tiles_p * tiles_q)
            if cout_edge:  # K is even (a multiple of 8): a pair is inside or past it whole
                if y < p_out and xq < q_out and col < n:
                    for v in T.vectorized(2):
                        C[img_i, y, xq, col + v] = finish(
                            gate(acc, i0 + v), bias, (img_i, y, xq, col + v)
                        )
            elif y < p_out and xq < q_out:
                for v in T.vectorized(2):
                    C[img_i, y, xq, col + v] = finish(
                        gate(acc, i0 + v), bias, (img_i, y, xq, col + v)
                    )
        elif not pairs:  # odd N: C's rows start at odd elements, one column per store
            for v in T.unroll(2):
                if inside(bm * bm_rows + row, col + v):
                    if batch > 0:
                        C[bi, bm * bm_rows + row, col + v] = finish(
                            gate(acc, i0 + v), bias, (bi, bm * bm_rows + row, col + v)
                        )
                    else:
                        C[bm * bm_rows + row, col + v] = finish(
                            gate(acc, i0 + v), bias, (bm * bm_rows + row, col + v)
                        )
        elif batch > 0:
            if inside(bm * bm_rows + row, col):
                for v in T.vectorized(2):
                    C[bi, bm * bm_rows + row, col + v] = finish(
                        gate(acc, i0 + v), bias, (bi, bm * bm_rows + row, col + v)
                    )
        else:
            if inside(bm * bm_rows + row, col):
                for v in T.vectorized(2):
                    C[bm * bm_rows + row, col + v] = finish(
                        gate(acc, i0 + v), bias, (bm * bm_rows + row, col + v)
                    )

    @T.macro
    def store_partial(P, acc, i0, sp, bi, bm, row, col):
        # split-K: acc[i0], acc[i0 + 1] as split sp's f32 partial sums of C's row and columns
        r = bi * m + bm * bm_rows + row  # P is [splits, batch * M, N]
        if pairs:
            if inside(bm * bm_rows + row, col):
                for v in T.vectorized(2):
                    P[sp, r, col + v] = acc[i0 + v]
        else:
            for v in T.unroll(2):
                if inside(bm * bm_rows + row, col + v):
                    P[sp, r, col + v] = acc[i0 + v]

    # fmt: off
    @T.macro
    def release(empty, rank, s):
        # a consumer warp frees stage s: in this block and (cluster) in the peer, whose
        # producer multicasts into this block's ring too
        T.ptx.mbarrier.arrive.shared.b64(T.address_of(empty[s]))
        if cluster > 1:
            mapped = T.alloc_buffer((1,), "uint32", scope="local")
            T.ptx.mapa.shared__cluster.u32(
                mapped[0], T.cuda.cvta_generic_to_shared(T.address_of(empty[s])),
                T.uint32(rank ^ 1))
            T.ptx.mbarrier.arrive.shared__cluster.b64(mapped[0])

    @T.macro
    def load_a(A, full, ring, a_map, rank, s, slot, kc, k0, kt, bi, bm):
        # one K slice's TMA loads of A into ring slot `slot`, K coordinate kc, completing on
        # full[s]; a conv's box is placed by its step's filter tap (k0, kt)
        if is_conv and not swapped:
            tap = k_stored(k_index(k0, kt)) // c_steps  # the step in R x S x C: tap,
            patch = bm % (tiles_p * tiles_q)  # channels
            T.ptx[TMA_4D](T.address_of(ring[slot, 0, 0]), T.address_of(a_map),
                          k_stored(k_index(k0, kt)) % c_steps * bk,
                          strided(patch % tiles_q * tile_q) + tap % fs - pad,
                          strided(patch // tiles_q * tile_p) + tap // fs - pad,
                          bm // (tiles_p * tiles_q), T.address_of(full[s]))
        elif "a" in bdims:
            for j in T.unroll(a_loads):
                T.ptx[TMA_3D](T.address_of(ring[slot, j * MN_ATOM, 0]), T.address_of(a_map),
                              bm * bm_rows + j * MN_ATOM, kc, bi,
                              T.address_of(full[s]))
        elif st.trans_a:
            for j in T.unroll(a_loads):
                T.ptx[TMA](T.address_of(ring[slot, j * MN_ATOM, 0]), T.address_of(a_map),
                           bm * bm_rows + j * MN_ATOM, bi * k + kc,
                           T.address_of(full[s]))
        elif share_a:  # this block's half of A's rows, into both rings
            T.ptx[TMA_MULTICAST](T.address_of(ring[slot, rank * a_part, 0]),
                                 T.address_of(a_map), kc,
                                 bi * m + bm * bm_rows + rank * a_part,
                                 T.address_of(full[s]), T.uint16(3))
        else:
            T.ptx[TMA](T.address_of(ring[slot, 0, 0]), T.address_of(a_map),
                       kc, bi * m + bm * bm_rows, T.address_of(full[s]))

    @T.macro
    def load_b(B, full, ring, b_map, rank, s, slot, kc, bi, bn):
        # the same slice's loads of B, after A's rows in the slot (operands=ba: the image's
        # patch bn of whole rows, placed by the filter tap of K coordinate kc)
        if swapped:
            tap = kc // bk // c_steps  # the step in R x S x C: tap, channels
            T.ptx[TMA_4D](T.address_of(ring[slot, bm_rows, 0]), T.address_of(b_map),
                          kc // bk % c_steps * bk, tap % fs - pad,
                          strided(bn % tiles_p * tile_p) + tap // fs - pad,
                          bn // tiles_p, T.address_of(full[s]))
        elif gated:
            for h in T.unroll(2):
                T.ptx[TMA](T.address_of(ring[slot, bm_rows + h * block_c, 0]),
                           T.address_of(b_map), kc, h * n + bn * block_c,
                           T.address_of(full[s]))
        elif share_b and trans_b:  # this block's half of B, into both rings
            T.ptx[TMA_MULTICAST](T.address_of(ring[slot, bm_rows + rank * b_part, 0]),
                                 T.address_of(b_map), kc,
                                 bi * n + bn * bn_rows + rank * b_part,
                                 T.address_of(full[s]), T.uint16(3))
        elif share_b and "b" in bdims:
            for j in T.unroll(b_loads):
                T.ptx[TMA_MULTICAST_3D](
                    T.address_of(ring[slot, bm_rows + rank * b_part + j * MN_ATOM, 0]),
                    T.address_of(b_map), bn * bn_rows + rank * b_part + j * MN_ATOM,
                    kc, bi, T.address_of(full[s]), T.uint16(3))
        elif share_b:
            for j in T.unroll(b_loads):
                T.ptx[TMA_MULTICAST](
                    T.address_of(ring[slot, bm_rows + rank * b_part + j * MN_ATOM, 0]),
                    T.address_of(b_map), bn * bn_rows + rank * b_part + j * MN_ATOM,
                    bi * k + kc, T.address_of(full[s]), T.uint16(3))
        elif ragged_c:  # the K step's filter tap and channels (the last past C: zeros)
            T.ptx[TMA_3D](T.address_of(ring[slot, bm_rows, 0]), T.address_of(b_map),
                          kc // bk % c_steps * bk, kc // bk // c_steps, bn * bn_rows,
                          T.address_of(full[s]))
        elif trans_b:
            T.ptx[TMA](T.address_of(ring[slot, bm_rows, 0]), T.address_of(b_map),
                       kc, bi * n + bn * bn_rows, T.address_of(full[s]))
        elif "b" in bdims:
            for j in T.unroll(b_loads):
                T.ptx[TMA_3D](T.address_of(ring[slot, bm_rows + j * MN_ATOM, 0]),
                              T.address_of(b_map), bn * bn_rows + j * MN_ATOM,
                              kc, bi, T.address_of(full[s]))
        else:
            for j in T.unroll(b_loads):
                T.ptx[TMA](T.address_of(ring[slot, bm_rows + j * MN_ATOM, 0]),
                           T.address_of(b_map), bn * bn_rows + j * MN_ATOM,
                           bi * k + kc, T.address_of(full[s]))

    @T.macro
    def produce(A, B, full, empty, ring, a_map, b_map, rank, ti, k0, bi, bm, bn, steps=kts,
                base=None, role=None):
        # the producer's TMA loads of `steps` K steps from k0 of one tile (tile ti of this
        # block): both operands, or (role: producer_warps=2) A's (role 0) or B's (role 1)
        for kt in range(steps):
            s = at(ti, kt, base) % stages
            if at(ti, kt, base) >= stages:
                T.cuda.mbarrier_wait(T.address_of(empty[s]), (at(ti, kt, base) // stages - 1) % 2)
            if role is None:
                T.ptx.mbarrier.arrive.expect_tx.shared.b64(
                    T.address_of(full[s]), T.uint32(stage_bytes))
                if atoms == 1:
                    load_a(A, full, ring, a_map, rank, s, s, k_at(k0, kt), k0, kt, bi, bm)
                    load_b(B, full, ring, b_map, rank, s, s, k_at(k0, kt), bi, bn)
                else:  # the stage's K slices in consecutive ring slots
                    for atom in T.unroll(atoms):
                        load_a(A, full, ring, a_map, rank, s, s * atoms + atom,
                               k_at(k0, kt) + atom * bk, k0, kt, bi, bm)
                        load_b(B, full, ring, b_map, rank, s, s * atoms + atom,
                               k_at(k0, kt) + atom * bk, bi, bn)
            elif role == 0:
                T.ptx.mbarrier.arrive.expect_tx.shared.b64(
                    T.address_of(full[s]), T.uint32(a_bytes))
                for atom in T.unroll(atoms):
                    load_a(A, full, ring, a_map, rank, s, s * atoms + atom,
                           k_at(k0, kt) + atom * bk, k0, kt, bi, bm)
            else:
                T.ptx.mbarrier.arrive.expect_tx.shared.b64(
                    T.address_of(full[s]), T.uint32(stage_bytes - a_bytes))
                for atom in T.unroll(atoms):
                    load_b(B, full, ring, b_map, rank, s, s * atoms + atom,
                           k_at(k0, kt) + atom * bk, bi, bn)

    @T.macro
    def cluster_sum(C, bias, acc, red, rank, tid, wg, bi, bm, bn):
        # split-K in the cluster: this block's f32 tile into its own shared memory (the ring,
        # free once every consumer's wgmma has drained), then this block sums its 1/splits
        # of the tile's fragment groups over the cluster's blocks, in rank order, and stores
        # them with the epilogue; the kernel's last cluster barrier keeps every block's shared
        # memory alive until the others have read it
        T.ptx.bar.sync(T.uint32(consumers + 1), T.uint32(threads))
        for i in T.unroll(acc_n):
            red[i * threads + tid] = acc[i]
        T.ptx.barrier.cluster.arrive()
        T.ptx.barrier.cluster.wait()
        lane = tid % 32
        row = wg_row(wg) + tid % WG_THREADS // 32 * 16 + lane // 4
        base = T.alloc_buffer((splits,), "uint32", scope="local")  # red in each block
        for r in T.unroll(splits):
            T.ptx.mapa.shared__cluster.u32(
                base[r], T.cuda.cvta_generic_to_shared(T.address_of(red[0])), T.uint32(r))
        # gated: each gate group's sum, then its up group's (acc_n / 2 accumulators on), into
        # part's slot acc_n / 2 on, where gate() reads it
        got = T.alloc_buffer((4 * halves * splits,), "float32", scope="local")
        part = T.alloc_buffer(((halves - 1) * acc_n // 2 + 4,), "float32", scope="local")
        for gg in range(groups // splits):
            g = rank * (groups // splits) + gg
            # every load of the group first: a remote load's latency is paid once, not 4*splits
            # times (each load is an ordered asm statement)
            for j in T.unroll(4 * halves):
                for r in T.unroll(splits):
                    T.ptx.ld.shared__cluster.f32(
                        got[j * splits + r],
                        base[r] + T.Cast(
                            "uint32", ((j // 4 * acc_n // 2 + g * 4 + j % 4) * threads + tid) * 4))
            for j in T.unroll(4 * halves):
                part[j // 4 * acc_n // 2 + j % 4] = T.float32(0)
                for r in T.unroll(splits):
                    part[j // 4 * acc_n // 2 + j % 4] = (
                        part[j // 4 * acc_n // 2 + j % 4] + got[j * splits + r])
            col = bn * block_c + g * 8 + lane % 4 * 2
            store(C, bias, part, 0, bi, bm, row, col)
            store(C, bias, part, 2, bi, bm, row + 8, col)

    @T.macro
    def rows_out(C, staged, tid, wg, bi, bm, bn, buf, c):
        # store=rows: box c of the warpgroup's 64 rows from shared memory into C, where C's
        # rows start anywhere (no vector or bulk store can write them): consecutive threads
        # take consecutive columns of a row, so a warp writes one 64- or 128-byte run per store
        # (a loop, not unrolled: unrolled, the stores' addresses and predicates took registers
        # the accumulators of the later boxes needed, and ptxas spilled)
        for j in range(STORE_BOX * box_cols // WG_THREADS):
            e = j * WG_THREADS + tid % WG_THREADS
            r = e // box_cols
            cb = e % box_cols
            grow = bm * bm_rows + wg_row(wg) + r
            gcol = bn * block_c + c * box_cols + cb
            # the staged element is read in each store (bound to a Python name, it became a
            # local copy in the generated code)
            if inside(grow, gcol):
                if batch > 0:
                    C[bi, grow, gcol] = staged[buf, r, (cb // chunk ^ r % 8) * chunk + cb % chunk]
                else:
                    C[grow, gcol] = staged[buf, r, (cb // chunk ^ r % 8) * chunk + cb % chunk]

    @T.macro
    def stage_out(C, bias, acc, staged, c_map, tid, wg, bi, bm, bn, row):
        # The tile's write-back through shared memory: per box of C columns, wait until the
        # buffer's previous bulk store has read it, fill it (the 128B swizzle XORs the 16-byte
        # chunk with the row, so a warp's 8 rows hit distinct banks), then one thread stores it;
        # (store=rows) the warpgroup writes it out, each warp one row run at a time
        # Buffers alternate box by box; where a tile has an odd number of boxes, its first box
        # takes the buffer of the tile before's last one, whose bulk store may still be reading
        # it (a short mainloop -- a 1 x 1 conv's two K steps -- leaves it no time): all of them
        # are waited for there
        lane = tid % 32
        for c in T.unroll(block_c // box_cols):
            buf = wg * STORE_BUFFERS + c % STORE_BUFFERS
            if tma_store and tid % WG_THREADS == 0:
                if odd_boxes and c == 0:
                    T.ptx["cp.async.bulk.wait_group.read"](0)
                else:
                    T.ptx["cp.async.bulk.wait_group.read"](STORE_BUFFERS - 1)
            T.cuda.warpgroup_sync(1 + wg)
            for i in T.unroll(box_cols // 8):
                for h in T.unroll(2):
                    r = row % WG_ROWS + h * 8
                    cb = i * 8 + lane % 4 * 2  # column in the box
                    col = bn * block_c + c * box_cols + cb
                    for v in T.vectorized(2):
                        staged[buf, r, (cb // chunk ^ r % 8) * chunk + cb % chunk + v] = guarded(
                            acc, (c * box_cols // 8 + i) * 4 + h * 2 + v, bias,
                            bi, bm, row + h * 8, col + v)
            if tma_store:  # the bulk store reads through the async proxy
                T.ptx.fence.proxy.async_.shared__cta()
            T.cuda.warpgroup_sync(1 + wg)
            if rows_store:
                rows_out(C, staged, tid, wg, bi, bm, bn, buf, c)
            elif is_conv:  # the warpgroup's 64 pixels of the patch: box_p rows of box_q
                if tid % WG_THREADS == 0:
                    img_i, y, xq = pixel(bm, wg * WG_ROWS)  # the box's first pixel
                    T.ptx[TMA_STORE_4D](T.address_of(c_map), bn * block_c + c * box_cols,
                                        xq, y, img_i, T.address_of(staged[buf, 0, 0]))
                    T.ptx["cp.async.bulk.commit_group"]()
            elif "c" in bdims:
                if tid % WG_THREADS == 0:
                    T.ptx[TMA_STORE_3D](T.address_of(c_map), bn * block_c + c * box_cols,
                                        bm * bm_rows + wg_row(wg), bi,
                                        T.address_of(staged[buf, 0, 0]))
                    T.ptx["cp.async.bulk.commit_group"]()
            elif tid % WG_THREADS == 0:
                T.ptx[TMA_STORE](T.address_of(c_map), bn * block_c + c * box_cols,
                                 bi * m + bm * bm_rows + wg_row(wg),
                                 T.address_of(staged[buf, 0, 0]))
                T.ptx["cp.async.bulk.commit_group"]()

    @T.macro
    def stage_out_t(bias, acc, staged, c_map, tid, wg, bi, bm, bn):
        # operands=ba: the warpgroup's 64 channels x block_n pixels, transposed into its two
        # staging buffers as consecutive pixel rows of 64 channels (128B-swizzled: the rows a
        # store instruction writes, 2 (lane % 4) + v apart, take distinct 16-byte chunks),
        # then one TMA box of the patch's whole rows; the box before it was read long ago (a
        # tile's mainloop ago), so all of it is waited for
        lane = tid % 32
        if tid % WG_THREADS == 0:
            T.ptx["cp.async.bulk.wait_group.read"](0)
        T.cuda.warpgroup_sync(1 + wg)
        for g in T.unroll(acc_n // 4):
            for h in T.unroll(2):
                for v in T.unroll(2):
                    px = g * 8 + lane % 4 * 2 + v  # the pixel: the accumulator's column
                    ch = tid % WG_THREADS // 32 * 16 + lane // 4 + h * 8  # its row: a channel
                    staged[wg * STORE_BUFFERS + px // STORE_BOX, px % STORE_BOX,
                           (ch // chunk ^ px % 8) * chunk + ch % chunk] = guarded(
                        acc, g * 4 + h * 2 + v, bias, bi, bn, px,
                        bm * bm_rows + wg * WG_ROWS + ch)
        T.ptx.fence.proxy.async_.shared__cta()  # the bulk store reads through the async proxy
        T.cuda.warpgroup_sync(1 + wg)
        if tid % WG_THREADS == 0:
            img_i, y, xq = pixel(bn, 0)  # the patch's first pixel
            T.ptx[TMA_STORE_4D](T.address_of(c_map), bm * bm_rows + wg * WG_ROWS, xq, y, img_i,
                                T.address_of(staged[wg * STORE_BUFFERS, 0, 0]))
            T.ptx["cp.async.bulk.commit_group"]()

    @T.macro
    def write_back(C, bias, acc, staged, c_map, tid, wg, bi, bm, bn, row, lane):
        # a warpgroup's finished tile into C: through shared memory and the TMA (or in row
        # runs), or directly
        if swapped:
            stage_out_t(bias, acc, staged, c_map, tid, wg, bi, bm, bn)
        elif staged_store:
            stage_out(C, bias, acc, staged, c_map, tid, wg, bi, bm, bn, row)
        else:
            for i in T.unroll(groups):
                col = bn * block_c + i * 8 + lane % 4 * 2
                store(C, bias, acc, i * 4, bi, bm, row, col)
                store(C, bias, acc, i * 4 + 2, bi, bm, row + 8, col)

    @T.macro
    def contribute(acc, P, F, tid, g):
        # stream: block g's f32 share of a tile it does not store, [fragment, consumer thread]
        # (coalesced), then its flag, released after every consumer thread's stores
        for i in T.unroll(acc_n):
            P[g, i * threads + tid] = acc[i]
        T.ptx.fence.acq_rel.gpu()
        T.ptx.bar.sync(T.uint32(consumers + 1), T.uint32(threads))
        if tid == 0:
            T.ptx.st.release.gpu.global_.b32(T.address_of(F[g]), 1)

    @T.macro
    def fixup(acc, P, F, tid, lo, hi):
        # stream: the shares of blocks lo .. hi - 1, added in block order (deterministic); each
        # block writes its share first thing (its last tile's head, or the middle of a tile
        # that is its whole share), so the wait ends without a cycle
        flag = T.alloc_buffer((1,), "int32", scope="local")
        for h in range(lo, hi):
            if tid == 0:
                flag[0] = 0
                while flag[0] == 0:
                    T.ptx.ld.acquire.gpu.global_.b32(flag[0], T.address_of(F[h]))
            T.ptx.bar.sync(T.uint32(consumers + 1), T.uint32(threads))
            for i in T.unroll(acc_n):
                acc[i] = acc[i] + P[h, i * threads + tid]

    @T.macro
    def slice_mma(regs, ring, slot, desc_a, desc_b, wg):
        # one 128-byte K slice's wgmmas from ring slot `slot`
        for kk in T.unroll(bk // k_mma):
            T.cuda.wgmma.encode_matrix_descriptor(
                T.address_of(desc_a),
                T.address_of(ring[slot, wg_row(wg) + kk * a_k16[0], kk * a_k16[1]]),
                a_lbo, SBO_16B, SWIZZLE_128B)
            T.cuda.wgmma.encode_matrix_descriptor(
                T.address_of(desc_b),
                T.address_of(ring[slot, bm_rows + kk * b_k16[0], kk * b_k16[1]]),
                b_lbo, SBO_16B, SWIZZLE_128B)
            # scale-d 0: the step's first wgmma overwrites the promoted accumulator
            T.ptx[mma](*[regs[i] for i in range(acc_n)], desc_a, desc_b,
                       T.ptx.pred(T.Select(kk == 0, 0, 1) if promoted else 1),
                       *mma_flags)

    @T.macro
    def step_mma(regs, ring, s, desc_a, desc_b, wg):
        # one K step's wgmma of warpgroup wg from ring stage s into the registers `regs`
        if atoms == 1:
            slice_mma(regs, ring, s, desc_a, desc_b, wg)
        else:  # the stage's K slices, in their ring slots (16-bit: never promoted)
            for atom in T.unroll(atoms):
                slice_mma(regs, ring, s * atoms + atom, desc_a, desc_b, wg)

    @T.macro
    def step_pair(acc, odd, total, full, empty, ring, desc_a, desc_b, rank, tid, wg, ti, kt,
                  base):
        # K steps kt and kt + 1 into two register sets, both in flight; the first set is
        # summed while the second step's wgmma runs. Both sets are written and read within
        # the pair (a set carried to the next pair made ptxas serialize every wgmma)
        s = at(ti, kt, base) % stages
        T.cuda.mbarrier_wait(T.address_of(full[s]), at(ti, kt, base) // stages % 2)
        T.ptx.wgmma.fence.sync.aligned()
        step_mma(acc, ring, s, desc_a, desc_b, wg)
        T.ptx.wgmma.commit_group.sync.aligned()
        s2 = at(ti, kt + 1, base) % stages
        T.cuda.mbarrier_wait(T.address_of(full[s2]), at(ti, kt + 1, base) // stages % 2)
        T.ptx.wgmma.fence.sync.aligned()
        step_mma(odd, ring, s2, desc_a, desc_b, wg)
        T.ptx.wgmma.commit_group.sync.aligned()
        T.ptx.wgmma.wait_group.sync.aligned(1)
        for i in T.unroll(acc_n):
            total[i] = total[i] + acc[i]
        if tid % 32 == 0:  # the stage before the pair and the pair's first (the second: as
            if kt > 0:  # the loop of single steps does, by the next step or after the tile)
                release(empty, rank, (at(ti, kt, base) - 1) % stages)
            release(empty, rank, at(ti, kt, base) % stages)
        T.ptx.wgmma.wait_group.sync.aligned(0)
        for i in T.unroll(acc_n):
            total[i] = total[i] + odd[i]

    @T.macro
    def consume(C, bias, full, empty, ring, acc, staged, c_map, desc_a, desc_b, rank, tid, wg,
                ti, P, sp, bi, bm, bn, turns, red, steps=kts, summed=dsmem, base=None, F=None,
                span=None, vec_s=None):
        # one warpgroup's wgmma over the ring for `steps` K steps of one tile, then its share of
        # the write-back (`summed`: the sum of the cluster's splits of the tile; `vec_s`: the
        # consumers' slices of the prefetched vector)
        if prefetched:  # two of the tile's columns a thread, their loads in flight meanwhile
            held = T.alloc_buffer((2,), dt, scope="local")
            for v in T.unroll(2):
                held[v] = prefetch_value(bias, bn * block_c + tid % WG_THREADS * 2 + v)
        if started:  # accumulator 4g + 2h + v holds column 8g + 2 (lane % 4) + v (rows r, r + 8)
            for g in T.unroll(acc_n // 4):
                for h in T.unroll(2):
                    for v in T.unroll(2):
                        acc[g * 4 + h * 2 + v] = start_value(
                            bias, bn * block_c + g * 8 + tid % 4 * 2 + v)
        else:
            for i in T.unroll(acc_n):
                acc[i] = T.float32(0)
        if promoted:  # the fp32 sums of the K steps' wgmma results (`acc` restarts each step)
            total = T.alloc_buffer((acc_n,), "float32", scope="local")
            for i in T.unroll(acc_n):
                total[i] = T.float32(0)
        if pingpong and ti > 0:
            # the other warpgroup's mainloop of the block's previous tile is done: it has taken
            # every stage before this tile's, so the parity waits below cannot match a fill
            # two phases old (this warpgroup skipped that tile's K steps)
            T.cuda.mbarrier_wait(T.address_of(turns[1 - wg]), (ti - 1) // 2 % 2)
        if pipelined:  # K steps in pairs (an odd count: the last one alone, as promoted's)
            odd = T.alloc_buffer((acc_n,), "float32", scope="local")
            for j in range(steps // 2):
                step_pair(acc, odd, total, full, empty, ring, desc_a, desc_b,  # noqa: F821
                          rank, tid, wg, ti, 2 * j, base)
        for kt in range(steps - steps % 2 if pipelined else 0, steps):
            s = at(ti, kt, base) % stages
            T.cuda.mbarrier_wait(T.address_of(full[s]), at(ti, kt, base) // stages % 2)
            T.ptx.wgmma.fence.sync.aligned()
            step_mma(acc, ring, s, desc_a, desc_b, wg)
            T.ptx.wgmma.commit_group.sync.aligned()
            if promoted:  # this step's products, summed in fp32 (the next step reuses acc)
                T.ptx.wgmma.wait_group.sync.aligned(0)
                for i in T.unroll(acc_n):
                    total[i] = total[i] + acc[i]  # noqa: F821
            else:
                T.ptx.wgmma.wait_group.sync.aligned(1)
            if kt > 0 and tid % 32 == 0:
                release(empty, rank, (at(ti, kt, base) - 1) % stages)
        if pingpong and tid % 32 == 0:  # the other warpgroup may start its next mainloop
            T.ptx.mbarrier.arrive.shared.b64(T.address_of(turns[wg]))
        T.ptx.wgmma.wait_group.sync.aligned(0)
        if promoted:
            for i in T.unroll(acc_n):
                acc[i] = total[i]  # noqa: F821
        if persistent and tid % 32 == 0:  # the tile's last stage: the next tile reuses it
            release(empty, rank, at(ti, steps - 1, base) % stages)
        lane = tid % 32
        row = wg_row(wg) + tid % WG_THREADS // 32 * 16 + lane // 4
        if summed:
            cluster_sum(C, bias, acc, red, sp, tid, wg, bi, bm, bn)
        elif stream and span is not None:  # span: (this block, its share's first and end
            # iterations, the tile); None: a stream_tail block's whole-wave tile
            if span[2] == (span[3] + 1) * k_tiles:  # the tile's last K steps: this block stores it
                if span[1] > span[3] * k_tiles:  # earlier blocks hold the rest
                    fixup(acc, P, F, tid,
                          stream_first(span[3], k_tiles, work, ctas, first), span[0])
                write_back(C, bias, acc, staged, c_map, tid, wg, bi, bm, bn, row, lane)
            else:
                contribute(acc, P, F, tid, span[0])
        elif splits > 1 and not streamk:
            for i in T.unroll(acc_n // 4):
                col = bn * block_c + i * 8 + lane % 4 * 2
                store_partial(P, acc, i * 4, sp, bi, bm, row, col)
                store_partial(P, acc, i * 4 + 2, sp, bi, bm, row + 8, col)
        elif prefetched:
            # the slice into shared memory once the warpgroup's last write-back has read it,
            # then read as the vector (by C's column) from there
            T.cuda.warpgroup_sync(1 + wg)
            for v in T.unroll(2):
                if tid % WG_THREADS * 2 + v < block_c:
                    vec_s[wg * block_c + tid % WG_THREADS * 2 + v] = held[v]  # noqa: F821
            T.cuda.warpgroup_sync(1 + wg)
            vec = T.decl_buffer((n,), dt, data=vec_s.data, elem_offset=(wg - bn) * block_c,
                                scope="shared")
            write_back(C, vec, acc, staged, c_map, tid, wg, bi, bm, bn, row, lane)
        else:
            write_back(C, bias, acc, staged, c_map, tid, wg, bi, bm, bn, row, lane)

    @T.macro
    def produce_waves(A, B, full, empty, ring, a_map, b_map, bx, tid, count):
        # streamk's and stream_tail's whole waves: block bx's tiles bx + i * ctas, each whole
        for ti in range(count):
            t = bx + ti * ctas
            tm, tn = tile_m(t), tile_n(t)  # once: a Hilbert order is long
            produce(A, B, full, empty, ring, a_map, b_map, 0, ti, 0, t // tiles, tm, tn,
                    role=role_of(tid))

    @T.macro
    def consume_waves(C, bias, full, empty, ring, acc, staged, c_map, desc_a, desc_b, bx, tid,
                      wg, P, count):
        # the consumers' side of produce_waves
        for ti in range(count):
            t = bx + ti * ctas
            tm, tn = tile_m(t), tile_n(t)  # once: a Hilbert order is long
            consume(C, bias, full, empty, ring, acc, staged, c_map, desc_a, desc_b, 0, tid, wg,
                    ti, P, 0, t // tiles, tm, tn, None, None, kts, False)

    @T.macro
    def pad_into(X, scratch, name, rows, cols):
        # host code: launch the device kernel of the pad_rows function linked beside this one
        # (a library's own functions are not found by name from its host code; the kernels of
        # its device module are), with its launch dims, as that function's wrapper does
        T.call_packed(f"{symbol}_pad_{name}_kernel", X.data, scratch.data,
                      pad_blocks(rows, cols, dt), PAD_THREADS)

    @T.macro
    def split_into(X, scratch, name):
        # host code: launch the TF32 split copy (tf32x3.split_operand) linked beside this one
        T.call_packed(f"{symbol}_split_{name}_kernel", X.data, scratch.data,
                      split_blocks(*split_views(m, n, user_k, user_trans_b, user_conv,
                                                user_trans_a)[name], batch),
                      SPLIT_THREADS)

    @T.macro
    def device(A, B, C, bias, a_map, b_map, c_map, P, F=None):
        bx = T.cta_id([ctas])
        if cluster > 1:
            _rank = T.cta_id_in_cluster([cluster])  # launches clusters; == bx % cluster
        elif dsmem:
            _rank = T.cta_id_in_cluster([splits])  # a tile's splits; == bx % splits
        tid = T.thread_id([WG_THREADS * (consumers + 1)])
        if staged_store:  # one dynamic allocation (TIRx): the ring, then the store buffers
            pool = T.alloc_buffer((ring_elems + staged_elems * out_bytes // es,), sdt,
                                  scope="shared.dyn", align=1024)
            ring = T.decl_buffer((stages * atoms, bm_rows + bn_rows, bk), sdt, data=pool.data,
                                 scope="shared.dyn")
            staged = T.decl_buffer((consumers * STORE_BUFFERS, STORE_BOX, box_cols), out_dtype,
                                   data=pool.data, elem_offset=ring_elems * es // out_bytes,
                                   scope="shared.dyn")
        else:
            ring = T.alloc_buffer((stages * atoms, bm_rows + bn_rows, bk), sdt, scope="shared.dyn",
                                   align=1024)
        if dsmem:  # the block's f32 tile, over the ring: [fragment, consumer thread]
            red = T.decl_buffer((acc_n * threads,), "float32", data=ring.data,
                                scope="shared.dyn")
        full = T.alloc_buffer((stages,), "uint64", scope="shared", align=8)
        empty = T.alloc_buffer((stages,), "uint64", scope="shared", align=8)
        if pingpong:  # turns[w]: warpgroup w finished a mainloop (one arrive per warp)
            turns = T.alloc_buffer((2,), "uint64", scope="shared", align=8)
        if prefetched:  # each consumer's slice of column_bias's vector
            vec_s = T.alloc_buffer((consumers * block_c,), dt, scope="shared", align=16)
        acc = T.alloc_buffer((acc_n,), "float32", scope="local")
        desc_a: T.uint64
        desc_b: T.uint64
        wg = tid // WG_THREADS
        if not persistent:
            bi = tile_of(bx) // tiles
            bm = tile_m(tile_of(bx) if dsmem else bx)
            bn = tile_n(tile_of(bx) if dsmem else bx)
        if tid == 0:
            for s in range(stages):
                T.ptx.mbarrier.init.shared.b64(T.address_of(full[s]), T.uint32(loaders))
                T.ptx.mbarrier.init.shared.b64(T.address_of(empty[s]), T.uint32(releases))
            if pingpong:
                for w in range(2):
                    T.ptx.mbarrier.init.shared.b64(T.address_of(turns[w]), T.uint32(4))
        T.ptx.fence.proxy.async_.shared__cta()
        if cluster > 1:  # the peer's barriers are initialized before anything reaches them
            T.ptx.fence.mbarrier_init.release.cluster()
            T.ptx.barrier.cluster.arrive()
            T.ptx.barrier.cluster.wait()
        else:
            T.cuda.cta_sync()
        if wg == consumers:
            if split_regs:  # the producer's registers, back to the block for the consumers
                T.ptx["setmaxnreg.dec.sync.aligned.u32"](PRODUCER_REGS)
            if loads(tid):
                if stream:
                    if waves > 0:  # stream_tail's whole waves: as persistent's
                        produce_waves(A, B, full, empty, ring, a_map, b_map, bx, tid, waves)
                    for j in range(segs):
                        t = segment(bx, j)
                        lo, hi = bounds(bx, t)
                        tm, tn = tile_m(t), tile_n(t)  # once: a Hilbert order is long
                        if lo < hi:
                            produce(A, B, full, empty, ring, a_map, b_map, 0, None,
                                    lo - t * k_tiles, t // tiles, tm, tn, hi - lo,
                                    before(bx, hi), role=role_of(tid))
                elif streamk:
                    produce_waves(A, B, full, empty, ring, a_map, b_map, bx, tid, whole)
                    if bx // splits < tail:  # this block's split of a last-wave tile
                        t = whole * ctas + bx // splits
                        tm, tn = tile_m(t), tile_n(t)  # once: a Hilbert order is long
                        produce(A, B, full, empty, ring, a_map, b_map, 0, whole,
                                bx % splits * kts // splits, t // tiles, tm, tn,
                                kts // splits, role=role_of(tid))
                elif persistent:
                    for ti in range(rounds):
                        if bx + ti * ctas < units:
                            t = bx + ti * ctas
                            tm, tn = tile_m(t), tile_n(t)  # once: a Hilbert order is long
                            produce(A, B, full, empty, ring, a_map, b_map, bx % cluster, ti,
                                    split_of(t) * kts, tile_of(t) // tiles, tm, tn,
                                    role=role_of(tid))
                else:
                    produce(A, B, full, empty, ring, a_map, b_map, bx % cluster, 0,
                            split_of(bx) * kts, bi, bm, bn, role=role_of(tid))
            if streamk:  # as below, in the clusters that sum a tile
                if bx // splits < tail:
                    T.ptx.barrier.cluster.arrive()
                    T.ptx.barrier.cluster.wait()
            elif dsmem:  # the consumers' cluster barrier: every block's tile is in its memory
                T.ptx.barrier.cluster.arrive()
                T.ptx.barrier.cluster.wait()
        else:
            if split_regs:
                T.ptx["setmaxnreg.inc.sync.aligned.u32"](mma_regs)
            if stream:
                if waves > 0:  # stream_tail's whole waves: as persistent's
                    consume_waves(C, bias, full, empty, ring, acc,
                                  staged if staged_store else None,  # noqa: F821
                                  c_map, desc_a, desc_b, bx, tid, wg, P, waves)  # noqa: F821
                for j in range(segs):
                    t = segment(bx, j)
                    lo, hi = bounds(bx, t)
                    tm, tn = tile_m(t), tile_n(t)  # once: a Hilbert order is long
                    if lo < hi:
                        consume(C, bias, full, empty, ring, acc,
                                staged if staged_store else None,  # noqa: F821
                                c_map, desc_a, desc_b,  # noqa: F821
                                0, tid, wg, None, P, 0, t // tiles, tm, tn, None, None,
                                hi - lo, False, before(bx, hi), F, (bx, lo, hi, t))
            elif streamk:
                consume_waves(C, bias, full, empty, ring, acc,
                              staged if staged_store else None,  # noqa: F821
                              c_map, desc_a, desc_b, bx, tid, wg, P, whole)  # noqa: F821
                if bx // splits < tail:
                    t = whole * ctas + bx // splits
                    tm, tn = tile_m(t), tile_n(t)  # once: a Hilbert order is long
                    consume(C, bias, full, empty, ring, acc,
                            staged if staged_store else None,  # noqa: F821
                            c_map, desc_a, desc_b,  # noqa: F821
                            0, tid, wg, whole, P, bx % splits, t // tiles, tm, tn,
                            None, red, kts // splits, True)  # noqa: F821
            elif persistent:
                for ti in range(rounds):
                    if bx + ti * ctas < units:
                        if takes(ti, wg):
                            t = bx + ti * ctas
                            tm, tn = tile_m(t), tile_n(t)  # once: a Hilbert order is long
                            consume(C, bias, full, empty, ring, acc,
                                    staged if staged_store else None,  # noqa: F821
                                    c_map, desc_a, desc_b,  # noqa: F821
                                    bx % cluster, tid, wg, ti, P, split_of(t),
                                    tile_of(t) // tiles, tm, tn,
                                    turns if pingpong else None, None,  # noqa: F821
                                    vec_s=vec_s if prefetched else None)  # noqa: F821
            else:
                consume(C, bias, full, empty, ring, acc,
                        staged if staged_store else None,  # noqa: F821
                        c_map, desc_a, desc_b,  # noqa: F821
                        bx % cluster, tid, wg, 0, P, split_of(bx), bi, bm, bn, None,
                        red if dsmem else None,  # noqa: F821
                        vec_s=vec_s if prefetched else None)  # noqa: F821
        if tma_store and wg < consumers and tid % WG_THREADS == 0:  # before shared memory goes
            T.ptx["cp.async.bulk.wait_group"](0)
        if cluster > 1 or dsmem:  # a peer may still reach into this block's shared memory
            T.ptx.barrier.cluster.arrive()
            T.ptx.barrier.cluster.wait()

    @T.macro
    def kernel(A, B, C, bias):
        # operands in `pads` are read from zero-padded scratch copies (workspaces)
        if "a" in pads:
            A8 = T.alloc_buffer((pads["a"][0], padded(pads["a"][1], dt)), sdt)
            pad_into(A, A8, "a", *pads["a"])
        if "b" in pads:
            B8 = T.alloc_buffer((pads["b"][0], padded(pads["b"][1], dt)), sdt)
            pad_into(B, B8, "b", *pads["b"])
        if "a" in copies:  # K-major copies (x3: the segments of tf32x3.SEGMENTS)
            A8 = T.alloc_buffer(a_split, sdt)
            split_into(A, A8, "a")
        if "b" in copies:
            B8 = T.alloc_buffer(b_split, sdt)
            split_into(B, B8, "b")
        a_map: T.let[T.handle("tensormap")] = T.tvm_stack_alloca("tensormap", 1)
        # (operands=ba: A's map reads the filter, B's the image)
        T.call_packed("runtime.cuTensorMapEncodeTiled", a_map, sdt, a_tma[0],
                      A8.data if scratch_a else (B.data if swapped else A.data),  # noqa: F821
                      *a_tma[1:], 0, SWIZZLE_128B, L2_PROMOTE_256B, 0)
        b_map: T.let[T.handle("tensormap")] = T.tvm_stack_alloca("tensormap", 1)
        T.call_packed("runtime.cuTensorMapEncodeTiled", b_map, sdt, b_tma[0],
                      B8.data if scratch_b else (A.data if swapped else B.data),  # noqa: F821
                      *b_tma[1:], 0, SWIZZLE_128B, L2_PROMOTE_256B, 0)
        if viewed:  # the copy into C writes whole rows of n: other pitches must be TMA's
            assert pitch == n or pitch >= nc and pitch % chunk == 0, (
                f"C: rows {n} elements apart, or a view of rows at least {nc} apart, a "
                "multiple of 16 bytes")
        if c_pad:  # C's rows padded to whole lines, for the TMA store (copied out below)
            C8 = T.alloc_buffer((nb * m, nc), out_dtype)
        if tma_store:
            c_map: T.let[T.handle("tensormap")] = T.tvm_stack_alloca("tensormap", 1)
            if into_view:  # a view of 16-byte rows: the TMA stores into C, at its pitch
                T.call_packed("runtime.cuTensorMapEncodeTiled", c_map, out_dtype, c_tma[0],
                              C.data, c_tma[1], c_tma[2], pitch * out_bytes, *c_tma[4:], 0,
                              SWIZZLE_128B, L2_PROMOTE_256B, 0)
            else:
                T.call_packed("runtime.cuTensorMapEncodeTiled", c_map, out_dtype, c_tma[0],
                              C8.data if c_pad else C.data,  # noqa: F821
                              *c_tma[1:], 0, SWIZZLE_128B, L2_PROMOTE_256B, 0)
        if workspace:  # the f32 partial sums
            P = T.alloc_buffer((splits, nb * m, n), "float32")
        if stream:  # each block's share of the tile it does not store, and its flag
            P = T.alloc_buffer((ctas, acc_n * threads), "float32")
            F = T.alloc_buffer((ctas,), "int32")
            T.call_packed(f"{symbol}_zero_kernel", F.data, 1, ctas)
        with T.attr({"tirx.device_entry": True}):  # host code follows it (split-K)
            device(A, B, C, bias, a_map, b_map,
                   c_map if tma_store else None,  # noqa: F821
                   P if workspace or stream else None,  # noqa: F821
                   F if stream else None)  # noqa: F821
        if workspace:  # the sum of the partials, in split order, and the epilogue
            T.call_packed(f"{symbol}_reduce_kernel",
                          *reduce_args(C, P, bias, operands),  # noqa: F821
                          reduce_blocks(m, n, batch), REDUCE_THREADS)
        if copy_out:  # the stored rows into C (unpad_rows)
            T.call_packed(f"{symbol}_unpad_c_kernel", C8.data, C.data,  # noqa: F821
                          unpad_blocks(nb * m, n), PAD_THREADS)

    if has_bias:
        @T.prim_func
        def main(a: T.handle, b: T.handle, bias_: T.handle, c: T.handle):
            A = T.match_buffer(a, a_shape, dt, align=16)
            B = T.match_buffer(b, b_shape, dt, align=16)
            Bias = T.match_buffer(bias_, (n,), dt)
            C = T.match_buffer(c, c_shape, out_dtype, align=16, strides=c_strides)
            kernel(A, B, C, Bias)
    else:
        # Operand buffers of an epilogue expression become parameters after parsing: checked
        # for well-formedness below, once they are.
        @T.prim_func(check_well_formed=False)
        def main(a: T.handle, b: T.handle, c: T.handle):
            # fp8 parameters keep their dtype (the caller's tensors); only the TMA reads them
            A = T.match_buffer(a, a_shape, dt, align=16)
            B = T.match_buffer(b, b_shape, dt, align=16)
            C = T.match_buffer(c, c_shape, out_dtype, align=16, strides=c_strides)
            kernel(A, B, C, None)
    # fmt: on

    if operands:
        main = with_buffers(main, operands, at=2)  # between B and C
    if scaled:
        main = with_buffers(main, scales, at=2)  # (A, B, scale_a, scale_b, C): torch._scaled_mm
    tvm.tirx.analysis.verify_well_formed(main)
    if viewed:  # the row pitch a caller's C view may have for the TMA to store into it
        main = main.with_attr(OUT_PITCH_ATTR, nc)
    return main.with_attr(PIPELINE_ATTR, "tirx")


def wgmma_module(
    m: int,
    n: int,
    k: int,
    *,
    smem_limit: int,
    sm_count: int = 0,
    symbol: str = "ak_wgmma",
    **structure,
) -> tvm.IRModule:
    """:func:`wgmma_gemm`'s kernel as ``main``, with the companions its host code calls by
    name: the :func:`pad_rows` copies (``<symbol>_pad_a``, ``_pad_b``) of operands whose rows
    the TMA cannot address, and split-K's reduction (``<symbol>_reduce``,
    :func:`.splitk.reduce_partials`); ``symbol`` names the kernel uniquely in whatever
    library links it."""
    limits = {"smem_limit": smem_limit, "sm_count": sm_count}
    funcs = {"main": wgmma_gemm(m, n, k, symbol=symbol, **limits, **structure)}
    st = Structure(**structure)
    for name, (rows, cols) in row_pads(m, n, k, **structure).items():
        funcs[f"{symbol}_pad_{name}"] = pad_rows(st.in_dtype, rows, cols, f"{symbol}_pad_{name}")
    copies = copied(st)
    if copies:
        views = split_views(m, n, k, st.trans_b, st.conv, st.trans_a)
        for name in sorted(copies):
            rows, cols, kmajor = views[name]
            split = split_operand(
                name,
                rows,
                cols,
                kmajor=kmajor,
                batch=st.batch,
                passes=st.tf32_passes,
                symbol=f"{symbol}_split_{name}",
            )
            funcs[f"{symbol}_split_{name}"] = split.with_attr(PIPELINE_ATTR, "tirx")
    if st.schedule in ("stream", "stream_tail"):
        funcs[f"{symbol}_zero"] = zero_flags(sm_count, f"{symbol}_zero")
    if c_through_scratch(n, st):
        nb_m = max(st.batch, 1) * m
        unpad = unpad_rows(st.out_dtype, nb_m, n, f"{symbol}_unpad_c")
        funcs[f"{symbol}_unpad_c"] = unpad
    if st.splits > 1 and st.reduction == "workspace":
        reduce = reduce_partials(
            m,
            n,
            batch=st.batch,
            splits=st.splits,
            epilogue=st.epilogue,
            in_dtype=st.in_dtype,
            out_dtype=st.out_dtype,
            fast=st.epilogue_math == "fast",
        )
        attrs = {"global_symbol": f"{symbol}_reduce", PIPELINE_ATTR: "tirx"}
        funcs[f"{symbol}_reduce"] = reduce.with_attrs(attrs)
    return tvm.IRModule(funcs)

# SPDX-License-Identifier: Apache-2.0
"""The geometry of a ``cuda.wgmma`` kernel: tile orders, conv patches and grids, TMA-map
dimensions of batched and unaligned operands, stream-K shares, shared memory and registers."""

from __future__ import annotations

from .structure import (
    BLOCK_NS,
    PRODUCER_REGS,
    REG_GRANULE,
    SPLIT_MIN_STEPS,
    STAGED_STORES,
    STORE_BOX,
    STORE_BUFFERS,
    SWIZZLE_ROW,
    TILE_QS,
    TMA_BOX,
    TMA_STRIDE,
    WG_THREADS,
    Structure,
    _bytes,
    k_step,
    storage,
    tile_rows,
)
from .tf32x3 import transposed


def hilbert_xy(d, side: int, select=None):
    """``(x, y)``: the point at distance ``d`` along the Hilbert curve through a ``side`` x
    ``side`` square (``side`` a power of two), from (0, 0) to (side - 1, 0). ``d`` may be an
    int or a kernel expression; ``select(c, a, b)`` picks ``a`` where ``c`` holds (default: a
    Python conditional; kernels pass ``tvm.tirx.Select``)."""
    select = select or (lambda c, a, b: a if c else b)
    x, y, s = 0, 0, 1
    while s < side:
        rx = d // 2 % 2
        ry = (d + rx) % 2  # (d xor rx) & 1
        # the quadrant's sub-curve turned: reflected when rx == 1, then x and y swapped
        fx = select(rx == 1, s - 1 - x, x)
        fy = select(rx == 1, s - 1 - y, y)
        x, y = select(ry == 0, fy, x) + s * rx, select(ry == 0, fx, y) + s * ry
        d = d // 4
        s *= 2
    return x, y


def group_tile(
    spot, rows, whole, raster: int, grid_n: int, order: str, select=None, both=None, pairs=False
):
    """``(m, n)``: the M and N tile, within its raster group, of the group's ``spot``-th tile.
    ``rows``: the group's M tiles (``raster``, or what a ragged last group has: ``whole`` is
    false there). Down each column, column after column -- with ``pairs``, down each pair of
    columns, the two tiles of a row one after the other (a cluster pair sharing the A tile);
    "hilbert" orders: along :func:`hilbert_xy` through each full ``raster x raster`` square,
    the column order in a ragged group and a last partial square. Any argument but the ints
    may be a kernel expression, with ``select`` and ``both`` (logical and) for them (default:
    Python's)."""
    select = select or (lambda c, a, b: a if c else b)
    both = both or (lambda a, b: a and b)
    if pairs:
        return spot // 2 % rows, spot // 2 // rows * 2 + spot % 2
    m_col, n_col = spot % rows, spot // rows
    if order != "hilbert":
        return m_col, n_col
    square, d = spot // (raster * raster), spot % (raster * raster)
    x, y = hilbert_xy(d, raster, select)
    full = both(whole, square < grid_n // raster)
    return select(full, x, m_col), select(full, square * raster + y, n_col)


def smem_bytes(
    block_n: int,
    consumers: int,
    stages: int,
    store: str = "direct",
    arrangement="cooperative",
    k_atoms: int = 1,
) -> int:
    staged = store in STAGED_STORES
    staging = consumers * STORE_BUFFERS * STORE_BOX * SWIZZLE_ROW if staged else 0
    rows = tile_rows(consumers, arrangement) + block_n
    return stages * k_atoms * rows * SWIZZLE_ROW + staging


def conv_stride(conv: tuple) -> int:
    """The stride of ``conv = (N, H, W, C, R, S, pad[, stride])`` (1 when not given)."""
    return conv[7] if len(conv) > 7 else 1


def conv_k(conv: tuple) -> int:
    """The implicit GEMM's K of ``conv``: R * S * C."""
    return conv[3] * conv[4] * conv[5]


def conv_edges(conv: tuple, n: int, in_dtype: str) -> tuple[str, ...]:
    """The edges of a 16-bit conv's implicit GEMM that its kernel handles: "c" where C is not a
    multiple of a K step (each filter tap's last step zero-filled past C through a 3-D filter
    map), "k" where its ``n`` output channels are not a multiple of 64 (the tile's columns past
    them loaded as zeros, not stored). Convs with neither keep the whole-tile kernels."""
    bk = k_step(in_dtype)
    if _bytes(storage(in_dtype)) != 2:
        return ()
    return tuple(e for e, ragged in (("c", conv[3] % bk), ("k", n % min(BLOCK_NS))) if ragged)


def conv_out(conv: tuple) -> tuple[int, int]:
    """(P, Q) of ``conv = (N, H, W, C, R, S, pad[, stride])``."""
    _, h, w, _, r, s, pad = conv[:7]
    u = conv_stride(conv)
    return (h + 2 * pad - r) // u + 1, (w + 2 * pad - s) // u + 1


def conv_patch(conv: tuple, block_m: int) -> tuple[int, int, int, int] | None:
    """``(tile_p, tile_q, tiles_p, tiles_q)``: the ``block_m``-pixel output patch that computes
    the fewest pixels beyond the P x Q edge, and how many patches cover P and Q. A strided
    conv's TMA box spans ``stride`` input pixels per output pixel, at most TMA_BOX a side:
    None where no patch fits."""
    p, q = conv_out(conv)
    u = conv_stride(conv)
    options = []
    for tile_q in (t for t in TILE_QS if block_m % t == 0):
        tile_p = block_m // tile_q
        if max(tile_p, tile_q) * u <= TMA_BOX:
            options.append((-(-p // tile_p) * -(-q // tile_q), tile_p, tile_q))
    if not options:
        return None
    covered, tile_p, tile_q = min(options, key=lambda o: o[0])  # min keeps the first of ties
    return tile_p, tile_q, -(-p // tile_p), -(-q // tile_q)


def rows_patch(conv: tuple, block_n: int) -> tuple[int, int, int, int] | None:
    """operands="ba": ``(tile_p, tile_q, tiles_p, 1)``, the patch of ``block_n / Q`` whole
    output rows (``tile_q = Q``) on wgmma's N, or None where ``block_n`` is not whole rows or
    its TMA box is longer than ``TMA_BOX`` a side."""
    p, q = conv_out(conv)
    u = conv_stride(conv)
    if block_n % q or max(block_n // q, q) * u > TMA_BOX:
        return None
    tile_p = block_n // q
    return tile_p, q, -(-p // tile_p), 1


def conv_grid(conv: tuple, n: int, block_m: int, block_n: int, operands: str = "ab"):
    """``(patch, m_tiles, n_tiles)``: ``conv``'s pixel patch (:func:`conv_patch`'s tuple) and
    the grid of tiles it makes for the operand order -- ``block_m``-pixel patches on M and
    ``block_n`` of the ``n`` channels on N ("ab"), or ``block_m`` channels on M and ``block_n``
    pixels of whole rows on N ("ba", :func:`rows_patch`) -- or None where no patch fits."""
    swapped = operands == "ba"
    patch = rows_patch(conv, block_n) if swapped else conv_patch(conv, block_m)
    if patch is None:
        return None
    _, _, tiles_p, tiles_q = patch
    pixel_tiles = conv[0] * tiles_p * tiles_q
    if swapped:
        return patch, -(-n // block_m), pixel_tiles
    return patch, pixel_tiles, -(-n // block_n)


def swap_widths(conv: tuple) -> tuple[int, ...]:
    """The block_n values operands="ba" can take on ``conv``: whole output rows, at most what
    a warpgroup's two staging buffers hold."""
    return tuple(
        b for b in BLOCK_NS if b <= STORE_BUFFERS * STORE_BOX and rows_patch(conv, b) is not None
    )


def batch_dims(m: int, k: int, st: Structure) -> frozenset[str]:
    """The tensors (``"a"``, ``"b"``, ``"c"``) of a batched GEMM whose TMA maps carry the batch
    as a third dimension, so that a box at the edge of one matrix is zero-filled (loads) or
    clipped (stores) instead of reaching into the next one: an operand whose K runs across its
    rows (B as [K, N], A as [K, M]) when the K tail is ragged, and a TMA-stored C with an M
    edge. Elsewhere the batch is folded into the rows of a 2-D map: the rows an edge tile
    reads past its matrix only feed accumulators that the store drops."""
    if not st.batch or st.conv:
        return frozenset()
    tail = k % k_step(st.in_dtype) != 0
    out = {"b"} if tail and not st.trans_b else set()
    if tail and st.trans_a:
        out.add("a")
    if st.store == "tma" and m % tile_rows(st.consumers, st.arrangement):
        out.add("c")
    return frozenset(out)


def row_pads(m: int, n: int, k: int, **structure) -> dict[str, tuple[int, int]]:
    """``{"a" | "b": (rows, cols)}``: the operands, as 2-D row-major views, whose rows are not a
    multiple of 16 bytes, which TMA's global strides must be (``pad="lines"``: of 128 bytes).
    The kernel's host code copies each into a zero-padded ``rows x padded(cols)`` scratch
    tensor (:func:`pad_rows`, one pass over the operand) and loads that; everything else about
    edges stays in the kernel."""
    st = Structure(**structure)
    if st.conv or st.tf32_passes == 3:
        return {}  # C % 64 == 0 (_conv_reason): aligned rows; 3xTF32: the split copies are
    copied = transposed(st)  # one TF32 product: MN-major operands copied K-major (aligned)
    nb = max(st.batch, 1)
    views = {"a": (nb * k, m) if st.trans_a else (nb * m, k)}
    if st.gated:
        views["b"] = (2 * n, k)
    else:
        views["b"] = (nb * n, k) if st.trans_b else (nb * k, n)
    es = _bytes(storage(st.in_dtype))
    align = (SWIZZLE_ROW if st.pad == "lines" else TMA_STRIDE) // es  # in elements
    return {x: view for x, view in views.items() if view[1] % align and x not in copied}


def padded(cols: int, dtype: str = "float16") -> int:
    """Row length of a padded copy: whole 128-byte lines (TMA boxes of rows that start
    mid-line ran ~25% slower on the H200 than the same GEMM on 128-byte rows)."""
    line = SWIZZLE_ROW // _bytes(storage(dtype))
    return -(-cols // line) * line


def stream_share(g, work: int, ctas: int):
    """stream: the first of block ``g``'s (tile, K step) iterations; its share ends where block
    ``g + 1``'s begins. ``g`` may be an int or a kernel expression."""
    return g * work // ctas


def stream_holder(i, work: int, ctas: int, first: int = 0):
    """stream: the block whose share holds iteration ``i`` (``first``: the iterations before
    the shares, stream_tail's whole waves)."""
    return ((i - first + 1) * ctas - 1) // work


def stream_first(t, k_tiles: int, work: int, ctas: int, first: int = 0):
    """stream: the block whose share holds tile ``t``'s first K step: it and the blocks after
    it, up to the one before :func:`stream_last`'s, each hold a head or middle part of the
    tile."""
    return stream_holder(t * k_tiles, work, ctas, first)


def stream_last(t, k_tiles: int, work: int, ctas: int, first: int = 0):
    """stream: the block whose share holds tile ``t``'s last K step, the one that stores it."""
    return stream_holder((t + 1) * k_tiles - 1, work, ctas, first)


def stream_tail_waves(tiles: int, k_tiles: int, sm_count: int) -> int:
    """stream_tail: the whole waves computed as persistent tiles, the most that leave the
    partial last wave's K steps at least ``SPLIT_MIN_STEPS`` a block (0: none do)."""
    waves = tiles // sm_count
    while waves > 0 and (tiles - waves * sm_count) * k_tiles // sm_count < SPLIT_MIN_STEPS:
        waves -= 1
    return waves


def c_through_scratch(n: int, st: Structure) -> bool:
    """Whether the TMA store writes C's ``n``-column rows into scratch rows of whole lines first
    (:func:`unpad_rows` copies them into C): they are not 16-byte multiples, which TMA strides
    must be."""
    return st.store == "tma" and c_unaligned(n, st)


def c_view(n: int, st: Structure) -> bool:
    """Whether the kernel also takes C as a view of rows padded to 16-byte multiples (any row
    pitch: torch's loader allocates such rows, as inductor pads its outputs) and then stores
    into it with the TMA, without scratch rows or their copy (:func:`c_through_scratch`
    otherwise): where only the TMA store writes C (2-D GEMMs, one tile per work unit -- not
    split-K's sums, the stream schedules' fix-ups or a batch's 3-D map)."""
    return (
        c_through_scratch(n, st)
        and not st.batch
        and st.splits == 1
        and st.schedule in ("tile", "persistent")
    )


def c_unaligned(n: int, st: Structure) -> bool:
    """Whether C's ``n``-column rows are not 16-byte multiples, which the TMA cannot store
    (conv outputs always are: their channels are multiples of 64)."""
    return not st.conv and n * _bytes(st.out_dtype) % TMA_STRIDE != 0


def launch_regs(consumers: int, regs_per_block: int, regs_per_thread: int) -> int:
    """Registers each thread of a block of ``consumers`` + 1 warpgroups is launched with, at
    most: its equal share of the block's registers (ptxas's limit under the kernel's launch
    bounds), in steps of REG_GRANULE."""
    share = regs_per_block // ((consumers + 1) * WG_THREADS) // REG_GRANULE * REG_GRANULE
    return min(regs_per_thread, share)


def consumer_regs(st: Structure, regs_per_block: int, regs_per_thread: int) -> int:
    """Registers a consumer thread may use: the launch's share (regs="even"), or (regs="split")
    that share plus what the producer's threads give back, spread over the consumers' threads
    (``setmaxnreg`` may only move registers the block was launched with)."""
    launch = launch_regs(st.consumers, regs_per_block, regs_per_thread)
    if st.regs != "split":
        return launch
    pool = (st.consumers + 1) * WG_THREADS * launch - WG_THREADS * PRODUCER_REGS
    return min(regs_per_thread, pool // (st.consumers * WG_THREADS)) // REG_GRANULE * REG_GRANULE

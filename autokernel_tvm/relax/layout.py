# SPDX-License-Identifier: Apache-2.0
"""GPU schedule for the layout transposes a model keeps (NCHW <-> NHWC around the conv kernels).

A transpose that moves the innermost axis reads or writes with a stride whatever thread layout
it gets: DLight's ``Fallback`` gives it one element per thread, coalesced on the write only, and
its ``Transpose`` rule takes two axes only. The NCHW -> NHWC copy of a ResNet activation then
ran at about a fifth of the memory bandwidth (2026-12-03: 118 us of transposes around a 39 us
conv kernel). :class:`LayoutTranspose` tiles the two axes that swap places -- the input's
innermost and the output's innermost -- by one 128-byte row each, stages the tile in shared
memory (padded by one bank so the transposed read is conflict-free), and gives every block one
tile of one slice of the remaining axes: both global sides are then whole 128-byte rows.
"""

from __future__ import annotations

import tvm
from tvm import s_tir, tirx
from tvm.ir import TensorLoad
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.gpu.base import GPUScheduleRule

ROW_BYTES = 128  # one tile side: a full 128-byte row, read and written whole
THREADS = 256
BANK_BYTES = 4


def _source(store: tirx.BufferStore):
    """What ``store`` writes, looked at through one cast."""
    return store.value.value if isinstance(store.value, tirx.Cast) else store.value


def permutation(block: tirx.SBlock) -> tuple[int, int] | None:
    """``(j, i)`` if ``block`` is ``out[...] = in[...]`` (possibly through a cast) with the
    input's indices a permutation of the output's: the output axis ``j`` that indexes the input's
    innermost axis and the input axis ``i`` the output's innermost indexes. None otherwise, and
    when both innermost axes are the same one (a copy that is already coalesced)."""
    store = block.body
    if not isinstance(store, tirx.BufferStore) or len(block.reads) != 1:
        return None
    load = _source(store)
    if not isinstance(load, TensorLoad):
        return None
    out_idx, in_idx = list(store.indices), list(load.indices)
    if not all(isinstance(x, tirx.Var) for x in out_idx + in_idx):
        return None
    names = [x.name for x in out_idx]
    if sorted(names) != sorted(x.name for x in in_idx) or len(set(names)) != len(names):
        return None
    j, i = names.index(in_idx[-1].name), [x.name for x in in_idx].index(out_idx[-1].name)
    if j == len(out_idx) - 1:
        return None
    return j, i


class LayoutTranspose(GPUScheduleRule):
    """Shared-memory tiled schedule for a transpose of any rank that moves the innermost axis."""

    def apply(self, func: tirx.PrimFunc, target: tvm.target.Target, _tunable: bool):
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        blocks = normalize_prim_func(sch)
        if blocks is None or len(blocks) != 1 or not blocks[0].is_injective():
            return None
        block = blocks[0].block_rv
        found = permutation(sch.get(block))
        if found is None:
            return None
        j, i = found
        store = sch.get(block).body
        read_bytes = tvm.DataType(_source(store).ty.dtype).bits // 8
        write_bytes = tvm.DataType(store.buffer.dtype).bits // 8
        tile = ROW_BYTES // min(read_bytes, write_bytes)
        rows = max(1, THREADS // tile)  # threadIdx.y extent; each thread does tile / rows
        loops = sch.get_loops(block)
        if min(int(sch.get(loops[j]).extent), int(sch.get(loops[-1]).extent)) < tile // 2:
            return None  # a thin side: tiles would be mostly empty; Fallback does better
        outer_j, inner_j = sch.split(loops[j], factors=[None, tile])
        outer_l, inner_l = sch.split(loops[-1], factors=[None, tile])
        rest = [lp for k, lp in enumerate(loops) if k not in (j, len(loops) - 1)]
        sch.reorder(*rest, outer_j, outer_l, inner_j, inner_l)
        bx = sch.fuse(*rest, outer_j, outer_l)
        sch.bind(bx, "blockIdx.x")
        # the write: threadIdx.x along the output's innermost axis (whole rows of the output)
        serial, ty = sch.split(inner_j, factors=[None, rows])
        sch.reorder(ty, serial, inner_l)
        sch.bind(ty, "threadIdx.y")
        sch.bind(inner_l, "threadIdx.x")
        cache = sch.cache_read(block, 0, "shared")
        sch.compute_at(cache, bx)
        # the read: threadIdx.x along the input's innermost axis (whole rows of the input)
        fused = sch.fuse(*sch.get_loops(cache)[1:])
        _, cy, cx = sch.split(fused, factors=[None, rows, tile])
        sch.bind(cy, "threadIdx.y")
        sch.bind(cx, "threadIdx.x")
        # the transposed read walks the shared tile along input axis i: pad its stride by a
        # bank so the 32 lanes of a warp hit 32 banks
        pad = max(1, BANK_BYTES // read_bytes)
        sch.storage_align(cache, 0, axis=i, factor=tile, offset=pad)
        return sch

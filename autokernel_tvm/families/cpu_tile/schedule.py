# SPDX-License-Identifier: Apache-2.0
"""The ``cpu.tile`` template: multi-level tiling for llvm with a fixed-width vector micro-kernel.

Differences from MetaSchedule's ``MultiLevelTiling`` that the parameters make explicit: the
innermost spatial tile is split by ``vector_lanes`` first (so every candidate's inner loop is a
full vector), B can be packed (``pack_b``: ``B[k, n] -> B[n // L, k, n % L]``, contiguous
vectors for ``A@B.T``), the accumulator can live in a local buffer written back under a chosen
level, and epilogues can be fused into that write-back.
"""

from __future__ import annotations

from tvm import s_tir

from .. import common

#: Bound on the k loop right around the micro-kernel. With the stock bound (16) most sampled
#: tilings reload the accumulators from memory every <= 16 k steps (asm: a vmovups load/store
#: per FMA) unless every middle spatial factor happens to be 1; 512 lets the micro-kernel keep its
#: rows x vectors zmm accumulators over a whole K block (BLIS's kc loop).
MAX_KC = 512


def apply(sch: s_tir.Schedule, block, params) -> list[s_tir.Schedule]:
    """Schedule ``block`` as :class:`~autokernel_tvm.families.cpu_tile.TileParams` say."""
    info = common.analyze(sch, block)
    if info is None:
        return [sch]
    if params.pack_b and len(info.operands) > 1:  # B, the operand indexed by the vector axis
        operand = info.operands[1]
        if _packable(sch, block, info, operand, params.vector_lanes):
            _pack(sch, block, info, operand, params.vector_lanes)
    levels = common.tile_levels(
        sch, block, params.structure, params.vector_lanes, params.micro, max_inner_reduce=MAX_KC
    )
    consumers = common.epilogue_chain(sch, block)
    wb_loop = common.write_back_loop(levels, params.structure)
    if params.accumulator == "local":
        consumers.insert(0, sch.cache_write(block, 0, "global"))
    if consumers and (params.accumulator == "local" or params.epilogue == "inline"):
        # The first consumer (write-back or epilogue) runs per tile; the rest fold into it.
        sch.reverse_compute_at(consumers[0], wb_loop)
        if params.epilogue == "inline":
            for consumer in reversed(consumers[1:]):
                sch.reverse_compute_inline(consumer)
    return [sch]


def _packable(sch, block, info, operand: str, lanes: int) -> bool:
    """Only whole vectors: packing a vector axis ``lanes`` does not divide would need padding."""
    if operand not in info.vector_axis:
        return False
    buffer = sch.get(block).reads[info.read_index[operand]].source
    return int(buffer.shape[info.vector_axis[operand]]) % lanes == 0


def _pack(sch, block, info, operand: str, lanes: int) -> None:
    """Copy an operand into a layout whose innermost ``lanes`` elements are the vector axis.

    ``X[..., n, ..., k]`` becomes ``X[n // lanes, <other dims>, n % lanes]``: one contiguous
    ``lanes``-wide vector per (other dims) for the micro-kernel's inner loop.
    """
    index = info.read_index[operand]
    axis = info.vector_axis[operand]
    sch.cache_read(block, index, "global")

    def pack(*idx):
        rest = [v for d, v in enumerate(idx) if d != axis]
        return (idx[axis] // lanes, *rest, idx[axis] % lanes)

    sch.transform_layout(block, ("read", index), pack)

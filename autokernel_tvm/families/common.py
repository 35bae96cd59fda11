# SPDX-License-Identifier: Apache-2.0
"""Schedule helpers shared by the rule templates: block analysis, tiling, annotations."""

from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir, tirx

SPATIAL, REDUCE = 0, 2  # IterVar kinds: kDataPar, kCommReduce


@dataclass(frozen=True)
class BlockInfo:
    """What the templates need to know about a reduction block."""

    kinds: tuple[int, ...]  # per block iter var
    extents: tuple[int, ...]
    operands: tuple[str, ...]  # read buffer names, in read order (output excluded)
    read_index: dict  # operand name -> read index in the block
    vector_axis: dict  # operand name -> dim of the operand indexed by the innermost spatial var


def analyze(sch: s_tir.Schedule, block) -> BlockInfo | None:
    """Describe ``block`` if it is a reduction block with one loop per iter var, else None."""
    stmt = sch.get(block)
    kinds = tuple(int(iv.iter_type) for iv in stmt.iter_vars)
    if REDUCE not in kinds or len(sch.get_loops(block)) != len(kinds):
        return None
    if any(k not in (SPATIAL, REDUCE) for k in kinds) or SPATIAL not in kinds:
        return None  # (a reduction to one value, x.sum(), has no spatial axis to tile)
    inner = [iv.var for iv, k in zip(stmt.iter_vars, kinds) if k == SPATIAL][-1]
    out = stmt.writes[0].source
    operands, read_index, vector_axis = [], {}, {}
    for index, region in enumerate(stmt.reads):
        if region.source.same_as(out):
            continue
        name = region.source.name
        operands.append(name)
        read_index[name] = index
        for dim, rng in enumerate(region.region):
            if _uses(rng.min, inner):
                vector_axis[name] = dim
    extents = tuple(int(iv.dom.extent) for iv in stmt.iter_vars)
    return BlockInfo(kinds, extents, tuple(operands), read_index, vector_axis)


def _uses(expr, var) -> bool:
    return any(v.same_as(var) for v in tirx.analysis.undefined_vars(expr, []))


def tile_levels(
    sch, block, structure: str, vector_lanes=0, micro=(0, 0), max_inner=16, max_inner_reduce=0
):
    """Tile every loop of ``block`` into the levels of ``structure`` and reorder.

    The innermost spatial loop is split by ``vector_lanes`` (when it divides the extent) and that
    vector loop becomes the innermost loop. A ``micro`` register block (rows, vectors) fixes the
    innermost tile of the last two spatial loops; the other factors stay ``sample_perfect_tile``
    decisions. ``max_inner_reduce`` (0: ``max_inner``) bounds the innermost reduction tile: the
    k loop right around the micro-kernel, over which its accumulators stay in registers. Returns
    the loops of each level, outermost first.
    """
    loops = sch.get_loops(block)
    kinds = [int(iv.iter_type) for iv in sch.get(block).iter_vars]
    n_s, n_r = structure.count("S"), structure.count("R")
    spatial = [loop for loop, k in zip(loops, kinds) if k == SPATIAL]
    fixed = {}
    if vector_lanes:
        fixed[len(spatial) - 1] = [micro[1], vector_lanes] if micro[1] else [vector_lanes]
    if micro[0] and len(spatial) >= 2:
        fixed[len(spatial) - 2] = [micro[0]]
    s_tiles, r_tiles, vec = [], [], None
    for loop, kind in zip(loops, kinds):
        n = n_s if kind == SPATIAL else n_r
        inner = []
        if kind == SPATIAL:
            index = len(s_tiles)
            extent = int(sch.get(loop).extent)
            factors = fixed.get(index, [])
            product = int(_prod(factors))
            if factors and extent % product == 0 and extent > product:
                loop, *inner = sch.split(loop, [None, *factors])
                if index == len(spatial) - 1:
                    vec = inner.pop()  # the vector loop goes innermost of all
            else:
                inner = []
        n_sampled = n - (1 if inner else 0)
        if n_sampled <= 1:
            tiles = [loop]
        else:
            cap = max_inner if kind == SPATIAL else (max_inner_reduce or max_inner)
            parts = sch.sample_perfect_tile(loop, n=n_sampled, max_innermost_factor=cap)
            tiles = list(sch.split(loop, parts))
        if inner:
            tiles.append(inner[0] if len(inner) == 1 else inner)
        (s_tiles if kind == SPATIAL else r_tiles).append(tiles)
    levels, si, ri = [], 0, 0
    for letter in structure:
        tiles, i = (s_tiles, si) if letter == "S" else (r_tiles, ri)
        level = []
        for t in tiles:
            level.extend(t[i] if isinstance(t[i], list) else [t[i]])
        levels.append(level)
        si, ri = (si + 1, ri) if letter == "S" else (si, ri + 1)
    if vec is not None:
        levels[-1] = levels[-1] + [vec]
    sch.reorder(*[loop for level in levels for loop in level])
    return levels


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def write_back_loop(levels, structure: str):
    """The innermost loop of the last spatial level before the first reduction level."""
    first_r = structure.index("R")
    spatial_before = [i for i in range(first_r) if structure[i] == "S"]
    return levels[spatial_before[-1]][-1]


def epilogue_chain(sch, block) -> list:
    """Elementwise consumers of ``block`` (bias, activation, cast), nearest first."""
    chain, current = [], block
    while True:
        consumers = sch.get_consumers(current)
        if len(consumers) != 1:
            return chain
        stmt = sch.get(consumers[0])
        if any(int(iv.iter_type) != SPATIAL for iv in stmt.iter_vars):
            return chain
        chain.append(consumers[0])
        current = consumers[0]

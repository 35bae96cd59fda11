# SPDX-License-Identifier: Apache-2.0
"""Legal numeric tile candidates for the CUDA mma.sync GEMM template (`schedule.py`).

The template samples three numbers per candidate with ``sample_categorical``: ``frag_m`` and
``frag_n`` (16x16 mma fragments per warp in M and N) and ``k_frags`` (16-wide K steps per
shared-memory stage, so the K tile is ``16 * k_frags``). MetaSchedule replays a trace with new
decisions without re-running our Python, so every value in every candidate list must be legal in
combination with every value of the other lists. Each list is therefore filtered on its own,
and the joint limits (shared memory) are checked on the worst case.
"""

from __future__ import annotations

from dataclasses import dataclass

MMA_TILE = 16  # m16n8k16: one ldmatrix.x4 fragment is 16x16, one warp tile step is 16
WARP_SIZE = 32
FRAG_CHOICES = (1, 2, 4)  # fragments per warp per dim; 4x4 = 64x64 warp tile = 128 acc regs
KFRAG_CHOICES = (2, 4)  # K tile 32 or 64: the permuted layout needs a multiple of 32
SMEM_LAYOUTS = ("swizzle", "pad", "plain")
VECTOR_BYTES = (4, 8, 16)
IN_DTYPES = ("float16", "bfloat16")  # bf16 through autokernel_tvm.intrin.cuda_bf16
STAGES = (2, 3, 4, 5)
WARPS = (1, 2, 4, 8)
MAX_WARPS = 8  # 8 warps x 32 x 255 registers still fits the 64K register file
PAD_HALFS = 8  # "pad" layout: storage_align offset (16 bytes) that makes ldmatrix conflict-free


class MmaStructureError(ValueError):
    """A structure that the CUDA mma template cannot schedule for a given workload."""


@dataclass(frozen=True)
class MmaTiles:
    """Candidate lists (values and probabilities) for the sampled numeric choices."""

    frag_m: tuple[int, ...]
    frag_n: tuple[int, ...]
    k_frags: tuple[int, ...]

    @staticmethod
    def probs(values: tuple[int, ...]) -> list[float]:
        """Weights proportional to the value: big warp tiles are the fast ones, small stay legal."""
        total = float(sum(values))
        return [v / total for v in values]


def smem_bytes(bm: int, bn: int, bk: int, *, trans_b: bool, stages: int, smem_layout: str) -> int:
    """Dynamic shared memory of one candidate, as TVM 0.27 allocates it."""
    pad = PAD_HALFS if smem_layout == "pad" else 0
    a = bm * (bk + pad)
    b = bn * (bk + pad) if trans_b else bk * (bn + pad)
    return stages * (a + b) * 2


def _structure_reason(
    in_dtype: str,
    warp_m: int,
    warp_n: int,
    stages: int,
    smem_layout: str,
    vector_bytes: int,
    raster: int,
    unroll: int,
    epilogue: str,
) -> str | None:
    if in_dtype not in IN_DTYPES:
        return f"in_dtype {in_dtype!r}: mma m16n8k16 -> f32 is implemented for {IN_DTYPES}"
    if warp_m not in WARPS or warp_n not in WARPS:
        return f"warp_m={warp_m}, warp_n={warp_n}: each must be one of {WARPS}"
    if warp_m * warp_n > MAX_WARPS:
        return f"warp_m*warp_n={warp_m * warp_n} warps per block: at most {MAX_WARPS}"
    if stages not in STAGES:
        return f"stages={stages}: must be one of {STAGES} (cp.async pipeline depth)"
    if smem_layout not in SMEM_LAYOUTS:
        return f"smem_layout={smem_layout!r}: must be one of {SMEM_LAYOUTS}"
    if vector_bytes not in VECTOR_BYTES:
        return f"vector_bytes={vector_bytes}: cp.async copies 4, 8 or 16 bytes"
    if raster < 0 or (raster > 1 and raster & (raster - 1)):
        return f"raster={raster}: must be 0 (row-major blocks) or a power of two group size"
    if unroll:  # kept as a keyword so genomes with an unroll gene get a reason, not a TypeError
        return (
            f"unroll={unroll}: only 0; explicit unrolling in the warp tile puts the mma "
            "accumulators in local memory (nvcc 13: 560 B stack frame), and non-explicit "
            "unrolling fails codegen (cp.async wait counts must be constants)"
        )
    if epilogue != "direct":
        return (
            f"epilogue={epilogue!r}: only 'direct'; an fp32 shared.dyn staging tile fails to "
            "build in TVM 0.27 (StorageRewrite merges it with the fp16 A/B ring)"
        )
    return None


def tile_candidates(
    m: int,
    n: int,
    k: int,
    *,
    in_dtype: str = "float16",
    trans_b: bool,
    warp_m: int = 2,
    warp_n: int = 2,
    stages: int = 3,
    smem_layout: str = "swizzle",
    vector_bytes: int = 16,
    raster: int = 0,
    unroll: int = 0,
    epilogue: str = "direct",
    frag_pipeline: bool = False,
    smem_limit: int,
) -> MmaTiles:
    """Return the legal candidate lists, or raise `MmaStructureError` with the reason."""
    del frag_pipeline  # legal with every tile; kept so callers can pass a whole structure
    reason = _structure_reason(
        in_dtype, warp_m, warp_n, stages, smem_layout, vector_bytes, raster, unroll, epilogue
    )
    if reason:
        raise MmaStructureError(reason)
    for name, size in (("m", m), ("n", n), ("k", k)):
        if size % MMA_TILE:
            raise MmaStructureError(f"{name}={size} is not a multiple of {MMA_TILE}")
    threads = warp_m * warp_n * WARP_SIZE
    vec = vector_bytes // 2  # fp16 elements per cp.async
    group = max(raster, 1)

    # K tile: the pipeline wants at least `stages` K steps, the permuted layout a multiple of 32.
    k_tiles = k // MMA_TILE
    kf = tuple(f for f in KFRAG_CHOICES if k_tiles % f == 0 and k_tiles // f >= stages)
    if not kf:
        raise MmaStructureError(
            f"k={k}: no K tile in {[MMA_TILE * f for f in KFRAG_CHOICES]} divides k "
            f"into >= stages={stages} steps"
        )
    bk_min = MMA_TILE * min(kf)

    def frags(size: int, warps: int, dim: str) -> tuple[int, ...]:
        out = []
        for f in FRAG_CHOICES:
            tile = MMA_TILE * warps * f
            if size % (tile * (group if dim == "m" else 1)):
                continue  # grid must tile the dim exactly (and the raster group the M grid)
            if (tile * bk_min) % (threads * vec):
                continue  # global->shared copy must split evenly over threads x vector
            if dim == "n" and smem_layout == "swizzle" and not trans_b and tile % 32:
                continue  # B is [BK, BN] in smem: the permuted layout needs BN % 32 == 0
            out.append(f)
        if not out:
            raise MmaStructureError(
                f"{dim}={size}: no warp tile {dim}-fragment count in {FRAG_CHOICES} gives a "
                f"block tile that divides it (warps={warps}, raster={raster}) and a copy that "
                f"splits over {threads} threads x {vector_bytes} B"
            )
        return tuple(out)

    fm = list(frags(m, warp_m, "m"))
    fn = list(frags(n, warp_n, "n"))
    kf = list(kf)

    def worst() -> int:
        return smem_bytes(
            MMA_TILE * warp_m * max(fm),
            MMA_TILE * warp_n * max(fn),
            MMA_TILE * max(kf),
            trans_b=trans_b,
            stages=stages,
            smem_layout=smem_layout,
        )

    # Drop the largest values until the worst combination fits; K tile first (128x256x32 with
    # 3-4 stages is the CUTLASS sm80 sweet spot), then the larger of the M and N fragments.
    while worst() > smem_limit:
        if len(kf) > 1:
            kf.pop()
        elif len(fm) > 1 and (max(fm) * warp_m >= max(fn) * warp_n or len(fn) == 1):
            fm.pop()
        elif len(fn) > 1:
            fn.pop()
        else:
            raise MmaStructureError(
                f"smallest tile needs {worst()} B of shared memory > limit {smem_limit} "
                f"(stages={stages})"
            )
    return MmaTiles(tuple(fm), tuple(fn), tuple(kf))

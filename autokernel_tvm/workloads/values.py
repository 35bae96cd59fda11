# SPDX-License-Identifier: Apache-2.0
"""Input value distributions: ordinary, adversarial and tile-edge probes."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .dtypes import FINITE_MAX, FP8_DTYPES, SMALLEST_NORMAL, np_dtype

KINDS = ("normal", "large", "tiny", "mixed", "edge")
#: ``tiny`` inputs are this size, or 4x the input dtype's smallest normal where that is larger
#: (fp8: 1e-3 is below e4m3's smallest subnormal, 2^-9, and would round to zero)
TINY_INPUT = 1e-3
#: the values of the gate's exact integer inputs (sums of their products stay exact)
NONZERO = np.array([-2, -1, 1, 2], dtype=np.int8)
#: Elements per child generator of a large draw: which values a seed gives does not depend on
#: how many threads fill the chunks.
CHUNK = 1 << 22


def draw(workload, rng: np.random.Generator, kind: str) -> list[np.ndarray]:
    """Fresh inputs for ``workload`` of the given ``kind`` (see ``Workload.random_inputs``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    specs = workload.inputs
    # the epilogue's operands follow the op's inputs
    first = len(specs) - len(workload.epilogue.operands) if workload.epilogue else len(specs)
    red = max(1, workload.opdef.reduction(workload.shape))
    arrays = [standard_normal(rng, spec.shape) for spec in specs]
    # per-tensor scales (torch._scaled_mm's): positive and near 1 whatever the kind, as scales
    # derived from an amax are; drawn apart and put back at the end
    scalars = {
        i: rng.uniform(0.5, 2.0, size=spec.shape)
        for i, spec in enumerate(specs)
        if spec.name in workload.opdef.scalars
    }
    if kind == "large":
        # Inputs (drawn up to ~5 sigma) stay inside the input dtype, and |sum of red products|
        # under a tenth of what the output dtype holds.
        out_limit = FINITE_MAX[workload.out_dtype]
        root = 0.5 / workload.opdef.degree  # a product of `degree` sums of products
        scale = min(FINITE_MAX[workload.dtype] / 32.0, (out_limit / (160.0 * red)) ** root, 1e4)
        _scale_each(arrays, scale)
    elif kind == "tiny":
        _scale_each(arrays, max(TINY_INPUT, 4 * SMALLEST_NORMAL[workload.dtype]))
    elif kind == "mixed":
        for a in arrays:
            a *= _powers_of_ten(rng, a.shape[:-1] + (1,))
        if workload.out_dtype == "float16":
            limit = 60.0 ** (1.0 / workload.opdef.degree)  # |result| <= 3600 < fp16's max
            for a in arrays:
                np.clip(a, -limit, limit, out=a)
            _scale_each(arrays, 1.0 / float(np.sqrt(red)))
    elif kind == "edge":
        # the epilogue's operands stay dense: a zeroed divisor is inf, not a tile-edge probe
        arrays = [_edge(a) if i < first else a for i, a in enumerate(arrays)]
    if workload.epilogue is not None:
        for i in workload.epilogue.divisors():  # |x| in [0.5, 2], either sign: never near zero
            shape = specs[first + i].shape
            magnitude = rng.uniform(0.5, 2.0, size=shape)
            arrays[first + i] = np.where(rng.random(shape) < 0.5, -magnitude, magnitude)
    arrays = [scalars.get(i, a) for i, a in enumerate(arrays)]
    return [cast(a, spec.dtype) for a, spec in zip(arrays, specs)]


def cast(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` rounded to ``dtype``, in chunks on threads (one thread's cast of a 1 GB fp16
    operand took ~1 s, per input kind of the gate); fp8 inputs clipped to their range first
    (e4m3fn rounds a value past 448 to NaN; every other kind's draws stay inside theirs)."""
    if dtype in FP8_DTYPES:
        limit = FINITE_MAX[dtype]
        array = np.clip(array, -limit, limit)
    out = np.empty(array.shape, dtype=np_dtype(dtype))
    source, target = array.reshape(-1), out.reshape(-1)

    def fill(start: int) -> None:
        end = start + CHUNK
        np.copyto(target[start:end], source[start:end], casting="unsafe")

    _on_threads(fill, range(0, source.size, CHUNK))
    return out


def _scale_each(arrays: list[np.ndarray], factor: float) -> None:
    """Multiply each fp32 array by ``factor`` in place (no second copy of a GB-sized input)."""
    for a in arrays:
        a *= np.float32(factor)


def _on_threads(fn, items) -> None:
    """``fn(item)`` for each of ``items``, on up to a thread per core (numpy releases the GIL
    while it fills or casts an array), in this thread where there is one item."""
    items = list(items)
    if len(items) <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1)) as pool:
        list(pool.map(fn, items))


def standard_normal(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """N(0, 1) float32 samples of ``shape`` (:func:`_draw_chunks`: on 2 cores one generator's
    float64 draw, then the cast, of 8192^3's inputs took ~4.5 s and of a 128 x 512 x 2048 x
    1024 batch's 13-17 s, for every input kind of the gate). float32 because every input
    dtype's values are rounded from it."""

    def draw(gen: np.random.Generator, chunk: np.ndarray) -> None:
        gen.standard_normal(out=chunk, dtype=np.float32)

    return _draw_chunks(rng, np.empty(shape, dtype=np.float32), draw)


def small_nonzero_ints(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """int8 values drawn uniformly from {-2, -1, 1, 2} (the gate's exact inputs), as
    :func:`standard_normal` draws (one thread took seconds per exact trial at a vocabulary
    projection's weight)."""

    def draw(gen: np.random.Generator, chunk: np.ndarray) -> None:
        chunk[:] = NONZERO[gen.integers(0, 4, size=chunk.size, dtype=np.int8)]

    return _draw_chunks(rng, np.empty(shape, dtype=np.int8), draw)


def _draw_chunks(rng: np.random.Generator, out: np.ndarray, draw) -> np.ndarray:
    """``out`` filled by ``draw(generator, flat chunk)``: up to :data:`CHUNK` elements from
    ``rng`` itself, more in chunks from child generators seeded by ``rng``, filled by threads
    (numpy releases the GIL while it draws), so a seed gives the same values whatever the
    thread count."""
    flat = out.reshape(-1)
    if flat.size <= CHUNK:
        draw(rng, flat)
        return out
    starts = range(0, flat.size, CHUNK)
    seeds = rng.integers(0, 2**63, size=len(starts))

    def fill(i: int) -> None:
        draw(np.random.default_rng(int(seeds[i])), flat[starts[i] : starts[i] + CHUNK])

    _on_threads(fill, range(len(starts)))
    return out


def _powers_of_ten(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """10^e, e uniform in -3..3, as float32 (a float64 factor would widen the whole input)."""
    return np.float32(10.0) ** rng.integers(-3, 4, size=shape).astype(np.float32)


def _edge(a: np.ndarray) -> np.ndarray:
    """Zero everywhere but the last index along each axis (the last tile's last row/col/k)."""
    out = np.zeros_like(a)
    for axis in range(a.ndim):
        index = [slice(None)] * a.ndim
        index[axis] = -1
        out[tuple(index)] = a[tuple(index)]
    return out

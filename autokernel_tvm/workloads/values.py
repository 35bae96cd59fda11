# SPDX-License-Identifier: Apache-2.0
"""Input value distributions: ordinary, adversarial and tile-edge probes."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .dtypes import FINITE_MAX, SMALLEST_NORMAL, np_dtype

KINDS = ("normal", "large", "tiny", "mixed", "edge")
#: ``tiny`` inputs are this size, or 4x the input dtype's smallest normal where that is larger
#: (fp8: 1e-3 is below e4m3's smallest subnormal, 2^-9, and would round to zero)
TINY_INPUT = 1e-3
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
        arrays = [a * scale for a in arrays]
    elif kind == "tiny":
        arrays = [a * max(TINY_INPUT, 4 * SMALLEST_NORMAL[workload.dtype]) for a in arrays]
    elif kind == "mixed":
        arrays = [a * _powers_of_ten(rng, a.shape[:-1] + (1,)) for a in arrays]
        if workload.out_dtype == "float16":
            limit = 60.0 ** (1.0 / workload.opdef.degree)  # |result| <= 3600 < fp16's max
            arrays = [np.clip(a, -limit, limit) / float(np.sqrt(red)) for a in arrays]
    elif kind == "edge":
        # the epilogue's operands stay dense: a zeroed divisor is inf, not a tile-edge probe
        arrays = [_edge(a) if i < first else a for i, a in enumerate(arrays)]
    if workload.epilogue is not None:
        for i in workload.epilogue.divisors():  # |x| in [0.5, 2], either sign: never near zero
            shape = specs[first + i].shape
            magnitude = rng.uniform(0.5, 2.0, size=shape)
            arrays[first + i] = np.where(rng.random(shape) < 0.5, -magnitude, magnitude)
    arrays = [scalars.get(i, a) for i, a in enumerate(arrays)]
    # within the input dtype's range (an fp8 e4m3fn value past 448 would round to NaN)
    return [_cast(a, spec.dtype) for a, spec in zip(arrays, specs)]


def _cast(array: np.ndarray, dtype: str) -> np.ndarray:
    limit = FINITE_MAX[dtype]
    if dtype != "float32" and float(np.max(np.abs(array), initial=0.0)) > limit:
        array = np.clip(array, -limit, limit)
    return array.astype(np_dtype(dtype))


def standard_normal(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """N(0, 1) float32 samples of ``shape``: up to :data:`CHUNK` elements from ``rng`` itself,
    more in chunks from child generators seeded by ``rng``, filled by threads (numpy releases
    the GIL while it fills): on 2 cores one generator's float64 draw (then the cast) of
    8192^3's inputs took ~4.5 s and of a 128 x 512 x 2048 x 1024 batch's 13-17 s, for every
    input kind of the gate. float32 because every input dtype's values are rounded from it."""
    out = np.empty(shape, dtype=np.float32)
    flat = out.reshape(-1)
    if flat.size <= CHUNK:
        rng.standard_normal(out=flat, dtype=np.float32)
        return out
    starts = range(0, flat.size, CHUNK)
    seeds = rng.integers(0, 2**63, size=len(starts))

    def fill(i: int) -> None:
        start = starts[i]
        chunk = flat[start : start + CHUNK]
        np.random.default_rng(int(seeds[i])).standard_normal(out=chunk, dtype=np.float32)

    with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1)) as pool:
        list(pool.map(fill, range(len(starts))))
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

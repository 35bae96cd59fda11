# SPDX-License-Identifier: Apache-2.0
"""Input value distributions: ordinary, adversarial and tile-edge probes."""

from __future__ import annotations

import numpy as np

from .dtypes import np_dtype

KINDS = ("normal", "large", "tiny", "mixed", "edge")
#: Largest finite value of each output dtype.
FINITE_MAX = {"float32": 3.4e38, "float16": 65504.0, "bfloat16": 3.38e38}


def draw(workload, rng: np.random.Generator, kind: str) -> list[np.ndarray]:
    """Fresh inputs for ``workload`` of the given ``kind`` (see ``Workload.random_inputs``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    specs = workload.inputs
    # the epilogue's operands follow the op's inputs
    first = len(specs) - len(workload.epilogue.operands) if workload.epilogue else len(specs)
    red = max(1, workload.opdef.reduction(workload.shape))
    arrays = [rng.standard_normal(spec.shape) for spec in specs]
    if kind == "large":
        # Inputs (drawn up to ~5 sigma) stay inside the input dtype, and |sum of red products|
        # under a tenth of what the output dtype holds.
        out_limit = FINITE_MAX[workload.out_dtype]
        root = 0.5 / workload.opdef.degree  # a product of `degree` sums of products
        scale = min(FINITE_MAX[workload.dtype] / 32.0, (out_limit / (160.0 * red)) ** root, 1e4)
        arrays = [a * scale for a in arrays]
    elif kind == "tiny":
        arrays = [a * 1e-3 for a in arrays]
    elif kind == "mixed":
        arrays = [a * 10.0 ** rng.integers(-3, 4, size=a.shape[:-1] + (1,)) for a in arrays]
        if workload.out_dtype == "float16":
            limit = 60.0 ** (1.0 / workload.opdef.degree)  # |result| <= 3600 < fp16's max
            arrays = [np.clip(a, -limit, limit) / np.sqrt(red) for a in arrays]
    elif kind == "edge":
        # the epilogue's operands stay dense: a zeroed divisor is inf, not a tile-edge probe
        arrays = [_edge(a) if i < first else a for i, a in enumerate(arrays)]
    if workload.epilogue is not None:
        for i in workload.epilogue.divisors():  # |x| in [0.5, 2], either sign: never near zero
            shape = specs[first + i].shape
            magnitude = rng.uniform(0.5, 2.0, size=shape)
            arrays[first + i] = np.where(rng.random(shape) < 0.5, -magnitude, magnitude)
    return [a.astype(np_dtype(spec.dtype)) for a, spec in zip(arrays, specs)]


def _edge(a: np.ndarray) -> np.ndarray:
    """Zero everywhere but the last index along each axis (the last tile's last row/col/k)."""
    out = np.zeros_like(a)
    for axis in range(a.ndim):
        index = [slice(None)] * a.ndim
        index[axis] = -1
        out[tuple(index)] = a[tuple(index)]
    return out

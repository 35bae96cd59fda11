# SPDX-License-Identifier: Apache-2.0
"""The dtypes a workload's tensors can have, and their numpy and torch types (a leaf:
workloads, values, the gate, the Relax path and the torch loader all use it)."""

from __future__ import annotations

import numpy as np
import torch

#: Floating dtypes of models, outputs and most ops' inputs.
DTYPES = ("float32", "float16", "bfloat16")
#: 1-byte inputs of the scaled GEMM (``torch._scaled_mm``): their products are exact in fp32.
FP8_DTYPES = ("float8_e4m3fn", "float8_e5m2")
#: Every dtype a workload's input may have.
INPUT_DTYPES = DTYPES + FP8_DTYPES
#: TVM dtype name -> torch dtype, for every dtype a workload's tensors can have
TORCH_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float8_e4m3fn": torch.float8_e4m3fn,
    "float8_e5m2": torch.float8_e5m2,
}
#: Largest finite value of each dtype (e4m3fn has no inf: a larger value rounds to NaN).
FINITE_MAX = {
    "float32": 3.4e38,
    "float16": 65504.0,
    "bfloat16": 3.38e38,
    "float8_e4m3fn": 448.0,
    "float8_e5m2": 57344.0,
}
#: Smallest positive normal of each dtype.
SMALLEST_NORMAL = {
    "float32": 1.18e-38,
    "float16": 6.1e-5,
    "bfloat16": 1.18e-38,
    "float8_e4m3fn": 2.0**-6,
    "float8_e5m2": 2.0**-14,
}


def np_dtype(dtype: str) -> np.dtype:
    """numpy dtype for a TVM dtype name (bfloat16 and fp8 through ml_dtypes)."""
    if dtype == "bfloat16" or dtype in FP8_DTYPES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, dtype))
    return np.dtype(dtype)


def is_extension(dtype: np.dtype) -> bool:
    """Whether numpy knows ``dtype`` only through ml_dtypes (numpy's DLPack export refuses it)."""
    return np.dtype(dtype).name in ("bfloat16", *FP8_DTYPES)

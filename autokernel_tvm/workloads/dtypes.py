# SPDX-License-Identifier: Apache-2.0
"""numpy dtypes for TVM dtype names (a leaf: workloads, values and the gate all use it)."""

from __future__ import annotations

import numpy as np


def np_dtype(dtype: str) -> np.dtype:
    """numpy dtype for a TVM dtype name (bfloat16 through ml_dtypes)."""
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)

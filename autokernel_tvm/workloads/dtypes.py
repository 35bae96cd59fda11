# SPDX-License-Identifier: Apache-2.0
"""numpy and torch dtypes for TVM dtype names (a leaf: workloads, values, the gate, the Relax
path and the torch loader all use it)."""

from __future__ import annotations

import numpy as np
import torch

#: TVM dtype name -> torch dtype, for every dtype a workload's tensors can have
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def np_dtype(dtype: str) -> np.dtype:
    """numpy dtype for a TVM dtype name (bfloat16 through ml_dtypes)."""
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)

# SPDX-License-Identifier: Apache-2.0
"""Tensor-core intrinsics TVM 0.27 lacks: bf16 mma.sync (CUDA) and the MFMA schedule (ROCm)."""


def register_all() -> None:
    """Register this package's TensorIntrins (idempotent)."""
    from . import cuda_bf16

    cuda_bf16.register()

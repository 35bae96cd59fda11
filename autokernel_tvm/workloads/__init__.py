# SPDX-License-Identifier: Apache-2.0
"""TensorIR workloads: GEMM (A@B, A@B.T), batched GEMM, fused epilogues, conv2d NHWC."""

from . import conv2d, gemm  # noqa: F401  (registers the ops)
from .base import OPS, ArgSpec, Workload, WorkloadError, get_op
from .dtypes import np_dtype
from .epilogue import Epilogue, Expr

__all__ = ["OPS", "ArgSpec", "Epilogue", "Expr", "Workload", "WorkloadError", "get_op", "np_dtype"]

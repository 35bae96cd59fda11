# SPDX-License-Identifier: Apache-2.0
"""PyTorch integration: load an exported kernel library as ``torch.ops.autokernel.*`` ops.

Example::

    lib = autokernel_tvm.torch.load("gemm.so")  # checks the sha256 and the embedded manifest
    out = torch.ops.autokernel.gemm_nt_M64_N48_K32_float32(a, b)  # or lib.<name>(a, b)
"""

from . import backend  # noqa: F401  (registers torch.compile(backend="autokernel"))
from .library import KernelOp
from .loader import KernelLibrary, KernelSpec, LibraryError, load, registered_kernels

__all__ = ["KernelLibrary", "KernelOp", "KernelSpec", "LibraryError", "load", "registered_kernels"]

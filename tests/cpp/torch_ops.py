# SPDX-License-Identifier: Apache-2.0
"""The C++ ops from Python: eager, torch.compile (Meta kernel), TorchScript, beside the loader.

    python tests/cpp/torch_ops.py build/libautokernel_torch.so LIB_DIR

Run by ctest after make_library.py. Checks that ``torch.ops.autokernel.{load,call,kernels}``
registered by ``libautokernel_torch.so`` give ``torch.matmul``'s result, trace with
``torch.compile(fullgraph=True)``, script with ``torch.jit.script``, raise the runtime's message
as a RuntimeError, and coexist with ``autokernel_tvm.torch.load``'s per-kernel ops.
"""

from __future__ import annotations

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]

import torch  # noqa: E402
from make_library import python_loadable  # noqa: E402

import autokernel_tvm.torch as ak_torch  # noqa: E402

GEMM = "gemm_M128_N96_K64_float32"


def run(lib: int, kernel: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.ops.autokernel.call(lib, kernel, [a, b])


def main(ops_library: str, lib_dir: str) -> int:
    torch.ops.load_library(ops_library)
    path = os.path.join(lib_dir, "kernels.so")
    lib = torch.ops.autokernel.load(path)
    assert torch.ops.autokernel.kernels(lib)[0] == GEMM
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(128, 64, generator=gen), torch.randn(64, 96, generator=gen)
    want = torch.matmul(a, b)
    torch.testing.assert_close(run(lib, GEMM, a, b), want, rtol=1e-4, atol=1e-4)

    compiled = torch.compile(lambda x, y: run(lib, GEMM, x, y).relu(), fullgraph=True)
    torch.testing.assert_close(compiled(a, b), want.relu(), rtol=1e-4, atol=1e-4)
    scripted = torch.jit.script(run)
    torch.testing.assert_close(scripted(lib, GEMM, a, b), want, rtol=1e-4, atol=1e-4)
    try:
        run(lib, GEMM, a, b.T.contiguous())
        raise AssertionError("a wrong-shape call did not raise")
    except RuntimeError as err:
        assert "argument 'B' has shape (96, 64), expected (64, 96)" in str(err), err

    # forward-only: a call that would need a backward is refused, not given no gradient
    leaf = a.clone().requires_grad_()
    try:
        run(lib, GEMM, leaf, b)
        raise AssertionError("a call on a tensor requiring grad did not raise")
    except RuntimeError as err:
        assert "forward-only: argument 0 requires grad" in str(err), err
    with torch.no_grad():
        torch.testing.assert_close(run(lib, GEMM, leaf, b), want, rtol=1e-4, atol=1e-4)

    # The Python loader's op for the same kernel, in the same process and namespace.
    with tempfile.TemporaryDirectory() as folder:
        py_lib = ak_torch.load(python_loadable(path, folder))
        torch.testing.assert_close(py_lib[GEMM](a, b), run(lib, GEMM, a, b), rtol=0, atol=0)
    print("torch_ops: eager, torch.compile, torch.jit.script and the Python loader agree")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tests/cpp/torch_ops.py build/libautokernel_torch.so LIB_DIR")
    sys.exit(main(sys.argv[1], sys.argv[2]))

# SPDX-License-Identifier: Apache-2.0
"""Check that the C++ runner's output equals the Python loader's on the same inputs.

    python tests/cpp/python_output.py LIB.so KERNEL CPP_OUT.f32 [--seed 0]

``CPP_OUT.f32`` is ``autokernel_runner --save-output`` (float32, row-major). The inputs are drawn
as the runner and ``scripts/bench.py`` draw them (``torch.randn`` on a CPU generator seeded with
``--seed``, in argument order, cast, moved to the kernel's device); the kernel runs through
``autokernel_tvm.torch.load``. Prints one line; exits 1 unless the outputs are bit-identical.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import autokernel_tvm.torch as ak_torch  # noqa: E402
from autokernel_tvm.torch.loader import DEVICE_TYPES, TORCH_DTYPES  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_library import python_loadable  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("library")
    p.add_argument("kernel")
    p.add_argument("cpp_output")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="autokernel_v1_")
    lib = ak_torch.load(python_loadable(args.library, folder))
    entry = lib.entry(args.kernel)
    device = torch.device(DEVICE_TYPES[entry["target"]])
    gen = torch.Generator().manual_seed(args.seed)
    inputs = [
        torch.randn(a["shape"], generator=gen, dtype=torch.float32)
        .to(TORCH_DTYPES[a["dtype"]])
        .to(device)
        for a in entry["inputs"]
    ]
    want = lib[args.kernel](*inputs).float().cpu().numpy()
    got = np.fromfile(args.cpp_output, dtype=np.float32)
    if got.size != want.size:
        print(f"C++ output has {got.size} values, the Python loader's {want.size}")
        return 1
    got = got.reshape(want.shape)
    diff = float(np.abs(got.astype(np.float64) - want).max())
    same = bool(np.array_equal(got, want))
    print(f"C++ vs Python loader, {args.kernel}: max abs diff {diff:.3e}, identical {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

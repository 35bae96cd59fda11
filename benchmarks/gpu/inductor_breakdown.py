# SPDX-License-Identifier: Apache-2.0
"""What torch.compile (``max-autotune-no-cudagraphs``) runs for one ``A @ B.T`` GEMM: each GPU
kernel of a compiled call with its time (torch.profiler), the output's strides (a view of a
padded buffer or not), and cuBLAS on the same shape and on the shape padded to 16-byte rows,
timed in alternation with the L2 flushed (``autokernel_tvm.timing``).

Command (on the GPU box)::

    python benchmarks/gpu/inductor_breakdown.py --shape 8205,5921,2949 --dtypes float16,bfloat16

Writes one JSON line per dtype to ``$OUT/inductor_breakdown.jsonl`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from autokernel_tvm.timing import compare, gpu_kernels  # noqa: E402


def padded(x: int, dtype: torch.dtype) -> int:
    """``x`` elements rounded up to a 16-byte row (TMA's and cuBLAS's fast-path alignment)."""
    per = 16 // dtype.itemsize
    return -(-x // per) * per


def eager(x, y):
    return x @ y.T


def breakdown(m: int, n: int, k: int, name: str) -> dict:
    """One dtype's row: inductor's kernels and output strides, and the three timings."""
    dtype = getattr(torch, name)
    a = torch.randn(m, k, device="cuda", dtype=dtype)
    b = torch.randn(n, k, device="cuda", dtype=dtype)
    torch._dynamo.reset()  # a fresh graph per dtype
    compiled = torch.compile(eager, mode="max-autotune-no-cudagraphs")
    out = compiled(a, b)
    kp, np_ = padded(k, dtype), padded(n, dtype)
    a_pad = torch.zeros(m, kp, device="cuda", dtype=dtype)
    a_pad[:, :k] = a
    b_pad = torch.zeros(np_, kp, device="cuda", dtype=dtype)
    b_pad[:n, :k] = b
    fns = {
        "cublas": lambda: eager(a, b),
        "torch.compile": lambda: compiled(a, b),
        "cublas_padded_operands": lambda: eager(a_pad, b_pad),
    }
    seconds = compare(fns, "cuda", rounds=3, rep_ms=100).seconds
    return {
        "gpu_name": torch.cuda.get_device_name(),
        "shape": [m, n, k],
        "dtype": name,
        "compiled_out_strides": list(out.stride()),
        "compiled_out_storage_elems": out.untyped_storage().nbytes() // out.element_size(),
        "compiled_kernels": gpu_kernels(lambda: compiled(a, b)),
        "cublas_kernels": gpu_kernels(lambda: eager(a, b)),
        "seconds": seconds,
        "tflops": {key: 2 * m * n * k / v / 1e12 for key, v in seconds.items()},
        "command": "python " + " ".join(sys.argv),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="8205,5921,2949", help="M,N,K of A[M,K] @ B[N,K].T")
    ap.add_argument("--dtypes", default="float16,bfloat16")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()
    m, n, k = (int(v) for v in args.shape.split(","))
    for name in args.dtypes.split(","):
        row = breakdown(m, n, k, name)
        print(json.dumps(row, indent=1))
        with open(os.path.join(args.out, "inductor_breakdown.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: Apache-2.0
"""Host time of one call of a compiled model, against the VM's ``main`` it wraps and eager torch.

    python benchmarks/call_overhead.py [--out benchmarks/results/call_overhead_cpu.json]

On a tiny model (8 x 8 matmul on llvm: the kernel is negligible), so what is measured is the
call path a user pays on every forward -- input checks, the VM, DLPack to torch, the output's
structure -- which a GPU timing with the L2 flushed exposes wherever it outlasts the flush
(the problem path ran 4-8% behind its own kernel on the H200, 2026-12-03). Medians of
``--repeats`` runs of ``--calls`` calls each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from autokernel_tvm.config import TuneConfig  # noqa: E402
from autokernel_tvm.relax import tune_model  # noqa: E402
from autokernel_tvm.results import now_iso  # noqa: E402


class Matmul(torch.nn.Module):
    def forward(self, a, b):
        return torch.matmul(a, b)


def per_call_us(fn, calls: int, repeats: int) -> float:
    for _ in range(calls // 10):
        fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(runs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="", help="write the numbers as JSON here")
    args = p.parse_args(argv)
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    config = TuneConfig(target="llvm", trials=1, work_dir=tempfile.mkdtemp())
    model = tune_model(Matmul(), (a, b), config=config, min_task_flops=1e18)
    main_fn = model.vm["main"]
    us = {
        "model": per_call_us(lambda: model(a, b), args.calls, args.repeats),
        "vm_main": per_call_us(lambda: main_fn(a, b), args.calls, args.repeats),
        "torch_eager": per_call_us(lambda: torch.matmul(a, b), args.calls, args.repeats),
    }
    for key, value in us.items():
        print(f"{key:<12} {value:6.2f} us per call")
    if args.out:
        record = {"date": now_iso(), "cpu": platform.processor() or platform.machine(),
                  "command": "python " + " ".join(sys.argv), "us_per_call": us}  # fmt: skip
        with open(args.out, "w") as f:
            json.dump(record, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

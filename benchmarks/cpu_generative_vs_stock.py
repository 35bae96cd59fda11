#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""CPU (llvm): generative space vs stock MetaSchedule, same trial budget, same machine, one run.

    python benchmarks/cpu_generative_vs_stock.py --sizes 512 1024 --trials 64

For each fp32 GEMM size: tune with ``--space stock`` and ``--space generative`` (an empty rule
library, so the generative run starts from nothing), export both verified kernels, then time both
libraries and torch.matmul interleaved in this process (median of rounds of TVM's
``time_evaluator``), and append rows to ``benchmarks/results/cpu.jsonl``: the generative row's
``baseline`` is the stock MetaSchedule kernel measured in the same rounds.

Threads: TVM's runtime defaults to ``hardware_concurrency / 2`` workers on x86 (it assumes SMT), so
on this 2-vCPU machine every TVM kernel ran on ONE thread (tuning measurements included) while torch
used two. ``--threads`` (default: the physical cores, the llvm target's ``num-cores``) sets
``TVM_NUM_THREADS`` before TVM starts, so the tuner's runner workers inherit it, and torch's
thread count to the same value: all three implementations use the same cores. The two TVM kernels
alternate (rotated order) round by round; torch is timed after them (``TORCH_LAST``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: torch is timed after the TVM kernels, never between them: once torch's OpenMP threads exist,
#: the stock 512^3 kernel (2 parallel chunks) measured 150 instead of 226 GFLOP/s (2 threads,
#: same .so, same process), the generative one 219 in both cases.
TORCH_LAST = True
sys.path.insert(0, ROOT)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--trials", type=int, default=64)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--work-dir", default=None)
    p.add_argument("--results", default=os.path.join(ROOT, "benchmarks", "results", "cpu.jsonl"))
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: physical cores)")
    args = p.parse_args()

    import psutil

    threads = args.threads or psutil.cpu_count(logical=False) or os.cpu_count() or 1
    os.environ["TVM_NUM_THREADS"] = str(threads)  # before TVM's thread pool and runner workers
    import numpy as np
    import torch
    import tvm

    from autokernel_tvm import results
    from autokernel_tvm.config import TuneConfig
    from autokernel_tvm.export import export
    from autokernel_tvm.tuner import Tuner
    from autokernel_tvm.workloads import Workload

    torch.set_num_threads(threads)
    work = args.work_dir or tempfile.mkdtemp(prefix="ak_cpu_bench_")
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    for size in args.sizes:
        workload = Workload("gemm", (size, size, size), "float32")
        libs, tuned = {}, {}
        for space in ("stock", "generative"):
            config = TuneConfig(
                target="llvm", num_cores=threads, trials=args.trials, trials_per_iter=32,
                space=space,
                work_dir=os.path.join(work, f"{space}{size}"), save_library=False,
                library_dir=os.path.join(work, f"library{size}"),
            )  # fmt: skip
            tuner = Tuner(config, progress=False)
            start = time.time()
            result = tuner.tune(workload)
            tuned[space] = (result, time.time() - start, tuner)
            libs[space] = os.path.join(work, f"{space}{size}.so")
            export(result, libs[space])
            print(f"{workload.name} {space}: tuned {result.tflops * 1e3:.1f} GFLOP/s "
                  f"in {tuned[space][1]:.0f} s")  # fmt: skip
        rng = np.random.default_rng(0)
        inputs = workload.random_inputs(rng, "normal")
        args_tvm = [tvm.runtime.tensor(a) for a in inputs]
        out = tvm.runtime.tensor(np.zeros(workload.output.shape, np.float32))
        timers = {}
        for space, path in libs.items():
            mod = tvm.runtime.load_module(path)
            name = workload.name
            timers[space] = mod.time_evaluator(name, tvm.cpu(), number=10, repeat=1)
        ta, tb = (torch.from_numpy(a) for a in inputs)

        names = list(timers)
        samples = {name: [] for name in (*names, "torch")}
        for r in range(args.rounds):  # interleaved, so load changes hit both TVM kernels
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotated order
                samples[name].append(timers[name](*args_tvm, out).mean)
        for _ in range(args.rounds):  # after, never between: see TORCH_LAST
            samples["torch"].append(_time_torch(ta, tb))
        median = {k: statistics.median(v) for k, v in samples.items()}
        tflops = {k: workload.flops / v / 1e12 for k, v in median.items()}
        cpu = tuned["stock"][2].device_name()
        for space in ("stock", "generative"):
            result, seconds, _ = tuned[space]
            baseline = "metaschedule-stock" if space == "generative" else "torch"
            base_key = "stock" if space == "generative" else "torch"
            row = {
                "date": results.now_iso(), "device": "cpu", "gpu_name": cpu, "op": workload.op,
                "shape": list(workload.shape), "dtype": workload.dtype, "impl": space,
                "tflops": tflops[space], "baseline": baseline,
                "baseline_tflops": tflops[base_key], "ratio": tflops[space] / tflops[base_key],
                "trials": result.trials, "tune_seconds": seconds, "command": command,
                "latency_us": median[space] * 1e6, "torch_tflops": tflops["torch"],
                "cpu_threads": torch.get_num_threads(), "tvm_threads": threads,
                "space_report": result.space_report,
            }  # fmt: skip
            results.append_result(args.results, row)
        print(f"{workload.name}: stock {tflops['stock'] * 1e3:.1f}  generative "
              f"{tflops['generative'] * 1e3:.1f}  torch {tflops['torch'] * 1e3:.1f} GFLOP/s  "
              f"generative/stock = {tflops['generative'] / tflops['stock']:.2f}x")  # fmt: skip
    return 0


def _time_torch(ta, tb, number: int = 10) -> float:
    import torch

    start = time.perf_counter()
    for _ in range(number):
        torch.matmul(ta, tb)
    return (time.perf_counter() - start) / number


if __name__ == "__main__":
    sys.exit(main())

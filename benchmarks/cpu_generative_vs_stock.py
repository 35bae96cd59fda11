#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""CPU (llvm): generative space vs stock MetaSchedule, same trial budget, same machine, one run.

    python benchmarks/cpu_generative_vs_stock.py --sizes 512 1024 --trials 64

For each fp32 GEMM size: tune with ``--space stock`` and ``--space generative`` (an empty rule
library, so the generative run starts from nothing), export both verified kernels, then time both
libraries and torch.matmul (median of rounds of TVM's
``time_evaluator``), and append rows to ``benchmarks/results/cpu.jsonl``: the generative row's
``baseline`` is the stock MetaSchedule kernel measured in the same rounds.

Threads: TVM's runtime defaults to ``hardware_concurrency / 2`` workers on x86 (it assumes SMT), so
on this 2-vCPU machine every TVM kernel ran on ONE thread (tuning measurements included) while torch
used two. ``--threads`` (default: the physical cores, the llvm target's ``num-cores``) sets
``TVM_NUM_THREADS`` before TVM starts, so the tuner's runner workers inherit it, and torch's
thread count to the same value: all three implementations use the same cores. The two TVM kernels
alternate (rotated order) round by round in a fresh process of their own, and torch is timed in
another: two thread pools in one process spin against each other (see ``ISOLATED``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Final timings run in fresh processes (TVM kernels in one, torch in another): once torch's
#: OpenMP threads exist, TVM kernels in the same process slow down (2 cores: stock 512^3 150
#: instead of 226 GFLOP/s; 16 cores: both kernels at ~55% of what the tuner's runner measured,
#: torch at 34 GFLOP/s).
ISOLATED = True
#: Milliseconds of back-to-back calls per timing sample (the tuner's runner uses 50).
MIN_SAMPLE_MS = 100
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

    from autokernel_tvm import results
    from autokernel_tvm.config import TuneConfig
    from autokernel_tvm.export import export
    from autokernel_tvm.tuner import Tuner
    from autokernel_tvm.workloads import Workload

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
        spawn = multiprocessing.get_context("spawn")
        with spawn.Pool(1) as pool:
            samples = pool.apply(_time_tvm, (libs, workload.name, inputs, args.rounds))
        with spawn.Pool(1) as pool:
            samples["torch"] = pool.apply(_time_torch, (inputs, args.rounds, threads))
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
                "cpu_threads": threads, "tvm_threads": threads,
                "space_report": result.space_report,
            }  # fmt: skip
            results.append_result(args.results, row)
        print(f"{workload.name}: stock {tflops['stock'] * 1e3:.1f}  generative "
              f"{tflops['generative'] * 1e3:.1f}  torch {tflops['torch'] * 1e3:.1f} GFLOP/s  "
              f"generative/stock = {tflops['generative'] / tflops['stock']:.2f}x")  # fmt: skip
    return 0


def _time_tvm(libs: dict, name: str, inputs, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each library's kernel, interleaved in rotated order round by round
    (so load changes hit every kernel); run in a fresh process (``ISOLATED``)."""
    import numpy as np
    import tvm

    args = [tvm.runtime.tensor(a) for a in inputs]
    out = tvm.runtime.tensor(np.zeros((inputs[0].shape[0], inputs[1].shape[1]), np.float32))
    timers = {  # each sample >= MIN_SAMPLE_MS of back-to-back calls: steady state, as the tuner
        space: tvm.runtime.load_module(path).time_evaluator(
            name, tvm.cpu(), number=3, repeat=1, min_repeat_ms=MIN_SAMPLE_MS
        )
        for space, path in libs.items()
    }
    names = list(timers)
    samples = {space: [] for space in names}
    for r in range(rounds):
        for space in names[r % len(names) :] + names[: r % len(names)]:
            samples[space].append(timers[space](*args, out).mean)
    return samples


def _time_torch(inputs, rounds: int, threads: int) -> list[float]:
    """Seconds per ``torch.matmul``, one sample (>= MIN_SAMPLE_MS) per round; run in a fresh
    process."""
    import torch

    torch.set_num_threads(threads)
    ta, tb = (torch.from_numpy(a) for a in inputs)
    torch.matmul(ta, tb)  # warm-up: thread pool start
    samples = []
    for _ in range(rounds):
        start, calls = time.perf_counter(), 0
        while calls < 3 or time.perf_counter() - start < MIN_SAMPLE_MS / 1e3:
            torch.matmul(ta, tb)
            calls += 1
        samples.append((time.perf_counter() - start) / calls)
    return samples


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: Apache-2.0
"""Benchmark the kernels of an exported library against PyTorch, in one process.

    python scripts/bench.py LIB.so [--kernel NAME] [--warmup-ms 100] [--rep-ms 500] \
        [--device-name h100] [--impl generative] [--trials N --tune-seconds S] \
        [--results-dir benchmarks/results] [--no-append] [--seed 0] [--cpu-threads N]

Loads LIB.so with ``autokernel_tvm.torch.load``, draws random inputs in the manifest's
dtypes/shapes on the kernel's device, times the kernel and the torch expression of its op
(``autokernel_tvm.torch.baselines``) with ``autokernel_tvm.timing.time_callable``, checks the
kernel's output against torch's, prints a table and appends one row per kernel to
``<results-dir>/<device>.jsonl`` (``autokernel_tvm.results`` schema). ``--trials`` and
``--tune-seconds`` default to the manifest's; ``--impl`` to the design space that found the kernel.
``tflops`` is the torch op as a user calls it (custom-op dispatch and argument checks included);
``kernel_only_latency_us`` times the bare TVM function with a preallocated output.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402

import autokernel_tvm.torch as ak_torch  # noqa: E402
from autokernel_tvm import results, timing  # noqa: E402
from autokernel_tvm.torch.baselines import make_baseline, max_rel_error  # noqa: E402
from autokernel_tvm.torch.loader import DEVICE_TYPES, TORCH_DTYPES  # noqa: E402

#: Max relative error vs torch above which a warning is printed (torch rounds to the input dtype).
ERROR_LIMIT = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("library", help="the .so written by autokernel_tvm.export (manifest beside it)")
    p.add_argument("--kernel", action="append", help="kernel name (repeatable; default: all)")
    p.add_argument("--warmup-ms", type=float, default=100.0)
    p.add_argument("--rep-ms", type=float, default=500.0)
    p.add_argument("--device-name", help="results file name (default: from the device)")
    p.add_argument("--impl", help="implementation label (default: the manifest's design space)")
    p.add_argument("--trials", type=int, help="tuning trials (default: the manifest's)")
    p.add_argument("--tune-seconds", type=float, help="tuning time (default: the manifest's)")
    p.add_argument("--results-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--no-append", action="store_true", help="print only, write no results")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--cpu-threads",
        type=int,
        help="threads for torch and TVM's pool on the CPU (default: theirs). A loaded 2-core box "
        "measured torch.matmul 64x48x32 at 16-31 ms with 2 threads, 5 us with 1",
    )
    return p.parse_args(argv)


def device_names(device: torch.device) -> tuple[str, str]:
    """(short name for the results file, full name) of the device."""
    if device.type == "cuda":
        full = torch.cuda.get_device_name(device)
        return results.device_short_name(full), full
    return "cpu", _cpu_name()


def _cpu_name() -> str:
    from autokernel_tvm.targets import cpu_name

    return cpu_name()


def bench_kernel(lib, name: str, args, device: torch.device, gen: torch.Generator) -> dict:
    """Time kernel ``name`` and its torch baseline; return the measurements."""
    entry = lib.entry(name)
    inputs = [
        torch.randn(a["shape"], generator=gen, dtype=torch.float32)
        .to(TORCH_DTYPES[a["dtype"]])
        .to(device)
        for a in entry["inputs"]
    ]
    op = lib[name]
    baseline = make_baseline(entry, inputs)
    got, want = op(*inputs), baseline()
    error = max_rel_error(got, want)
    kw = {"warmup_ms": args.warmup_ms, "rep_ms": args.rep_ms}
    latency = timing.time_callable(lambda: op(*inputs), device, **kw)
    raw, out = lib.function(name), torch.empty_like(got)
    raw_latency = timing.time_callable(lambda: raw(*inputs, out), device, **kw)
    base_latency = timing.time_callable(baseline, device, **kw)
    flops = entry["flops"]
    return {
        "entry": entry,
        "latency_s": latency,
        "baseline_latency_s": base_latency,
        "raw_latency_s": raw_latency,
        "tflops": flops / latency / 1e12,
        "baseline_tflops": flops / base_latency / 1e12,
        "max_rel_error": error if math.isfinite(error) else None,
    }


def make_row(lib, m: dict, args, device: str, gpu_name: str, command: str) -> dict:
    entry = m["entry"]
    trials = args.trials if args.trials is not None else entry.get("trials")
    tune_s = args.tune_seconds if args.tune_seconds is not None else entry.get("tune_seconds")
    return {
        "date": results.now_iso(),
        "device": device,
        "gpu_name": gpu_name,
        "op": entry["op"],
        "shape": list(entry["shape"]),
        "dtype": entry["dtype"],
        "out_dtype": entry["output"]["dtype"],
        "kernel": entry["name"],
        "impl": args.impl or entry.get("space") or "autokernel-tvm",
        "tflops": m["tflops"],
        "baseline": "torch",
        "baseline_tflops": m["baseline_tflops"],
        "ratio": m["tflops"] / m["baseline_tflops"],
        "trials": trials,
        "tune_seconds": tune_s,
        "command": command,
        "latency_us": m["latency_s"] * 1e6,
        "baseline_latency_us": m["baseline_latency_s"] * 1e6,
        # The TVM function alone (preallocated output, no custom-op dispatch or checks).
        "kernel_only_latency_us": m["raw_latency_s"] * 1e6,
        "max_rel_error": m["max_rel_error"],
        "target": entry["target"],
        "arch": entry.get("arch"),
        "tvm_version": lib.manifest["tvm_version"],
        "torch_version": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "library_sha256": lib.manifest["sha256"],
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
        os.environ["TVM_NUM_THREADS"] = str(args.cpu_threads)  # read when TVM's pool starts
    command = shlex.join(["python", *(sys.argv if argv is None else ["scripts/bench.py", *argv])])
    lib = ak_torch.load(args.library)
    names = args.kernel or lib.names
    unknown = [n for n in names if n not in lib]
    if unknown:
        sys.exit(f"bench.py: no kernel(s) {unknown} in {args.library}; kernels: {lib.names}")
    kind = lib.manifest["target"]["kind"]
    device = torch.device(DEVICE_TYPES[kind])
    short, gpu_name = device_names(device)
    short = args.device_name or short
    gen = torch.Generator().manual_seed(args.seed)
    rows = []
    for name in names:
        m = bench_kernel(lib, name, args, device, gen)
        rows.append(make_row(lib, m, args, short, gpu_name, command))
        err, limit = m["max_rel_error"], ERROR_LIMIT[m["entry"]["dtype"]]
        if err is None or err > limit:
            print(
                f"WARNING: {name}: max relative error {err} vs torch exceeds {limit}",
                file=sys.stderr,
            )
    print_table(rows)
    if not args.no_append:
        path = os.path.join(args.results_dir, f"{short}.jsonl")
        for row in rows:
            results.append_result(path, row)
        print(f"appended {len(rows)} row(s) to {path}")
    return 0


def print_table(rows: list[dict]) -> None:
    header = ("kernel", "us", "TFLOP/s", "torch us", "torch TFLOP/s", "ratio", "max rel err")
    lines = [header]
    for r in rows:
        err = "nan" if r["max_rel_error"] is None else f"{r['max_rel_error']:.2e}"
        lines.append(
            (
                r["kernel"],
                f"{r['latency_us']:.2f}",
                f"{r['tflops']:.4g}",
                f"{r['baseline_latency_us']:.2f}",
                f"{r['baseline_tflops']:.4g}",
                f"{r['ratio']:.3f}",
                err,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: Apache-2.0
"""Benchmark the kernels of an exported library against PyTorch, in one process.

    python scripts/bench.py LIB.so [--kernel NAME] [--warmup-ms 100] [--rep-ms 500] \
        [--device-name h100] [--impl generative] [--trials N --tune-seconds S] \
        [--results-dir benchmarks/results] [--no-append] [--seed 0] [--cpu-threads N]

Loads LIB.so with ``autokernel_tvm.torch.load`` (sha256 and embedded manifest checked), draws
random inputs in the manifest's dtypes/shapes on the kernel's device, checks the kernel's output
against the torch expression of its op (``autokernel_tvm.torch.baselines``), then times the op,
the bare kernel and torch in alternation with ``autokernel_tvm.timing.compare`` (CPU: torch on
TVM's thread count), prints a table and appends one row per kernel to
``<results-dir>/<device>.jsonl`` (``autokernel_tvm.results`` schema). ``--trials`` and
``--tune-seconds`` default to the manifest's; ``--impl`` to the design space that found the kernel.
``tflops`` is the torch op as a user calls it (custom-op dispatch and argument checks included);
``kernel_only_latency_us`` times the bare TVM function with a preallocated output.

Exit status: 0 done; 1 a kernel's output is wrong (error above the limit: no row is written);
2 a bad argument or file (one line ``error: <argument or file>: ...``).
"""

from __future__ import annotations

import math
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _cli  # noqa: E402  (stdlib only: --help and argument errors never import torch or TVM)

#: Max relative error vs torch above which a kernel is wrong (torch rounds to the input dtype).
#: fp8: both sides multiply the same fp8 values exactly; they differ in accumulation and output
#: rounding only. "tf32": an fp32 kernel allowed TF32 (both sides round the inputs to fp16's
#: 10-bit mantissa; seen: 8.9e-4 on a 3x3 conv of 256 channels)
ERROR_LIMIT = {
    "float32": 1e-4,
    "tf32": 1e-2,
    "float16": 1e-2,
    "bfloat16": 5e-2,
    "float8_e4m3fn": 2e-2,
    "float8_e5m2": 2e-2,
}


def error_limit(entry: dict) -> float:
    """The max relative error vs torch of a correct kernel of manifest entry ``entry``."""
    return ERROR_LIMIT["tf32" if entry.get("precision") == "tf32" else entry["dtype"]]


def parse_args(argv=None):
    """Parse and check the arguments; raises ``_cli.CliError`` (one line) on a bad one."""
    p = _cli.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("library", help="the .so written by autokernel_tvm.export (manifest beside it)")
    p.add_argument("--kernel", action="append", help="kernel name (repeatable; default: all)")
    p.add_argument("--warmup-ms", type=_cli.positive_float, default=100.0)
    p.add_argument("--rep-ms", type=_cli.positive_float, default=500.0)
    p.add_argument("--device-name", help="results file name (default: from the device)")
    p.add_argument("--impl", help="implementation label (default: the manifest's design space)")
    p.add_argument(
        "--trials", type=_cli.non_negative_int, help="tuning trials (default: the manifest's)"
    )
    p.add_argument(
        "--tune-seconds", type=_cli.positive_float, help="tuning time (default: the manifest's)"
    )
    p.add_argument("--results-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--no-append", action="store_true", help="print only, write no results")
    p.add_argument("--seed", type=_cli.non_negative_int, default=0)
    p.add_argument(
        "--cpu-threads",
        type=_cli.positive_int,
        help="threads for torch and TVM's pool on the CPU (default: TVM's pool size, torch "
        "follows). A loaded 2-core box measured torch.matmul 64x48x32 at 16-31 ms with 2 "
        "threads, 5 us with 1",
    )
    args = p.parse_args(argv)
    _cli.check_library_file(args.library)
    if args.device_name is not None and not args.device_name.replace("-", "").isalnum():
        raise _cli.CliError("--device-name", f"{args.device_name!r}: use letters, digits and -")
    if not args.no_append:
        _cli.check_work_dir("--results-dir", args.results_dir)
    return args


def device_names(device) -> tuple[str, str]:
    """(short name for the results file, full name) of the device."""
    import torch

    from autokernel_tvm import results

    if device.type == "cuda":
        full = torch.cuda.get_device_name(device)
        return results.device_short_name(full), full
    return "cpu", _cpu_name()


def _cpu_name() -> str:
    from autokernel_tvm.targets import cpu_name

    return cpu_name()


def bench_kernel(lib, name: str, args, device, gen) -> dict:
    """Check kernel ``name`` against torch, then time it and its baseline in alternation."""
    import torch

    from autokernel_tvm import timing
    from autokernel_tvm.torch.baselines import make_baseline, max_rel_error
    from autokernel_tvm.torch.loader import TORCH_DTYPES
    from autokernel_tvm.workloads import get_op

    entry = lib.entry(name)
    scalars = get_op(entry["op"]).scalars  # per-tensor scales: positive, near 1
    inputs = [
        (
            torch.rand(a["shape"], generator=gen) * 1.5 + 0.5
            if a["name"] in scalars
            else torch.randn(a["shape"], generator=gen, dtype=torch.float32)
        )
        .to(TORCH_DTYPES[a["dtype"]])
        .to(device)
        for a in entry["inputs"]
    ]
    op = lib[name]
    baseline = make_baseline(entry, inputs)
    got, want = op(*inputs), baseline()
    error = max_rel_error(got, want)
    raw, out = lib.function(name), torch.empty_like(got)
    measured = timing.compare(
        {"op": lambda: op(*inputs), "kernel": lambda: raw(*inputs, out), "torch": baseline},
        device,
        warmup_ms=args.warmup_ms,
        rep_ms=args.rep_ms,
        threads=args.cpu_threads,
        warn=False,  # printed once by main, one line each
    )
    latency, base_latency = measured.seconds["op"], measured.seconds["torch"]
    flops = entry["flops"]
    return {
        "entry": entry,
        "latency_s": latency,
        "baseline_latency_s": base_latency,
        "raw_latency_s": measured.seconds["kernel"],
        "tflops": flops / latency / 1e12,
        "baseline_tflops": flops / base_latency / 1e12,
        "max_rel_error": error if math.isfinite(error) else None,
        "threads": measured.threads,
        "timing_warnings": measured.warnings,
    }


def make_row(lib, m: dict, args, device: str, gpu_name: str, command: str) -> dict:
    import torch

    from autokernel_tvm import results
    from autokernel_tvm.torch.baselines import baseline_name

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
        # impl names the family (or space); its parameters are a field of their own
        "impl": args.impl
        or (entry.get("genome") or {}).get("family")
        or entry.get("space")
        or "autokernel-tvm",
        "params": (entry.get("genome") or {}).get("params"),
        "tflops": m["tflops"],
        "baseline": baseline_name(m["entry"]),
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
        # torch and TVM's pool ran with this many threads (CPU), timed in alternation.
        "cpu_threads": m["threads"] if m["threads"] is not None else torch.get_num_threads(),
        "timing": "alternating",
        "timing_warnings": m["timing_warnings"],
        "library_sha256": lib.manifest["sha256"],
    }


def main(argv=None) -> int:
    return _cli.run(_main, argv, resumable=False)


def _main(argv) -> int:
    args = parse_args(argv)
    if args.cpu_threads:
        os.environ["TVM_NUM_THREADS"] = str(args.cpu_threads)  # read when TVM's pool starts
    import torch

    import autokernel_tvm.torch as ak_torch
    from autokernel_tvm import results
    from autokernel_tvm.torch.loader import DEVICE_TYPES

    command = shlex.join(["python", *(sys.argv if argv is None else ["scripts/bench.py", *argv])])
    try:
        lib = ak_torch.load(args.library)
    except ak_torch.LibraryError as err:
        message = str(err).removeprefix(f"{args.library}: ")
        raise _cli.CliError(args.library, message) from None
    names = args.kernel or lib.names
    unknown = [n for n in names if n not in lib]
    if unknown:
        raise _cli.CliError("--kernel", f"no kernel(s) {unknown} in {args.library}; "
                            f"kernels: {lib.names}")  # fmt: skip
    kind = lib.manifest["target"]["kind"]
    device = torch.device(DEVICE_TYPES[kind])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise _cli.CliError(args.library, f"a {kind} library; this machine has no GPU for torch")
    short, gpu_name = device_names(device)
    short = args.device_name or short
    gen = torch.Generator().manual_seed(args.seed)
    rows, wrong = [], []
    for name in names:
        m = bench_kernel(lib, name, args, device, gen)
        rows.append(make_row(lib, m, args, short, gpu_name, command))
        err, limit = m["max_rel_error"], error_limit(m["entry"])
        if err is None or err > limit:
            wrong.append(f"{name}: max relative error {err} vs torch exceeds {limit}")
    print_table(rows)
    for row in rows:
        for message in row["timing_warnings"]:
            print(f"warning: {row['kernel']}: {message}", file=sys.stderr)
    if wrong:
        for message in wrong:
            print(f"error: {message}: the kernel is wrong; no results written", file=sys.stderr)
        return 1
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

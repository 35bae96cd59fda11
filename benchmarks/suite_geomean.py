# SPDX-License-Identifier: Apache-2.0
"""Where the any-shape suite stands: the latest committed row of each shape and dtype of
``benchmarks/gpu/shape_suite.py`` on each GPU, and the geomean of its speed against cuBLAS and
torch.compile (issue goals: geomean >= 1.0x cuBLAS, no shape below 0.85x, every irregular
shape faster than torch.compile).

    python benchmarks/suite_geomean.py [--rows benchmarks/results/h100.jsonl ...] \
        [--device h100] [--out F.md]

Reads every row whose command ran ``shape_suite.py`` (``ratio`` = torch time / kernel time,
both measured in the same process), names it by the suite's ``SHAPES`` (its ``shape_name``, or
its op and shape), and keeps the latest row per device, shape, dtype and baseline. The rows
of one device may come from several runs and sessions (the suite takes longer than one device
call); the table gives each row's date.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINES = ("torch", "torch.compile")  # cuBLAS (torch.matmul) and inductor
LOW = 0.85  # the floor against cuBLAS
SIXTEEN = ("float16", "bfloat16")  # the suite's dtypes (fp32 runs as 3xTF32 are listed apart)


def suite_shapes() -> dict[str, tuple]:
    """The suite's ``SHAPES`` (name -> (op, shape)), read from ``shape_suite.py`` itself."""
    path = os.path.join(ROOT, "benchmarks", "gpu", "shape_suite.py")
    spec = importlib.util.spec_from_file_location("shape_suite", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SHAPES


def latest(paths: list[str], shapes: dict[str, tuple]) -> dict[tuple, dict]:
    """``(device, shape name, dtype, baseline) -> row``, the latest of each."""
    names = {(op, tuple(shape)): name for name, (op, shape) in shapes.items()}
    out: dict[tuple, dict] = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                if "shape_suite.py" not in row.get("command", ""):
                    continue
                name = row.get("shape_name") or names.get((row["op"], tuple(row["shape"])))
                if name not in shapes or row.get("baseline") not in BASELINES:
                    continue
                key = (row["device"], name, row["dtype"], row["baseline"])
                if key not in out or row["date"] >= out[key]["date"]:
                    out[key] = row
    return out


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def summarize(rows: dict[tuple, dict], shapes: dict[str, tuple], device: str) -> list[str]:
    """Markdown for one device: a summary line per dtype and in all, then a row per shape."""
    dtypes = sorted({k[2] for k in rows if k[0] == device})
    lines = [f"## {device}", ""]
    every = {b: [] for b in BASELINES}
    for dtype in dtypes:
        got = {b: {n: rows[(device, n, dtype, b)] for n in shapes if (device, n, dtype, b) in rows}
               for b in BASELINES}  # fmt: skip
        cublas = {n: r["ratio"] for n, r in got["torch"].items()}
        compiled = {n: r["ratio"] for n, r in got["torch.compile"].items()}
        for b, ratios in (("torch", cublas), ("torch.compile", compiled)):
            if dtype in SIXTEEN:
                every[b] += list(ratios.values())
        low = sorted((r, n) for n, r in cublas.items() if r < LOW)
        odd = {n: compiled[n] for n in compiled if n.startswith("odd_")}
        missing = sorted(set(shapes) - set(cublas))
        lines.append(
            f"- **{dtype}**: {len(cublas)} of {len(shapes)} shapes; geomean "
            f"**{geomean(list(cublas.values())):.3f}x cuBLAS**, "
            f"{geomean(list(compiled.values())):.3f}x torch.compile; lowest "
            + (f"{min(cublas.values()):.3f} ({min(cublas, key=cublas.get)})" if cublas else "-")
            + f"; below {LOW}: "
            + (", ".join(f"{n} {r:.3f}" for r, n in low) or "none")
            + "; irregular vs torch.compile: "
            + (", ".join(f"{n} {r:.2f}x" for n, r in sorted(odd.items())) or "-")
            + (f"; not measured: {', '.join(missing)}" if missing else "")
        )
    lines.append(
        f"- **fp16 and bf16**: {len(every['torch'])} rows; geomean "
        f"**{geomean(every['torch']):.3f}x cuBLAS**, {geomean(every['torch.compile']):.3f}x "
        "torch.compile"
    )
    lines += ["", "| shape | dtype | date | vs cuBLAS | vs torch.compile | TFLOP/s | kernel |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in shapes:
        for dtype in dtypes:
            row = rows.get((device, name, dtype, "torch"))
            if row is None:
                continue
            other = rows.get((device, name, dtype, "torch.compile"))
            vs = f"{other['ratio']:.3f}" if other else "-"
            lines.append(
                f"| {name} | {dtype} | {row['date'][:10]} | {row['ratio']:.3f} | {vs} | "
                f"{row['tflops']:.1f} | {row.get('impl', '')} |"
            )
    return lines + [""]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = sorted(glob.glob(os.path.join(ROOT, "benchmarks", "results", "*.jsonl")))
    p.add_argument("--rows", nargs="+", default=default, help="result row files (*.jsonl)")
    p.add_argument("--device", default="", help="only this device (h100, h200)")
    p.add_argument("--out", help="also write the tables (markdown) here")
    args = p.parse_args(argv)
    missing = [f for f in args.rows if not os.path.isfile(f)]
    if missing:
        print(f"error: --rows: no such file {missing[0]}", file=sys.stderr)
        return 2
    shapes = suite_shapes()
    rows = latest(args.rows, shapes)
    devices = sorted({k[0] for k in rows if not args.device or k[0] == args.device})
    if not devices:
        where = f" for {args.device}" if args.device else ""
        print(f"error: no shape-suite rows in --rows{where}", file=sys.stderr)
        return 2
    command = "python benchmarks/suite_geomean.py"
    if args.device:
        command += f" --device {args.device}"
    head = [
        "# The any-shape suite: latest row of each shape and dtype",
        "",
        f"`{command}` (ratios: torch time / kernel time, both in the same process).",
        "",
    ]
    text = "\n".join(head + [line for d in devices for line in summarize(rows, shapes, d)])
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

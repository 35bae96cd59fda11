# SPDX-License-Identifier: Apache-2.0
"""What the search cost: for every committed tuning report, how many seconds of tuning it took
to reach 95% of the best speed any committed run found for the same workload on the same GPU.

    python benchmarks/search_cost.py [--reports benchmarks/results] [--within 120] \
        [--since 2026-12-02] [--out F.md]

A tuning report (``report.json``, as ``scripts/tune.py`` and the problem and shape suites
write them) has the run's best-so-far curve, one point per trial, and its tuning seconds (the
search, not the correctness gate); reports written since the search recorded its
``timeline`` (seconds and best-so-far after each measurement) give the time exactly, older
ones are read as if every trial took the same time (marked ``~``). Runs resumed from an
earlier run's records are left out (their seconds are not what the search cost; reports from
before ``resumed_trials`` was recorded: under a second of tuning). The device is
the results folder the report lies under (``h100/``, ``h200/``). The reference is the best of
the committed runs, not of the whole space: a shape tuned once is its own reference.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from autokernel_tvm.report import read_reports  # noqa: E402

DEVICES = ("h100", "h200")
SHARE = 0.95


def runs(paths: list[str]) -> list[dict]:
    """One entry per tuning report: device, workload name, seconds, curve, timeline."""
    out = []
    for path, report in read_reports(paths):
        if not report.get("curve") or "tune_seconds" not in report:
            continue  # not a tuning report
        if report.get("resumed_trials") or float(report["tune_seconds"]) < 1.0:
            continue
        parts = os.path.normpath(path).split(os.sep)
        device = next((d for d in DEVICES if d in parts), "")
        if not device:
            continue
        out.append({
            "path": os.path.relpath(path, ROOT),
            "device": device,
            "workload": report["workload"]["name"],
            "seconds": float(report["tune_seconds"]),
            "curve": [float(v) for v in report["curve"]],
            "timeline": (report.get("space_report") or {}).get("timeline"),
            "trials": int(report.get("trials", len(report["curve"]))),
            "date": ((report.get("space_report") or {}).get("library_entry") or {}).get("date")
            or "",
        })  # fmt: skip
    return out


def time_to(run: dict, target: float) -> tuple[float | None, bool]:
    """Seconds until the run's best reached ``target`` TFLOP/s (None: never), and whether that
    is exact (from the timeline) or spread evenly over the trials."""
    if run["timeline"]:
        return next((t for t, best in run["timeline"] if best >= target), None), True
    curve = run["curve"]
    first = next((i for i, best in enumerate(curve) if best >= target), None)
    if first is None:
        return None, False
    return (first + 1) / len(curve) * run["seconds"], False


def table(entries: list[dict], within: float) -> tuple[list[str], dict]:
    """Markdown rows, and counts: runs, runs that reached the share within ``within`` s, and
    both among the runs whose workload was tuned more than once (a lone run is its own
    reference, so it reaches 95% of itself by definition)."""
    best: dict[tuple, float] = {}
    count: dict[tuple, int] = {}
    for r in entries:
        key = (r["device"], r["workload"])
        best[key] = max(best.get(key, 0.0), max(r["curve"]))
        count[key] = count.get(key, 0) + 1
    lines = [
        f"| device | date | workload | trials | tuning s | best of the run | best of all runs | "
        f"to {SHARE:.0%} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    counts = {"runs": len(entries), "met": 0, "compared": 0, "compared_met": 0}
    for r in sorted(entries, key=lambda r: (r["device"], r["workload"], r["path"])):
        key = (r["device"], r["workload"])
        ref = best[key]
        seconds, exact = time_to(r, SHARE * ref)
        met = seconds is not None and seconds <= within
        counts["met"] += met
        if count[key] > 1:
            counts["compared"] += 1
            counts["compared_met"] += met
        shown = "not reached" if seconds is None else f"{'' if exact else '~'}{seconds:.0f} s"
        lines.append(
            f"| {r['device']} | {r['date']} | {r['workload']} | {r['trials']} | "
            f"{r['seconds']:.0f} | {max(r['curve']):.1f} | {ref:.1f} | {shown} |"
        )
    return lines, counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reports", nargs="+", default=[os.path.join(ROOT, "benchmarks", "results")])
    p.add_argument("--within", type=float, default=120.0, help="seconds of tuning allowed")
    p.add_argument("--since", default="", help="only runs of this date (YYYY-MM-DD) or later")
    p.add_argument("--out", help="also write the table (markdown) here")
    args = p.parse_args(argv)
    missing = [d for d in args.reports if not os.path.isdir(d)]
    if missing:
        print(f"error: --reports: no such directory {missing[0]}", file=sys.stderr)
        return 2
    paths = [
        f for d in args.reports for f in glob.glob(os.path.join(d, "**", "*.json"), recursive=True)
    ]
    entries = [r for r in runs(paths) if not args.since or r["date"] >= args.since]
    if not entries:
        print("error: no tuning reports found under --reports", file=sys.stderr)
        return 2
    lines, n = table(entries, args.within)
    summary = (
        f"{n['met']} of {n['runs']} runs reached {SHARE:.0%} of the best committed speed of "
        f"their workload within {args.within:g} s of tuning; of the {n['compared']} runs whose "
        f"workload was tuned more than once, {n['compared_met']}"
    )
    text = "\n".join([summary, "", *lines]) + "\n"
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

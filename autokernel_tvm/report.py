# SPDX-License-Identifier: Apache-2.0
"""Run reports: the JSON summary, the tuning-curve PNG and the one-screen text summary."""

from __future__ import annotations

import glob
import json
import os
import tarfile


def write_json(path: str, data: dict) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, default=str)
    return path


def read_reports(paths) -> list[tuple[str, dict]]:
    """``(path, object)`` of each file at ``paths`` (in sorted order) holding a JSON object:
    what the readers of committed tuning reports start from (the library refresh, the search
    cost); files that do not parse or hold something else are skipped, their fields are the
    caller's to check."""
    out = []
    for path in sorted(paths):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out.append((path, data))
    return out


def pack_reports(work_dir: str, archive: str) -> str:
    """Pack every tuning ``report.json`` under ``work_dir`` (genomes proposed, measured and
    rejected, the search's timeline) into one gzipped tar at ``archive``, as
    ``reports/<workload>/...``: the benchmark suites call it after each problem or shape, so a
    run cut off keeps what it finished, and the GPU machine sends back 8 files, not a work
    folder. Commit them unpacked: the proposal model trains on them and
    ``benchmarks/search_cost.py`` reads their timelines."""
    paths = glob.glob(os.path.join(work_dir, "**", "report.json"), recursive=True)
    with tarfile.open(archive + ".part", "w:gz") as tar:
        for path in sorted(paths):
            tar.add(path, arcname=os.path.join("reports", os.path.relpath(path, work_dir)))
    os.replace(archive + ".part", archive)
    return archive


def plot_curve(path: str, curve: list, title: str, baseline: float | None = None) -> str:
    """Best TFLOP/s after each trial, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    ax.plot(range(1, len(curve) + 1), curve, drawstyle="steps-post", label="best so far")
    if baseline:
        ax.axhline(baseline, color="gray", linestyle="--", label="baseline")
    ax.set_xlabel("trials")
    ax.set_ylabel("TFLOP/s")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def summary_lines(summary: dict) -> list[str]:
    """A few lines a person reads at the end of a run."""
    wl = summary["workload"]
    lines = [
        f"workload   {wl['name']}  ({wl['layout']}, {wl['flops'] / 1e9:.3g} GFLOP)",
        f"target     {summary['target']} {summary.get('arch') or ''}  space={summary['space']}",
        f"best       {summary['best_latency_us']:.2f} us  =  {summary['tflops']:.4g} TFLOP/s",
        f"trials     {summary['trials']} in {summary['tune_seconds']:.0f} s",
    ]
    resumed = summary.get("resumed_trials", 0)
    if resumed:  # the seconds are this run's: an earlier run in work_dir measured these
        lines[-1] += f" ({resumed} resumed from the work folder)"
    seconds = (summary.get("space_report") or {}).get("seconds")
    if seconds:  # where the time went: generating kernels, building, timing, the gate
        lines.append("time       " + ", ".join(f"{p} {t:.1f} s" for p, t in seconds.items()))
    fallback = (summary.get("space_report") or {}).get("fallback")
    if fallback:  # no generative family took the workload: say so beside space=stock
        lines.append(f"fallback   {fallback}")
    hit = (summary.get("space_report") or {}).get("library_hit")
    if hit:  # a rerun: the library's entry for this workload on this device cut the budget
        lines.append(
            f"library    this workload on this device: {hit['tflops']:.4g} TFLOP/s "
            f"({hit['date']}); {hit['trials']} of {hit['of']} trials (hit_trials)"
        )
    stopped = (summary.get("space_report") or {}).get("stopped")
    if stopped:  # the search ended on its time budget, not on its trials
        lines.append(f"stopped    {stopped}")
    failures = summary.get("failures") or {}
    if failures:
        lines.append(f"failures   {sum(failures.values())}:")
        for reason, count in sorted(failures.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {count:5d}  {reason}")
    else:
        lines.append("failures   none")
    verify = summary.get("verify") or {}
    if verify:
        lines.append(f"verified   {len(verify['checks'])} checks passed")
    if summary.get("genome"):
        lines += _winner(summary["genome"], summary["workload"])
    return lines


def _winner(genome_json: dict, workload_json: dict) -> list[str]:
    """The winning genome and what it adds over its family's first template, then the
    family's notes on it for this workload (:meth:`Family.notes`)."""
    from .families import get
    from .space.genome import Genome
    from .workloads import Workload

    genome = Genome.from_json(genome_json)
    family = get(genome.family)
    added = family.additions(genome.params)
    line = genome.describe() + (f"  (adds: {', '.join(added)})" if added else "")
    notes = family.notes(genome.params, Workload.from_json(workload_json))
    return [f"winner     {line}"] + [f"note       {note}" for note in notes]

# SPDX-License-Identifier: Apache-2.0
"""Train the learned proposal model on every measured genome in committed tuning reports, report
how well it picks winners on shapes it has not seen, and ship it beside the rule library.

    python scripts/train_ranker.py [--reports benchmarks/results WORK_DIR ...] \
        [--target cuda] [--arch sm_90a] [--out schedules] \
        [--report benchmarks/results/ranker_cuda.json]

Reads every ``*.json`` tuning report under ``--reports`` (a run's ``report.json``: the workload
and each measured genome's TFLOP/s) and every ``genome_check*.jsonl`` of
``benchmarks/gpu/genome_check.py`` (chosen genomes, gated and timed in one process), evaluates
the model leave-one-shape-out (:func:`autokernel_tvm.space.ranker.held_out`: does its top 4
of a run's measured genomes hold the run's winner, against the search's own order and random
picks), writes that evaluation to ``--report``, then trains on everything and writes
``<out>/<target>/ranker.json``, which tuning runs read (``TuneConfig.proposal_model``).

Exit status: 0 done; 2 a bad argument or no usable records (one line ``error: ...``).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reports", nargs="+", default=[os.path.join(ROOT, "benchmarks", "results")])
    p.add_argument("--target", default="cuda", choices=("cuda",))
    p.add_argument("--arch", default="sm_90a")
    p.add_argument("--family", default="cuda.wgmma")
    p.add_argument(
        "--out",
        default=os.path.join(ROOT, "schedules"),
        help="library root: the model goes to <out>/<target>/ranker.json",
    )
    p.add_argument(
        "--report", default=os.path.join(ROOT, "benchmarks", "results", "ranker_cuda.json")
    )
    args = p.parse_args(argv)
    missing = [d for d in args.reports if not os.path.isdir(d)]
    if missing:
        print(f"error: --reports: no such directory {missing[0]}", file=sys.stderr)
        return 2

    from autokernel_tvm.space import checks, ranker
    from autokernel_tvm.targets import make_target

    target = make_target(args.target, args.arch)
    paths = [
        f
        for d in args.reports
        for pattern in ("*.json", checks.FILES)  # tuning reports, direct checks
        for f in glob.glob(os.path.join(d, "**", pattern), recursive=True)
    ]
    data = [r for r in ranker.records(paths) if r.genome.family == args.family]
    if not data:
        print(f"error: --reports: no measured {args.family} genomes found", file=sys.stderr)
        return 2
    evaluation = ranker.held_out(data, args.family, target)
    evaluation["runs_read"] = sorted({os.path.relpath(r.run, ROOT) for r in data})
    for fold in evaluation["folds"]:
        fold["run"] = os.path.relpath(fold["run"], ROOT)
    with open(args.report, "w") as f:
        json.dump(evaluation, f, indent=1)
    model = ranker.train(data, args.family, target)
    model.meta["held_out"] = {
        k: evaluation[k]
        for k in ("top", "runs", "model", "search_order", "random", "model_top_best_mean",
                  "search_order_top_best_mean")
    }  # fmt: skip
    path = os.path.join(args.out, args.target, ranker.FILE)
    model.save(path)
    print(f"{len(data)} measured {args.family} genomes from {model.meta['runs']} runs")
    top, rates = (
        evaluation["top"],
        {k: f"{evaluation[k]:.0%}" for k in ("model", "search_order", "random")},
    )
    print(
        f"held out by shape, {evaluation['runs']} runs: the winner in the model's top {top} in "
        f"{rates['model']} (the search's first {top}: {rates['search_order']}, random: "
        f"{rates['random']}); its fastest of the {top} at "
        f"{evaluation['model_top_best_mean']:.1%} of the winner on average (the search's first: "
        f"{evaluation['search_order_top_best_mean']:.1%})"
    )
    print(f"wrote {os.path.relpath(path, ROOT)} and {os.path.relpath(args.report, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

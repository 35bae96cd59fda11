# SPDX-License-Identifier: Apache-2.0
"""Refresh the shipped rule library from the committed tuning reports and direct checks: every
verified winner measured on or after ``--since`` goes in, entries measured before it go out, the
best three genomes per workload are kept.

    python scripts/update_library.py [--reports benchmarks/results] [--since 2026-12-04] \
        [--target cuda] [--out schedules]

Reads every ``*.json`` tuning report under ``--reports`` (``report.json`` of ``scripts/tune.py``
and the problem and shape suites) whose gate passed and whose run recorded a library entry
(device, arch, date), and the fastest gated genome of each run in every ``genome_check*.jsonl``
(``benchmarks/gpu/genome_check.py``: chosen genomes timed in one process); rewrites
``<out>/<target>/{gemm,conv2d}.json``, which every tuning run reads
as its prior (:func:`autokernel_tvm.space.library.prior`). ``--since`` defaults to the first
day of the tuner's flushed timing (each candidate timed after an L2 flush, as a model calls
it): runs before it timed decode GEMMs with their weights still in L2, up to 1.8x too fast.
Run ``scripts/train_ranker.py`` after it: the proposal model ships beside the library.

Exit status: 0 done; 2 a bad argument or no verified winner found (one line ``error: ...``).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
FLUSHED_SINCE = "2026-12-04"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reports", nargs="+", default=[os.path.join(ROOT, "benchmarks", "results")])
    p.add_argument("--since", default=FLUSHED_SINCE, help="YYYY-MM-DD (default %(default)s)")
    p.add_argument("--target", default="cuda", choices=("cuda", "rocm", "llvm"))
    p.add_argument("--out", default=os.path.join(ROOT, "schedules"), help="library root")
    args = p.parse_args(argv)
    missing = [d for d in args.reports if not os.path.isdir(d)]
    if missing:
        print(f"error: --reports: no such directory {missing[0]}", file=sys.stderr)
        return 2
    if args.since and not _is_date(args.since):
        print(f"error: --since: expected YYYY-MM-DD, got {args.since!r}", file=sys.stderr)
        return 2

    from autokernel_tvm.space import checks, library

    def under(pattern):
        return [
            f
            for d in args.reports
            for f in glob.glob(os.path.join(d, "**", pattern), recursive=True)
        ]

    paths, checked = under("*.json"), under(checks.FILES)
    found = library.from_reports(paths, args.target, args.since)
    found += library.from_checks(checked, args.target, args.since)
    if not found:
        print(
            f"error: --reports: no verified {args.target} winner measured since {args.since}",
            file=sys.stderr,
        )
        return 2
    summary = library.refresh(args.out, args.target, found, args.since)
    print(
        f"{len(found)} verified winners since {args.since} in {len(paths)} reports and "
        f"{len(checked)} direct checks"
    )
    for family, s in summary.items():
        print(
            f"  {args.target}/{family}.json: {s['workloads']} workloads; "
            f"{s['kept']} entries kept, {s['added']} added, {s['dropped']} dropped"
        )
    return 0


def _is_date(text: str) -> bool:
    import datetime

    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


if __name__ == "__main__":
    sys.exit(main())

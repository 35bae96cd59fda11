# SPDX-License-Identifier: Apache-2.0
"""benchmarks/search_cost.py: seconds to 95% of the best committed run, from the search's
timeline where a report has one, spread over the trials where it does not."""

import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    "search_cost", os.path.join(ROOT, "benchmarks", "search_cost.py")
)
search_cost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(search_cost)

WORKLOAD = {"name": "gemm_nt_M64_N64_K64_float16"}


def _report(path, curve, seconds, timeline=None, **extra):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    space = {"library_entry": {"date": "2026-12-03"}}
    if timeline is not None:
        space["timeline"] = timeline
    with open(path, "w") as f:
        json.dump({"workload": WORKLOAD, "curve": curve, "tune_seconds": seconds,
                   "trials": len(curve), "space_report": space, **extra}, f)  # fmt: skip


def test_seconds_to_95_percent_exact_or_spread_over_trials(tmp_path, capsys):
    h200 = tmp_path / "h200"
    _report(str(h200 / "a" / "report.json"), [50.0, 90.0, 100.0], 30.0)  # no timeline: 3 of 3
    _report(str(h200 / "b" / "report.json"), [80.0, 96.0], 200.0, [[40.0, 80.0], [150.0, 96.0]])
    _report(str(h200 / "c" / "report.json"), [10.0], 0.02)  # resumed, before resumed_trials
    _report(str(h200 / "d" / "report.json"), [99.0], 50.0, resumed_trials=1)
    _report(str(tmp_path / "elsewhere" / "report.json"), [1.0], 5.0)  # no device folder
    assert search_cost.main(["--reports", str(tmp_path), "--out", str(tmp_path / "t.md")]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("1 of 2 runs reached 95%") and first.endswith("tuned more than once, 1")
    assert "| ~30 s |" in out and "| 150 s |" in out  # b reached 96 >= 95 only at 150 s > 120
    assert (tmp_path / "t.md").read_text() == out
    assert search_cost.main(["--reports", str(tmp_path), "--since", "2027-01-01"]) == 2

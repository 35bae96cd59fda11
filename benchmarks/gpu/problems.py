# SPDX-License-Identifier: Apache-2.0
"""The problem suite on one GPU: each problem through ``scripts/tune.py --problem``'s path and
through ``torch.compile(backend="autokernel")``, against eager and inductor, in one process.

Command (on the GPU box; a subset with 16 trials per kernel takes ~8 minutes)::

    python benchmarks/gpu/problems.py --only llama_mlp,linear_gelu --trials 16 --dtypes float16

``--stop-after-s S`` starts no problem after S seconds, so a device call with a time limit
returns every finished problem's rows and reports instead of being killed inside one.

For each problem of ``benchmarks/problems`` and dtype:

1. ``autokernel_tvm.problem.tune_problem`` (what ``scripts/tune.py --problem`` runs): tune every
   dispatched kernel, check three fresh seeds against eager and an fp64 run, export the ``.so``;
   the exported ``ModelNew`` library is reloaded and timed (the drop-in a user gets);
2. ``torch.compile(model, backend="autokernel")`` with the same tuning database (its kernels are
   found there, so this measures dispatch, not a second search), checked the same way;
3. eager, ``torch.compile`` (inductor) and both of ours are timed in alternation, one call of
   each in turn with the L2 flushed before each (:func:`autokernel_tvm.timing.compare`,
   ``--rounds`` rounds of ``--rep-ms`` each), medians.

Rows (shared schema, ``op`` = ``problem:<name>``, ``impl`` = ``autokernel-problem`` or
``autokernel-backend``, one with ``baseline`` ``eager`` and one with ``torch.compile``) are
appended to ``$OUT/problems.jsonl``; ``$OUT/problems_report.json`` has each problem's per-op
report (kernel, family, kernel time vs torch's op) and the correctness details; each kernel's
tuning report goes into ``$OUT/reports.tgz`` (unpack and commit them: the proposal model trains
on them; one archive, because the GPU machine sends back at most 8 files). The tuning work
(databases, built kernels, the exported libraries) stays in ``--work-dir``, outside ``$OUT``: a
rerun with the same folder resumes from it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from autokernel_tvm.config import TuneConfig  # noqa: E402
from autokernel_tvm.problem import load_problem, tune_problem  # noqa: E402
from autokernel_tvm.relax import cast, check, reference64  # noqa: E402
from autokernel_tvm.relax.runtime import load_model  # noqa: E402
from autokernel_tvm.report import pack_reports  # noqa: E402
from autokernel_tvm.results import append_result, device_short_name, now_iso  # noqa: E402
from autokernel_tvm.timing import compare  # noqa: E402
from autokernel_tvm.torch import backend as _backend  # noqa: E402,F401  (registers "autokernel")

PROBLEMS = os.path.join(ROOT, "benchmarks", "problems")


def flops_of(model, inputs) -> int:
    """FLOPs of one eager forward (torch's flop counter: matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    return int(counter.get_total_flops())


def run_problem(name: str, dtype: str, args, tuner) -> dict:
    path = os.path.join(args.problems_dir, name + ".py")
    device = "cpu" if args.target == "llvm" else "cuda"
    # the exported ModelNew and backend cache stay in the work folder: the GPU machine sends
    # back 8 files, and they are rebuilt by any rerun
    out_dir = os.path.join(tuner.config.work_dir, "exports", f"{name}_{dtype}")
    os.makedirs(out_dir, exist_ok=True)
    start = time.time()
    _phase(name, dtype, "tuning the problem path", start)
    report = tune_problem(
        path,
        config=tuner.config,
        dtype=dtype,
        export=os.path.join(out_dir, name),
        tuner=tuner,
        seeds=(11, 12, 13),
        rep_ms=50.0,
        compare=False,  # timed below, in alternating rounds
    )
    result = {"problem": name, "dtype": dtype, "problem_path": report}
    if report.get("status") != "ok":
        return result
    tune_seconds = time.time() - start
    problem = load_problem(path)
    torch.manual_seed(0)  # the weights tune_problem used
    model = problem.Model(*problem.get_init_inputs()).eval().to(device)
    model, _ = cast(model, (), dtype)
    torch.manual_seed(21)
    inputs = cast(model, tuple(x.to(device) for x in problem.get_inputs()), dtype)[1]
    exported = load_model(report["export"]["library"])
    _phase(name, dtype, "checking; compiling the backend path", start)
    with torch.no_grad():
        expected, ref64 = model(*inputs), reference64(model, inputs)
        result["problem_check"] = check(exported(*inputs), expected, inputs, ref64)
        start = time.time()
        options = {"target": args.target, "trials": args.trials, "work_dir": tuner.config.work_dir}
        options["cache_dir"] = os.path.join(tuner.config.work_dir, "backend_cache")
        ours_backend = torch.compile(model, backend="autokernel", options=options)
        result["backend_check"] = check(ours_backend(*inputs), expected, inputs, ref64)
        backend_seconds = time.time() - start
        _phase(name, dtype, "compiling torch.compile (inductor)", start)
        # static shapes: a later compile of the same forward in this process (the other dtype)
        # must not turn into a dynamic-shape graph, which inductor lowers differently
        inductor = torch.compile(model, dynamic=False)
        inductor(*inputs)
        _phase(name, dtype, "timing", start)
        impls = {
            "eager": lambda: model(*inputs),
            "torch.compile": lambda: inductor(*inputs),
            "autokernel-problem": lambda: exported(*inputs),
            "autokernel-backend": lambda: ours_backend(*inputs),
        }
        # one call of each in turn (L2 flushed before each), so drift hits all alike; timing
        # each implementation in its own block put ours 4-8% behind its kernel timed alone,
        # where in alternation the model and its bare kernel are equal (dispatch_probe.py)
        timing = compare(impls, device, rep_ms=args.rep_ms * args.rounds, rounds=args.rounds)
        if args.lead_us and device == "cuda":  # the same with each call queued behind a GPU
            # sleep: what is left of a gap to eager is the GPU's work, not the CPU's launch
            queued = compare(impls, device, rep_ms=args.rep_ms * args.rounds,
                             rounds=args.rounds, lead_us=args.lead_us)  # fmt: skip
            result["seconds_queued"] = {"lead_us": args.lead_us, **queued.seconds}
    times = dict(timing.seconds)
    result["timing_warnings"] = timing.warnings
    flops = flops_of(model, inputs)
    result.update({"seconds": times, "flops": flops, "tune_seconds": tune_seconds})
    result["backend_seconds"] = backend_seconds
    gpu = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    for impl in ("autokernel-problem", "autokernel-backend"):
        checked = result["problem_check" if impl.endswith("problem") else "backend_check"]
        for baseline in ("eager", "torch.compile"):
            row = {
                "date": now_iso(),
                "device": device_short_name(gpu),
                "gpu_name": gpu,
                "op": f"problem:{name}",
                "shape": list(inputs[0].shape),
                "dtype": dtype,
                "impl": impl,
                "tflops": flops / times[impl] / 1e12,
                "baseline": baseline,
                "baseline_tflops": flops / times[baseline] / 1e12,
                "ratio": times[baseline] / times[impl],
                "trials": args.trials,
                "hit_trials": args.hit_trials,  # a kernel's trials where the library held it
                "tune_seconds": tune_seconds if impl.endswith("problem") else backend_seconds,
                "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
                "latency_us": times[impl] * 1e6,
                "baseline_latency_us": times[baseline] * 1e6,
                "correct": bool(checked["passed"] and report["correct"]),
                "rel_error": checked["rel_error"],
                "elementwise_ratio": checked.get("elementwise_ratio"),
                "kernels": [{k: o.get(k) for k in KERNEL_FIELDS} for o in report.get("ops", [])],
                "stage_seconds": report.get("stage_seconds"),
            }
            append_result(os.path.join(args.out, "problems.jsonl"), row)
    return result


#: a row's per-kernel fields (problem.op_timings)
KERNEL_FIELDS = ("workload", "family", "kernel_us", "torch_us", "tune_seconds", "trials",
                 "library_hit")  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="comma-separated problem names (default all)")
    parser.add_argument("--dtypes", default="float16", help="comma-separated: float16,bfloat16")
    parser.add_argument("--trials", type=int, default=16, help="measured candidates per kernel")
    parser.add_argument(
        "--hit-trials",
        type=int,
        default=TuneConfig.hit_trials,
        help="trials for a kernel the library holds measured on this GPU (0: --trials always)",
    )
    parser.add_argument("--time-budget", type=float, default=0.0, help="search seconds per kernel")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    parser.add_argument("--rep-ms", type=float, default=100.0, help="timing per call and round")
    parser.add_argument("--out", default=os.environ.get("OUT", "out"), help="results folder")
    parser.add_argument(
        "--work-dir",
        default=os.path.join(tempfile.gettempdir(), "autokernel_problems_work"),
        help="tuning databases, built kernels and exports (outside --out: the GPU machine "
        "sends --out back, and the built libraries put it over the return limit)",
    )
    parser.add_argument("--target", default="cuda", help="cuda; llvm for a CPU smoke run")
    parser.add_argument("--problems-dir", default=PROBLEMS, help="folder of problem files")
    parser.add_argument(
        "--stop-after-s", type=float, default=0.0, help="start no problem after this (0: off)"
    )
    parser.add_argument(
        "--lead-us",
        type=float,
        default=0.0,
        help="also time every call queued behind this much GPU sleep (report only: "
        "seconds_queued, the CPU's launch cost taken out)",
    )
    args = parser.parse_args(argv)
    begun = time.time()
    from autokernel_tvm.relax import model_tuner

    names = [n for n in args.only.split(",") if n] or sorted(
        f[:-3] for f in os.listdir(args.problems_dir) if f.endswith(".py")
    )
    os.makedirs(args.out, exist_ok=True)
    work_dir = args.work_dir
    config = TuneConfig.from_env(
        target=args.target, trials=args.trials, hit_trials=args.hit_trials, work_dir=work_dir,
        time_budget_s=args.time_budget,
    )  # fmt: skip
    tuner = model_tuner(config, progress=False)
    results = []
    for dtype in args.dtypes.split(","):
        for name in names:
            start = time.time()
            if args.stop_after_s and start - begun > args.stop_after_s:
                print(f"stopped after {start - begun:.0f} s: {name} {dtype} not started")
                return 0
            try:
                result = run_problem(name, dtype, args, tuner)
            except Exception as err:  # one broken problem must not lose the others' rows
                result = {"problem": name, "dtype": dtype, "error": f"{type(err).__name__}: {err}"}
            result["wall_seconds"] = time.time() - start
            results.append(result)
            with open(os.path.join(args.out, "problems_report.json"), "w") as f:
                json.dump(results, f, indent=1, default=str)
            _print_row(result)
            pack_reports(work_dir, os.path.join(args.out, "reports.tgz"))
    return 0


def _phase(name: str, dtype: str, what: str, start: float) -> None:
    """One line per phase, at once: a run cut short by its time limit still says where it was."""
    print(f"  {name} {dtype}: {what} (t={time.time() - start:.0f} s)", file=sys.stderr, flush=True)


def _print_row(r: dict) -> None:
    head = f"{r['problem']:<22} {r['dtype']:<9}"
    if "seconds" not in r:
        why = r.get("error") or r["problem_path"].get("reason") or "not correct"
        print(f"{head} FAILED: {str(why)[:200]}", flush=True)
        return
    t = {k: v * 1e3 for k, v in r["seconds"].items()}
    ok = r["problem_check"]["passed"] and r["backend_check"]["passed"]
    print(
        f"{head} eager {t['eager']:8.3f} ms  inductor {t['torch.compile']:8.3f}  "
        f"ours(problem) {t['autokernel-problem']:8.3f} "
        f"({t['eager'] / t['autokernel-problem']:.2f}x eager)  "
        f"ours(backend) {t['autokernel-backend']:8.3f}  correct {ok}  "
        f"tune {r['tune_seconds']:.0f}s",
        flush=True,
    )
    stages = r["problem_path"].get("stage_seconds") or {}
    if stages:
        spent = ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
        print(f"    tuning: {spent} (import: the dispatched kernels' tuning within)", flush=True)
    if "seconds_queued" in r:
        q = {k: v * 1e3 for k, v in r["seconds_queued"].items() if k != "lead_us"}
        print(f"    queued behind {r['seconds_queued']['lead_us']:.0f} us of GPU sleep: "
              + "  ".join(f"{k} {v:.3f}" for k, v in q.items()), flush=True)  # fmt: skip
    for op in r["problem_path"].get("ops", []):
        if "kernel_us" in op:
            print(
                f"    {op['workload'][:60]:<60} {op['family'][:28]:<28} "
                f"{op['kernel_us']:9.1f} us vs torch {op['torch_us']:9.1f} us"
                + (
                    f"  tuned {op['tune_seconds']:.1f} s, {op['trials']} trials"
                    + (" (library hit)" if op.get("library_hit") else "")
                    if "tune_seconds" in op
                    else ""
                ),
                flush=True,
            )
        else:
            print(f"    {op['call']}: TVM lowering ({op['reason'][:80]})", flush=True)


if __name__ == "__main__":
    sys.exit(main())

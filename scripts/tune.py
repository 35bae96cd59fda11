#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Tune one kernel (or a whole PyTorch problem file), verify it and export it.

    python scripts/tune.py --target llvm --op gemm --shape 512,512,512 --dtype float32 \
        --trials 64 --work-dir runs/gemm512 --export out/gemm512.so
    python scripts/tune.py --target cuda --op gemm_nt --shape 4096,4096,4096 --dtype float16 \
        --trials 256 --work-dir runs/h100 --export out/gemm.so
    python scripts/tune.py --target cuda --op gemm --shape 4096,4096,4096 --dtype float16 \
        --build-only 16          # no GPU needed: sample, build with nvcc, count failures
    python scripts/tune.py --problem model.py --target llvm --trials 32 --export out/model.so
    python scripts/tune.py --list-ops

Writes ``<work-dir>/<workload>/report.json`` (or ``--report``) and a PNG tuning curve beside it.
A killed run resumes from ``--work-dir``: measured candidates are kept in its databases.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    from autokernel_tvm import config

    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="environment: " + "; ".join(f"{k}: {v}" for k, v in config.ENV_VARS.items()),
    )
    p.add_argument("--target", choices=config.TARGETS, default="llvm", help="back end")
    p.add_argument(
        "--arch",
        help="sm_90a, sm_80, ... (cuda; default: this GPU, else sm_90a), "
        "gfx942, gfx90a, or an LLVM CPU",
    )
    p.add_argument("--op", default="gemm", help="workload op (see --list-ops)")
    p.add_argument("--shape", default="512,512,512", help="comma-separated dims of the op")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--out-dtype", default="", help="output dtype (default: fp32 accumulator)")
    p.add_argument("--trials", type=int, default=64, help="candidates to measure in total")
    p.add_argument("--trials-per-iter", type=int, default=32, help="candidates per batch")
    p.add_argument("--work-dir", default=None, help="database dir; a rerun resumes from it")
    p.add_argument("--space", choices=config.SPACES, default="generative", help="design space")
    p.add_argument("--export", metavar="OUT.so", help="export the verified kernel here")
    p.add_argument("--report", help="JSON report path (default: in the work dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--build-workers", type=int, default=0, help="0: one per CPU")
    p.add_argument(
        "--build-only",
        type=int,
        metavar="N",
        default=0,
        help="sample N candidates, build them (nvcc for cuda), report; no device",
    )
    p.add_argument(
        "--problem",
        metavar="FILE.py",
        help="tune a PyTorch problem file (Model, get_inputs, get_init_inputs)",
    )
    p.add_argument("--rpc-tracker", metavar="HOST:PORT", help="measure on its RPC servers")
    p.add_argument("--rpc-key", default="", help="device key of the RPC servers")
    p.add_argument("--rpc-devices", type=int, default=0, help="servers used at once (0: all free)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-ops", action="store_true", help="list workload ops and exit")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from autokernel_tvm import report as report_lib
    from autokernel_tvm.config import ConfigError, TuneConfig
    from autokernel_tvm.targets import TargetError
    from autokernel_tvm.tuner import TuneError, Tuner
    from autokernel_tvm.workloads import OPS, Workload, WorkloadError

    if args.list_ops:
        for name, op in sorted(OPS.items()):
            print(f"{name:16s} shape={','.join(op.dims):28s} {op.doc}")
        return 0
    try:
        config = TuneConfig.from_env(
            target=args.target,
            arch=args.arch,
            trials=args.trials,
            trials_per_iter=args.trials_per_iter,
            work_dir=args.work_dir,
            space=args.space,
            build_workers=args.build_workers or None,
            seed=args.seed,
            rpc_tracker=args.rpc_tracker,
            rpc_key=args.rpc_key or None,
            rpc_devices=args.rpc_devices or None,
        )
        if args.problem:
            return _problem(args, config)
        shape = tuple(int(s) for s in args.shape.split(","))
        workload = Workload(args.op, shape, args.dtype, args.out_dtype)
        tuner = Tuner(config, progress=not args.no_progress)
        if args.build_only:
            return _build_only(args, tuner, workload)
        result = tuner.tune(workload)
    except (ConfigError, WorkloadError, TargetError, TuneError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = result.summary()
    report_path = args.report or os.path.join(tuner.workload_dir(workload), "report.json")
    if args.export:
        from autokernel_tvm.export import export

        summary["export"] = export(result, args.export)
    report_lib.write_json(report_path, summary)
    png = report_lib.plot_curve(
        os.path.splitext(report_path)[0] + ".png", result.curve, workload.name
    )
    print("\n".join(report_lib.summary_lines(summary)))
    print(f"report     {report_path}\ncurve      {png}")
    if args.export:
        print(f"exported   {args.export} (+ .json manifest)")
    return 0


def _build_only(args, tuner, workload) -> int:
    from autokernel_tvm.candidates import build_kernels, sample_candidates

    space = tuner.stock_space() if args.space == "stock" else tuner.design_space(workload)
    mod, proposals = tuner.tuning_module(workload)  # conv2d: implicit GEMM; odd shapes: padded
    report = sample_candidates(mod, tuner.target, space, args.build_only)
    out = {"sketch": [p.to_json() for p in proposals], **report.to_json()}
    if args.space == "generative":  # whole-kernel families (cuda.wgmma): build their genomes
        kernels = tuner.kernel_candidates(workload, args.build_only)
        out["kernels"] = build_kernels([mod for _, mod in kernels], tuner.target).to_json()
        out["kernels"]["genomes"] = [genome.describe() for genome, _ in kernels]
    print(json.dumps(out, indent=1))
    return 0


def _problem(args, config) -> int:
    from autokernel_tvm.problem import tune_problem

    dtype = None if args.dtype == "float32" else args.dtype
    report = tune_problem(args.problem, config=config, dtype=dtype, export=args.export)
    print(json.dumps(report, indent=1, default=str))
    if args.report:
        from autokernel_tvm.report import write_json

        write_json(args.report, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

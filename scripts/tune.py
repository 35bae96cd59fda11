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

Exit status: 0 done; 2 a bad argument or file (one line ``error: <argument>: ...``, checked
before TVM is imported, output paths included); 1 a problem file whose tuned model is wrong or
could not be exported.
"""

from __future__ import annotations

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _cli  # noqa: E402  (stdlib only: --help and argument errors never import TVM)


def parse_args(argv=None):
    """Parse and check the arguments; raises ``_cli.CliError`` (one line) on a bad one."""
    p = _cli.Parser(
        description=__doc__.split("\n\n")[0],
        formatter_class=_cli.argparse.RawDescriptionHelpFormatter,
        epilog="environment: " + "; ".join(f"{k}: {v}" for k, v in _cli.env_vars().items()),
    )
    p.add_argument("--target", choices=_cli.TARGETS, default="llvm", help="back end")
    p.add_argument(
        "--arch",
        help="cuda: sm_90a, sm_80, ... (default: this GPU, else sm_90a); rocm: gfx942, gfx90a; "
        "not for llvm (CPU kernels are built for this machine's CPU)",
    )
    p.add_argument("--op", default="gemm", help="workload op (see --list-ops)")
    p.add_argument("--shape", default="512,512,512", help="comma-separated dims of the op")
    p.add_argument(
        "--dtype",
        default=None,
        choices=_cli.DTYPES + _cli.FP8_DTYPES,
        help="input dtype (default float32; fp8: --op gemm_scaled_nt, torch._scaled_mm's "
        "GEMM); with --problem the model is cast to it (default: its own dtype)",
    )
    p.add_argument(
        "--out-dtype",
        default="",
        choices=["", *_cli.DTYPES],
        help="output dtype (default: fp32 accumulator)",
    )
    p.add_argument(
        "--allow-tf32",
        action="store_true",
        help="float32 inputs may be multiplied as TF32 (torch's allow_tf32): faster, ~10-bit "
        "mantissas; without it fp32 GEMMs keep fp32 accuracy (3xTF32 on Hopper)",
    )
    p.add_argument(
        "--fp8-fast-accum",
        action="store_true",
        help="fp8 products may be summed over all of K in the tensor core's ~14-bit accumulator "
        "(torch._scaled_mm's use_fast_accum): faster, less accurate at large K; without it fp8 "
        "sums are promoted to fp32 every 128 products",
    )
    p.add_argument(
        "--trials", type=_cli.positive_int, default=64, help="candidates to measure in total"
    )
    p.add_argument(
        "--hit-trials",
        type=_cli.non_negative_int,
        default=4,
        metavar="N",
        help="trials where the library holds this workload measured on this device as a whole "
        "kernel (a rerun): its genome, its upgrade and the next proposals (0: always --trials)",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds of search per kernel, then the best measured so far is verified (0: none)",
    )
    p.add_argument(
        "--trials-per-iter", type=_cli.positive_int, default=32, help="candidates per batch"
    )
    p.add_argument("--work-dir", default=None, help="database dir; a rerun resumes from it")
    p.add_argument("--space", choices=_cli.SPACES, default="generative", help="design space")
    p.add_argument("--export", metavar="OUT.so", help="export the verified kernel here")
    p.add_argument("--report", help="JSON report path (default: in the work dir)")
    p.add_argument("--seed", type=_cli.seed, default=0)
    p.add_argument("--build-workers", type=_cli.non_negative_int, default=0, help="0: one per CPU")
    p.add_argument(
        "--build-only",
        type=_cli.non_negative_int,
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
    p.add_argument(
        "--no-proposal-model",
        action="store_true",
        help="draw genomes without the learned proposal model (schedules/<target>/ranker.json)",
    )
    p.add_argument(
        "--held-back-genes",
        action="store_true",
        help="also draw gene values not yet shown on a GPU to win (e.g. cuda.wgmma's "
        "block_n=192, regs=split, order=hilbert)",
    )
    p.add_argument("--list-ops", action="store_true", help="list workload ops and exit")
    args = p.parse_args(argv)
    validate(args)
    return args


def validate(args) -> None:
    """Check everything that can be checked without TVM; sets ``args.dims`` (the shape)."""
    _cli.check_arch(args.target, args.arch)
    args.dims = None
    if args.problem:
        _cli.check_problem_file(args.problem)
        if args.dtype in _cli.FP8_DTYPES:
            raise _cli.CliError(
                "--dtype",
                f"{args.dtype} is an input of --op gemm_scaled_nt; a --problem's "
                f"model is cast to one of {_cli.DTYPES}",
            )
    else:
        args.dtype = args.dtype or "float32"
        if not args.list_ops:
            args.dims = _cli.parse_shape(args.shape, args.op)
    _cli.check_work_dir("--work-dir", args.work_dir)
    _cli.check_output_file("--export", args.export)
    _cli.check_output_file("--report", args.report)


def main(argv=None) -> int:
    return _cli.run(_main, argv)


def _input_errors() -> tuple:
    """What a bad argument or workload raises: a one-line error and exit status 2."""
    from autokernel_tvm.config import ConfigError
    from autokernel_tvm.targets import TargetError
    from autokernel_tvm.tuner import TuneError
    from autokernel_tvm.workloads import WorkloadError

    return ConfigError, WorkloadError, TargetError, TuneError, ValueError


def _main(argv) -> int:
    args = parse_args(argv)
    from autokernel_tvm.config import TuneConfig
    from autokernel_tvm.tuner import Tuner
    from autokernel_tvm.workloads import OPS, Workload

    if args.list_ops:
        for name, op in sorted(OPS.items()):
            print(f"{name:16s} shape={','.join(op.dims):28s} {op.doc}")
        return 0
    try:
        config = TuneConfig.from_env(
            target=args.target,
            arch=args.arch,
            trials=args.trials,
            hit_trials=args.hit_trials,
            time_budget_s=args.time_budget,
            trials_per_iter=args.trials_per_iter,
            work_dir=args.work_dir,
            space=args.space,
            build_workers=args.build_workers or None,
            seed=args.seed,
            rpc_tracker=args.rpc_tracker,
            rpc_key=args.rpc_key or None,
            rpc_devices=args.rpc_devices or None,
            proposal_model=not args.no_proposal_model,
            held_back_genes=args.held_back_genes,
            allow_tf32=args.allow_tf32,
            allow_tf32_conv=args.allow_tf32,
        )
        if args.problem:
            return _problem(args, config)
        precision = "tf32" if args.allow_tf32 else "fast_accum" if args.fp8_fast_accum else ""
        workload = Workload(args.op, args.dims, args.dtype, args.out_dtype, None, precision)
        tuner = Tuner(config, progress=not args.no_progress)
    except _input_errors() as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with tuner:  # its build workers stop with the run, however it ends
        return _op(args, tuner, workload)


def _op(args, tuner, workload) -> int:
    from autokernel_tvm import report as report_lib

    try:
        if args.build_only:
            return _build_only(args, tuner, workload)
        result = tuner.tune(workload)
    except _input_errors() as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = result.summary()
    report_path = args.report or os.path.join(tuner.workload_dir(workload), "report.json")
    if args.export:
        from autokernel_tvm.export import ExportError, export

        try:
            summary["export"] = export(result, args.export)
        except ExportError as err:
            report_lib.write_json(report_path, summary)  # the run is kept, only export failed
            print(f"error: --export {args.export}: {err}", file=sys.stderr)
            return 1
    report_lib.write_json(report_path, summary)
    png = report_lib.plot_curve(
        os.path.splitext(report_path)[0] + ".png", result.curve, workload.name
    )
    print("\n".join(report_lib.summary_lines(summary)))
    print(f"report     {report_path}\ncurve      {png}")
    if args.export:
        print(f"exported   {args.export} (+ .json manifest)")
        pitches = [k["out_row_pitch"] for k in summary["export"]["kernels"] if "out_row_pitch" in k]
        if pitches:  # what torch's loader hands back (README: Outputs)
            print(f"output     a view of rows {pitches[0]} elements apart (torch's loader; "
                  "plain rows elsewhere take a copy)")  # fmt: skip
    return 0


def _build_only(args, tuner, workload) -> int:
    from autokernel_tvm.candidates import build_only

    report = build_only(tuner, workload, args.build_only, stock=args.space == "stock")
    print(json.dumps(report, indent=1))
    built = report.get("built", 0) + sum(
        report.get(part, {}).get("built", 0) for part in ("design_space", "kernels")
    )
    if not built:  # a code-generation check must be able to fail
        why = report.get("nothing_to_build") or "every sampled candidate failed to build"
        print(f"error: --build-only: nothing built: {why}", file=sys.stderr)
        return 1
    return 0


def _problem(args, config) -> int:
    import traceback

    from autokernel_tvm.problem import ProblemError, tune_problem
    from autokernel_tvm.relax import model_tuner

    dtype = args.dtype  # None: the model's own
    try:
        with model_tuner(config, progress=not args.no_progress) as tuner:
            report = tune_problem(
                args.problem, config=config, dtype=dtype, export=args.export, tuner=tuner
            )
    except ProblemError as err:
        raise _cli.CliError("--problem", str(err)) from None
    except Exception as err:
        # The problem file's own code raised (import, __init__, get_inputs, forward): name the
        # line in the user's file. An error of ours has no frame there and keeps its traceback.
        path = os.path.abspath(args.problem)
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == path]
        if not frames:
            raise
        raise _cli.CliError(
            "--problem",
            f"{args.problem}: line {frames[-1].lineno} raised {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}; fix the problem file",
        ) from None
    print(json.dumps(report, indent=1, default=str))
    if args.report:
        from autokernel_tvm.report import write_json

        write_json(args.report, report)
    if report.get("status") != "ok":
        reason = str(report.get("reason", "no reason recorded")).splitlines()[0]
        raise _cli.CliError("--problem", f"{args.problem} cannot be tuned: {reason}")
    if not report.get("correct"):
        print(
            f"error: --problem {args.problem}: the tuned model disagrees with eager PyTorch "
            f"(relative errors {report.get('rel_errors')}, tolerance {report.get('tolerance')})",
            file=sys.stderr,
        )
        return 1
    if args.export and not report.get("export"):
        print(f"error: --export {args.export}: nothing was exported", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

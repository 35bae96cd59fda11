# SPDX-License-Identifier: Apache-2.0
"""The any-shape suite on one GPU: each GEMM shape tuned, then timed against cuBLAS
(``torch.matmul``) and torch.compile (``max-autotune-no-cudagraphs``) in one process.

Command (on the GPU box, after ``source .devcache/remote-setup.sh``)::

    python benchmarks/gpu/shape_suite.py --dtypes float16,bfloat16 --trials 16 \
        [--only square_4096,decode_1x4096] [--done ROWS.jsonl ...] [--stop-after-s 480]
    python benchmarks/gpu/shape_suite.py --random 8 --seed 20261207 --dtypes float16

Shapes (``SHAPES``: 22, A @ B.T as ``nn.Linear`` computes it, output in the input dtype):
square 4096^3 and 8192^3, odd 2047 x 2049 x 2051 and 8205 x 5921 x 2949, LLaMA projections at
2048 and 8192 tokens, decode M in {1, 16, 64} x 4096 x {4096, 11008}, short K 1024, large K
256 x 256 x 524288, vocab N in {32000, 128256}, batched 128 x 512 x 2048 x 1024; ``--dtypes``
also takes float32 (3xTF32, against cuBLAS fp32 with TF32 off). For each:

1. ``Tuner.tune`` (generative space; the gate runs on the winner), its tuning seconds recorded;
2. the winner built and called as a user calls an exported kernel, checked against torch's fp64
   product (normwise relative error), then timed in alternation with cuBLAS and torch.compile
   (:func:`autokernel_tvm.timing.compare`, the L2 flushed between calls).

Two rows per shape and dtype (shared schema, ``baseline`` ``torch`` and ``torch.compile``) are
appended to ``$OUT/shapes.jsonl``; a shape that fails (no legal kernel, the gate) gets a line in
``$OUT/shapes_failed.jsonl`` with the reason, and the suite goes on. The tuning reports are
packed into ``$OUT/reports.tgz`` after each shape (:func:`autokernel_tvm.report.pack_reports`).

The whole suite (22 shapes x 2 dtypes, each tuned and compiled by inductor) takes longer than one
device call: ``--stop-after-s`` starts no shape after that many seconds (the call returns with
its rows and reports), and ``--done`` skips the shapes and dtypes that rows of earlier calls of
the same run (``shapes.jsonl`` files committed under ``benchmarks/results/``) already hold.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
import traceback

os.environ.setdefault("TVM_CUDA_COMPILE_MODE", "nvcc")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
import tvm  # noqa: E402

from autokernel_tvm.builder import build_module  # noqa: E402
from autokernel_tvm.config import TuneConfig  # noqa: E402
from autokernel_tvm.manifest import out_pitch  # noqa: E402
from autokernel_tvm.report import pack_reports  # noqa: E402
from autokernel_tvm.results import append_result, device_short_name, now_iso  # noqa: E402
from autokernel_tvm.timing import compare  # noqa: E402
from autokernel_tvm.torch.loader import new_rows  # noqa: E402
from autokernel_tvm.tuner import Tuner  # noqa: E402
from autokernel_tvm.workloads import Workload  # noqa: E402

#: name -> (op, shape); gemm_nt shapes are (M, N, K), batch_gemm_nt (B, M, N, K).
SHAPES = {
    "square_4096": ("gemm_nt", (4096, 4096, 4096)),
    "square_8192": ("gemm_nt", (8192, 8192, 8192)),
    "odd_2047": ("gemm_nt", (2047, 2049, 2051)),
    "odd_8205": ("gemm_nt", (8205, 5921, 2949)),
    "llama_up_2048": ("gemm_nt", (2048, 11008, 4096)),
    "llama_down_2048": ("gemm_nt", (2048, 4096, 11008)),
    "llama_up_8192": ("gemm_nt", (8192, 11008, 4096)),
    "llama_down_8192": ("gemm_nt", (8192, 4096, 11008)),
    "llama_qkv_2048": ("gemm_nt", (2048, 12288, 4096)),
    "decode_1x4096": ("gemm_nt", (1, 4096, 4096)),
    "decode_16x4096": ("gemm_nt", (16, 4096, 4096)),
    "decode_64x4096": ("gemm_nt", (64, 4096, 4096)),
    "decode_1x11008": ("gemm_nt", (1, 11008, 4096)),
    "decode_16x11008": ("gemm_nt", (16, 11008, 4096)),
    "decode_64x11008": ("gemm_nt", (64, 11008, 4096)),
    "short_k_1024": ("gemm_nt", (2048, 8192, 1024)),
    "large_k_524288": ("gemm_nt", (256, 256, 524288)),
    "vocab_32000": ("gemm_nt", (2048, 32000, 4096)),
    "vocab_128256": ("gemm_nt", (2048, 128256, 4096)),
    "batched_128": ("batch_gemm_nt", (128, 512, 2048, 1024)),
    "rect_tall": ("gemm_nt", (16384, 1024, 4096)),
    "rect_wide": ("gemm_nt", (1024, 16384, 4096)),
}
#: fp32 runs at fp32 accuracy on both sides: our 3xTF32 against cuBLAS with TF32 off (torch's
#: default for matmul; set explicitly, so an environment that allows TF32 cannot flatter it)
TORCH = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def random_shapes(count: int, seed: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``count`` shapes nobody tuned for, drawn with ``seed`` (the same seed, the same shapes).

    Sizes log-uniform over what models use (the compute-bound regime: 0.05-4 TFLOP a product,
    redrawn outside it); each dimension a multiple of 64 half the time (hidden sizes), any
    integer otherwise (token counts, vocabularies); one in five has a decode M (1-64 rows, no
    lower bound on the work), one in six is batched.
    """
    import random

    rng = random.Random(seed)

    def size(lo: int, hi: int) -> int:
        n = int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
        return max(64, n // 64 * 64) if rng.random() < 0.5 else n

    shapes: dict[str, tuple[str, tuple[int, ...]]] = {}
    while len(shapes) < count:
        decode = rng.random() < 0.2
        m = rng.randint(1, 64) if decode else size(256, 16384)
        n, k = size(1024, 16384), size(1024, 16384)
        if not decode and rng.random() < 1 / 6:
            op, shape = "batch_gemm_nt", (rng.randint(2, 64), size(128, 2048), size(128, 2048), k)
        else:
            op, shape = "gemm_nt", (m, n, k)
        if not (decode or 5e10 <= 2 * math.prod(shape)) or 2 * math.prod(shape) > 4e12:
            continue
        shapes["random_" + "x".join(map(str, shape))] = (op, shape)
    return shapes


def run_shape(name: str, dtype: str, args, tuner: Tuner, gpu: str) -> list[dict]:
    torch.backends.cuda.matmul.allow_tf32 = False
    op, shape = SHAPES[name]
    workload = Workload(op, shape, dtype, dtype)
    start = time.time()
    result = tuner.tune(workload)
    tune_seconds = time.time() - start
    kernel = build_module(result.mod, tuner.target)["main"]
    gen = torch.Generator(device="cuda").manual_seed(7)
    a, b = (
        torch.randn(s.shape, device="cuda", generator=gen).to(TORCH[dtype]) for s in workload.inputs
    )
    # the output as torch's loader allocates it: rows padded to the kernel's pitch where it
    # takes them (C rows that are not 16-byte multiples, stored by the TMA), else plain
    pitch = out_pitch(result.mod["main"]) if "main" in result.mod else None
    c = new_rows(a, workload.output.shape, TORCH[dtype], pitch).fill_(float("nan"))
    ta, tb = (tvm.runtime.from_dlpack(x) for x in (a, b))
    tc = c if pitch else tvm.runtime.from_dlpack(c)  # a view goes as the torch tensor
    kernel(ta, tb, tc)
    want = a.double() @ b.double().transpose(-1, -2)
    rel_err = ((c.double() - want).norm() / want.norm()).item()

    def cublas():
        return a @ b.transpose(-1, -2)

    # A fresh, static graph per shape: after a second shape of the same code object dynamo
    # compiles dynamic shapes, and inductor then neither pads nor picks cuBLAS's kernels (bf16
    # 8205 x 5921 x 2949 ran at 160 TFLOP/s that way, 655 in a process of its own).
    torch._dynamo.reset()
    compiled = torch.compile(cublas, mode="max-autotune-no-cudagraphs", dynamic=False)
    compiled()
    both = compare(
        {"ours": lambda: kernel(ta, tb, tc), "torch": cublas, "torch.compile": compiled}, "cuda"
    )
    rows = []
    for baseline in ("torch", "torch.compile"):
        secs = both.seconds
        rows.append(
            {
                "date": now_iso(),
                "device": device_short_name(gpu),
                "gpu_name": gpu,
                "op": op,
                "shape": list(shape),
                "dtype": dtype,
                "out_dtype": dtype,
                "impl": result.genome["family"] if result.genome else "stock",
                "params": (result.genome or {}).get("params"),
                "out_row_pitch": pitch,  # C a view of rows this far apart (None: plain rows)
                "method": "tuned",
                "tflops": workload.flops / secs["ours"] / 1e12,
                "baseline": baseline,
                "baseline_tflops": workload.flops / secs[baseline] / 1e12,
                "ratio": secs[baseline] / secs["ours"],
                "trials": result.trials,  # measured: --hit-trials where the library held it
                "library_hit": bool(result.space_report.get("library_hit")),
                "tune_seconds": tune_seconds,
                # where the tuning time went: generate, build, time, gate (seconds)
                "tune_phases": result.space_report.get("seconds"),
                "command": "python " + " ".join(shlex.quote(x) for x in sys.argv),
                "shape_name": name,
                "max_rel_error": rel_err,
                "verified": bool(result.verify and result.verify.get("passed")),
                # unstable rounds of ours or this baseline (a ratio to read with care)
                "timing_warnings": [
                    w for w in both.warnings if w.split(":")[0] in ("ours", baseline)
                ],
            }
        )
    return rows


def done_shapes(paths: list[str]) -> set[tuple[str, str]]:
    """``(shape name, dtype)`` of the rows in ``paths`` that both baselines were measured for."""
    seen: dict[tuple[str, str], set] = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                if "shape_name" in row:
                    key = (row["shape_name"], row["dtype"])
                    seen.setdefault(key, set()).add(row["baseline"])
    return {key for key, baselines in seen.items() if {"torch", "torch.compile"} <= baselines}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help=f"comma-separated names of {sorted(SHAPES)}")
    p.add_argument("--dtypes", default="float16,bfloat16")
    p.add_argument("--trials", type=int, default=16, help="measured candidates per shape")
    p.add_argument(
        "--hit-trials", type=int, default=TuneConfig.hit_trials,
        help="trials for a shape the library holds measured on this GPU (0: --trials always)",
    )  # fmt: skip
    p.add_argument("--arch", default="sm_90a")
    p.add_argument("--out", default=os.environ.get("OUT", "out"), help="results folder")
    p.add_argument("--done", nargs="*", default=[], help="rows files of shapes already run")
    p.add_argument("--stop-after-s", type=float, default=0.0, help="start no shape after (0: off)")
    p.add_argument(
        "--random", type=int, default=0, metavar="N",
        help="run N shapes drawn with --seed instead of the suite (cases nobody tuned for)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of --random's shapes")
    args = p.parse_args(argv)
    if args.random:
        SHAPES.clear()
        SHAPES.update(random_shapes(args.random, args.seed))
    start = time.time()
    names = [n for n in args.only.split(",") if n] or list(SHAPES)
    unknown = sorted(set(names) - set(SHAPES))
    if unknown:
        print(f"error: --only: unknown shapes {unknown}; known: {sorted(SHAPES)}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("error: the shape suite needs a CUDA GPU (torch sees none)", file=sys.stderr)
        return 2
    gpu = torch.cuda.get_device_name()
    os.makedirs(args.out, exist_ok=True)
    config = TuneConfig(
        target="cuda",
        arch=args.arch,
        trials=args.trials,
        hit_trials=args.hit_trials,
        work_dir=os.path.join(args.out, "work"),
    )
    tuner = Tuner(config, progress=False)
    done = done_shapes(args.done)
    for dtype in args.dtypes.split(","):
        for name in names:
            if (name, dtype) in done:
                continue
            if args.stop_after_s and time.time() - start > args.stop_after_s:
                print(f"stopped after {time.time() - start:.0f} s: {name} {dtype} not started")
                return 0
            try:
                rows = run_shape(name, dtype, args, tuner, gpu)
            except Exception as err:  # one shape's failure is a result, not the suite's end
                why = f"{type(err).__name__}: {str(err).strip()[:400]}"
                print(f"{name:18s} {dtype:9s} FAILED {why}", flush=True)
                with open(os.path.join(args.out, "shapes_failed.jsonl"), "a") as f:
                    tb = traceback.format_exc()[-2000:]
                    f.write(json.dumps({"shape": name, "dtype": dtype, "error": why, "tb": tb}))
                    f.write("\n")
                continue
            finally:
                pack_reports(config.work_dir, os.path.join(args.out, "reports.tgz"))
            for row in rows:
                append_result(os.path.join(args.out, "shapes.jsonl"), row)
            t, c = rows
            print(
                f"{name:18s} {dtype:9s} {t['impl']:10s} {t['tflops']:7.1f} TFLOP/s  "
                f"cuBLAS {t['baseline_tflops']:7.1f} ({t['ratio']:.2f}x)  torch.compile "
                f"{c['baseline_tflops']:7.1f} ({c['ratio']:.2f}x)  err {t['max_rel_error']:.1e}"
                f"  tune {t['tune_seconds']:.0f}s "
                + " ".join(f"{p} {v:.0f}" for p, v in (t["tune_phases"] or {}).items()),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

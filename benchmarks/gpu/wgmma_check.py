# SPDX-License-Identifier: Apache-2.0
"""Build, check and time `cuda.wgmma` structures on a Hopper GPU, against cuBLAS in the same run.

    OUT=/tmp/out python benchmarks/gpu/wgmma_check.py [--size 4096 | --shape M,N,K] \
        [--dtype float16|bfloat16|float8_e4m3fn|float8_e5m2|float32] [--layout nt|nn|tn] \
        [--batch B] [--out-dtype float32] [--epilogue bias_gelu] \
        [--structures 256,2,4,1 128,2,4,8,p ...]

Each structure is ``block_n,consumers,stages,raster[,p|,sk|,st][,pp][,c2][,t][,sN][,cr][,l][,x3]``
(`p`: the persistent schedule, `sk`: the streamk schedule (persistent, the last wave's tiles
split over clusters of 2 blocks: with `s2` and `cr`), `st`: stream-K, `pp`: the ping-pong
arrangement (each consumer warpgroup its own 64-row tile, in turn), `c2`: clusters of 2
blocks multicasting B, `t`: the TMA-store write-back, `sN`: split-K over N blocks per tile,
`cr`: its partials summed in the cluster's shared memory instead of a workspace and a second
kernel, `l`: operands with rows that are not whole 128-byte lines copied into padded scratch
first, `x3`: fp32 inputs as 3xTF32, timed against cuBLAS fp32 with TF32 off; see
`autokernel_tvm.families.cuda_wgmma`).
For each: build with ``tir_pipeline="tirx"`` (nvcc), check ``C = A @ B.T`` (``--layout nt``, B
stored N x K), ``C = A @ B`` (``nn``, B stored K x N) or ``C = A.T @ B`` (``tn``, A stored
K x M, B K x N: ``torch.matmul(a.T, b)``), over ``--batch`` matrices if given, on
fresh random inputs against torch's float64 product (normwise relative error, NaN-poisoned
output), then time it and the same torch.matmul (cuBLAS; fp8: ``torch._scaled_mm`` with the
same per-tensor scales and fast accumulation, as ours, cuBLASLt; fp32, which the kernel runs
as TF32: cuBLAS with TF32 allowed;
``--epilogue bias[_relu|_gelu]``: the kernel's fused ``act(A @ B.T + bias)`` against eager's
``F.linear`` and the activation, as an ``nn.Linear`` layer runs them) with
`autokernel_tvm.timing.compare`. Prints a table; writes
``$OUT/wgmma_check_DTYPE[_nn|_tn][_bB].json`` and appends one row per structure to
``$OUT/<device>.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import zlib

os.environ.setdefault("TVM_CUDA_COMPILE_MODE", "nvcc")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402
import tvm  # noqa: E402

from autokernel_tvm import timing  # noqa: E402
from autokernel_tvm.families.cuda_wgmma.kernel import wgmma_module  # noqa: E402
from autokernel_tvm.hardware import limits  # noqa: E402
from autokernel_tvm.targets import make_target  # noqa: E402
from autokernel_tvm.workloads.dtypes import FP8_DTYPES as FP8  # noqa: E402
from autokernel_tvm.workloads.dtypes import TORCH_DTYPES as TORCH  # noqa: E402

#: what the kernel is timed against, by input dtype (fp32 inputs run on TF32 tensor cores, so
#: cuBLAS runs with torch.backends.cuda.matmul.allow_tf32 on: the same precision)
BASELINES = {"float8_e4m3fn": "torch._scaled_mm(fast_accum)", "float32": "torch.tf32",
             # cuBLASLt has no e5m2 x e5m2 GEMM: the nearest is e5m2 x e4m3, same fp8 rate
             "float8_e5m2": "torch._scaled_mm(fast_accum, e5m2 x e4m3)"}  # fmt: skip
OUT = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


ACTS = {"": lambda x: x, "relu": torch.relu, "gelu": torch.nn.functional.gelu}


def check_one(shape, dtype, structure, target, nt=True, batch=0, out_dtype="float32",
              epilogue="", ta=False) -> dict:  # fmt: skip
    block_n, consumers, stages, raster, *flags = structure
    schedules = {"p": "persistent", "sk": "streamk", "st": "stream"}
    schedule = next((schedules[f] for f in flags if f in schedules), "tile")
    cluster = 2 if "c2" in flags else 1
    store = "tma" if "t" in flags else "direct"
    arrangement = "pingpong" if "pp" in flags else "cooperative"
    splits = next((int(f[1:]) for f in flags if f[:1] == "s" and f[1:].isdigit()), 1)
    row = {"structure": dict(block_n=block_n, consumers=consumers, stages=stages, raster=raster,
                             schedule=schedule, cluster=cluster, store=store)}  # fmt: skip
    pad = "lines" if "l" in flags else "needed"
    passes = 3 if "x3" in flags else 1  # 3xTF32: fp32 accuracy, timed against fp32 cuBLAS
    if passes == 3:
        row["structure"]["tf32_passes"] = 3
    torch.backends.cuda.matmul.allow_tf32 = passes == 1
    if splits > 1:  # rows of earlier runs (no split-K) keep their params as they were
        row["structure"]["splits"] = splits
    reduction = "cluster" if "cr" in flags else "workspace"
    if reduction != "workspace":
        row["structure"]["reduction"] = reduction
    if pad != "needed":
        row["structure"]["pad"] = pad
    if arrangement != "cooperative":
        row["structure"]["arrangement"] = arrangement
    if epilogue:
        row["epilogue"] = epilogue
    m, n, k = shape
    t0 = time.time()
    lim = limits(target)
    mod = wgmma_module(m, n, k, batch=batch, in_dtype=dtype, trans_b=nt, trans_a=ta,
                      block_n=block_n,
                      consumers=consumers, stages=stages, raster=raster, out_dtype=out_dtype,
                      schedule=schedule, cluster=cluster, store=store, splits=splits, pad=pad,
                      tf32_passes=passes, epilogue=epilogue, arrangement=arrangement,
                      reduction=reduction,
                      smem_limit=lim.smem_per_block,
                      sm_count=lim.sm_count)  # fmt: skip
    lead = (batch,) if batch else ()

    fp8 = dtype in FP8
    scales = [torch.tensor(s, device="cuda") for s in (0.75, 1.25)]  # float32 scalars

    act = ACTS[epilogue.partition("_")[2]]
    bias = torch.randn(n, device="cuda").to(TORCH[dtype]) if epilogue else None

    as_e4m3: dict = {}

    def matmul(a, b):
        if epilogue:  # what an nn.Linear layer and its activation run in eager
            return act(torch.nn.functional.linear(a, b, bias.to(a.dtype)).to(OUT[out_dtype]))
        if fp8:  # cuBLASLt's fp8 GEMM with per-tensor scales (what torch._scaled_mm calls)
            if b.dtype == torch.float8_e5m2:  # converted once, outside the timed calls
                b = as_e4m3.setdefault(b.data_ptr(), b.to(torch.float8_e4m3fn))
            # fast accumulation, as our kernel sums: the tensor core's running sum over all of
            # K (the default promotes to fp32 registers; the 2026-12-03 rows timed that)
            return torch._scaled_mm(a, b.t(), scale_a=scales[0], scale_b=scales[1],
                                    out_dtype=OUT[out_dtype], use_fast_accum=True)  # fmt: skip
        return (a.transpose(-1, -2) if ta else a) @ (b.transpose(-1, -2) if nt else b)

    def args(a, b, c):
        """Our kernel's arguments: A, B as they are (fp8 too), then (fp8) the scales before C."""
        extra = [s.reshape(1) for s in scales] if fp8 else [bias] if epilogue else []
        return [tvm.runtime.from_dlpack(x) for x in (a, b, *extra, c)]

    def reference(a, b):
        if epilogue:
            return act(torch.nn.functional.linear(a.double(), b.double(), bias.double()))
        if fp8:
            return (a.double() * 0.75) @ (b.double() * 1.25).T
        return matmul(a.double(), b.double())

    lib = tvm.compile(mod, target=target, tir_pipeline="tirx")
    row["build_s"] = time.time() - t0
    fn = lib["main"]
    # crc32, not hash(): the flags are strings, whose hash() changes from process to process
    gen = torch.Generator(device="cuda").manual_seed(zlib.crc32(repr(structure).encode()))
    b_shape = (n, k) if nt else (k, n)
    errs = []
    for _ in range(2):
        a_shape = (k, m) if ta else (m, k)
        a = torch.randn(*lead, *a_shape, device="cuda", generator=gen).to(TORCH[dtype])
        b = torch.randn(*lead, *b_shape, device="cuda", generator=gen).to(TORCH[dtype])
        c = torch.full((*lead, m, n), float("nan"), device="cuda", dtype=OUT[out_dtype])
        fn(*args(a, b, c))
        torch.cuda.synchronize()
        want = reference(a, b)
        errs.append(((c.double() - want).norm() / want.norm()).item())
    row["rel_err"] = max(errs)
    row["nan"] = bool(torch.isnan(c).any().item())
    ours = args(a, b, c)
    both = timing.compare({"k": lambda: fn(*ours), "cublas": lambda: matmul(a, b)}, "cuda")
    sec, base = both.seconds["k"], both.seconds["cublas"]  # measured in alternation
    flops = 2.0 * max(batch, 1) * m * n * k
    row.update(tflops=flops / sec / 1e12, cublas_tflops=flops / base / 1e12)
    row["ratio"] = row["tflops"] / row["cublas_tflops"]
    return row


def result_rows(meta: dict, rows: list[dict]) -> list[dict]:
    """Rows for ``benchmarks/results/<device>.jsonl`` (schema: `autokernel_tvm.results`): one per
    checked structure, against cuBLAS in the same run. Old metas lack layout/batch/out_dtype."""
    from autokernel_tvm import results

    batch, layout = meta.get("batch", 0), meta.get("layout", "nt")
    op = ("batch_gemm" if batch else "gemm") + ("" if layout == "nn" else f"_{layout}")
    op = f"gemm_{meta['epilogue']}" if meta.get("epilogue") else op  # the workloads' op names
    shape = meta.get("shape") or [meta["size"]] * 3
    out = []
    for r in rows:
        if "error" in r:
            continue
        s = r["structure"]
        out.append({
            "date": meta["date"], "device": results.device_short_name(meta["gpu"]),
            "gpu_name": meta["gpu"], "op": op, "shape": ([batch] if batch else []) + shape,
            "dtype": meta["dtype"], "out_dtype": meta.get("out_dtype", "float32"),
            "impl": "cuda.wgmma", "params": s, "method": "direct",
            "tflops": r["tflops"],
            "baseline": "torch.linear" if meta.get("epilogue")
            else "torch" if s.get("tf32_passes") == 3  # fp32 cuBLAS, TF32 off
            else BASELINES.get(meta["dtype"], "torch"),
            "baseline_tflops": r["cublas_tflops"], "ratio": r["ratio"], "trials": None,
            "tune_seconds": None, "command": "python3 " + meta["command"],
            "max_rel_error": r["rel_err"],
        })  # fmt: skip
    return out


def main(argv=None) -> int:
    torch.backends.cuda.matmul.allow_tf32 = True  # only fp32 inputs reach a TF32 GEMM here
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--shape", help="M,N,K (default: --size cubed)")
    p.add_argument("--dtype", default="float16", choices=sorted(TORCH))
    p.add_argument("--arch", default="sm_90a")
    p.add_argument(
        "--layout", default="nt", choices=("nt", "nn", "tn"), help="nt: A@B.T, nn: A@B, tn: A.T@B"
    )
    p.add_argument("--batch", type=int, default=0, help="leading batch dim (0: none)")
    p.add_argument("--out-dtype", default="float32", choices=sorted(OUT), help="C's dtype")
    p.add_argument(
        "--epilogue",
        default="",
        choices=("", "bias", "bias_relu", "bias_gelu"),
        help="act(A @ B.T + bias) fused; timed against F.linear + act (nt only)",
    )
    p.add_argument("--structures", nargs="+", default=["256,2,4,1", "128,2,5,1", "256,2,4,8"])
    args = p.parse_args(argv)
    target = make_target("cuda", args.arch)
    shape = [int(x) for x in args.shape.split(",")] if args.shape else [args.size] * 3
    rows = []
    for text in args.structures:
        structure = tuple(x if x[0] in "pctslx" else int(x) for x in text.split(","))
        try:
            row = check_one(shape, args.dtype, structure, target, args.layout == "nt",
                            args.batch, args.out_dtype, args.epilogue,
                            ta=args.layout == "tn")  # fmt: skip
        except Exception as err:  # a failed structure is data: report it and go on
            row = {"structure": text, "error": f"{type(err).__name__}: {err}"[:2000]}
            traceback.print_exc()
        rows.append(row)
        print(json.dumps(row), flush=True)
    meta = {"gpu": torch.cuda.get_device_name(), "shape": shape, "dtype": args.dtype,
            "epilogue": args.epilogue,
            "layout": args.layout, "batch": args.batch, "out_dtype": args.out_dtype,
            "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime())}  # fmt: skip
    out = os.environ.get("OUT")
    if out:
        name = f"wgmma_check_{'x'.join(map(str, shape))}_{args.dtype}"
        name += "" if args.layout == "nt" else f"_{args.layout}"
        name += f"_b{args.batch}" if args.batch else ""
        name += f"_out_{args.out_dtype}" if args.out_dtype != "float32" else ""
        name += f"_{args.epilogue}" if args.epilogue else ""
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
        from autokernel_tvm import results

        for row in result_rows(meta, rows):
            results.append_result(os.path.join(out, f"{row['device']}.jsonl"), row)
    print(f"{'structure':<26} {'err':>9} {'TFLOP/s':>8} {'cuBLAS':>8} {'ratio':>6}")
    for r in rows:
        if "error" in r:
            print(f"{r['structure']!s:<26} FAILED {r['error'][:80]}")
        else:
            s = ",".join(str(v) for v in r["structure"].values())
            print(f"{s:<26} {r['rel_err']:9.2e} {r['tflops']:8.1f} {r['cublas_tflops']:8.1f} "
                  f"{r['ratio']:6.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

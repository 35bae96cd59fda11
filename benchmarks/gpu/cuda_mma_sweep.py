# SPDX-License-Identifier: Apache-2.0
"""Sweep the CUDA mma.sync GEMM sketch over a grid of structures on one GPU, next to cuBLAS.

    OUT=/tmp/out TVM_CUDA_COMPILE_MODE=nvcc python benchmarks/gpu/cuda_mma_sweep.py \
        [--size 4096] [--per-structure 2] [--workers 14] [--budget-s 400] [--quick]

For fp16 x fp16 -> fp32 ``A @ B.T`` (B is N x K, as in nn.Linear) and ``A @ B`` at size^3, every
structure of the grid (``autokernel_tvm/space/cuda_mma.py``: warps, stages, smem layout, raster,
fragment pipeline, copy width) gets its ``--per-structure`` best-guess tile choices (biggest warp
tile first, both K tiles). Worker processes (each imports ``tvm.s_tir.tensor_intrin.cuda`` once)
schedule and build them with nvcc (``-Xptxas -v`` recorded: registers, spills, stack); the main
process loads each .so, poisons C with NaN, checks it against a float32 torch matmul (relative
Frobenius error < 1e-2) and times it (``triton.testing.do_bench`` median, else CUDA events).
Prints every candidate, a table of the best TFLOP/s per structure as % of ``torch.matmul``
(fp16 out, cuBLAS) measured in the same run, and the best value of each structural field.
Writes ``$OUT/cuda_mma_sweep.json`` when OUT is set. Exit status 2 without a CUDA GPU.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import itertools
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

os.environ.setdefault("TVM_CUDA_COMPILE_MODE", "nvcc")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

FIELDS = ("warp_m", "warp_n", "stages", "smem_layout", "vector_bytes", "raster", "frag_pipeline")
_PTXAS: dict = {}


def structures(quick: bool) -> list[dict]:
    """Core factorial (most likely winners) first, then one-at-a-time variations of a base."""
    base = dict(warp_m=2, warp_n=2, stages=3, smem_layout="swizzle", vector_bytes=16, raster=8,
                frag_pipeline=False)  # fmt: skip
    core = [
        dict(base, warp_m=wm, warp_n=wn, stages=st, smem_layout=lay, raster=r, frag_pipeline=fp)
        for (wm, wn), st, lay, r, fp in itertools.product(
            [(2, 2), (2, 4), (4, 2)], [3, 4], ["swizzle", "pad"], [0, 8], [False, True]
        )
    ]
    extra = [dict(base, stages=s) for s in (2, 5)] + [
        dict(base, warp_n=4, stages=s) for s in (2, 5)
    ]
    extra += [dict(base, smem_layout="plain"), dict(base, vector_bytes=8), dict(base, raster=16)]
    extra += [dict(base, warp_m=wm, warp_n=wn) for wm, wn in ((1, 4), (4, 1), (1, 2), (2, 1))]
    grid = core + extra
    return grid[::8][:10] if quick else grid


def gemm_func(n: int, trans_b: bool):
    from autokernel_tvm.workloads import Workload

    return Workload("gemm_nt" if trans_b else "gemm", (n, n, n), "float16").prim_func()


def _worker_init(arch: str) -> None:
    """Import the intrinsics once per worker; route nvcc through us to keep ``-Xptxas -v``."""
    import tvm.s_tir.tensor_intrin.cuda  # noqa: F401
    import tvm_ffi

    def nvcc(code, *_):
        with tempfile.TemporaryDirectory() as tmp:
            src, out = os.path.join(tmp, "k.cu"), os.path.join(tmp, "k.fatbin")
            with open(src, "w") as f:
                f.write(code)
            cmd = ["nvcc", "--fatbin", "-O3", f"-gencode=arch=compute_{arch},code=sm_{arch}",
                   "--use_fast_math", "-U__CUDA_NO_HALF_OPERATORS__",
                   "-U__CUDA_NO_HALF_CONVERSIONS__", "-Xptxas", "-v", "-o", out, src]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(proc.stderr[-2000:])
            for key, pat in (("regs", r"Used (\d+) registers"), ("spill", r"(\d+) bytes spill st"),
                             ("stack", r"(\d+) bytes stack frame")):  # fmt: skip
                m = re.search(pat, proc.stderr)
                _PTXAS[key] = int(m.group(1)) if m else None
            with open(out, "rb") as f:
                return bytearray(f.read())

    tvm_ffi.register_global_func("tvm_callback_cuda_compile", nvcc, override=True)


def _build(job: dict) -> dict:
    """Schedule candidate ``job["rank"]`` of a structure and export it as a .so (in a worker)."""
    from autokernel_tvm.builder import build_module
    from autokernel_tvm.families.cuda_mma.metaschedule import mma_candidates
    from autokernel_tvm.hardware import limits_for_arch
    from autokernel_tvm.targets import make_target

    t0 = time.time()
    try:
        structure = {
            **job["structure"],
            "smem_limit": limits_for_arch(
                f"sm_{job['arch']}a" if job["arch"] == "90" else f"sm_{job['arch']}"
            ).smem_per_block,
        }
        cands = mma_candidates(gemm_func(job["n"], job["trans_b"]), structure, job["rank"] + 1)
        if len(cands) <= job["rank"]:
            return dict(job, status="skipped")
        tiles, sch = cands[job["rank"]]
        _PTXAS.clear()
        ex = build_module(sch.mod, make_target("cuda", f"sm_{job['arch']}"))
        ex.export_library(job["so"])
        return dict(job, status="built", tiles=tiles, build_s=time.time() - t0, **_PTXAS)
    except Exception as err:  # a failed candidate is data
        return dict(job, status="build_error", error=str(err)[-600:], build_s=time.time() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--per-structure", type=int, default=2)
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    p.add_argument("--budget-s", type=float, default=400.0, help="stop building after this")
    p.add_argument("--quick", action="store_true", help="10 structures, for a smoke test")
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("cuda_mma_sweep: needs torch with CUDA", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("cuda_mma_sweep: no CUDA GPU visible (torch.cuda.is_available() is False)")
        return 2
    import tvm

    from autokernel_tvm.families.cuda_mma.schedule import legal
    from autokernel_tvm.hardware import limits_for_arch

    start, n = time.time(), args.size
    major, minor = torch.cuda.get_device_capability()
    arch = f"{major}{minor}" + ("a" if major == 9 else "")
    try:
        from triton.testing import do_bench
    except ImportError:
        do_bench = None

    def time_ms(fn) -> float:
        if do_bench is not None:
            return float(do_bench(fn, warmup=25, rep=100, return_mode="median"))
        fn()
        times = []
        for _ in range(30):
            t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0.record()
            fn()
            t1.record()
            torch.cuda.synchronize()
            times.append(t0.elapsed_time(t1))
        return sorted(times)[len(times) // 2]

    tflops = lambda ms: 2 * n**3 / ms / 1e9  # noqa: E731
    torch.manual_seed(0)
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    bs = {tb: torch.randn(n, n, device="cuda", dtype=torch.float16) for tb in (True, False)}
    c = torch.empty(n, n, device="cuda", dtype=torch.float32)
    refs, baseline = {}, {}
    for tb, b in bs.items():
        bt = b.t() if tb else b
        refs[tb] = a.float() @ bt.float()
        baseline[tb] = {"torch.matmul fp16": tflops(time_ms(lambda bt=bt: torch.matmul(a, bt)))}
        try:  # cuBLAS with an fp32 output, where this torch has it
            torch.mm(a, bt, out_dtype=torch.float32)
            ms = time_ms(lambda bt=bt: torch.mm(a, bt, out_dtype=torch.float32))
            baseline[tb]["torch.mm fp32-out"] = tflops(ms)
        except (TypeError, RuntimeError):
            pass
    timer = "triton do_bench" if do_bench else "cuda events"
    print(f"device {torch.cuda.get_device_name()} sm_{arch}; timer {timer}; TFLOP/s {baseline}")

    tmp = tempfile.mkdtemp(prefix="cuda_mma_sweep_")
    jobs, rejected = [], []
    grid = structures(args.quick)
    for rank, tb, (si, st) in itertools.product(
        range(args.per_structure), (True, False), enumerate(grid)
    ):
        smem = limits_for_arch(f"sm_{arch}").smem_per_block
        why = legal(n, n, n, trans_b=tb, smem_limit=smem, **st)
        if why:
            rejected.append(dict(structure=st, trans_b=tb, reason=why)) if rank == 0 else None
            continue
        so = os.path.join(tmp, f"s{si}_{int(tb)}_{rank}.so")
        jobs.append(dict(n=n, trans_b=tb, structure=st, sid=si, rank=rank, arch=arch, so=so))
    print(f"{len(grid)} structures, {len(jobs)} candidates, {len(rejected)} rejected by legal()")
    for r in rejected:
        print("  rejected", r)

    results = []
    ctx = mp.get_context("spawn")
    pool = cf.ProcessPoolExecutor(args.workers, mp_context=ctx, initializer=_worker_init,
                                  initargs=(arch,))  # fmt: skip
    futures = [pool.submit(_build, job) for job in jobs]
    try:
        for fut in cf.as_completed(futures, timeout=args.budget_s + 120):
            if fut.cancelled():
                continue
            res = fut.result()
            if time.time() - start > args.budget_s:
                pool.shutdown(wait=False, cancel_futures=True)
            if res["status"] == "built":
                try:
                    f = tvm.runtime.load_module(res["so"])["main"]
                    b = bs[res["trans_b"]]
                    c.fill_(float("nan"))
                    f(a, b, c)
                    torch.cuda.synchronize()
                    ref = refs[res["trans_b"]]
                    err = float((c - ref).norm() / ref.norm())
                    res["rel_err"] = err
                    res["status"] = "wrong" if not err < 1e-2 else "ok"
                    if res["status"] == "ok":
                        res["tflops"] = tflops(time_ms(lambda f=f, b=b: f(a, b, c)))
                except Exception as err:  # noqa: BLE001  (a CUDA fault may poison the context)
                    res["status"], res["error"] = "run_error", str(err)[-600:]
            results.append(res)
            short = {k: res.get(k) for k in ("status", "tiles", "regs", "spill", "stack")}
            print(f"[{time.time() - start:5.0f}s] {'A@B.T' if res['trans_b'] else 'A@B  '} "
                  f"s{res['sid']} r{res['rank']} {short} TFLOP/s {res.get('tflops', 0):.0f} "
                  f"err {res.get('rel_err', float('nan')):.1e} {res.get('error', '')[:200]}",
                  flush=True)  # fmt: skip
    except cf.TimeoutError:
        print("budget exhausted: unfinished builds dropped")
    pool.shutdown(wait=False, cancel_futures=True)
    report(results, grid, baseline, n)
    out = os.environ.get("OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "cuda_mma_sweep.json"), "w") as fh:
            payload = dict(size=n, arch=arch, baseline=baseline, structures=grid,
                           rejected=rejected, results=results)  # fmt: skip
            json.dump(payload, fh, indent=1, default=str)
        print(f"wrote {out}/cuda_mma_sweep.json")
    return 0


def report(results: list[dict], grid: list[dict], baseline: dict, n: int) -> None:
    for tb in (True, False):
        ref = baseline[tb]["torch.matmul fp16"]
        best, stats = {}, defaultdict(lambda: defaultdict(int))
        for r in (r for r in results if r["trans_b"] == tb):
            stats[r["sid"]][r["status"]] += 1
            if r.get("tflops", 0) > best.get(r["sid"], {}).get("tflops", 0):
                best[r["sid"]] = r
        name = "A@B.T (B: NxK)" if tb else "A@B (B: KxN)"
        print(f"\n=== {name}, {n}^3 fp16->fp32; torch.matmul fp16 {ref:.0f} TFLOP/s "
              f"({', '.join(f'{k} {v:.0f}' for k, v in baseline[tb].items())})")  # fmt: skip
        print(f"{'sid':>3} {'TFLOP/s':>7} {'%torch':>6} {'BMxBNxBK':>11} regs spill stack  "
              f"counts  structure")  # fmt: skip
        order = sorted(range(len(grid)), key=lambda s: -best.get(s, {}).get("tflops", 0))
        for sid in order:
            r, st = best.get(sid, {}), grid[sid]
            t = r.get("tiles") or {}
            tile = (f"{16 * st['warp_m'] * t['frag_m']}x{16 * st['warp_n'] * t['frag_n']}x"
                    f"{16 * t['k_frags']}") if t else "-"  # fmt: skip
            fields = " ".join(f"{k}={st[k]}" for k in FIELDS)
            print(f"{sid:>3} {r.get('tflops', 0):7.0f} {100 * r.get('tflops', 0) / ref:6.1f} "
                  f"{tile:>11} {r.get('regs')!s:>4} {r.get('spill')!s:>5} {r.get('stack')!s:>5}  "
                  f"{dict(stats[sid])}  {fields}")  # fmt: skip
        print("best per field value (TFLOP/s, % torch):")
        for field in FIELDS:
            vals = defaultdict(float)
            for sid, r in best.items():
                vals[str(grid[sid][field])] = max(vals[str(grid[sid][field])], r["tflops"])
            text = ", ".join(f"{v}={t:.0f} ({100 * t / ref:.0f}%)" for v, t in sorted(vals.items()))
            print(f"  {field:>14}: {text}")
        fails = [r for r in results if r["trans_b"] == tb and r["status"] not in ("ok", "skipped")]
        for r in fails:
            print(f"  FAILED s{r['sid']} r{r['rank']} {r['status']}: {r.get('error', '')[:300]}")


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: Apache-2.0
"""Run the bf16 mma.sync intrinsics on a real GPU: error vs an fp64 reference, and time.

    OUT=/tmp/out python benchmarks/gpu/bf16_mma_check.py [--sizes 1024 4096] [--arch sm_90a] \
        [--iters 50]

For each size N and both B layouts (``A @ B`` with B as K x N, and ``A @ B.T`` as in
``nn.Linear``), builds the hand-scheduled bf16 x bf16 -> f32 GEMM of
``tests/intrin/test_cuda_bf16.py`` (``tvm.testing.tir.mma_schedule`` with
``autokernel_tvm.intrin.cuda_bf16``, upstream's tile factors for 4096^3) with ``tvm.compile``
for this GPU, calls it on torch bf16 tensors (zero-copy through DLPack), and compares the f32
result with ``torch.float64`` matmul of the same inputs by relative Frobenius-norm error. It times
the kernel and, as the baseline, ``torch.mm`` in bf16 (cuBLAS, bf16 output) with CUDA events.
Prints one line per case; writes ``$OUT/bf16_mma_check.json`` when ``OUT`` is set. Exit status 1
if an error is above ``--max-rel-err``, 2 if there is no CUDA GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TVM_CUDA_COMPILE_MODE", "nvcc")  # TVM's default, NVRTC, needs cuda-bindings
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402
import tvm  # noqa: E402


def gemm(n: int, trans_b: bool) -> tvm.tirx.PrimFunc:
    """C[i, j] = sum_k f32(A[i, k]) * f32(B[k, j]) (or B[j, k]), all N x N, A and B in bf16."""
    from autokernel_tvm.workloads import Workload

    return Workload("gemm_nt" if trans_b else "gemm", (n, n, n), "bfloat16").prim_func()


def build(n: int, trans_b: bool, target: tvm.target.Target) -> tvm.runtime.Executable:
    """The tensorized GEMM, compiled (its schedule needs N % 1024 == 0); call ``["main"]``."""
    from tvm.s_tir.tensor_intrin.cuda import shared_16x16_to_ldmatrix_32x8_layout
    from tvm.testing.tir import mma_schedule

    from autokernel_tvm.intrin.cuda_bf16 import bf16_intrin_group

    def fragment_map(i, j):
        return (i // 16, j // 16, *shared_16x16_to_ldmatrix_32x8_layout(i % 16, j % 16))

    group = bf16_intrin_group("shared", "global", trans_b)
    tiles = n // 16  # upstream's 4096^3 factors, scaled: 256 threads, 128 x 128 block tile
    sch = mma_schedule(
        gemm(n, trans_b),
        16,
        "float16",  # only picks the copy width and smem padding, the same for any 2-byte type
        trans_b,
        [tiles // 64, 8, 2, 4, 1],
        [1, tiles // 4, 2, 1, 2],
        [tiles // 2, 2, 1],
        fragment_map,
        fragment_map,
        fragment_map,
        group["load_a"],
        group["load_b"],
        group["compute"],
        group["init"],
        group["store"],
    )
    with tvm.transform.PassContext(opt_level=3, config={"tirx.use_async_copy": 1}):
        return tvm.compile(sch.mod, target=target)


def cuda_time_ms(fn, iters: int) -> float:
    """Mean milliseconds of ``fn()`` over ``iters`` calls after 5 warm-up calls (CUDA events)."""
    for _ in range(5):
        fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / iters


def check(n: int, trans_b: bool, target: tvm.target.Target, iters: int) -> dict:
    """Build, run, compare with fp64 and time one GEMM; returns the result record."""
    func = build(n, trans_b, target)["main"]
    gen = torch.Generator(device="cuda").manual_seed(n + trans_b)
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16, generator=gen)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16, generator=gen)
    c = torch.zeros(n, n, device="cuda", dtype=torch.float32)
    func(a, b, c)  # torch tensors go in directly: DLPack, zero-copy, c written in place
    torch.cuda.synchronize()
    b64 = b.double().T if trans_b else b.double()
    ref = a.double() @ b64
    rel_err = ((c.double() - ref).norm() / ref.norm()).item()
    tvm_ms = cuda_time_ms(lambda: func(a, b, c), iters)
    b_op = b.T if trans_b else b
    torch_ms = cuda_time_ms(lambda: torch.mm(a, b_op), iters)
    return {
        "n": n,
        "layout": "A@B.T" if trans_b else "A@B",
        "rel_err": rel_err,
        "tvm_ms": tvm_ms,
        "tvm_tflops": 2 * n**3 / tvm_ms / 1e9,
        "torch_bf16_ms": torch_ms,
        "speed_vs_torch": torch_ms / tvm_ms,
    }


def cuda_target(arch: str) -> tvm.target.Target:
    from autokernel_tvm.targets import make_target

    return make_target("cuda", arch)


def write_result(result: dict) -> None:
    """Write ``result`` to ``$OUT/bf16_mma_check.json`` when ``OUT`` is set."""
    if os.environ.get("OUT"):
        os.makedirs(os.environ["OUT"], exist_ok=True)
        path = os.path.join(os.environ["OUT"], "bf16_mma_check.json")
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--arch", help="CUDA arch, e.g. sm_90a (default: this GPU's)")
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--max-rel-err", type=float, default=1e-4)
    args = parser.parse_args(argv)
    if any(n % 1024 for n in args.sizes):
        parser.error("every size must be a multiple of 1024 (the schedule's tile factors)")
    result = {"tvm": tvm.__version__, "torch": torch.__version__, "max_rel_err": args.max_rel_err}
    result["compile_mode"] = os.environ["TVM_CUDA_COMPILE_MODE"]
    if not torch.cuda.is_available():
        result["error"] = "no CUDA GPU visible to torch; run this on a GPU machine"
    elif torch.cuda.get_device_capability(0) < (8, 0):
        result["error"] = f"bf16 mma.sync needs sm_80+, got {torch.cuda.get_device_capability(0)}"
    if "error" in result:
        print(f"bf16_mma_check: {result['error']}", file=sys.stderr)
        write_result(result)
        return 2
    major, minor = torch.cuda.get_device_capability(0)
    result["arch"] = args.arch or f"sm_{major}{minor}{'a' if major == 9 else ''}"
    result["device"] = torch.cuda.get_device_name(0)
    target = cuda_target(result["arch"])
    records = result["results"] = []
    for n in args.sizes:
        for trans_b in (False, True):
            try:
                rec = check(n, trans_b, target, args.iters)
            except Exception as err:  # a failed case is data; the others still run
                rec = {"n": n, "layout": "A@B.T" if trans_b else "A@B", "error": repr(err)}
                print(f"{n:5d}^3 {rec['layout']:6s} FAILED: {err}", flush=True)
                records.append(rec | {"ok": False})
                continue
            rec["ok"] = rec["rel_err"] <= args.max_rel_err
            records.append(rec)
            print(
                f"{n:5d}^3 {rec['layout']:6s} rel_err {rec['rel_err']:.2e} "
                f"{'ok' if rec['ok'] else 'FAIL'}  tvm {rec['tvm_ms']:.3f} ms "
                f"({rec['tvm_tflops']:.1f} TFLOP/s)  torch bf16 {rec['torch_bf16_ms']:.3f} ms "
                f"-> {rec['speed_vs_torch']:.2f}x",
                flush=True,
            )
    write_result(result)
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())

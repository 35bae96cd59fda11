# SPDX-License-Identifier: Apache-2.0
"""Gate and time chosen `cuda.wgmma` genomes of any workload against PyTorch, in one process.

    OUT=/tmp/out python benchmarks/gpu/genome_check.py --op conv2d_nhwc \
        --shape 32,28,28,256,256,3,3,1,1 --dtype float16 --out-dtype float16 \
        --genomes schedule=persistent,store=tma,raster=16 schedule=stream,store=tma,raster=16

Each genome is ``gene=value,...`` over the family's default (`Genome.default("cuda.wgmma")`;
``family=cuda.gemv,...`` another whole-kernel family's).
For each: the grammar's check (an illegal genome is reported with its reason), the build
(``tir_pipeline="tirx"``, nvcc), the whole correctness gate (`autokernel_tvm.verify.verify`,
fresh seed), then the kernel and the op's PyTorch expression (`autokernel_tvm.torch.baselines`:
cuBLAS for matmuls, cuDNN on channels-last views for conv2d) timed in alternation with
`autokernel_tvm.timing.compare` (L2 flushed). Unlike `wgmma_check.py` it takes every op the
family takes (conv2d, gated and fused epilogues, batched) and checks with the gate, not one
normwise error. ``--kernels`` adds each GPU kernel of one call with its time (padding copies,
the GEMM, a reduction or copy-out: `autokernel_tvm.timing.gpu_kernels`). Each row also carries
ptxas's account of the main kernel (registers, bytes spilled), where nvcc is on the PATH.
Prints a table; appends one line per run (workload, every genome's gate report and timing) to
``$OUT/genome_check.jsonl`` and rows to ``$OUT/<device>.jsonl`` (`autokernel_tvm.results`
schema).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback

os.environ.setdefault("TVM_CUDA_COMPILE_MODE", "nvcc")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import tvm  # noqa: E402

from autokernel_tvm import builder, results, timing  # noqa: E402
from autokernel_tvm.builder import build_module, cuda_source  # noqa: E402
from autokernel_tvm.families import get  # noqa: E402
from autokernel_tvm.manifest import out_pitch  # noqa: E402
from autokernel_tvm.space.checks import genome_of_genes  # noqa: E402
from autokernel_tvm.space.genome import Genome  # noqa: E402
from autokernel_tvm.space.grammar import Grammar  # noqa: E402
from autokernel_tvm.targets import detect_cuda_arch, make_target  # noqa: E402
from autokernel_tvm.torch.baselines import baseline_name, make_baseline  # noqa: E402
from autokernel_tvm.torch.loader import TORCH_DTYPES as TORCH  # noqa: E402
from autokernel_tvm.torch.loader import new_rows  # noqa: E402
from autokernel_tvm.verify import verify  # noqa: E402
from autokernel_tvm.workloads import Workload  # noqa: E402


def parse_genes(text: str) -> dict:
    """``schedule=stream,raster=16`` -> {"schedule": "stream", "raster": 16}."""
    genes = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        genes[key] = int(value) if value.lstrip("-").isdigit() else value
    return genes


def genome_of(genes: dict, workload: Workload, target) -> Genome:
    """The grammar-checked genome ``genes`` spell: over ``cuda.wgmma``'s default, or (with
    ``family=NAME``) over that whole-kernel family's."""
    return Grammar(target).check(genome_of_genes(genes), workload)


def ptxas_usage(source: str, arch: str) -> dict:
    """ptxas's registers and spilled bytes for the main kernel of CUDA ``source`` ({} without
    nvcc): the budgets regs=split moves show here (a kernel with setmaxnreg reports its whole
    launch share)."""
    if shutil.which("nvcc") is None:
        return {}
    return builder.ptxas_usage(source, arch)


def error_vs_torch(out: torch.Tensor, want: torch.Tensor) -> dict:
    """Normwise relative error of ``out`` against torch's ``want`` where both are finite, and
    how many elements are not finite in one of them but differ: an fp16 product can overflow
    in both (the gated GEMM at 2048 x 11008 x 4096 on randn inputs: one draw in four or five),
    and inf - inf would make the whole norm NaN."""
    got, ref = out.double(), want.double()
    finite = torch.isfinite(got) & torch.isfinite(ref)
    rest = ~finite
    disagree = int((got[rest] != ref[rest]).sum()) if bool(rest.any()) else 0
    err = ((got[finite] - ref[finite]).norm() / ref[finite].norm()).item()
    return {"rel_err_vs_torch": err, "nonfinite": int(rest.sum()), "nonfinite_disagree": disagree}


def check_one(
    workload: Workload,
    genes: dict,
    target,
    gen: torch.Generator,
    profile: bool = False,
    kernels: bool = False,
    plain_output: bool = False,
) -> dict:
    row: dict = {"genes": genes}
    genome = genome_of(genes, workload, target)
    row["genome"] = genome.describe()
    row["family"], row["params"] = genome.family, genome.params.to_json()
    t0 = time.time()
    kernel = get(genome.family).candidate(genome.params, workload, target)
    exe = build_module(kernel.mod, target)
    fn = exe["main"]
    row["build_s"] = time.time() - t0
    row["ptxas"] = ptxas_usage(cuda_source(exe), str(target.attrs["arch"]))
    inputs = [
        torch.randn(a.shape, generator=gen, device="cuda").to(TORCH[a.dtype])
        for a in workload.inputs
    ]
    # C as torch's loader allocates it: a view of padded rows where the kernel takes one
    # (--plain-output: plain rows, as a Relax model or the C++ runtime hands it)
    view_pitch = out_pitch(kernel.mod["main"])
    pitch = None if plain_output else view_pitch
    out = new_rows(inputs[0], workload.output.shape, TORCH[workload.out_dtype], pitch)
    row["out_row_pitch"] = pitch
    args = [tvm.runtime.from_dlpack(t) for t in inputs]
    args.append(out if pitch else tvm.runtime.from_dlpack(out))  # a view: the torch tensor
    if profile:  # under a profiler: three calls, nothing else launched
        for _ in range(3):
            fn(*args)
        torch.cuda.synchronize()
        return row
    report = verify(fn, workload, tvm.cuda(0), out_pitch=view_pitch)
    row["gate"] = {"passed": report.passed, "failures": report.failures[:4],
                   "max_error_ratio": report.max_error_ratio}  # fmt: skip
    if not report.passed:
        return row
    base = make_baseline(workload.to_json(), inputs)
    fn(*args)
    row.update(error_vs_torch(out, base()))
    both = timing.compare({"k": lambda: fn(*args), "torch": base}, "cuda")
    sec, ref = both.seconds["k"], both.seconds["torch"]
    row.update(tflops=workload.flops / sec / 1e12, torch_tflops=workload.flops / ref / 1e12)
    row.update(us=sec * 1e6, torch_us=ref * 1e6, ratio=ref / sec, warnings=both.warnings)
    if kernels:  # where the call's time goes: padding copies, the GEMM, a reduction, a copy-out
        row["kernels"] = timing.gpu_kernels(lambda: fn(*args))
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--op", default="gemm_nt")
    p.add_argument("--shape", required=True, help="the op's dims, comma-separated")
    p.add_argument("--dtype", default="float16", choices=sorted(TORCH))
    p.add_argument("--out-dtype", default="", choices=["", *sorted(TORCH)])
    p.add_argument("--genomes", nargs="+", required=True, help="gene=value,... each")
    p.add_argument(
        "--profile", action="store_true", help="no gate, no timing: 3 calls each (for ncu)"
    )
    p.add_argument(
        "--kernels", action="store_true", help="also list each kernel of one call with its time"
    )
    p.add_argument(
        "--plain-output",
        action="store_true",
        help="time C as plain rows where a kernel also takes a view of padded rows",
    )
    args = p.parse_args(argv)
    arch = detect_cuda_arch()
    if arch is None:
        print("error: no CUDA GPU", file=sys.stderr)
        return 2
    from autokernel_tvm.intrin import import_stock_intrinsics, register_all

    import_stock_intrinsics()
    register_all()
    target = make_target("cuda", arch)
    shape = tuple(int(x) for x in args.shape.split(","))
    workload = Workload(args.op, shape, args.dtype, args.out_dtype or None)
    gen = torch.Generator(device="cuda").manual_seed(int(np.random.SeedSequence().entropy % 2**31))
    rows = []
    for text in args.genomes:
        try:
            row = check_one(workload, parse_genes(text), target, gen, args.profile, args.kernels,
                            args.plain_output)  # fmt: skip
        except Exception as err:  # an illegal or failing genome is data: report it, go on
            row = {"genes": text, "error": f"{type(err).__name__}: {err}"[:2000]}
            traceback.print_exc()
        rows.append(row)
        print(json.dumps(row), flush=True)
    gpu = torch.cuda.get_device_name()
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    command = "python3 benchmarks/gpu/genome_check.py " + " ".join(sys.argv[1:])
    baseline = "cudnn" if args.op.startswith("conv") else baseline_name(workload.to_json())
    out = os.environ.get("OUT")
    if out:
        # one line per run, appended: the device tool returns at most 8 files a call
        with open(os.path.join(out, "genome_check.jsonl"), "a") as f:
            f.write(json.dumps({"gpu": gpu, "arch": str(target.attrs["arch"]), "date": date,
                                "command": command, "workload": workload.to_json(),
                                "rows": rows}) + "\n")  # fmt: skip
        for r in rows:
            if "tflops" not in r:
                continue
            results.append_result(os.path.join(out, f"{results.device_short_name(gpu)}.jsonl"), {
                "date": date, "device": results.device_short_name(gpu), "gpu_name": gpu,
                "op": workload.op, "shape": list(shape), "dtype": workload.dtype,
                "out_dtype": workload.out_dtype, "impl": r["family"], "params": r["params"],
                "method": "direct", "tflops": r["tflops"], "baseline": baseline,
                "baseline_tflops": r["torch_tflops"], "ratio": r["ratio"], "trials": None,
                "tune_seconds": None, "command": command,
                "max_rel_error": r["rel_err_vs_torch"],
            })  # fmt: skip
    print(f"{'genes':<48} {'gate':>5} {'us':>8} {'torch us':>8} {'ratio':>6} {'regs':>5}")
    for r in rows:
        genes = r["genes"] if isinstance(r["genes"], str) else ",".join(
            f"{k}={v}" for k, v in r["genes"].items())  # fmt: skip
        if "error" in r:
            print(f"{genes:<48} ERROR {r['error'][:70]}")
        elif "gate" not in r:
            print(f"{genes:<48} built (--profile)")
        elif "tflops" not in r:
            print(f"{genes:<48} FAIL  {r['gate']['failures'][:1]}")
        else:
            regs = r.get("ptxas", {}).get("registers")
            print(f"{genes:<48} {'ok':>5} {r['us']:8.1f} {r['torch_us']:8.1f} {r['ratio']:6.3f} "
                  f"{regs if regs is not None else '-':>5}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

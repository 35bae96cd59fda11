# SPDX-License-Identifier: Apache-2.0
"""Whole model blocks end to end on a GPU: autokernel (Relax + tuning) vs eager and torch.compile.

    OUT=/tmp/out python benchmarks/gpu/model_blocks.py [--blocks llama_mlp resnet_block] \
        [--trials 48] [--trials-per-iter 16] [--space stock] [--arch sm_90a] [--rep-ms 300]

Blocks (fp16): ``llama_mlp``, LLaMA's SiLU-gated MLP ``down(silu(gate(x)) * up(x))`` with hidden
4096, intermediate 11008 and 2048 tokens (batch x seq); ``resnet_block``, ResNet's basic block
``relu(conv(relu(conv(x))) + x)``, 3x3 convs 64 -> 64, batch 32, 56 x 56, NCHW as PyTorch gives it
(TVM's importer keeps NCHW). Each block goes through ``autokernel_tvm.relax.tune_model``
(``--trials`` in total per block, split over its tasks), is checked against eager (relative-norm
error <= 2e-2), and is timed in the same process as eager PyTorch and ``torch.compile`` (inductor)
with CUDA events. Writes ``$OUT/model_blocks.json`` (per-task breakdown, tuning time) and appends
result rows (``autokernel_tvm.results`` schema, one per baseline) to ``$OUT/model_blocks.jsonl``.
Budgeted for under 9 minutes on one H100 with 16 cores at the defaults (not yet measured). Exit
status 2 without a CUDA GPU, 1 if a block fails its numerics check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TVM_CUDA_COMPILE_MODE", "nvcc")  # TVM's default, NVRTC, needs cuda-bindings
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from autokernel_tvm import results  # noqa: E402
from autokernel_tvm.config import TuneConfig  # noqa: E402
from autokernel_tvm.relax import check, model_tuner, tune_model  # noqa: E402
from autokernel_tvm.timing import time_callable  # noqa: E402
from autokernel_tvm.tuner import Tuner  # noqa: E402


class LlamaMLP(torch.nn.Module):
    def __init__(self, hidden: int = 4096, intermediate: int = 11008):
        super().__init__()
        self.gate = torch.nn.Linear(hidden, intermediate, bias=False)
        self.up = torch.nn.Linear(hidden, intermediate, bias=False)
        self.down = torch.nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class ResNetBlock(torch.nn.Module):
    def __init__(self, channels: int = 64):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x):
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + x)


def llama_mlp():
    tokens, hidden, inter = 2048, 4096, 11008
    model = LlamaMLP(hidden, inter)
    for layer in (model.gate, model.up, model.down):  # unit-scale activations in fp16
        torch.nn.init.normal_(layer.weight, std=layer.in_features**-0.5)
    flops = 3 * 2 * tokens * hidden * inter
    return model, (torch.randn(tokens, hidden),), [tokens, hidden, inter], flops


def resnet_block():
    n, c, hw = 32, 64, 56
    model = ResNetBlock(c)
    flops = 2 * (2 * n * c * c * 9 * hw * hw)
    return model, (torch.randn(n, c, hw, hw),), [n, c, hw, hw], flops


BLOCKS = {"llama_mlp": llama_mlp, "resnet_block": resnet_block}


def run_block(name: str, tuner: Tuner, args) -> dict:
    """Tune, check and time one block; return its report (timings in ms)."""
    torch.manual_seed(0)
    model, inputs, shape, flops = BLOCKS[name]()
    model = model.eval().cuda().half()
    inputs = tuple(x.cuda().half() for x in inputs)
    start = time.time()
    tuned = tune_model(model, inputs, config=tuner.config, tuner=tuner)
    tune_seconds = time.time() - start
    with torch.no_grad():
        numerics = check(tuned(*inputs), model(*inputs), inputs)
        times = {
            "eager": time_callable(lambda: model(*inputs), "cuda", rep_ms=args.rep_ms),
            "autokernel": time_callable(lambda: tuned(*inputs), "cuda", rep_ms=args.rep_ms),
        }
        compile_error = None
        try:
            compiled = torch.compile(model)
            compiled(*inputs)  # compile outside the timed region
            fn = lambda: compiled(*inputs)  # noqa: E731
            times["torch.compile"] = time_callable(fn, "cuda", rep_ms=args.rep_ms)
        except Exception as err:  # inductor needs Triton
            compile_error = f"{type(err).__name__}: {str(err)[:300]}"
    report = {
        "block": name,
        "shape": shape,
        "dtype": "float16",
        "flops": flops,
        "check": numerics,
        "ms": {k: v * 1e3 for k, v in times.items()},
        "tflops": {k: flops / v / 1e12 for k, v in times.items()},
        "torch_compile_error": compile_error,
        "tune_seconds": tune_seconds,
        "tuning": tuned.report,
    }
    for task in tuned.report["tasks"]:
        best = f"{task['best_us']:.1f} us" if task["best_us"] else "-"
        gflop = task["flops"] / 1e9
        line = f"{task['name']:<40} x{task['weight']} {gflop:8.2f} GFLOP {task['trials']:4d} trials"
        print(f"  {line}  best {best:>12}  {task['reason']}")
    return report


def write_rows(report: dict, tuner: Tuner, path: str, command: str) -> None:
    """One result row per baseline measured in the same run."""
    gpu_name = torch.cuda.get_device_name()
    tflops = report["tflops"]
    for baseline in ("eager", "torch.compile"):
        if baseline not in tflops:
            continue
        row = {
            "date": results.now_iso(),
            "device": results.device_short_name(gpu_name),
            "gpu_name": gpu_name,
            "op": report["block"],
            "shape": report["shape"],
            "dtype": report["dtype"],
            "impl": f"autokernel-relax-{tuner.config.space}",
            "tflops": tflops["autokernel"],
            "baseline": "torch" if baseline == "eager" else baseline,
            "baseline_tflops": tflops[baseline],
            "ratio": tflops["autokernel"] / tflops[baseline],
            "trials": tuner.config.trials,
            "tune_seconds": report["tune_seconds"],
            "command": command,
            "correct": report["check"]["passed"],
        }
        results.append_result(path, row)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", nargs="+", choices=sorted(BLOCKS), default=sorted(BLOCKS))
    parser.add_argument("--trials", type=int, default=48, help="per block, split over its tasks")
    parser.add_argument("--trials-per-iter", type=int, default=16)
    parser.add_argument("--space", choices=("stock", "generative"), default="stock")
    parser.add_argument("--arch", default=None, help="default: AUTOKERNEL_CUDA_ARCH or sm_90a")
    parser.add_argument("--rep-ms", type=float, default=300.0)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(
            "model_blocks.py needs a CUDA GPU: torch.cuda.is_available() is False", file=sys.stderr
        )
        return 2
    out = os.environ.get("OUT") or os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(out, exist_ok=True)
    config = TuneConfig.from_env(
        target="cuda",
        arch=args.arch,
        trials=args.trials,
        trials_per_iter=args.trials_per_iter,
        space=args.space,
        work_dir=os.path.join(out, "model_blocks_work"),
    )
    tuner = model_tuner(config, progress=False)
    command = " ".join([os.path.basename(sys.executable), *sys.argv])
    reports, start, failed = [], time.time(), False
    for name in args.blocks:
        print(f"{name}: tuning {args.trials} trials ({args.space} space)", flush=True)
        report = run_block(name, tuner, args)
        reports.append(report)
        write_rows(report, tuner, os.path.join(out, "model_blocks.jsonl"), command)
        ms = "  ".join(f"{k} {v:.3f} ms" for k, v in report["ms"].items())
        error, seconds = report["check"]["rel_error"], report["tune_seconds"]
        print(f"{name}: {ms}  rel_err {error:.2e}  tuned in {seconds:.0f} s", flush=True)
        failed |= not report["check"]["passed"]
    summary = {
        "device": torch.cuda.get_device_name(),
        "command": command,
        "total_seconds": time.time() - start,
        "blocks": reports,
    }
    with open(os.path.join(out, "model_blocks.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

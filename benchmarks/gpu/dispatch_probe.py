# SPDX-License-Identifier: Apache-2.0
"""Where a compiled model's time goes beyond its kernels: the model, its dispatched kernels
called bare out of the model's own library, and eager, timed in alternation (L2 flushed) in one
process; then ``torch.profiler`` over a few model calls lists every GPU kernel and every CUDA
runtime call (a synchronizing call such as ``cudaStreamSynchronize`` or ``cudaMalloc`` inside
the call path shows as a gap the kernel timing does not have).

Command (on the GPU box, after ``source .devcache/remote-setup.sh``)::

    python benchmarks/gpu/dispatch_probe.py --only matmul_square,linear_relu --trials 4

Writes ``$OUT/dispatch_probe.json`` (per problem: times in us, the profiler's kernel and runtime
tables).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from autokernel_tvm.config import TuneConfig  # noqa: E402
from autokernel_tvm.problem import _kernel_call, load_problem  # noqa: E402
from autokernel_tvm.relax import cast, tune_model  # noqa: E402
from autokernel_tvm.timing import compare  # noqa: E402
from autokernel_tvm.workloads import Workload  # noqa: E402

PROBLEMS = os.path.join(ROOT, "benchmarks", "problems")


def probe(name: str, dtype: str, tuner) -> dict:
    problem = load_problem(os.path.join(PROBLEMS, name + ".py"))
    torch.manual_seed(0)
    model = problem.Model(*problem.get_init_inputs()).eval().cuda()
    model, _ = cast(model, (), dtype)
    inputs = cast(model, tuple(x.cuda() for x in problem.get_inputs()), dtype)[1]
    tuned = tune_model(model, inputs, config=tuner.config, tuner=tuner)
    fns = {"eager": lambda: model(*inputs), "model": lambda: tuned(*inputs)}
    served = tuned.report.get("dispatch", {}).get("served", [])
    kernels = []
    for i, op in enumerate(served):
        call = _kernel_call(
            tuned.library, op["kernel"], Workload.from_json(op["workload_json"]), "cuda"
        )
        if call is not None:
            fns[f"kernel{i}"] = call
            kernels.append(op["kernel"])
    # the VM alone: its inputs and weights already TVM tensors, no torch conversion either way
    main, weights = tuned._main, tuned._weights
    fns["vm"] = lambda: main(*inputs, *weights)
    with torch.no_grad():
        timing = compare(fns, "cuda", rep_ms=200.0, rounds=6, warn=False)
        for fn in fns.values():
            fn()
        torch.cuda.synchronize()
        with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        ) as prof:
            for _ in range(10):
                tuned(*inputs)
            torch.cuda.synchronize()
    events = prof.key_averages()
    table = [
        {
            "name": e.key[:120],
            "count": e.count,
            "device_us": e.device_time_total / max(e.count, 1),
            "cpu_us": e.cpu_time_total / max(e.count, 1),
        }
        for e in events
    ]
    table.sort(key=lambda r: -(r["device_us"] * r["count"] + r["cpu_us"] * r["count"]))
    us = {k: v * 1e6 for k, v in timing.seconds.items()}
    return {"problem": name, "dtype": dtype, "us": us, "kernels": kernels, "profile": table[:40]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="matmul_square", help="comma-separated problem names")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--out", default=os.environ.get("OUT", "out"))
    args = parser.parse_args(argv)
    from autokernel_tvm.relax import model_tuner

    os.makedirs(args.out, exist_ok=True)
    config = TuneConfig.from_env(
        target="cuda", trials=args.trials, work_dir=os.path.join(args.out, "work")
    )
    tuner = model_tuner(config, progress=False)
    results = []
    for name in args.only.split(","):
        try:
            result = probe(name, args.dtype, tuner)
        except Exception as err:  # report and go on to the next problem
            result = {"problem": name, "error": f"{type(err).__name__}: {err}"}
        results.append(result)
        print(json.dumps({k: result.get(k) for k in ("problem", "us", "kernels", "error")}))
        for row in result.get("profile", [])[:25]:
            print(
                f"  {row['count']:>4} x {row['device_us']:9.1f} us dev {row['cpu_us']:9.1f} us "
                f"cpu  {row['name']}"
            )
        with open(os.path.join(args.out, "dispatch_probe.json"), "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

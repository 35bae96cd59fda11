#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# compute-sanitizer (memcheck + racecheck) on an exported CUDA fp16 GEMM through
# autokernel_tvm.verify.sanitize, then the correctness gate's bound calibrated on the GPU:
# verify() on the tuned kernel and on cuBLAS (torch) at K up to 524288, with wall times.
# Writes $OUT/sanitizer.json and $OUT/gate_calibration.json; prints a short table. ~2-3 min.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/ak_out}
mkdir -p "$out" /tmp/ak
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
timeout 150 python scripts/tune.py --target cuda --op gemm_nt --shape 1024,1024,1024 \
  --dtype float16 --trials 4 --work-dir /tmp/ak --export /tmp/ak/g.so --no-progress \
  > "$out/tune.log" 2>&1 || { echo "tune failed: see $out/tune.log"; tail -5 "$out/tune.log"; }
echo "tune+export: $(( $(date +%s) - start )) s"
timeout 420 python - "$out" <<'PY'
import json, sys, time

import numpy as np
import torch
import tvm

from autokernel_tvm.verify import sanitize, verify
from autokernel_tvm.workloads import Workload

out = sys.argv[1]
rows = []
start = time.time()
result = sanitize("/tmp/ak/g.so", timeout_s=150) if __import__("os").path.exists("/tmp/ak/g.so") else {"status": "no library (tune failed)"}
json.dump(result, open(f"{out}/sanitizer.json", "w"), indent=1)
print(f"sanitize: {result.get('status')} in {time.time() - start:.0f} s")
for tool in ("memcheck", "racecheck"):
    if tool in result:
        print(f"  {tool:9s} rc={result[tool]['returncode']} errors={result[tool]['errors']} | {result[tool]['summary'][:90]}")

dev = tvm.cuda(0)
torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False


def cublas(workload):
    def run(*args):
        a, b, c = (torch.from_dlpack(x) for x in args)
        c.copy_(torch.matmul(a, b.T if workload.op == "gemm_nt" else b))
        torch.cuda.synchronize()
    return run


cases = []
if __import__("os").path.exists("/tmp/ak/g.so"):
    manifest = json.load(open("/tmp/ak/g.so.json"))
    entry = manifest["kernels"][0]
    lib = tvm.runtime.load_module("/tmp/ak/g.so")
    cases.append(("tuned 1024^3", lib[entry["name"]], Workload.from_json(entry), None))
for m, k in ((4096, 4096), (256, 65536), (256, 524288)):
    w = Workload("gemm_nt", (m, m, k), "float16", "float16")
    kinds = None if m == 4096 else ("normal", "exact")
    cases.append((f"cuBLAS {m}x{m}x{k} fp16", cublas(w), w, kinds))
print(f"{'case':28s} {'passed':6s} {'max err/bound':>13s} {'verify s':>8s}")
for name, run, w, kinds in cases:
    t = time.time()
    kw = {} if kinds is None else {"kinds": kinds}
    report = verify(run, w, dev, check_shapes=name.startswith("tuned"), **kw)
    secs = time.time() - t
    rows.append({"case": name, "passed": report.passed, "max_error_ratio": report.max_error_ratio,
                 "verify_s": secs, "failures": report.failures, "checks": report.checks})
    print(f"{name:28s} {str(report.passed):6s} {report.max_error_ratio:13.3g} {secs:8.1f}")
    for f in report.failures[:3]:
        print("   ", f[:150])
json.dump(rows, open(f"{out}/gate_calibration.json", "w"), indent=1)
PY
echo "total: $(( $(date +%s) - start )) s"

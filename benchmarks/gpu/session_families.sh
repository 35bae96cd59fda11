#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The GPU evidence for the family redesign, in one device call (after remote-setup.sh):
#   bash benchmarks/gpu/session_families.sh [TRIALS]
# 1. the gpu-marked suite (numerics of every CUDA family through the correctness gate);
# 2. fp16 A@B.T 4096^3 (fp32 out) and bf16 A@B 4096^3 (bf16 out): tune.py (library-seeded,
#    TRIALS each) -> export -> bench.py (kernel and cuBLAS in alternation, L2 flushed).
# Everything lands in $OUT/bundle.tgz (the device returns at most 8 files) + a printed summary.
set -uo pipefail
trials=${1:-16}
out=${OUT:-/tmp/ak_out}
raw=$(mktemp -d)
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; } \
  > "$raw/gpu.txt" 2>&1
timeout 300 python3 -m pytest tests/gpu -m gpu -v -p no:cacheprovider > "$raw/gpu_suite.txt" 2>&1
tail -14 "$raw/gpu_suite.txt"
OUT=$raw bash benchmarks/gpu/tune_and_bench.sh gemm_nt 4096,4096,4096 float16 generative "$trials" 200
OUT=$raw OUT_DTYPE=bfloat16 bash benchmarks/gpu/tune_and_bench.sh gemm 4096,4096,4096 bfloat16 \
  generative "$trials" 200
cat "$raw"/*.jsonl 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(r.get("op"), r.get("dtype"), r.get("impl"), "kernel", round(r.get("tflops", 0), 1),
          "baseline", r.get("baseline"), round(r.get("baseline_tflops", 0), 1),
          "ratio", round(r.get("speedup", r.get("ratio", 0)), 3))'
mkdir -p "$out" && tar -C "$raw" -czf "$out/bundle.tgz" . && ls -la "$out"

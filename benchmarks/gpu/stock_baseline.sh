#!/usr/bin/env bash
# Stock MetaSchedule baseline on the GPU machine: fp16 4096^3 GEMM (fp32 accumulate), tuned with
# the project's tuner (persistent builder, fixed pass config), exported, loaded in torch,
# verified, and benchmarked against torch.matmul (cuBLAS) in the same process.
#   bash benchmarks/gpu/stock_baseline.sh [TRIALS]      (results under $OUT)
set -euo pipefail
trials=${1:-64}
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$out/gpu.txt"
python3 scripts/tune.py --target cuda --arch sm_90a --op gemm --shape 4096,4096,4096 \
  --dtype float16 --space stock --trials "$trials" --trials-per-iter 32 \
  --work-dir /tmp/ak_stock --export "$out/stock_gemm.so" --report "$out/stock_report.json" \
  --no-progress 2>&1 | tail -25
python3 scripts/bench.py "$out/stock_gemm.so" --impl stock --results-dir "$out" 2>&1 | tail -8

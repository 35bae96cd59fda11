#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): the cuda.wgmma tile-per-block and persistent
# schedules on the GEMM shapes the issues track, each against cuBLAS in the same process
# (benchmarks/gpu/wgmma_check.py: fresh inputs checked against fp64, then timed in alternation
# with the L2 flushed), then the gpu-marked persistent cases through the correctness gate.
#   bash benchmarks/gpu/schedules.sh
# Results under $OUT: wgmma_check_*.json, <device>.jsonl, schedules_gpu_suite.txt.
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
check() { OUT=$out timeout 150 python3 benchmarks/gpu/wgmma_check.py "$@" 2>&1 | tail -6; }
check --shape 4096,4096,4096 --out-dtype float16 --structures 256,2,4,8 256,2,4,8,p 256,2,3,8,p
check --shape 8192,8192,8192 --out-dtype float16 --structures 256,2,4,8 256,2,4,8,p
check --shape 2048,8192,1024 --out-dtype float16 --structures 256,2,4,8 256,2,4,8,p 128,2,6,8,p
check --shape 2048,11008,4096 --out-dtype float16 --structures 256,2,4,8 256,2,4,8,p
check --shape 4096,4096,4096 --dtype bfloat16 --layout nn --out-dtype bfloat16 \
  --structures 256,2,4,8 256,2,4,8,p
timeout 150 python3 -m pytest -q -m gpu tests/gpu -k persistent -rA > "$out/schedules_gpu_suite.txt" 2>&1
echo "gpu persistent suite rc=$?"; grep -E "^(PASSED|FAILED)|passed|failed" "$out/schedules_gpu_suite.txt" | tail -8

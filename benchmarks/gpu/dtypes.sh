#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): the kernel-level dtypes of cuda.wgmma, built directly
# and checked against the fp64 product: fp8 (e4m3, e5m2; timed against torch._scaled_mm, the
# same per-tensor scales, bf16 out), fp32 inputs on TF32 tensor cores (timed against cuBLAS
# with TF32 allowed) and as 3xTF32 (fp32 accuracy; against cuBLAS fp32, TF32 off), in
# alternation, L2 flushed.
#   bash benchmarks/gpu/dtypes.sh
# Results under $OUT: fp32_gate.txt, wgmma_check_*.json, <device>.jsonl.
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
# the gate first: fp32 workloads as 3xTF32 and with TF32 allowed (default genomes)
timeout 240 python3 -m pytest -q -m gpu tests/gpu -k float32 -rA > "$out/fp32_gate.txt" 2>&1
echo "gpu fp32 gate rc=$?"
grep -E "^(PASSED|FAILED)|passed|failed" "$out/fp32_gate.txt" | tail -8
for s in 4096 8192; do
  for d in float8_e4m3fn float8_e5m2; do
    OUT=$out timeout 120 python3 benchmarks/gpu/wgmma_check.py --size $s --dtype $d \
      --out-dtype bfloat16 --structures 256,2,4,8 256,2,4,8,p,t 128,2,5,8,p,t 256,2,4,8,p,c2,t \
      2>&1 | grep -v Warn | tail -5
  done
done
OUT=$out timeout 120 python3 benchmarks/gpu/wgmma_check.py --size 4096 --dtype float32 \
  --out-dtype float32 --structures 256,2,4,8 256,2,4,8,p,t 128,2,4,8,p,t 2>&1 | grep -v Warn | tail -4
# 3xTF32 (fp32 accuracy) against cuBLAS fp32 with TF32 off, both layouts
for layout in nt nn; do
  OUT=$out timeout 150 python3 benchmarks/gpu/wgmma_check.py --size 4096 --dtype float32 \
    --layout $layout --out-dtype float32 \
    --structures 256,2,4,8,x3 256,2,4,8,p,t,x3 128,2,4,8,p,t,x3 2>&1 | grep -v Warn | tail -4
done

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): the pad gene of cuda.wgmma. The gate's pad=lines and
# split-K cases first, then the same structures with and without pad=lines on shapes whose rows
# are 16-byte but not 128-byte multiples (the row-alignment study of 2026-12-02: 370-455 TFLOP/s
# at K = 2952 against 545-603 on 128-byte rows), against cuBLAS in the same run.
#   bash benchmarks/gpu/pad_lines.sh
# Results under $OUT: pad_gate.txt, wgmma_check_*.json, <device>.jsonl.
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
timeout 200 python3 -m pytest -q -m gpu tests/gpu -k "pad_lines or split" -rA \
  > "$out/pad_gate.txt" 2>&1
echo "gpu pad/split gate rc=$?"
grep -E "^(PASSED|FAILED)|passed|failed" "$out/pad_gate.txt" | tail -14
for s in 8205,5928,2952 4096,4096,4000 2048,8200,1000; do
  OUT=$out timeout 100 python3 benchmarks/gpu/wgmma_check.py --shape $s --out-dtype float16 \
    --structures 256,2,4,5 256,2,4,5,l 256,2,4,5,p,t 256,2,4,5,p,t,l 2>&1 | grep -v Warn | tail -5
done

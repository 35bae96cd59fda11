#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): shapes whose rows the TMA cannot address (K, or N of
# B [K, N], not a multiple of 8), which cuda.wgmma serves through zero-padded row copies. The
# gate's odd-shape cases first, then the structures directly against cuBLAS (wgmma_check.py),
# then the irregular shapes of the shape suite through the tuner against cuBLAS and
# torch.compile (shape_suite.py).
#   bash benchmarks/gpu/odd_shapes.sh [TRIALS] [DTYPES]
# Results under $OUT: odd_gate.txt, wgmma_check_*.json, shapes.jsonl, <device>.jsonl.
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
timeout 150 python3 -m pytest -q -m gpu tests/gpu -k "2051 or 1001 or 201_K77 or 1003" -rA \
  > "$out/odd_gate.txt" 2>&1
echo "gpu odd-shape gate rc=$?"
grep -E "^(PASSED|FAILED)|passed|failed" "$out/odd_gate.txt" | tail -8
for s in 8205,5921,2949 2047,2049,2051; do
  OUT=$out timeout 90 python3 benchmarks/gpu/wgmma_check.py --shape $s --out-dtype float16 \
    --structures 256,2,4,1 256,2,4,1,p 128,2,5,1,p 2>&1 | grep -v Warn | tail -4
done
timeout 330 python3 benchmarks/gpu/shape_suite.py --only odd_8205,odd_2047 \
  --dtypes "${2:-float16,bfloat16}" --trials "${1:-8}" --out "$out" 2>&1 | grep -v Warn | tail -6

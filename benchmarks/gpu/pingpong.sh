#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): ping-pong consumers and the fp32 fixes on the GPU.
#   bash benchmarks/gpu/pingpong.sh
# 1. the gate on the ping-pong persistent cases and the fp32 (3xTF32, TF32) cases;
# 2. ping-pong against the cooperative persistent kernel and cuBLAS at 4096^3 and 8192^3, fp16
#    out, plain and with the fused bias + erf-GELU (against F.linear + GELU), in alternation;
# 3. 3xTF32 after the reorder (small products first) against cuBLAS fp32.
# Results under $OUT: gate.txt, wgmma_check_*.json, <device>.jsonl.
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
timeout 180 python3 -m pytest -q -m gpu tests/gpu -k "float32 or pingpong" -rA > "$out/gate.txt" 2>&1
echo "gate rc=$?"
grep -E "^(PASSED|FAILED|ERROR)|passed|failed" "$out/gate.txt" | tail -12
check() { OUT=$out timeout 100 python3 benchmarks/gpu/wgmma_check.py "$@" 2>&1 | grep -v Warn | tail -5; }
check --size 4096 --out-dtype float16 --structures 256,2,4,8,p,t 256,2,4,8,p,pp,t 256,2,4,8,p,pp,c2,t
check --size 4096 --out-dtype float16 --epilogue bias_gelu --structures 256,2,4,8,p,t 256,2,4,8,p,pp,t 256,2,4,8,p,pp,c2,t
check --size 8192 --out-dtype float16 --structures 256,2,4,8,p,t 256,2,4,8,p,pp,t 256,2,4,8,p,pp,c2,t
check --size 4096 --dtype float32 --out-dtype float32 --structures 256,2,4,8,p,t,x3

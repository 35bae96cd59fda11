#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): cuda.wgmma structures -- tile per block or
# persistent, alone or in clusters of 2 multicasting B, writing back directly or through the
# TMA -- on the GEMM shapes the issues track, each against cuBLAS in the same process
# (benchmarks/gpu/wgmma_check.py: fresh inputs checked against fp64, then timed in alternation
# with the L2 flushed), after the gpu-marked persistent/cluster/TMA-store cases pass the gate.
#   bash benchmarks/gpu/schedules.sh ["STRUCTURES"]
# Results under $OUT: wgmma_check_*.json, <device>.jsonl, schedules_gpu_suite.txt.
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
timeout 200 python3 -m pytest -q -m gpu tests/gpu -k persistent -rA > "$out/schedules_gpu_suite.txt" 2>&1
echo "gpu persistent/cluster/tma-store suite rc=$?"
grep -E "^(PASSED|FAILED)|passed|failed" "$out/schedules_gpu_suite.txt" | tail -14
check() { OUT=$out timeout 120 python3 benchmarks/gpu/wgmma_check.py "$@" 2>&1 | grep -v Warn | tail -5; }
# structure: block_n,consumers,stages,raster[,p][,c2][,t]
all=${1:-"256,2,4,8 256,2,4,8,p 256,2,4,8,p,t 256,2,4,8,t"}
check --shape 4096,4096,4096 --out-dtype float16 --structures $all
check --shape 8192,8192,8192 --out-dtype float16 --structures $all
check --shape 2048,8192,1024 --out-dtype float16 --structures $all
check --shape 2048,11008,4096 --out-dtype float16 --structures $all
check --shape 4096,4096,4096 --dtype bfloat16 --layout nn --out-dtype bfloat16 --structures $all
check --shape 4096,4096,4096 --structures $all  # fp32 C, the tuner's default output

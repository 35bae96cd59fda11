#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fp8 through the tuner (gemm_scaled_nt: torch._scaled_mm's GEMM), in two device calls' time
# (~10 min; run steps apart with a shorter spec list where one call must do):
#  1. the GPU gate on the fp8 cases of tests/wgmma_cases.py (FP8: seed structure, edges with
#     padded K rows and an odd N, e5m2, the direct store);
#  2. tune -> export -> scripts/bench.py against torch._scaled_mm (cuBLASLt) in one process,
#     e4m3 at 4096^3 and 8192^3, sums promoted to fp32 (the default, accum=promoted) and with
#     --fp8-fast-accum (use_fast_accum on both sides), and e5m2 at 4096^3 (cuBLASLt has no
#     e5m2 x e5m2 GEMM: its B is converted to e4m3 once, outside the timed calls), bf16 out,
#     as the kernel a user calls;
#  3. promoted-sum structures the tuner's 8 trials did not reach, gated and timed by
#     genome_check.py (ping-pong, cluster 2, 6 stages, one consumer; the sums of K-step pairs,
#     accum=pipelined on regs=split, on its own and with ping-pong), at 4096^3 and 8192^3.
# Rows go to $OUT/<device>.jsonl (scripts/bench.py), the log to $OUT/fp8_tuned.log.
#   source .devcache/remote-setup.sh && OUT=/tmp/out bash benchmarks/gpu/fp8_tuned.sh [TRIALS]
set -uo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-8}
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export OUT=$out OUT_DTYPE=bfloat16
{
  timeout 240 python3 -m pytest -m gpu tests/gpu -k fp8 -q -p no:cacheprovider 2>&1 | tail -n 6
  for spec in "4096,4096,4096 float8_e4m3fn" "4096,4096,4096 float8_e4m3fn --fp8-fast-accum" \
    "8192,8192,8192 float8_e4m3fn" "8192,8192,8192 float8_e4m3fn --fp8-fast-accum" \
    "4096,4096,4096 float8_e5m2 --fp8-fast-accum"; do
    set -- $spec
    echo "== gemm_scaled_nt $1 $2 ${3:-} -> bf16, $trials trials"
    TUNE_FLAGS=${3:-} bash benchmarks/gpu/tune_and_bench.sh gemm_scaled_nt "$1" "$2" \
      generative "$trials" 200
  done
  # promoted sums ran 0.88x (4096^3) and 0.80x (8192^3) of torch._scaled_mm on 128-wide
  # cooperative tiles (session 31), where fast accumulation on 256-wide tiles was 1.00-1.03x:
  # the promoted structures 8 trials did not reach -- ping-pong (one warpgroup's promotion adds
  # beside the other's wgmma), clusters, deeper rings, one consumer of 64 x 128
  for shape in 4096,4096,4096 8192,8192,8192; do
    echo "== promoted structures, e4m3 $shape -> bf16 (genome_check: gate, then vs torch._scaled_mm)"
    timeout 280 python3 benchmarks/gpu/genome_check.py --op gemm_scaled_nt --shape $shape \
      --dtype float8_e4m3fn --out-dtype bfloat16 --genomes \
      accum=promoted,block_n=128,schedule=persistent,store=tma \
      accum=pipelined,regs=split,block_n=128,schedule=persistent,store=tma \
      accum=pipelined,regs=split,block_n=128,schedule=persistent,store=tma,arrangement=pingpong \
      accum=promoted,regs=split,block_n=128,schedule=persistent,store=tma,arrangement=pingpong \
      accum=promoted,block_n=128,schedule=persistent,store=tma,cluster=2 \
      accum=promoted,block_n=128,schedule=persistent,store=tma,stages=6 2>&1 | tail -n 10
  done
} > "$out/fp8_tuned.log" 2>&1
grep -E "passed|failed|^==|ratio|gemm_scaled_nt_M|accum=" "$out/fp8_tuned.log"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fp8 through the tuner (gemm_scaled_nt: torch._scaled_mm's GEMM), in two device calls' time
# (~8 min; run steps apart with a shorter spec list where one call must do):
#  1. the GPU gate on the fp8 cases of tests/wgmma_cases.py (FP8: seed structure, edges with
#     padded K rows and an odd N, e5m2, the direct store);
#  2. tune -> export -> scripts/bench.py against torch._scaled_mm (cuBLASLt) in one process,
#     e4m3 at 4096^3 and 8192^3, sums promoted to fp32 (the default, accum=promoted) and with
#     --fp8-fast-accum (use_fast_accum on both sides), and e5m2 at 4096^3 (cuBLASLt has no
#     e5m2 x e5m2 GEMM: its B is converted to e4m3 once, outside the timed calls), bf16 out,
#     as the kernel a user calls;
# (The promoted-sum structures the tuner's trials may not reach are timed by
# structures.sh.)
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
} > "$out/fp8_tuned.log" 2>&1
grep -E "passed|failed|^==|ratio|gemm_scaled_nt_M|accum=" "$out/fp8_tuned.log"

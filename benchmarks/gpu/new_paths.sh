#!/usr/bin/env bash
# What the H200 run of session 31 found and was fixed after it, not yet run on a GPU (~5 min):
#  1. the gate cases of the fixes: bias_at=start on a batched GEMM (now 16-bit C: an fp32 C is
#     refused), and the 3xTF32 conv of 256 channels (its K order: every tap's small products
#     first), with the other fp32 conv cases;
#  2. tune -> export -> bench.py (kernel and cuDNN in alternation, L2 flushed) for that conv at
#     fp32 accuracy (cuDNN with TF32 off) and with TF32 allowed (both sides TF32; bench.py now
#     holds it to a TF32 error limit).
# The device returns few files: reports and curves are packed into $OUT/new_paths.tar.gz; rows
# go to $OUT/h200.jsonl, the log to $OUT/new_paths.log.
#   source .devcache/remote-setup.sh && OUT=$OUT bash benchmarks/gpu/new_paths.sh [TRIALS]
set -uo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-8}
out=${OUT:-/tmp/ak_out}
work=/tmp/new_paths_out
mkdir -p "$out" "$work"
{
  timeout 240 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf \
    -k "(conv2d and float32) or batch_gemm_nt_B3_M1000_N1000_K520" 2>&1 | tail -15
  tb=benchmarks/gpu/tune_and_bench.sh
  OUT=$work bash $tb conv2d_nhwc 32,28,28,256,256,3,3,1,1 float32 generative "$trials" 120
  OUT=$work TUNE_FLAGS="--allow-tf32" bash $tb conv2d_nhwc 32,28,28,256,256,3,3,1,1 float32 \
    generative "$trials" 120
} > "$out/new_paths.log" 2>&1
[ -f "$work/h200.jsonl" ] && cp "$work/h200.jsonl" "$out/h200.jsonl"
tar -czf "$out/new_paths.tar.gz" -C "$work" --exclude cache . 2>/dev/null
grep -E "passed|failed|FAILED|ratio|conv2d_nhwc_N|error" "$out/new_paths.log" | cut -c1-200
exit 0

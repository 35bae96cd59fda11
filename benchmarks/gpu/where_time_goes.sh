#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Where the unmet speed goals lose their time, in one device call (~4 min):
#  1. odd shapes (below torch.compile): each kernel of one call -- the padding copies, the GEMM,
#     the copy-out of a TMA-stored C -- for the tuner's winners, their persistent variants and
#     store=rows (odd-N C written from shared memory in row runs, no copy-out);
#  2. the fused epilogue's cost: the same 4096^3 genome plain, + bias + ReLU, + bias + GELU,
#     each bias added at the store and loaded into the accumulators first (bias_at=start)
#     (the chains are 1.05-1.07x eager where 1.1x needs the epilogue free and the GEMM past
#     cuBLAS), and the gated GEMM of llama_mlp against the plain GEMM of its width;
#  3. (PROFILE=1) ncu of the 4096^3 kernel and of cuBLAS's: tensor-pipe activity and stall
#     reasons at the GPU's own clocks.
# Every row goes to $OUT/genome_check.jsonl (with --kernels, each kernel's time) and
# $OUT/h200.jsonl; the log to $OUT/where_time_goes.log.
#   source .devcache/remote-setup.sh && OUT=/tmp/out bash benchmarks/gpu/where_time_goes.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export OUT=$out
log=$out/where_time_goes.log
check() {  # op shape dtype genomes...
  local op=$1 shape=$2 dtype=$3
  shift 3
  timeout 200 python3 benchmarks/gpu/genome_check.py --op "$op" --shape "$shape" \
    --dtype "$dtype" --out-dtype "$dtype" --kernels --genomes "$@" 2>&1 | tail -n 8
}
{
  echo "== odd shapes: each kernel of one call"
  check gemm_nt 8205,5921,2949 float16 raster=8 schedule=persistent,store=tma \
    schedule=persistent,raster=8 schedule=persistent,store=rows store=rows
  # 144 tiles of 128 x 256 on 132 SMs: stream-K's even shares against the tuner's winner
  check gemm_nt 2047,2049,2051 bfloat16 block_n=128,raster=16,cluster=2 \
    schedule=persistent,store=tma block_n=128,schedule=persistent,store=tma \
    schedule=stream,store=tma,raster=0
  echo "== the epilogue's cost: one genome, three epilogues (4096^3 fp16), the bias at the"
  echo "   store or in the accumulators from the start (bias_at)"
  check gemm_nt 4096,4096,4096 float16 schedule=persistent,store=tma
  for op in gemm_bias_relu gemm_bias_gelu; do
    check "$op" 4096,4096,4096 float16 schedule=persistent,store=tma \
      schedule=persistent,store=tma,bias_at=start
  done
  echo "== gated against plain at the same width (2048 x 22016 x 4096 of MMA work)"
  check gemm_gated_nt 2048,11008,4096 float16 schedule=streamk,store=tma,splits=2,reduction=cluster
  check gemm_nt 2048,22016,4096 float16 schedule=streamk,store=tma,splits=2,reduction=cluster
} > "$log" 2>&1
if [ "${PROFILE:-0}" = 1 ]; then
  timeout 200 ncu --clock-control none --section SpeedOfLight --section WarpStateStats \
    --section ComputeWorkloadAnalysis -k main_kernel --launch-skip 2 --launch-count 1 \
    -f -o /tmp/prof_ours python3 benchmarks/gpu/genome_check.py --op gemm_nt \
    --shape 4096,4096,4096 --dtype float16 --out-dtype float16 --profile \
    --genomes schedule=persistent,store=tma >> "$log" 2>&1
  timeout 120 ncu --clock-control none --section SpeedOfLight --section WarpStateStats \
    --section ComputeWorkloadAnalysis -k "regex:nvjet|sm90|gemm" --launch-skip 2 \
    --launch-count 1 -f -o /tmp/prof_cublas python3 -c "
import torch
a = torch.randn(4096, 4096, device='cuda', dtype=torch.float16)
b = torch.randn(4096, 4096, device='cuda', dtype=torch.float16)
for _ in range(4):
    a @ b.T
torch.cuda.synchronize()" >> "$log" 2>&1
  for who in ours cublas; do
    ncu -i "/tmp/prof_$who.ncu-rep" --page details --csv > "$out/ncu_gemm_${who}.csv" 2>&1
  done
fi
grep -E "^==|ok|FAIL|ERROR" "$log"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Where a stream-K kernel's K steps cost more than the persistent kernel's: both kernels profiled
# by ncu at the GPU's own clocks (ncu otherwise locks the SMs at base, 1.33 GHz on the H200,
# where the two ran equally fast), with memory tables and per-instruction SASS stall samples as
# CSV under $OUT. Default: the ResNet 3x3 conv (224 tiles, 1.7 waves; stream_tail 0.835x cuDNN
# against persistent's 0.887x where it should gain 15%); OP/SHAPE pick another workload, e.g.
# the LLaMA down projection, where stream_tail ran 0.64x cuBLAS (H100 2026-12-07: L2 hits 49%
# against 81%, its blocks reading K far apart; 0.97x once shares ran last tile first):
#   source .devcache/remote-setup.sh && OUT=/tmp/out bash benchmarks/gpu/profile_stream.sh
#   OP=gemm_nt SHAPE=2048,4096,11008 OUT=/tmp/out bash benchmarks/gpu/profile_stream.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
op=${OP:-conv2d_nhwc}
shape=${SHAPE:-32,28,28,256,256,3,3,1,1}
name=${op}_${shape//,/x}
for schedule in stream_tail persistent; do
  rep=/tmp/prof_${name}_$schedule
  timeout 240 ncu --clock-control none --set full -k main_kernel --launch-skip 2 --launch-count 1 \
    -f -o "$rep" python3 benchmarks/gpu/genome_check.py --op "$op" \
    --shape "$shape" --dtype float16 --out-dtype float16 --profile \
    --genomes "schedule=$schedule,store=tma,raster=16" > "$rep.log" 2>&1
  echo "$name $schedule: ncu rc=$?"
  ncu -i "$rep.ncu-rep" --page details --csv > "$out/ncu_${name}_${schedule}_details.csv"
  ncu -i "$rep.ncu-rep" --page source --csv --print-source sass \
    > "$out/ncu_${name}_${schedule}_sass.csv" 2>&1
  grep -E "Duration|L2 Cache Throughput|DRAM Throughput|SM Active|L2 Hit Rate" \
    "$out/ncu_${name}_${schedule}_details.csv" | head -8
done

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Where a stream-K kernel's K steps cost more than the persistent kernel's: both conv2d kernels of
# the ResNet layer profiled by ncu at the GPU's own clocks (ncu otherwise locks the SMs at base,
# 1.33 GHz on the H200, where the two ran equally fast), with memory tables and per-instruction
# SASS stall samples as CSV under $OUT.
#   source .devcache/remote-setup.sh && OUT=/tmp/out bash benchmarks/gpu/profile_stream.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
shape=${SHAPE:-32,28,28,256,256,3,3,1,1}
for schedule in stream persistent; do
  timeout 240 ncu --clock-control none --set full -k main_kernel --launch-skip 2 --launch-count 1 \
    -f -o "/tmp/prof_$schedule" python3 benchmarks/gpu/genome_check.py --op conv2d_nhwc \
    --shape "$shape" --dtype float16 --out-dtype float16 --profile \
    --genomes "schedule=$schedule,store=tma,raster=16" > "/tmp/prof_$schedule.log" 2>&1
  echo "$schedule: ncu rc=$?"
  ncu -i "/tmp/prof_$schedule.ncu-rep" --page details --csv > "$out/ncu_${schedule}_details.csv"
  ncu -i "/tmp/prof_$schedule.ncu-rep" --page source --csv --print-source sass \
    > "$out/ncu_${schedule}_sass.csv" 2>&1
  grep -E "Duration|L2 Cache Throughput|DRAM Throughput|SM Active" "$out/ncu_${schedule}_details.csv" \
    | head -6
done

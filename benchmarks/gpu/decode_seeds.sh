#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Decode GEMMs (M < 128) on the GPU machine: the family's decode seed (one-warpgroup tiles, the
# (block_n, splits) that fill the last wave best, fewest splits, partials summed in the cluster)
# against the seed it replaced (128-wide tiles, 8 splits, workspace) and a neighbour, each gated
# and timed against cuBLAS by genome_check.py; results under $OUT.
#   source .devcache/remote-setup.sh && OUT=/tmp/out bash benchmarks/gpu/decode_seeds.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
G="timeout 240 python3 benchmarks/gpu/genome_check.py --op gemm_nt"
ONE="consumers=1,raster=0,stages=6"
NEW="$ONE,block_n=64,splits=2,reduction=cluster"
OLD="$ONE,block_n=128,splits=8"
for dt in float16 bfloat16; do
  for shape in 64,4096,4096 16,4096,4096 1,4096,4096; do
    $G --shape $shape --dtype $dt --out-dtype $dt --genomes $NEW $OLD 2>&1 | grep -v Warn | tail -3
  done
  $G --shape 64,11008,4096 --dtype $dt --out-dtype $dt --genomes "$ONE,block_n=128,store=tma" \
    "$ONE,block_n=64,store=tma" $OLD 2>&1 | grep -v Warn | tail -4
done

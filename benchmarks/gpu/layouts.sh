#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): the "past cuBLAS" table -- fp16 and bf16, 4096^3 and
# 8192^3, A @ B.T and A @ B, C in the input dtype (as torch.matmul returns it) -- each cell the
# seeded structure (persistent, TMA store), with clusters of 2 multicasting B, and (fp16) the
# ping-pong pair with clusters; built directly, checked against fp64, timed in alternation with
# cuBLAS (L2 flushed, one process).
#   bash benchmarks/gpu/layouts.sh
# Results under $OUT: wgmma_check_*.json, <device>.jsonl.
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
for d in float16 bfloat16; do
  for s in 4096 8192; do
    for layout in nt nn; do
      structures="256,2,4,8,p,t 256,2,4,8,p,c2,t"
      [ "$d" = float16 ] && [ "$layout" = nt ] && structures="$structures 256,2,4,8,p,pp,c2,t"
      OUT=$out timeout 150 python3 benchmarks/gpu/wgmma_check.py --size $s --dtype $d \
        --layout $layout --out-dtype $d --structures $structures 2>&1 | grep -v Warn | tail -4
    done
  done
done

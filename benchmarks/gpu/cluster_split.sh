#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): split-K with the partials summed in the cluster's
# distributed shared memory (reduction=cluster: one launch) against the workspace reduction
# (f32 partials through L2, then a second kernel) and cuBLAS, on decode and large-K shapes.
#   bash benchmarks/gpu/cluster_split.sh
# 1. the gate on every split-K case, both reductions; 2. structures built directly, checked
# against fp64, timed in alternation with cuBLAS (fp16 in and out, A @ B.T).
# Results under $OUT: split_gate.txt, wgmma_check_*.json, <device>.jsonl.
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
timeout 240 python3 -m pytest -q -m gpu tests/gpu -k split -rA > "$out/split_gate.txt" 2>&1
echo "gpu split-K gate rc=$?"
grep -E "^(PASSED|FAILED|ERROR)|passed|failed" "$out/split_gate.txt" | tail -20
check() {  # shape, then structures
  local shape=$1
  shift
  OUT=$out timeout 100 python3 benchmarks/gpu/wgmma_check.py --shape "$shape" \
    --out-dtype float16 --structures "$@" 2>&1 | grep -v Warn | tail -$(($# + 1))
}
check 64,4096,4096 128,1,6,1,s8 128,1,6,1,p,s8 128,1,6,1,s4,cr 128,1,6,1,s8,cr 64,1,6,1,s4,cr
check 1,4096,4096 128,1,6,1,s8 128,1,6,1,s4,cr 128,1,6,1,s8,cr
check 16,4096,4096 128,1,6,1,s8 128,1,6,1,s4,cr 128,1,6,1,s8,cr
check 16,4096,11008 128,1,6,1,s4 128,1,6,1,s4,cr

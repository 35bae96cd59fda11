#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): split-K in cuda.wgmma. The gate's split-K cases
# (both reductions) first, then split structures built directly against cuBLAS
# (wgmma_check.py, sN = N blocks per tile) on decode and large-K shapes, each beside the same
# structure without splits; with `cluster`, the partials summed in the cluster's shared memory
# (cr: reduction=cluster, one launch) beside the workspace reduction instead.
#   bash benchmarks/gpu/split_k.sh [cluster]
# Results under $OUT: split_gate.txt, wgmma_check_*.json, <device>.jsonl.
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
timeout 240 python3 -m pytest -q -m gpu tests/gpu -k split -rA > "$out/split_gate.txt" 2>&1
echo "gpu split-K gate rc=$?"
grep -E "^(PASSED|FAILED)|passed|failed" "$out/split_gate.txt" | tail -10
check() {  # shape, then structures
  local shape=$1
  shift
  OUT=$out timeout 100 python3 benchmarks/gpu/wgmma_check.py --shape "$shape" \
    --out-dtype float16 --structures "$@" 2>&1 | grep -v Warn | tail -$(($# + 1))
}
if [ "${1:-}" = cluster ]; then
  check 64,4096,4096 128,1,6,1,s8 128,1,6,1,p,s8 128,1,6,1,s4,cr 128,1,6,1,s8,cr 64,1,6,1,s4,cr
  check 1,4096,4096 128,1,6,1,s8 128,1,6,1,s4,cr 128,1,6,1,s8,cr
  check 16,4096,4096 128,1,6,1,s8 128,1,6,1,s4,cr 128,1,6,1,s8,cr
  check 16,4096,11008 128,1,6,1,s4 128,1,6,1,s4,cr
  exit 0
fi
check 16,4096,4096 128,1,4,1 128,1,4,1,s2 128,1,4,1,s4 64,1,6,1,s2 64,1,6,1,s4
check 1,4096,4096 128,1,4,1,s4 64,1,6,1,s4
check 64,11008,4096 128,1,4,1 128,1,6,1,s2
check 16,4096,11008 128,1,4,1 128,1,6,1,s4 64,1,6,1,s2
check 256,256,524288 256,2,4,1 256,2,4,1,s64 128,1,4,1,s32

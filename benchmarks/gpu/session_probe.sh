#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): RPC measurement diagnosis on this GPU, then a subset
# of the problem suite (fp16) through both model paths.
#   bash benchmarks/gpu/session_probe.sh PROBLEMS TRIALS
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
timeout 150 python3 benchmarks/gpu/rpc_probe.py > "$out/rpc_probe.log" 2>&1
echo "rpc_probe rc=$?"; grep -A12 "^\[server" "$out/rpc_probe.log" | head -60
timeout 400 python3 benchmarks/gpu/problems.py --only "$1" --trials "$2" --dtypes float16 \
  --out "$out" > "$out/problems.log" 2>&1
echo "problems rc=$?"; tail -30 "$out/problems.log"
ls -la "$out"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh), ~9 minutes: the gpu-marked test suite, the RPC
# measurement probe, and a tuning run through a local RPC tracker against the same run locally.
#   bash benchmarks/gpu/session_checks.sh [RPC_TRIALS]      (results under $OUT)
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
timeout 170 python3 -m pytest -q -m gpu tests/gpu -rA > "$out/gpu_suite.txt" 2>&1
echo "gpu suite rc=$?"; grep -E "PASSED|FAILED|SKIPPED|passed|failed" "$out/gpu_suite.txt" | tail -16
timeout 90 python3 benchmarks/gpu/rpc_probe.py > "$out/rpc_probe.log" 2>&1
echo "rpc_probe rc=$?"; grep -A3 "^\[server" "$out/rpc_probe.log" | head -30
OUT=$out timeout 320 bash benchmarks/gpu/rpc_run.sh "${1:-8}" > "$out/rpc_run.log" 2>&1
echo "rpc_run rc=$?"; tail -20 "$out/rpc_run.log"

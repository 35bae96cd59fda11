#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh), under 10 minutes: the gpu-marked test suite, a
# tuning run through a local RPC tracker against the same run locally, and problems through
# both model paths (fp16).
#   bash benchmarks/gpu/session_checks.sh [RPC_TRIALS] [PROBLEMS] [PROBLEM_TRIALS]
# Results under $OUT: gpu_suite.txt, rpc_run.json (+ reports), problems.jsonl/_report.json.
set -uo pipefail
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
timeout 200 python3 -m pytest -q -m gpu tests/gpu -rA > "$out/gpu_suite.txt" 2>&1
echo "gpu suite rc=$?"; grep -E "^(PASSED|FAILED|SKIPPED)|passed|failed" "$out/gpu_suite.txt" | tail -16
OUT=$out timeout 230 bash benchmarks/gpu/rpc_run.sh "${1:-8}" > "$out/rpc_run.log" 2>&1
echo "rpc_run rc=$?"; tail -14 "$out/rpc_run.log"
if [ -n "${2:-}" ]; then
  timeout 170 python3 benchmarks/gpu/problems.py --only "$2" --trials "${3:-4}" \
    --dtypes float16 --out "$out" > "$out/problems.log" 2>&1
  echo "problems rc=$?"; grep -v Warning "$out/problems.log" | grep -v "__new__" | tail -12
fi
rm -rf "$out/backend_cache" "$out/work" "$out/problems" "$out/rpc_logs"

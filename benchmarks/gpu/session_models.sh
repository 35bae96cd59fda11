#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): a subset of the problem suite (fp16) through the
# --problem path and torch.compile(backend="autokernel") against eager and inductor, then
# compute-sanitizer on an exported kernel and the gate's calibration if time is left.
#   bash benchmarks/gpu/session_models.sh PROBLEMS TRIALS
set -uo pipefail
out=${OUT:-/tmp/ak_out}
raw=$(mktemp -d)
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
timeout 380 python3 benchmarks/gpu/problems.py --only "$1" --trials "$2" --dtypes float16 \
  --out "$raw" > "$raw/problems.log" 2>&1
echo "problems rc=$?"; tail -25 "$raw/problems.log"
OUT=$raw timeout 170 bash benchmarks/gpu/sanitizer_check.sh > "$raw/sanitizer.log" 2>&1
echo "sanitizer rc=$?"; tail -12 "$raw/sanitizer.log"
mkdir -p "$out" && tar -C "$raw" -czf "$out/bundle.tgz" . && ls -la "$out"

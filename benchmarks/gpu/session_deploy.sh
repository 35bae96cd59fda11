#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One device call (after remote-setup.sh): the gpu-marked suite, the C++ runner against the
# Python loader (cpp_runner.sh) and a tuning run through the RPC tracker against the same run
# locally (rpc_run.sh). Everything lands in $OUT/bundle.tgz plus a printed summary.
#   bash benchmarks/gpu/session_deploy.sh [RPC_TRIALS]
set -uo pipefail
out=${OUT:-/tmp/ak_out}
raw=$(mktemp -d)
export TVM_CUDA_COMPILE_MODE=nvcc PYTHONUNBUFFERED=1
timeout 170 python3 -m pytest tests/gpu -m gpu -v -p no:cacheprovider > "$raw/gpu_suite.txt" 2>&1
grep -E "passed|failed" "$raw/gpu_suite.txt" | tail -3
OUT=$raw timeout 230 bash benchmarks/gpu/cpp_runner.sh > "$raw/cpp.log" 2>&1
echo "cpp_runner rc=$?"; tail -8 "$raw/cpp.log"
python3 - <<'PY' 2>&1 | tail -4
import glob, json
import tvm
for so in glob.glob("/tmp/ak_cpp/*.so"):
    lib = tvm.runtime.load_module(so)
    print(so, json.load(open(so + ".json")).get("device_code"),
          [(m.kind, list(m.get_write_formats())) for m in lib.imports])
PY
OUT=$raw timeout 230 bash benchmarks/gpu/rpc_run.sh "${1:-8}" > "$raw/rpc.log" 2>&1
echo "rpc_run rc=$?"; tail -8 "$raw/rpc.log"
mkdir -p "$out" && tar -C "$raw" -czf "$out/bundle.tgz" . && ls -la "$out"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# C++ runner vs the Python loader on one CUDA library (issue 13), on the GPU machine:
#   bash benchmarks/gpu/cpp_runner.sh
# Builds autokernel_runner (CMakeLists.txt) while scripts/tune.py exports an fp16 4096^3 gemm_nt
# (8 trials), then runs the C++ runner and scripts/bench.py on that library and checks that the
# C++ output equals the Python loader's bit for bit on the same inputs. Writes under $OUT:
# cpp_runner.jsonl (one row per loader: latency, TFLOP/s, at::matmul / torch baseline, ratio),
# cpp_runner.log, cpp_runner_build.log. Needs TVM on PYTHONPATH, torch with CUDA, cmake, nvcc.
# About 2-3 minutes (the tune step is capped at 170 s). TARGET, SHAPE, DTYPE, TRIALS and DEVICE
# override the defaults (cuda, 4096,4096,4096, float16, 8, h200); a CPU check of the plumbing:
#   OUT=/tmp/o TARGET=llvm SHAPE=128,96,64 DTYPE=float32 TRIALS=4 DEVICE=cpu \
#     bash benchmarks/gpu/cpp_runner.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/ak_cpp_out}
tmp=/tmp/ak_cpp
mkdir -p "$out" "$tmp"
log="$out/cpp_runner.log"
target=${TARGET:-cuda} shape=${SHAPE:-4096,4096,4096} dtype=${DTYPE:-float16}
trials=${TRIALS:-8} device=${DEVICE:-h200}
lib="$tmp/gemm_nt_${target}_${dtype}_$(echo "$shape" | tr , x).so"
py=$(command -v python3)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TVM_CUDA_COMPILE_MODE=${TVM_CUDA_COMPILE_MODE:-nvcc}
export AUTOKERNEL_LIBRARY=${AUTOKERNEL_LIBRARY:-$tmp/library}  # keep the repo's schedules/ as is
{ echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)"
  "$py" -c "import torch, tvm; print('torch', torch.__version__, 'tvm', tvm.__version__)"; } \
  2>&1 | tee "$log"

# 1. The C++ build, in the background (about a minute on half of the 16 cores; the tuner's
# build workers get the other half).
half=$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))
rm -f "$lib" "$lib.json" "$tmp/cpp.json"
( cmake -S . -B "$tmp/build" -G Ninja -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF \
    && cmake --build "$tmp/build" -j"$half" --target autokernel_runner ) \
  >"$out/cpp_runner_build.log" 2>&1 &
build_pid=$!

# 2. Export through scripts/tune.py. make_library.install() makes export() write manifest
# version 2 (embedded manifest) if autokernel_tvm.export does not do so yet; otherwise a no-op.
timeout 170 "$py" - >>"$log" 2>&1 <<EOF
import runpy, sys
sys.path.insert(0, "tests/cpp")
import make_library
make_library.install()
sys.argv = ["scripts/tune.py", "--target", "$target", "--op", "gemm_nt", "--shape", "$shape",
            "--dtype", "$dtype", "--trials", "$trials", "--trials-per-iter", "$trials",
            "--build-workers", "$half", "--work-dir", "$tmp/work", "--export", "$lib",
            "--no-progress"]
runpy.run_path("scripts/tune.py", run_name="__main__")
EOF
tune_rc=$?
tail -5 "$log"
if ! wait "$build_pid"; then
  echo "C++ build failed:"; tail -30 "$out/cpp_runner_build.log"; exit 1
fi
if [ ! -f "$lib" ]; then
  echo "tune.py exported nothing (rc $tune_rc); see $log"; tail -20 "$log"; exit 1
fi
kernel=$("$py" -c "import json; print(json.load(open('$lib.json'))['kernels'][0]['name'])")

# 3. The C++ runner (dispatcher op, kernel alone, at::matmul; CUDA events, L2 flush, median of
# 200 calls each, as scripts/bench.py times).
"$tmp/build/autokernel_runner" "$lib" --repeats 200 --save-output "$tmp/cpp_out.f32" \
  --json "$tmp/cpp.json" 2>&1 | tee -a "$log"
[ -f "$tmp/cpp.json" ] || { echo "the C++ runner failed; see $log"; exit 1; }
# 4. The Python loader on the same inputs: identical values? Then scripts/bench.py for speed.
pylib=$("$py" -c "import sys; sys.path.insert(0, 'tests/cpp'); import make_library as m; \
print(m.python_loadable('$lib', '$tmp/py'))")
"$py" tests/cpp/python_output.py "$pylib" "$kernel" "$tmp/cpp_out.f32" 2>&1 \
  | tee "$tmp/same.txt" | tee -a "$log"
rm -rf "$tmp/bench"
"$py" scripts/bench.py "$pylib" --results-dir "$tmp/bench" --device-name "$device" 2>&1 \
  | tee -a "$log"

# 5. One row per loader.
"$py" - "$tmp" "$out/cpp_runner.jsonl" "$device" <<'EOF' 2>&1 | tee -a "$log"
import glob, json, sys
tmp, dest, device = sys.argv[1:4]
cpp = json.load(open(f"{tmp}/cpp.json"))
bench = [json.loads(line) for f in glob.glob(f"{tmp}/bench/*.jsonl") for line in open(f)][-1]
same = open(f"{tmp}/same.txt").read().strip()
common = {"date": bench["date"], "device": device, "gpu_name": bench["gpu_name"],
          "kernel": cpp["kernel"], "op": cpp["op"], "shape": bench["shape"],
          "dtype": bench["dtype"], "library_sha256": cpp["library_sha256"],
          "outputs_identical": same.endswith("identical True"), "output_check": same}
rows = [
    {**common, "loader": "cpp (autokernel_runner)", "latency_us": cpp["latency_us"],
     "kernel_only_latency_us": cpp["kernel_only_latency_us"], "tflops": cpp["tflops"],
     "baseline": "at::matmul", "baseline_latency_us": cpp["baseline_latency_us"],
     "baseline_tflops": cpp["baseline_tflops"], "ratio": cpp["tflops"] / cpp["baseline_tflops"],
     "max_rel_error": cpp["max_rel_error"],
     "timing": "CUDA events per call after an L2 flush (CPU: steady_clock), median of 200"},
    {**common, "loader": "python (autokernel_tvm.torch.load)", "latency_us": bench["latency_us"],
     "kernel_only_latency_us": bench["kernel_only_latency_us"], "tflops": bench["tflops"],
     "baseline": "torch", "baseline_latency_us": bench["baseline_latency_us"],
     "baseline_tflops": bench["baseline_tflops"], "ratio": bench["ratio"],
     "max_rel_error": bench["max_rel_error"], "timing": "autokernel_tvm.timing (scripts/bench.py)"},
]
with open(dest, "a") as f:
    for row in rows:
        f.write(json.dumps(row) + "\n")
print(f"{'loader':36} {'us':>9} {'kernel us':>9} {'TFLOP/s':>8} {'base us':>9} {'ratio':>6}")
for r in rows:
    print(f"{r['loader']:36} {r['latency_us']:9.2f} {r['kernel_only_latency_us']:9.2f} "
          f"{r['tflops']:8.1f} {r['baseline_latency_us']:9.2f} {r['ratio']:6.3f}")
print(same)
print(f"appended {len(rows)} rows to {dest}")
EOF

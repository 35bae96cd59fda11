#!/usr/bin/env bash
# Library seeding on a new shape: a full run from an empty library vs a run seeded from the
# shipped library (schedules/cuda/gemm.json, from the 4096^3 run) with a quarter of the trials.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/ak_out}
shape=${1:-2048,8192,1024} full=${2:-96} seeded=${3:-24}
AUTOKERNEL_LIBRARY=$out/empty_library OUT=$out/full \
  bash benchmarks/gpu/tune_and_bench.sh gemm_nt "$shape" float16 generative "$full" 330
cp -r schedules "$out/shipped_library"
AUTOKERNEL_LIBRARY=$out/shipped_library OUT=$out/seeded \
  bash benchmarks/gpu/tune_and_bench.sh gemm_nt "$shape" float16 generative "$seeded" 150

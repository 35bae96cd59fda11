#!/usr/bin/env bash
# Tune one workload on the GPU machine with the project's tuner, export it, and benchmark it
# against torch (cuBLAS) in one process. Results (report, curve, library rows) go under $OUT.
#   bash benchmarks/gpu/tune_and_bench.sh OP SHAPE DTYPE SPACE TRIALS [TUNE_TIMEOUT_S]
# e.g. bash benchmarks/gpu/tune_and_bench.sh gemm_nt 4096,4096,4096 float16 generative 128 420
# OUT_DTYPE=float16 stores C in fp16 (default: the fp32 accumulator; torch's output is fp16).
# TUNE_FLAGS="--fp8-fast-accum" (or --allow-tf32): more scripts/tune.py flags, named in the tag.
set -uo pipefail
op=$1 shape=$2 dtype=$3 space=$4 trials=$5 limit=${6:-480}
out=${OUT:-/tmp/ak_out}
flags=${TUNE_FLAGS:-}
tag="${op}_${dtype}${OUT_DTYPE:+_out_$OUT_DTYPE}$(echo "$flags" | tr -d ' -' | sed 's/^./_&/')_${space}_$(echo "$shape" | tr , x)"
work="/tmp/ak_work/$(echo "$out" | md5sum | cut -c1-8)"   # one work dir per $OUT
lib="/tmp/ak_so/$(echo "$out" | md5sum | cut -c1-8)"      # .so files stay on the machine
mkdir -p "$out" "$lib"
export AUTOKERNEL_CACHE_DIR=${AUTOKERNEL_CACHE_DIR:-$out/cache}  # the user library: winners of this run
export TVM_CUDA_COMPILE_MODE=${TVM_CUDA_COMPILE_MODE:-nvcc}
timeout "$limit" python3 scripts/tune.py --target cuda --arch sm_90a --op "$op" --shape "$shape" \
  --dtype "$dtype" ${OUT_DTYPE:+--out-dtype "$OUT_DTYPE"} $flags --space "$space" --trials "$trials" --trials-per-iter 32 \
  --work-dir "$work" --export "$lib/$tag.so" --report "$out/$tag.json" --no-progress \
  2>&1 | grep -v "^\s*$" | tail -30
[ -f "$lib/$tag.so" ] && python3 scripts/bench.py "$lib/$tag.so" --impl "$space" \
  --results-dir "$out" 2>&1 | tail -4
exit 0

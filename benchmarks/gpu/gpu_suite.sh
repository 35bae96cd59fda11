#!/usr/bin/env bash
# The gpu-marked test suite on the GPU machine, in a device call's time: the gate cases (each a
# build, then the correctness gate on the GPU) spread over pytest-xdist workers, one line a test
# (-v: a call cut off by its time limit still names what passed and what failed), then the
# tests that time kernels alone, in one process (timings taken beside a dozen other processes
# on the same GPU are not what they check).
#
#   source .devcache/remote-setup.sh && OUT=$OUT bash benchmarks/gpu/gpu_suite.sh [gates|timed|all] [-k EXPR]
# Logs: $OUT/gpu_suite_gates.txt, $OUT/gpu_suite_timed.txt (pytest's own output). The gates need
# pytest-xdist on the GPU machine: its wheel and execnet's beside the others in .devcache/wheels.
set -u
part=${1:-all}
shift || true
out=${OUT:-out}
mkdir -p "$out"
workers=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
timed="tests/test_timing.py tests/gpu/test_tuner_gpu.py"
deselect=()
for path in $timed; do deselect+=(--ignore "$path"); done
if [ "$part" = gates ] || [ "$part" = all ]; then
  python3 -m pytest -m gpu tests "${deselect[@]}" -n "$workers" -v -p no:cacheprovider -rfE "$@" \
    > "$out/gpu_suite_gates.txt" 2>&1
  grep -E " (PASSED|FAILED|ERROR)|passed|failed" "$out/gpu_suite_gates.txt" | tail -3
fi
if [ "$part" = timed ] || [ "$part" = all ]; then
  # shellcheck disable=SC2086
  python3 -m pytest -m gpu $timed -v -p no:cacheprovider -rfE "$@" \
    > "$out/gpu_suite_timed.txt" 2>&1
  tail -3 "$out/gpu_suite_timed.txt"
fi

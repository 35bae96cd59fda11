#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Distributed tuning on one GPU box: a local RPC tracker + one RPC server on GPU 0
# (scripts/rpc_servers.py), fp16 gemm_nt 4096^3 tuned with 16 trials (generative space: the
# cuda.wgmma whole kernel and cuda.mma candidates) through RPC, then the same run locally.
# Writes one JSON row to $OUT/rpc_run.json (both best TFLOP/s, tuning seconds, overhead per
# candidate, candidates per server) and prints it. Under 5 minutes on an H200.
#   bash benchmarks/gpu/rpc_run.sh [TRIALS]      (results under $OUT)
set -euo pipefail
trials=${1:-16}
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
work=$(mktemp -d /tmp/ak_rpc_run.XXXX)
key=h200-rpc
common=(--target cuda --arch sm_90a --op gemm_nt --shape 4096,4096,4096 --dtype float16
  --trials "$trials" --trials-per-iter "$trials" --space generative --no-progress)

if ! python3 -c "import tornado" 2>/dev/null; then  # TVM's RPC tracker needs it (rpc extra)
  echo "error: tornado is missing (the RPC tracker imports it): put its wheel beside the others," \
    "python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12" \
    "--implementation cp --platform manylinux2014_x86_64 -d .devcache/wheels tornado==6.5.2," \
    "and source .devcache/remote-setup.sh again" >&2
  exit 1
fi
python3 scripts/rpc_servers.py --gpus 0 --key "$key" --port 0 --log-dir "$out/rpc_logs" \
  > "$work/servers.txt" 2>&1 &
servers=$!
trap 'kill -TERM $servers 2>/dev/null; wait $servers 2>/dev/null || true' EXIT
for _ in $(seq 240); do
  grep -q '^ready' "$work/servers.txt" && break
  kill -0 $servers 2>/dev/null || { cat "$work/servers.txt"; exit 1; }
  sleep 0.5
done
grep -q '^ready' "$work/servers.txt" || { echo "servers not ready"; cat "$work/servers.txt"; exit 1; }
cat "$work/servers.txt"
tracker=$(awk '/^tracker /{print $2}' "$work/servers.txt")

t0=$(date +%s.%N)
python3 scripts/tune.py "${common[@]}" --work-dir "$work/rpc" --report "$out/rpc_report.json" \
  --rpc-tracker "$tracker" --rpc-key "$key" 2>&1 | tail -8
t1=$(date +%s.%N)
python3 scripts/tune.py "${common[@]}" --work-dir "$work/local" \
  --report "$out/local_report.json" 2>&1 | tail -8
t2=$(date +%s.%N)

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
python3 - "$out" "$work" "$gpu" "$t0" "$t1" "$t2" "$trials" <<'EOF'
import glob, json, os, sys, time
out, work, gpu = sys.argv[1:4]
t0, t1, t2, trials = *map(float, sys.argv[4:7]), int(sys.argv[7])
rpc = json.load(open(os.path.join(out, "rpc_report.json")))
local = json.load(open(os.path.join(out, "local_report.json")))
per_server = rpc["space_report"]["rpc"]
kernels = len(glob.glob(os.path.join(work, "rpc", "**", "kernel.json"), recursive=True))
row = {
    "bench": "rpc_run", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "workload": rpc["workload"]["name"], "device": gpu, "trials": trials,
    "rpc_tflops": rpc["tflops"], "local_tflops": local["tflops"],
    "rpc_over_local": rpc["tflops"] / local["tflops"],
    "rpc_winner": rpc["space"], "local_winner": local["space"],
    "rpc_tune_s": rpc["tune_seconds"], "local_tune_s": local["tune_seconds"],
    "rpc_wall_s": t1 - t0, "local_wall_s": t2 - t1,
    "overhead_per_candidate_s": (rpc["tune_seconds"] - local["tune_seconds"]) / rpc["trials"],
    "rpc_trials": rpc["trials"], "whole_kernel_candidates": kernels,
    "measured_per_server": per_server["measured"], "failed_per_server": per_server["failed"],
    "lost_per_server": per_server["lost"],
    "rpc_seconds_per_session": per_server["seconds_per_session"],
    # every candidate that built (schedules and whole kernels) was measured through a server
    "all_through_rpc": sum(per_server["measured"].values()) + sum(per_server["failed"].values())
    + sum(n for r, n in rpc["failures"].items() if r.startswith("build:")) == rpc["trials"],
    "rpc_verified": rpc["verify"]["passed"], "local_verified": local["verify"]["passed"],
    "failures_rpc": rpc["failures"], "failures_local": local["failures"],
}
with open(os.path.join(out, "rpc_run.json"), "w") as f:
    json.dump(row, f, indent=1)
for k in ("rpc_tflops", "local_tflops", "rpc_over_local", "rpc_tune_s", "local_tune_s",
          "overhead_per_candidate_s", "rpc_seconds_per_session", "whole_kernel_candidates",
          "all_through_rpc", "measured_per_server", "rpc_verified"):
    print(f"{k:26s} {row[k]}")
EOF

#!/usr/bin/env bash
# bf16 generative GEMM and the fused GEMM+bias+GELU on the GPU machine (see tune_and_bench.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
bash benchmarks/gpu/tune_and_bench.sh gemm_nt 4096,4096,4096 bfloat16 generative 96 300
bash benchmarks/gpu/tune_and_bench.sh gemm_bias_gelu 4096,4096,4096 float16 generative 32 220

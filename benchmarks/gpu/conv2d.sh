#!/usr/bin/env bash
# conv2d NHWC x KRSC fp16 through the generative space on the GPU machine: the implicit-GEMM
# sketch proposal (autokernel_tvm/space/sketch.py) + the cuda.mma family, then the stock
# MetaSchedule space on the same layer, each benchmarked against cuDNN (F.conv2d, channels_last)
# by tune_and_bench.sh. Results (reports with the sketch proposal, curves, rows) go under $OUT.
#   bash benchmarks/gpu/conv2d.sh [SHAPE] [TRIALS] [stock]
# SHAPE defaults to ResNet-50 stage 3's 3x3 conv, batch 32 (N,H,W,C,K,R,S,stride,pad):
# 32,28,28,256,256,3,3,1,1 = GEMM 25088 x 256 x 2304, 29.6 GFLOP (compute-bound). The stage-1
# layer 32,56,56,64,64,3,3,1,1 (GEMM 100352 x 64 x 576, 7.4 GFLOP) is the memory-heavier one.
set -uo pipefail
cd "$(dirname "$0")/../.."
shape=${1:-32,28,28,256,256,3,3,1,1}
trials=${2:-64}
bash benchmarks/gpu/tune_and_bench.sh conv2d_nhwc "$shape" float16 generative "$trials" 480
if [ "${3:-}" = "stock" ]; then
  bash benchmarks/gpu/tune_and_bench.sh conv2d_nhwc "$shape" float16 stock "$trials" 480
fi

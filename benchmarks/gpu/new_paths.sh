#!/usr/bin/env bash
# The paths built on a CPU in session 30 and not yet run on a GPU, on the GPU machine:
# first their gate cases (tests/gpu: batched K tails and M edges through 3-D TMA maps, strided
# convs through TMA element strides, fp32 convs as 3xTF32 over channel-split copies), then
# tune -> export -> bench.py (kernel and torch in alternation, L2 flushed) for one shape of each
# against cuBLAS / cuDNN at the same precision (bench.py's baseline forces fp32 accuracy for
# fp32 workloads unless --allow-tf32). ~10 min of device time at the default 16 trials.
#   OUT=$OUT bash benchmarks/gpu/new_paths.sh [TRIALS]
set -uo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-16}
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider \
  -k "batched_edges or strided_convs or (conv2d and float32)" 2>&1 | tail -15 \
  | tee "$out/new_paths_gpu_tests.txt"
tb=benchmarks/gpu/tune_and_bench.sh
# batched A @ B with a ragged K (K % 64 = 40): B's map is [batch, K, N]
OUT_DTYPE=float16 bash $tb batch_gemm 16,1000,1024,1000 float16 generative "$trials" 300
# ResNet downsampling: 3x3 stride 2 (56 -> 28, 128 channels) and 1x1 stride 2 (256 -> 512)
OUT_DTYPE=float16 bash $tb conv2d_nhwc 32,56,56,128,128,3,3,2,1 float16 generative "$trials" 300
OUT_DTYPE=float16 bash $tb conv2d_nhwc 32,56,56,256,512,1,1,2,0 float16 generative "$trials" 300
# the RGB stem (C = 3: cuda.mma, K padded to two steps)
OUT_DTYPE=float16 bash $tb conv2d_nhwc 32,224,224,3,64,7,7,2,3 float16 generative "$trials" 300
# fp32 conv at fp32 accuracy (3xTF32) against cuDNN with TF32 off; then both with TF32 allowed
bash $tb conv2d_nhwc 32,28,28,256,256,3,3,1,1 float32 generative "$trials" 300
TUNE_FLAGS="--allow-tf32" bash $tb conv2d_nhwc 32,28,28,256,256,3,3,1,1 float32 generative \
  "$trials" 300
exit 0

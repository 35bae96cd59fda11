# SPDX-License-Identifier: Apache-2.0
"""``cuda.wgmma`` cases shared by the CPU tests (nvcc builds, code shape) and the GPU tests
(the correctness gate) of the same genes: (workload, genes) pairs."""

from autokernel_tvm.workloads import Workload
from autokernel_tvm.workloads.epilogue import ACC, Epilogue, F, const, operand

#: bias_at=start: a bias, edges, an expression on ping-pong consumers, conv, batched
BIAS_START = [
    (Workload("gemm_bias_relu", (4096, 4096, 4096), "float16", "float16"),
     {"schedule": "persistent", "store": "tma"}),
    (Workload("gemm_bias_gelu", (1000, 1000, 1000), "bfloat16", "bfloat16"), {"raster": 1}),
    (Workload("gemm_nt", (2048, 4096, 1024), "float16", "float16",
              epilogue=Epilogue(F("leaky_relu", F("mul", F("add", operand(0), ACC),
                                                  operand(1)), value=0.1), ("n", "full"))),
     {"schedule": "persistent", "store": "tma", "arrangement": "pingpong"}),
    (Workload("conv2d_nhwc", (32, 28, 28, 64, 128, 3, 3, 1, 1), "float16", "float16",
              epilogue=Epilogue(F("relu", F("add", ACC, operand(0))), ("n",))),
     {"schedule": "persistent", "store": "tma", "block_n": 128}),
    (Workload("batch_gemm_nt", (3, 1000, 1000, 520), "float16", "float16",
              epilogue=Epilogue(F("gelu", F("add", ACC, operand(0))), ("n",))),
     {"raster": 1}),
]  # fmt: skip

#: bias_at=prefetch: BIAS_START's cases, an fp32 C (which "start" may not take), a persistent
#: direct store (no staging barrier between one tile's reads of the slice and the next tile's
#: writes but the slice's own) and 128-wide tiles (half the threads hold columns)
BIAS_PREFETCH = [
    *BIAS_START,
    (Workload("gemm_bias_relu", (1000, 1000, 1000), "float16", "float32"), {"raster": 1}),
    (Workload("gemm_bias", (4096, 2000, 512), "bfloat16", "bfloat16"),
     {"schedule": "persistent", "store": "direct"}),
    (Workload("gemm_bias_relu", (2048, 1000, 1024), "float16", "float16"),
     {"schedule": "persistent", "store": "tma", "block_n": 128, "arrangement": "pingpong"}),
]  # fmt: skip

#: epilogue_math=fast: the chains' bias + GELU seed (prefetched, TMA store), bf16 edges, the
#: gated GEMM's SiLU, an expression's GELU after a subtraction, sigmoid and tanh of a full
#: operand, the tanh GELU over a batch with edges, and split-K's reduction applying the GELU
FAST_MATH = [
    (Workload("gemm_bias_gelu", (2048, 4096, 1024), "float16", "float16"),
     {"schedule": "persistent", "store": "tma", "bias_at": "prefetch"}),
    (Workload("gemm_bias_gelu", (1000, 1000, 1000), "bfloat16", "bfloat16"), {"raster": 1}),
    (Workload("gemm_gated_nt", (2048, 2048, 1024), "float16", "float16"),
     {"schedule": "persistent", "store": "tma"}),
    (Workload("gemm_nt", (2048, 4096, 1024), "bfloat16", "bfloat16",
              epilogue=Epilogue(F("gelu", F("sub", F("add", ACC, operand(0)), const(0.5))),
                                ("n",))),
     {"schedule": "persistent", "store": "tma", "bias_at": "prefetch", "regs": "split"}),
    (Workload("gemm_nt", (1000, 1000, 1000), "float16", "float16",
              epilogue=Epilogue(F("mul", F("sigmoid", ACC), F("tanh", operand(0))), ("full",))),
     {"raster": 1}),
    (Workload("batch_gemm_nt", (3, 1000, 1000, 520), "float16", "float16",
              epilogue=Epilogue(F("gelu_tanh", F("add", ACC, operand(0))), ("n",))),
     {"raster": 1}),
    (Workload("gemm_bias_gelu", (64, 4096, 8192), "float16", "float16"),
     {"block_n": 128, "consumers": 1, "raster": 0, "splits": 4}),
]  # fmt: skip

#: store=rows: odd N (fp16, fp32 out), a batch with M and N edges, gated, with bias_at=start
ROWS = [
    (Workload("gemm_nt", (8205, 5921, 2949), "float16", "float16"), {"schedule": "persistent"}),
    (Workload("gemm_nt", (1000, 1001, 1000), "float16", "float32"), {"raster": 1}),
    (Workload("batch_gemm_nt", (3, 100, 201, 72), "bfloat16", "bfloat16"), {"raster": 1}),
    (Workload("gemm_gated_nt", (2047, 11001, 4096), "float16", "float16"),
     {"schedule": "persistent"}),
    (Workload("gemm_bias_gelu", (2047, 11001, 4096), "bfloat16", "bfloat16"),
     {"schedule": "persistent", "bias_at": "start"}),
]  # fmt: skip

#: fp8 (gemm_scaled_nt, torch._scaled_mm): sums promoted to fp32 every K step (the default
#: accuracy) and fast accumulation (the tensor core's sum over all of K, where allowed); the
#: seed structures, edges with padded K rows and an odd N, e5m2, the direct store
FP8 = [
    (Workload("gemm_scaled_nt", (4096, 4096, 4096), "float8_e4m3fn", "bfloat16"),
     {"schedule": "persistent", "store": "tma", "block_n": 128, "accum": "promoted"}),
    (Workload("gemm_scaled_nt", (4096, 4096, 4096), "float8_e4m3fn", "bfloat16",
              precision="fast_accum"),
     {"schedule": "persistent", "store": "tma"}),
    (Workload("gemm_scaled_nt", (1000, 1001, 1003), "float8_e4m3fn", "float16"),
     {"raster": 1, "block_n": 128, "accum": "promoted"}),
    (Workload("gemm_scaled_nt", (2048, 2048, 8192), "float8_e5m2", "float32",
              precision="fast_accum"),
     {"schedule": "persistent", "store": "tma", "block_n": 128}),
    (Workload("gemm_scaled_nt", (777, 4096, 1024), "float8_e5m2", "bfloat16"),
     {"raster": 1, "block_n": 64, "consumers": 1, "accum": "promoted"}),
    # promoted sums in K-step pairs (two register sets: regs=split): an even count of steps, an
    # odd one with a K tail (the last step alone), and ping-pong consumers
    (Workload("gemm_scaled_nt", (4096, 4096, 4096), "float8_e4m3fn", "bfloat16"),
     {"schedule": "persistent", "store": "tma", "block_n": 128, "accum": "pipelined",
      "regs": "split"}),
    (Workload("gemm_scaled_nt", (1000, 1001, 1100), "float8_e4m3fn", "float16"),
     {"raster": 1, "block_n": 128, "accum": "pipelined", "regs": "split"}),
    (Workload("gemm_scaled_nt", (2048, 2048, 8192), "float8_e5m2", "bfloat16"),
     {"schedule": "persistent", "arrangement": "pingpong", "block_n": 128,
      "accum": "pipelined", "regs": "split"}),
]  # fmt: skip

#: regs=split (setmaxnreg: the producer's registers to the consumers): the persistent TMA-store
#: structure, an erf-GELU write-back on ping-pong consumers, a conv, a split-K decode tile
REGS = [
    (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"),
     {"schedule": "persistent", "store": "tma"}),
    (Workload("gemm_bias_gelu", (2048, 4096, 1000), "bfloat16", "bfloat16"),
     {"schedule": "persistent", "arrangement": "pingpong", "store": "tma"}),
    (Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16"),
     {"raster": 1}),
    (Workload("gemm_nt", (128, 4096, 4096), "float16", "float16"),
     {"raster": 1, "splits": 4, "reduction": "cluster"}),
]  # fmt: skip

#: batched edges through 3-D TMA maps (batch_dims): a K tail of B as [K, N] (with a cluster's
#: multicast too) and of A as [K, M], a TMA-stored M edge, both at once with padded rows and an
#: odd N; then the aligned batch, whose maps stay 2-D. Third: the tensors whose maps are 3-D.
BATCH_EDGES = [
    (Workload("batch_gemm", (3, 128, 192, 72), "float16", "float16"),
     {"raster": 1, "store": "tma"}, {"b"}),
    (Workload("batch_gemm", (3, 1024, 2048, 1000), "bfloat16"),
     {"raster": 2, "store": "tma", "cluster": 2}, {"b"}),
    (Workload("batch_gemm_tn", (2, 256, 256, 1000), "float16", "float16"),
     {"raster": 1, "store": "tma"}, {"a", "b"}),
    (Workload("batch_gemm_nt", (3, 100, 256, 64), "float16", "float16"),
     {"raster": 1, "store": "tma"}, {"c"}),
    (Workload("batch_gemm", (3, 100, 201, 77), "bfloat16", "bfloat16"),
     {"raster": 1, "store": "tma"}, {"b", "c"}),
    (Workload("batch_gemm", (3, 128, 256, 128), "float16", "float16"),
     {"raster": 1, "store": "tma"}, set()),
]  # fmt: skip

#: strided convs (a TMA box of u times the patch's pixels, element strides u): ResNet's 3x3 and
#: 1x1 downsampling convs at stride 2 (patches at P x Q edges), a 1x1 stride-2 conv on one
#: warpgroup, stride 3 with a 5x5 filter and padding 2 (a tap's box starts left of the image)
STRIDED = [
    (Workload("conv2d_nhwc", (32, 56, 56, 128, 128, 3, 3, 2, 1), "float16", "float16"),
     {"block_n": 128, "raster": 1}),
    (Workload("conv2d_nhwc", (32, 56, 56, 256, 512, 1, 1, 2, 0), "bfloat16", "bfloat16"),
     {"raster": 1, "store": "tma"}),
    (Workload("conv2d_nhwc", (4, 15, 17, 64, 64, 1, 1, 2, 0), "float16", "float16"),
     {"block_n": 64, "consumers": 1, "raster": 1}),
    (Workload("conv2d_nhwc", (2, 30, 31, 64, 128, 5, 5, 3, 2), "bfloat16", "float32"),
     {"block_n": 128, "raster": 1}),
]  # fmt: skip

#: 128 x 192 tiles (wgmma m64n192): the irregular shape (31 column tiles with 33 columns over
#: where 256 leaves 223), B as [K, N] (three TMA boxes a stage), a cluster pair multicasting
#: 96-row halves, the gated GEMM (96 gate and 96 up columns), fp8 sums promoted on regs=split
WIDE192 = [
    (Workload("gemm_nt", (8205, 5921, 2949), "float16", "float16"),
     {"block_n": 192, "schedule": "persistent"}),
    (Workload("gemm", (1000, 1000, 1000), "bfloat16", "bfloat16"), {"block_n": 192, "raster": 1}),
    (Workload("gemm_nt", (4096, 4096, 4096), "float16"),
     {"block_n": 192, "schedule": "persistent", "cluster": 2, "raster": 2}),
    (Workload("gemm_gated_nt", (2048, 11008, 4096), "float16", "float16"),
     {"block_n": 192, "schedule": "persistent"}),
    (Workload("gemm_scaled_nt", (4096, 4096, 4096), "float8_e4m3fn", "bfloat16"),
     {"block_n": 192, "schedule": "persistent", "store": "tma", "accum": "promoted",
      "regs": "split"}),
]  # fmt: skip

#: order=hilbert (tiles along a Hilbert curve through raster x raster squares): whole squares,
#: a ragged last group and a partial last square (65 x 24 tiles in groups of 16), a batch
#: (the order restarts per matrix), a conv's patches, streamk's tail
HILBERT = [
    (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"),
     {"schedule": "persistent", "store": "tma", "raster": 8}),
    (Workload("gemm_nt", (8205, 5921, 2949), "float16", "float16"),
     {"schedule": "persistent", "raster": 16}),
    (Workload("batch_gemm", (3, 1024, 2048, 1000), "bfloat16", "bfloat16"), {"raster": 4}),
    (Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16"),
     {"raster": 4, "block_n": 64}),
    (Workload("gemm_nt", (2048, 11008, 4096), "float16", "float16"),
     {"schedule": "streamk", "store": "tma", "splits": 2, "reduction": "cluster", "raster": 8}),
]  # fmt: skip

#: three consumer warpgroups (192-row tiles, 512 threads): 192 x 192 tiles with M and N edges,
#: persistent with the TMA store (3 stages: the staging of three warpgroups), on regs=split, a
#: conv's 6 x 32 patches (28 rows: an edge patch), fp8 sums promoted
CONSUMERS3 = [
    (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"),
     {"consumers": 3, "block_n": 192, "raster": 1}),
    (Workload("gemm_nt", (8192, 8192, 8192), "bfloat16", "bfloat16"),
     {"consumers": 3, "block_n": 192, "stages": 3, "schedule": "persistent", "store": "tma",
      "regs": "split"}),
    (Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16"),
     {"consumers": 3, "block_n": 128, "raster": 1}),
    (Workload("gemm_scaled_nt", (2048, 2048, 4096), "float8_e4m3fn", "bfloat16"),
     {"consumers": 3, "block_n": 64, "accum": "promoted", "raster": 1}),
]  # fmt: skip

#: 1 x 2 clusters (multicast=a: blocks of adjacent N tiles load halves of the A tile's rows and
#: multicast them): the persistent TMA-store structure, B as [K, N], a batch with M and K
#: edges (rows fold into 2-D maps), fp8
SHARE_A = [
    (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"),
     {"cluster": 2, "multicast": "a", "schedule": "persistent", "store": "tma"}),
    (Workload("gemm", (2048, 4096, 1024), "bfloat16", "bfloat16"),
     {"cluster": 2, "multicast": "a", "raster": 1}),
    (Workload("batch_gemm_nt", (3, 1000, 1024, 520), "float16", "float16"),
     {"cluster": 2, "multicast": "a", "raster": 1}),
    (Workload("gemm_scaled_nt", (4096, 4096, 4096), "float8_e4m3fn", "bfloat16",
              precision="fast_accum"),
     {"cluster": 2, "multicast": "a", "schedule": "persistent", "store": "tma"}),
]  # fmt: skip

#: k_atoms=2 (ring stages of two 128-byte K slices): a K tail whose last step's second slice
#: lies past K (zero-filled), B as [K, N], A as [K, M], the persistent TMA-store structure, a
#: decode tile on one consumer
K_ATOMS2 = [
    (Workload("gemm_nt", (4096, 4096, 4000), "float16", "float16"),
     {"k_atoms": 2, "block_n": 128, "stages": 3, "raster": 1}),
    (Workload("gemm", (1000, 1000, 1000), "bfloat16", "bfloat16"),
     {"k_atoms": 2, "block_n": 128, "stages": 3, "raster": 1}),
    (Workload("gemm_tn", (2048, 2048, 2048), "float16", "float16"),
     {"k_atoms": 2, "block_n": 128, "stages": 3, "raster": 1}),
    (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"),
     {"k_atoms": 2, "block_n": 128, "stages": 3, "schedule": "persistent", "store": "tma"}),
    (Workload("gemm_nt", (64, 4096, 4096), "float16", "float16"),
     {"k_atoms": 2, "block_n": 64, "consumers": 1, "stages": 5, "raster": 1, "splits": 2}),
]  # fmt: skip

#: producer_warps=2 (A loaded by warp 0, B by warp 1, the full barrier expecting both): the
#: persistent TMA-store seed, a cluster pair multicasting B (the peer's half completes on this
#: block's barrier), a conv (A's 4-D patch box), the gated GEMM (two B boxes), two K slices a
#: stage, a K-major A with edges, and split-K in the cluster
PRODUCER_WARPS2 = [
    (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"),
     {"producer_warps": 2, "schedule": "persistent", "store": "tma"}),
    (Workload("gemm_nt", (2048, 4096, 1000), "bfloat16", "bfloat16"),
     {"producer_warps": 2, "cluster": 2}),
    (Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16"),
     {"producer_warps": 2, "raster": 8}),
    (Workload("gemm_gated_nt", (2048, 11008, 4096), "float16", "float16"),
     {"producer_warps": 2, "schedule": "persistent"}),
    (Workload("gemm_nt", (4096, 4096, 4000), "float16", "float16"),
     {"producer_warps": 2, "k_atoms": 2, "block_n": 128, "stages": 3, "raster": 1}),
    (Workload("gemm_tn", (1000, 1000, 1000), "float16", "float16"),
     {"producer_warps": 2, "raster": 1}),
    (Workload("gemm_nt", (128, 4096, 4096), "float16", "float16"),
     {"producer_warps": 2, "raster": 1, "splits": 4, "reduction": "cluster"}),
]  # fmt: skip

#: schedule=stream_tail: 4096^3 (3 waves, then 116 tiles' K steps), a fused epilogue, M and N
#: edges, odd C in row runs (1 wave, then 44 tiles), a batch, the ResNet conv (1 wave, then 92),
#: LLaMA's down projection (1 wave, then 124 tiles' 172 K steps: 161 or 162 a block)
STREAM_TAIL = [
    (Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16"), {"store": "tma"}),
    (Workload("gemm_bias_gelu", (4096, 4096, 4096), "bfloat16", "bfloat16"), {"store": "tma"}),
    (Workload("gemm_nt", (2047, 11001, 4091), "float16", "float16"), {}),
    (Workload("gemm", (2047, 2049, 2051), "bfloat16", "bfloat16"),
     {"block_n": 192, "store": "rows"}),
    (Workload("batch_gemm", (5, 1000, 2048, 1024), "float16", "float16"), {"raster": 0}),
    (Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16"),
     {"store": "tma", "block_n": 128}),
    (Workload("gemm_nt", (2048, 4096, 11008), "float16", "float16"),
     {"store": "tma", "raster": 16}),
]  # fmt: skip

#: operands=ba (conv: output channels on wgmma's M, 112 pixels of whole output rows on N):
#: 4 rows of 28; 2 rows of 56 with a bias + ReLU expression, bf16; stride 2 (8 rows of 14,
#: the last patch past P); the stream_tail schedule over the 448 tiles
SWAPPED = [
    (Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16"),
     {"operands": "ba", "block_n": 112, "store": "tma", "schedule": "persistent", "raster": 1}),
    (Workload("conv2d_nhwc", (8, 56, 56, 64, 128, 3, 3, 1, 1), "bfloat16", "bfloat16",
              epilogue=Epilogue(F("relu", F("add", ACC, operand(0))), ("n",))),
     {"operands": "ba", "block_n": 112, "store": "tma", "raster": 1}),
    (Workload("conv2d_nhwc", (8, 28, 28, 128, 128, 3, 3, 2, 1), "float16", "float16"),
     {"operands": "ba", "block_n": 112, "store": "tma", "raster": 1}),
    (Workload("conv2d_nhwc", (32, 28, 28, 256, 256, 3, 3, 1, 1), "float16", "float16"),
     {"operands": "ba", "block_n": 112, "store": "tma", "schedule": "stream_tail", "raster": 1}),
]  # fmt: skip

#: conv edges: C not a multiple of 64 (each tap's last K step zero-filled past C through a 3-D
#: filter map), output channels not a multiple of 64 (the tile's columns past them loaded as
#: zeros and never stored, nor their epilogue operands read); both; a 1 x 1 conv on stream_tail;
#: a bias + ReLU expression over 96 channels; stride 2 with an fp32 C
CONV_EDGES = [
    (Workload("conv2d_nhwc", (32, 28, 28, 96, 96, 3, 3, 1, 1), "float16", "float16"), {}),
    (Workload("conv2d_nhwc", (32, 28, 28, 96, 96, 3, 3, 1, 1), "float16", "float16"),
     {"block_n": 128, "schedule": "persistent", "store": "tma"}),
    (Workload("conv2d_nhwc", (16, 28, 28, 64, 96, 3, 3, 1, 1), "bfloat16", "bfloat16",
              epilogue=Epilogue(F("relu", F("add", ACC, operand(0))), ("n",))),
     {"block_n": 128}),
    (Workload("conv2d_nhwc", (32, 56, 56, 32, 64, 3, 3, 1, 1), "float16", "float16"),
     {"block_n": 64, "schedule": "persistent", "store": "tma", "regs": "split"}),
    (Workload("conv2d_nhwc", (16, 64, 64, 96, 96, 1, 1, 1, 0), "float16", "float16"),
     {"schedule": "stream_tail", "store": "tma"}),
    # one TMA store box a tile and two K steps: failed the gate on the H200 (2026-12-06) until
    # a tile's first box waited for the store of the tile before's
    (Workload("conv2d_nhwc", (16, 64, 64, 96, 96, 1, 1, 1, 0), "float16", "float16"),
     {"block_n": 64, "schedule": "persistent", "store": "tma"}),
    (Workload("conv2d_nhwc", (16, 28, 28, 96, 128, 3, 3, 2, 1), "float16", "float32"),
     {"block_n": 128}),
]  # fmt: skip

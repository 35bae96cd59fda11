#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The structures added since session 32 (one device call per part, 2-8 min each:
# `structures.sh 1` to `15`). Run 2026-12-05: parts 1 and 2, and part 3's store=rows pair on the
# odd shape (benchmarks/results/h200/structures_2026-12-05/); parts 3 and 4 the same day's
# second run; parts 5 to 8 on 2026-12-06 (h200/session36_2026-12-06/, 2-5 min each); part 9
# the same day on an H100 (h100/session37_2026-12-06/: its gate cases passed, the TMA-stored
# odd-N kernels failed the padded-output check); parts 10 and 11 (h100/session38_2026-12-06/;
# 11 stopped by its timeout after three shapes); parts 12 and 13 (h100/session39_2026-12-06/);
# parts 14 and 15 (h100/session40_2026-12-06/). Part 16 not yet run.
# Part 1: the GPU gate on their cases (tests/wgmma_cases.py: REGS, WIDE192, HILBERT,
# CONSUMERS3, SHARE_A, K_ATOMS2, PRODUCER_WARPS2, the FP8 cases with accum=pipelined).
# Parts 2 and 3: genome_check.py (gate, then the kernel and PyTorch's op in alternation, L2
# flushed, one process), each structure against the one it would replace (part 2: 4096^3 and
# 8192^3; part 3: two K slices a stage, the erf-GELU epilogue, the conv, the gated GEMM, the
# irregular shape):
#   - register budgets per role (regs=split: setmaxnreg) on the 16-bit seeds: fp16 4096^3, the
#     erf-GELU write-back (with ping-pong) and the ResNet 3x3 conv (0.88x cuDNN so far);
#     4096^3's tiles in Hilbert order (order=hilbert, the space-filling order the
#     +9%-over-cuBLAS anchor kernel uses); three consumer
#     warpgroups on 192 x 192 tiles at 4096^3 and 8192^3 (11% fewer bytes through the TMA per
#     product than 128 x 256, but 6% more shared-memory reads by the wgmmas: each warpgroup
#     reads the B tile itself), and 192 x 128 conv tiles; 1 x 2 clusters sharing the A tile
#     (multicast=a) against 2 x 1 ones sharing B;
#   - A and B loaded by two producer warps (producer_warps=2: two TMA issue streams) at 4096^3;
#   - ring stages of two 128-byte K slices (k_atoms=2: half the barrier waits per product) on
#     the decode seed (64 x 4096 x 4096) and on 128 x 128 tiles at 4096^3;
#   - 128 x 192 tiles on LLaMA's gated GEMM 2048 x 11008 x 4096 (13.9 waves of tiles on 132
#     SMs, where 256 leaves 10.4: a last wave 42% full) and on the irregular 8205 x 5921 x 2949
#     (0.5% of the tiles past N, where 256 leaves 3.8%), there also with C written in row runs
#     (store=rows: 5921-column rows are not 16-byte multiples, so direct stores write single
#     columns; gated in session 31, never timed).
# Parts 5 and 6: stream_tail (the whole waves as persistent tiles, then stream-K over the
# partial last wave's K steps): the GPU gate, then against the seed on 4096^3, the chains' bias
# + ReLU and 8192^3 (part 5); the ResNet conv, LLaMA's gated GEMM (against its streamk seed)
# and down projection, and the odd shapes (8205 x 5921 x 2949: 15.3 waves of 192-wide tiles;
# 2047 x 2049 x 2051: 1.3) in part 6, which first gates and times the conv with its operands
# swapped (operands=ba: channels on M, 4 whole rows of 28 pixels on N, no empty columns).
# Part 7: fp8 with fp32 sums (0.88-0.91x torch._scaled_mm so far) in 2 x 1 clusters.
# Part 8: convs whose C or output channels are not multiples of 64 (built 2026-12-05, session
# 35; they had only cuda.mma): the GPU gate (tests/wgmma_cases.py CONV_EDGES), then the seed
# and its neighbours against cuDNN on 96 and 160 channels.
# Part 9: session 36's changes, built without a GPU (the TMA store's wait for a buffer's last
# store where a tile has an odd number of boxes; the copy-out of unaligned C rows at 8 elements
# a thread): the GPU gate's cases, then the odd shapes' kernels each timed. Part 10: those odd
# shapes alone (~3 min). Part 11: cuda.gemv (decode on the CUDA cores): its GPU gate cases, then
# five decode shapes in fp16 and bf16 against the tensor-core genome the tuner chose and cuBLAS.
# Part 4: fp8 sums promoted to fp32 (torch._scaled_mm's default; 0.88x / 0.80x at 4096^3 /
# 8192^3 on 128-wide tiles): K-step pairs (accum=pipelined), 192-wide tiles on regs=split,
# ping-pong.
# Rows go to $OUT/<device>.jsonl and $OUT/genome_check.jsonl, the log to $OUT/structures_N.log.
# Part 12: cuda.gemv on the tensor cores (math=mma): its GPU gate cases, then 1-16 rows of A.
# Part 13: the bias prefetched into shared memory (bias_at=prefetch) against store and start
# (run 2026-12-06, session 39: h100/session39_2026-12-06/). Part 14: the odd shape's view
# kernels (stream_tail, regs=split, three consumers), fp16 and bf16. Part 15: cuda.gemv's
# cp.async ring on the CUDA cores (1-4 rows of A).
# Part 16: the epilogue's GELU and SiLU through CUDA's approximate exp and division
# (epilogue_math=fast): its GPU gate cases, then the chains' bias + GELU and LLaMA's gated GEMM
# against the exact functions. Part 17 (session 41): the fast GELU's bf16 gate cases again, after
# the fp64 reference stopped cancelling to 0 below -8.3 (they failed against it in part 16), the
# bf16 bias + GELU GEMM exact vs fast, linear_gelu's tuned genome with the fast functions, and
# one row of A through cuda.gemv's ring: its neighbours, each call's kernels timed apart.
# Part 18: llama_mlp's two kernels (1.14x eager, the goal 1.15x): the down projection (at
# cuBLAS's speed, 1.94 waves of 128 x 256 tiles) with the whole-grid stream schedule, split
# registers, 2 x 1 clusters and ping-pong consumers; the gated GEMM (671 TFLOP/s against the
# plain GEMM's 708) on other schedules. Part 19: linear_gelu's GEMM (7.76 waves of tiles) with
# stream_tail, split registers, ping-pong and 192-wide tiles. Part 20: stream shares run last
# tile first (the blocks walk K together): the gate's stream_tail cases, then five workloads.
# Part 21: the same order on stream-K proper and on the convs' stream_tail cases (gate, timing).
# Part 22: linear_gelu's GEMM with ping-pong consumers in 2 x 1 clusters (B multicast), so that
# one warpgroup's GELU write-back overlaps the other's wgmmas.
#   source .devcache/remote-setup.sh && OUT=$OUT bash benchmarks/gpu/structures.sh 1|2|...|22
set -uo pipefail
cd "$(dirname "$0")/../.."
part=${1:-1}
out=${OUT:-/tmp/ak_out}
mkdir -p "$out"
export OUT=$out PYTHONUNBUFFERED=1
check() {  # op shape dtype out_dtype genomes...
  local op=$1 shape=$2 dtype=$3 out_dtype=$4
  shift 4
  echo "== $op $shape $dtype -> $out_dtype"
  timeout 300 python3 benchmarks/gpu/genome_check.py --op "$op" --shape "$shape" \
    --dtype "$dtype" --out-dtype "$out_dtype" --genomes "$@" 2>&1
}
seed=schedule=persistent,store=tma
p=accum=promoted,$seed
c3=consumers=3,block_n=192
{
  if [ "$part" = 1 ]; then
    timeout 500 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf \
      -k "split_registers or wide192 or pipelined or hilbert or three_consumers or share_a \
      or k_slices or producer_warps" \
      2>&1
  elif [ "$part" = 2 ]; then
    check gemm_nt 4096,4096,4096 float16 float16 $seed $seed,regs=split $seed,block_n=192 \
      $seed,order=hilbert $seed,order=hilbert,raster=16 $c3,schedule=persistent \
      $seed,cluster=2 $seed,cluster=2,multicast=a $seed,producer_warps=2
    check gemm_nt 8192,8192,8192 float16 float16 $seed $c3,schedule=persistent \
      $c3,stages=3,$seed,regs=split $seed,cluster=2 $seed,cluster=2,multicast=a
  elif [ "$part" = 3 ]; then
    d=block_n=64,consumers=1,stages=6,raster=1,splits=2,reduction=cluster  # the decode seed
    check gemm_nt 64,4096,4096 float16 float16 $d $d,k_atoms=2
    check gemm_nt 4096,4096,4096 float16 float16 block_n=128,stages=3,$seed \
      block_n=128,stages=3,$seed,k_atoms=2
    check gemm_bias_gelu 4096,4096,4096 float16 float16 $seed $seed,regs=split \
      $seed,arrangement=pingpong $seed,arrangement=pingpong,regs=split
    check conv2d_nhwc 32,28,28,256,256,3,3,1,1 float16 float16 raster=8 raster=8,regs=split \
      raster=8,consumers=3,block_n=128
    check gemm_gated_nt 2048,11008,4096 float16 float16 schedule=persistent \
      schedule=persistent,block_n=192 schedule=persistent,block_n=192,regs=split
    check gemm_nt 8205,5921,2949 float16 float16 schedule=persistent \
      schedule=persistent,store=rows schedule=persistent,block_n=192 \
      schedule=persistent,block_n=192,store=rows
  elif [ "$part" = 5 ]; then
    # stream_tail (built 2026-12-05, after the run above): the GPU gate, then against the
    # persistent seed where the last wave is partial (4096^3: 3.88 waves; the ResNet conv:
    # 1.7; the chains' and LLaMA's GEMMs)
    timeout 300 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf -k stream_tail \
      2>&1
    check gemm_nt 4096,4096,4096 float16 float16 $seed schedule=stream_tail,store=tma \
      $seed,regs=split schedule=stream_tail,store=tma,regs=split
    check gemm_bias_relu 4096,4096,4096 float16 float16 $seed schedule=stream_tail,store=tma
    check gemm_nt 8192,8192,8192 float16 float16 $seed schedule=stream_tail,store=tma
  elif [ "$part" = 6 ]; then
    timeout 200 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf -k swapped 2>&1
    ba=operands=ba,block_n=112,store=tma,raster=1  # channels on M, 4 rows of 28 pixels on N
    check conv2d_nhwc 32,28,28,256,256,3,3,1,1 float16 float16 $seed,regs=split \
      schedule=stream_tail,store=tma,regs=split $ba,schedule=persistent \
      $ba,schedule=persistent,regs=split $ba,schedule=stream_tail
    check gemm_gated_nt 2048,11008,4096 float16 float16 \
      schedule=streamk,splits=2,reduction=cluster,store=tma schedule=stream_tail,store=tma
    check gemm_nt 2048,4096,11008 float16 float16 $seed schedule=stream_tail,store=tma
    rows=schedule=persistent,store=rows,block_n=192  # the odd shapes' seed
    check gemm_nt 8205,5921,2949 float16 float16 $rows schedule=stream_tail,store=rows,block_n=192 \
      schedule=persistent,store=rows,cluster=2,multicast=a  # 1 x 2: 24 N tiles of 256 pair up
    check gemm 2047,2049,2051 bfloat16 bfloat16 $rows \
      schedule=stream_tail,store=rows,block_n=192 schedule=stream,store=rows
  elif [ "$part" = 8 ]; then
    timeout 240 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf -k conv_edges 2>&1
    check conv2d_nhwc 32,28,28,96,96,3,3,1,1 float16 float16 $seed,block_n=64 \
      $seed,block_n=128 block_n=64,raster=8 $seed,block_n=64,regs=split
    check conv2d_nhwc 16,64,64,96,96,1,1,1,0 float16 float16 $seed,block_n=128 \
      $seed,block_n=64 schedule=stream_tail,store=tma,block_n=128
    check conv2d_nhwc 8,56,56,160,160,3,3,1,1 float16 float16 $seed,block_n=64 \
      $seed,block_n=192 $seed,block_n=256
  elif [ "$part" = 9 ] || [ "$part" = 10 ]; then
    # session 36's changes, built without a GPU: the TMA store's wait where a tile has an odd
    # number of boxes (the 1x1 conv that failed the gate, short-K GEMMs on 64 and 192 wide
    # tiles); odd-N C stored by the TMA into a view of padded rows, or copied out of scratch
    # rows at 8 elements a thread (the GPU gate's unaligned cases, then each kernel's time: the
    # copy took 145 us of 599 at 8205 x 5921 x 2949)
    if [ "$part" = 9 ]; then
      timeout 300 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf \
        -k "conv_edges or persistent_schedule" 2>&1
      check conv2d_nhwc 16,64,64,96,96,1,1,1,0 float16 float16 $seed,block_n=64 $seed,block_n=128
    fi
    # C as torch's loader hands it (TMA-stored kernels: a view of padded rows), then plain rows
    for args in "gemm_nt 8205,5921,2949 float16" "gemm_nt 2047,2049,2051 bfloat16"; do
      set -- $args
      for how in "" --plain-output; do
        echo "== $1 $2 $3 (each kernel) $how"
        timeout 200 python3 benchmarks/gpu/genome_check.py --op "$1" --shape "$2" --dtype "$3" \
          --out-dtype "$3" --kernels $how --genomes $seed $seed,block_n=192 $seed,block_n=128 \
          schedule=persistent,store=rows,block_n=192 2>&1
      done
    done
  elif [ "$part" = 11 ]; then
    # cuda.gemv (session 37, built without a GPU): its GPU gate cases, then decode shapes against
    # the wgmma genomes the tuner chose for them (1 x 4096 x 4096 fp16 on the H100: 27 us,
    # cuBLAS 24, torch.compile 16.8) and cuBLAS
    timeout 200 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf -k gemv 2>&1
    wg=block_n=64,consumers=1,stages=6,raster=0,splits=2,reduction=cluster
    for shape in 1,4096,4096 1,11008,4096 16,4096,4096 16,4096,11008 4,14336,4096; do
      for dt in float16 bfloat16; do
        check gemm_nt $shape $dt $dt $wg family=cuda.gemv family=cuda.gemv,warps=8 \
          family=cuda.gemv,rows=1,unroll=8 family=cuda.gemv,rows=4,unroll=4 \
          family=cuda.gemv,warps=2,unroll=8
      done
    done
    # the gated MLP's two projections at decode (LLaMA 7B: 11008 x 4096 each)
    check gemm_gated_nt 4,11008,4096 float16 float16 block_n=64,consumers=1,stages=6,raster=0 \
      family=cuda.gemv family=cuda.gemv,rows=1 family=cuda.gemv,rows=1,unroll=8
  elif [ "$part" = 12 ]; then
    # cuda.gemv math=mma (session 38, built without a GPU): B's rows as the M side of
    # mma.sync.m16n8k16, for the rows of A where the CUDA cores ran out of instructions (H100,
    # session 38: 0.57x cuBLAS at 16 x 4096 x 4096 fp16, 0.70x at 8); its gate cases, then
    # each against the split-K wgmma genome, the best ffma genome and cuBLAS (session 38's run:
    # correct, faster only at 8 rows; its loads were since made unconditional inside K), and
    # with stages=3/4 (the chunks copied by cp.async through a ring in shared memory)
    timeout 150 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf -k tensor_cores 2>&1
    wg=block_n=64,consumers=1,stages=6,raster=0,splits=2,reduction=cluster
    g=family=cuda.gemv,math=mma
    for shape in 16,4096,4096 8,4096,4096 4,14336,4096 1,4096,4096; do
      check gemm_nt $shape float16 float16 $wg family=cuda.gemv $g,rows=1 $g,rows=1,warps=8 \
        $g,rows=2,unroll=2 $g,rows=1,unroll=2,stages=3 $g,rows=1,unroll=2,stages=4,warps=8 \
        $g,rows=1,unroll=4,stages=3
    done
    check gemm_nt 8,4096,4096 bfloat16 bfloat16 $wg $g,rows=1,unroll=8 $g,rows=1,unroll=2,stages=3
    check gemm_gated_nt 4,11008,4096 float16 float16 family=cuda.gemv,rows=1 $g,rows=1 \
      $g,rows=1,warps=8 $g,rows=1,unroll=2,stages=3
  elif [ "$part" = 13 ]; then
    # bias_at=prefetch (session 39, built without a GPU): each consumer thread loads two of
    # the tile's bias columns before the mainloop, the write-back reads them from shared
    # memory (H200, session 36: bias + ReLU cost 7.4 us over the plain 204 us GEMM at 4096^3,
    # started from the bias 5.8): its gate cases, then against "store" and "start"
    timeout 200 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf -k prefetch 2>&1
    check gemm_nt 4096,4096,4096 float16 float16 $seed
    check gemm_bias_relu 4096,4096,4096 float16 float16 $seed $seed,bias_at=start \
      $seed,bias_at=prefetch $seed,bias_at=prefetch,regs=split \
      $seed,bias_at=prefetch,arrangement=pingpong
    check gemm_bias_gelu 2048,16384,4096 float16 float16 $seed $seed,bias_at=prefetch \
      $seed,bias_at=prefetch,arrangement=pingpong $seed,bias_at=prefetch,regs=split
  elif [ "$part" = 14 ]; then
    # the odd shape's GEMM through the padded view (H100, session 38: 410 us of 478.9 with the
    # pads; torch.compile 458.7): tiles 192 wide waste 0.5% of N where 256 waste 3.7%, but
    # leave a last round 27% full (15.3 of them) -- stream_tail spreads that round's K steps
    # (never timed with the TMA store); register budgets per role; three consumers
    for dt in float16 bfloat16; do
      check gemm_nt 8205,5921,2949 $dt $dt $seed,block_n=192 $seed \
        schedule=stream_tail,store=tma,block_n=192 schedule=stream_tail,store=tma \
        $seed,block_n=192,regs=split $seed,regs=split $c3,stages=3,$seed
    done
  elif [ "$part" = 15 ]; then
    # cuda.gemv on the CUDA cores through a cp.async ring (session 39, built without a GPU;
    # the same ring took the tensor-core GEMV from 32.6 to 22.5 us at 8 rows): its gate cases,
    # then 1-4 rows of A against the register path (H100: 20.5-22.9 us at 1 x 4096 x 4096,
    # torch.compile 16.8) and cuBLAS
    timeout 200 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf \
      -k ring_on_the_cuda_cores 2>&1
    g=family=cuda.gemv
    for shape in 1,4096,4096 1,11008,4096 4,14336,4096; do
      check gemm_nt $shape float16 float16 $g $g,stages=3 $g,stages=4 $g,stages=3,unroll=2 \
        $g,stages=3,rows=1 $g,stages=4,warps=8 $g,stages=3,unroll=8
    done
    check gemm_nt 1,4096,4096 bfloat16 bfloat16 $g $g,stages=3 $g,stages=4
    check gemm_gated_nt 4,11008,4096 float16 float16 $g,rows=1 $g,rows=1,stages=3 \
      $g,rows=1,stages=4
  elif [ "$part" = 16 ]; then
    # epilogue_math=fast (session 40, built without a GPU): CUDA's erff made the bias + GELU
    # write-back ~45 us of 445 at 2048 x 16384 x 4096 (H100, session 39); the fast GELU is a
    # third of its instructions. Its gate cases, then each seed with the exact functions and
    # with the fast ones, fp16 and bf16
    timeout 240 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf \
      -k epilogue_math_fast 2>&1
    pre=$seed,bias_at=prefetch
    gated=schedule=streamk,splits=2,reduction=cluster,store=tma  # the gated GEMM's seed
    for dt in float16 bfloat16; do
      check gemm_bias_gelu 2048,16384,4096 $dt $dt $pre $pre,epilogue_math=fast \
        $pre,regs=split $pre,regs=split,epilogue_math=fast
      check gemm_gated_nt 2048,11008,4096 $dt $dt $gated $gated,epilogue_math=fast
    done
  elif [ "$part" = 17 ]; then
    timeout 150 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf \
      -k epilogue_math_fast 2>&1
    pre=$seed,bias_at=prefetch
    tuned=$seed,bias_at=start,regs=split,raster=16  # linear_gelu's winner, fp16 and bf16
    check gemm_bias_gelu 2048,16384,4096 bfloat16 bfloat16 $pre $pre,epilogue_math=fast \
      $tuned $tuned,epilogue_math=fast
    ring=family=cuda.gemv,rows=2,unroll=2,stages=3  # the tuner's 1-row choice (session 41)
    echo "== gemm_nt 1,4096,4096 float16 (each kernel)"
    timeout 150 python3 benchmarks/gpu/genome_check.py --op gemm_nt --shape 1,4096,4096 \
      --dtype float16 --out-dtype float16 --kernels --genomes $ring $ring,warps=8 \
      $ring,rows=1 $ring,stages=4 $ring,warps=2 2>&1
    check gemm_bias_gelu 2048,16384,4096 float16 float16 $tuned $tuned,epilogue_math=fast
  elif [ "$part" = 18 ]; then
    r16=$seed,raster=16  # the down projection's tuned genome (session 41)
    check gemm_nt 2048,4096,11008 float16 float16 $r16 $r16,regs=split \
      schedule=stream_tail,store=tma,raster=16 schedule=stream_tail,store=tma,raster=16,regs=split \
      $r16,cluster=2 $r16,arrangement=pingpong $r16,arrangement=pingpong,regs=split
    gated=schedule=streamk,splits=2,reduction=cluster,store=tma,raster=16  # its tuned genome
    check gemm_gated_nt 2048,11008,4096 float16 float16 $gated $gated,regs=split $r16 \
      schedule=stream_tail,store=tma,raster=16
  elif [ "$part" = 19 ]; then
    # linear_gelu's GEMM (2048 x 16384 x 4096, bias + tanh-GELU; 1.07x eager, the goal 1.1x):
    # 1024 tiles of 128 x 256 are 7.76 waves on 132 SMs, so the last wave leaves 24% of the
    # SMs idle for an eighth of the run; stream_tail spreads that wave's K steps over all
    # of them. Against bias at start on raster 16 with even registers and with split ones
    # (the fp16 genome tuned in session 43), ping-pong, and 192-wide tiles (86 columns of
    # tiles, the last one partial)
    tuned=$seed,raster=16,bias_at=start
    st=schedule=stream_tail,store=tma,raster=16
    check gemm_bias_gelu 2048,16384,4096 float16 float16 $tuned $st $st,regs=split \
      $tuned,regs=split $tuned,arrangement=pingpong $seed,raster=16,block_n=192
  elif [ "$part" = 20 ]; then
    # stream shares run last tile first (session 44, built without a GPU): the blocks walk K
    # together, so the tail's tiles read their operand slices from L2 (the down projection's
    # stream_tail: L2 hits 49% vs persistent's 81%, 0.64x cuBLAS). The GPU gate's stream_tail
    # cases, then stream_tail against the schedule each workload's tuning chose
    timeout 200 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf \
      -k "stream_tail_passes" 2>&1
    st=schedule=stream_tail,store=tma,raster=16
    check gemm_nt 2048,4096,11008 float16 float16 $seed,raster=16 $st
    check gemm_gated_nt 2048,11008,4096 float16 float16 \
      schedule=streamk,splits=2,reduction=cluster,store=tma,raster=16 $st
    check gemm_bias_gelu 2048,16384,4096 float16 float16 $seed,raster=16,bias_at=start,regs=split \
      $st,regs=split
    check conv2d_nhwc 32,28,28,256,256,3,3,1,1 float16 float16 $seed,raster=16 $st
    check gemm_nt 4096,4096,4096 float16 float16 $seed,raster=16 $st
  elif [ "$part" = 21 ]; then
    # the other schedules on shares run last tile first (session 44 ran only the stream_tail
    # cases of tests/gpu): stream-K proper (6 cases), the swapped conv and the 1 x 1 conv on
    # stream_tail, then stream against persistent at 4096^3 and on the ResNet conv
    timeout 300 python3 -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rf \
      -k "test_stream_passes or (swapped and stream_tail) or (conv_edges and stream_tail)" 2>&1
    check gemm_nt 4096,4096,4096 float16 float16 $seed,raster=16 schedule=stream,store=tma,raster=16
    check conv2d_nhwc 32,28,28,256,256,3,3,1,1 float16 float16 $seed,raster=16 \
      schedule=stream,store=tma,raster=16
  elif [ "$part" = 22 ]; then
    # linear_gelu's write-back on the consumers' critical path: the (erf) GELU adds ~3900 PTX
    # instructions a consumer thread a tile (bias only: 679 in all; fast math: +2200), ~4.5 us
    # of a tile's ~57 (session 44, nvcc -ptx); ping-pong hides one warpgroup's write-back
    # behind the other's wgmmas but loads B once per 64-row tile (1.7x the L2 traffic per
    # product: 444 us vs 434), which a 2 x 1 cluster multicasting B brings back to the
    # cooperative kernel's; never timed with a heavy epilogue (only plain 4096^3, 0.91x)
    tuned=$seed,raster=16,bias_at=start,regs=split  # the fp16 genome tuned in session 43
    pp=$seed,raster=16,bias_at=start,arrangement=pingpong,cluster=2
    for dt in float16 bfloat16; do
      check gemm_bias_gelu 2048,16384,4096 $dt $dt $tuned $pp $pp,regs=split \
        $pp,epilogue_math=fast $pp,regs=split,epilogue_math=fast
    done
  elif [ "$part" = 7 ]; then
    # fp8 with fp32 sums in 2 x 1 clusters (B multicast: half its L2 -> SM bytes; fast
    # accumulation won at 8192^3 that way, 1.025x): the seeds of 2026-12-05 with cluster=2
    for shape in 4096,4096,4096 8192,8192,8192; do
      check gemm_scaled_nt $shape float8_e4m3fn bfloat16 \
        accum=pipelined,regs=split,block_n=128,$seed \
        accum=pipelined,regs=split,block_n=128,$seed,cluster=2 \
        $p,regs=split,block_n=192 $p,regs=split,block_n=192,cluster=2 \
        $p,regs=split,block_n=192,cluster=2,raster=16
    done
  else
    for shape in 4096,4096,4096 8192,8192,8192; do
      check gemm_scaled_nt $shape float8_e4m3fn bfloat16 $p,block_n=128 \
        accum=pipelined,regs=split,block_n=128,$seed \
        accum=pipelined,regs=split,block_n=128,$seed,arrangement=pingpong \
        $p,regs=split,block_n=192 $p,regs=split,block_n=192,arrangement=pingpong
    done
  fi
} > "$out/structures_$part.log" 2>&1
grep -E "passed|failed|FAILED|^==|ok |FAIL|ERROR" "$out/structures_$part.log" | cut -c1-200
exit 0

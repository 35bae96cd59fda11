# SPDX-License-Identifier: Apache-2.0
"""``cuda.wgmma``: Hopper GEMM (sm_90a) with TMA, an mbarrier ring and warp-specialized
``wgmma.mma_async``, realised by :func:`autokernel_tvm.space.cuda_wgmma.wgmma_gemm`.

Unlike the other families this is not a MetaSchedule ``ScheduleRule``: MetaSchedule cannot
express a warpgroup accumulator, TMA or mbarriers, so the genome compiles to a whole TIRx kernel
(a TensorIR sketch with every number fixed by the structure). The search measures it as one
candidate (``Tuner.run_kernel``); it goes through the same builder, correctness gate, export and
library as the scheduled families. Ops: 2-D and batched GEMM with either B layout, the fused
``nn.Linear`` epilogues, and stride-1 NHWC conv2d (implicit GEMM over TMA image patches).

Genome fields used: ``intrinsic`` (``wgmma.m64n{N}k16``: the block tile's N), ``warps``
(``(4 * consumer warpgroups, 1)``), ``stages`` (TMA ring depth) and ``raster`` (M tiles per
rasterization group, 0 = row-major).
"""

from __future__ import annotations

import re

import tvm

from .kernel import conv_out, legal, wgmma_gemm

NAME = "cuda.wgmma"
#: op -> (B is K-major, leading batch dim, fused epilogue)
OPS = {
    "gemm": (False, False, ""),
    "gemm_nt": (True, False, ""),
    "batch_gemm": (False, True, ""),
    "batch_gemm_nt": (True, True, ""),
    "gemm_bias": (True, False, "bias"),
    "gemm_bias_relu": (True, False, "bias_relu"),
    "gemm_bias_gelu": (True, False, "bias_gelu"),
    "conv2d_nhwc": (True, False, ""),  # implicit GEMM, stride 1: see cuda_wgmma's docstring
}


def _conv(workload) -> tuple:
    """``(N, H, W, C, R, S, pad)`` of a conv2d workload, () for a GEMM."""
    if workload.op != "conv2d_nhwc":
        return ()
    img, h, w, c, _, r, s, _, pad = workload.shape
    return (img, h, w, c, r, s, pad)


def _mnk(workload) -> tuple[int, int, int]:
    conv = _conv(workload)
    if conv:
        p, q = conv_out(conv)
        return conv[0] * p * q, workload.shape[4], conv[3] * conv[4] * conv[5]
    return tuple(workload.shape[-3:])


def structure(genome, workload) -> dict:
    """The keyword arguments of ``wgmma_gemm`` that ``genome`` stands for on ``workload``."""
    match = re.fullmatch(r"wgmma\.m64n(\d+)k16", genome.intrinsic)
    trans_b, batched, epilogue = OPS[workload.op]
    return {
        "batch": workload.shape[0] if batched else 0,
        "conv": _conv(workload),
        "in_dtype": workload.dtype,
        "trans_b": trans_b,
        "block_n": int(match.group(1)) if match else 0,
        "consumers": genome.warps[0] // 4,
        "stages": genome.stages,
        "raster": max(genome.raster, 1),
        "epilogue": workload.epilogue if workload.epilogue is not None else epilogue,
        "out_dtype": workload.out_dtype or "float32",
    }


def reason(genome, workload) -> str | None:
    """Why ``genome`` cannot build ``workload``, or None."""
    if workload.op not in OPS:
        return f"op {workload.op!r}: the wgmma sketch implements {sorted(OPS)}"
    if genome.warps[1] != 1 or genome.warps[0] % 4:
        return f"warps={genome.warps}: wgmma warps come in warpgroups of 4 along M, (4k, 1)"
    if workload.op == "conv2d_nhwc" and workload.shape[7] != 1:
        return f"conv2d stride {workload.shape[7]}: the wgmma implicit GEMM takes stride 1"
    return legal(*_mnk(workload), **structure(genome, workload))


def kernel_module(genome, workload) -> tvm.IRModule:
    """The candidate: the whole kernel for ``workload`` as an IRModule."""
    func = wgmma_gemm(*_mnk(workload), **structure(genome, workload))
    return tvm.IRModule({"main": func})

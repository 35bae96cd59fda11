# SPDX-License-Identifier: Apache-2.0
"""Build and inspect ROCm MFMA kernels: the TIR pipeline that works around ``LowerWarpMemory`` in
TVM 0.27 (see :mod:`.schedule` for the three bugs), the build call, the
device assembly, and the toolchain check. Numerics are NOT verified (no AMD GPU here).
"""

from __future__ import annotations

import os
import re
import subprocess

import tvm
import tvm_ffi
from tvm.s_tir import Schedule

from ... import config
from ...intrin.rocm_mfma import INT8_ARCHES
from .schedule import MfmaScheduleError

#: Name of the TIR pipeline registered by this module (pass it as ``tvm.compile(tir_pipeline=)``).
PIPELINE = "autokernel_rocm_mfma"
_NO_CSE = "tirx.disable_cse_tir"
_UNROLL = ("pragma_auto_unroll_max_step", "pragma_unroll_explicit")


def _sink_unroll_pragmas(mod: tvm.IRModule) -> tvm.IRModule:
    """Move unroll pragmas from thread-bound loops to the first serial loop below, per block.

    RewriteParallelVectorizeUnroll puts them on a block's outermost loop (``blockIdx``), which
    SplitHostDevice leaves on the host side; one level down they stay in the kernel for the late
    UnrollLoop of :func:`_mfma_pipeline`. Bound loops never unroll, so the scope is the same.
    """
    mod = mod.clone()  # a pass must not change its input
    for gvar, func in list(mod.functions.items()):
        if isinstance(func, tvm.tirx.PrimFunc) and _UNROLL[0] in func.script():
            sch = Schedule(func)
            bound, moves = _unroll_moves(sch)
            for loop, key in ((loop, key) for loop in bound for key in _UNROLL):
                if key in sch.get(loop).annotations:  # loops shared by blocks come up again
                    sch.unannotate(loop, key)
            for loop, ann in moves.values():
                for key, value in ann.items():
                    sch.annotate(loop, key, value)
            mod.update_func(gvar, sch.mod["main"])
    return mod


def _unroll_moves(sch: Schedule):
    """(bound loops with unroll pragmas, {sref: (serial loop, pragmas)}) over all blocks."""
    bound, moves, blocks = [], {}, [sch.get_sblock("root")]
    while blocks:
        blocks.extend(children := sch.get_child_blocks(blocks.pop()))
        for block in children:
            carry = {}
            for loop in sch.get_loops(block):
                stmt = sch.get(loop)
                ann = {key: stmt.annotations[key] for key in _UNROLL if key in stmt.annotations}
                if stmt.kind == tvm.tirx.ForKind.THREAD_BINDING:
                    carry = ann or carry
                    bound += [loop] if ann else []
                elif carry:
                    moves.setdefault(sch.get_sref(loop), (loop, carry))
                    break
    return bound, moves


def _mfma_pipeline():
    """The stock s_tir pipeline without CSE and with UnrollLoop moved after LowerWarpMemory,
    which runs until nothing changes."""
    base, finalize_host, finalize_device = tvm.tirx.get_tir_pipeline("s_tir")
    lower_warp = tvm.tirx.transform.LowerWarpMemory()
    unroll = tvm.transform.Sequential(  # UnrollLoop and what follows it in the s_tir pipeline
        [
            tvm.tirx.transform.UnrollLoop(),
            tvm.s_tir.transform.RenormalizeSplitPattern(),
            tvm.tirx.transform.StmtSimplify(),
            tvm.tirx.transform.RemoveNoOp(),
            tvm.s_tir.transform.RewriteUnsafeSelect(),
        ]
    )

    @tvm.transform.module_pass(opt_level=0, name="autokernel.RocmMfmaPipeline")
    def _pipeline(mod: tvm.IRModule, ctx: tvm.transform.PassContext) -> tvm.IRModule:
        for func in mod.functions.values():  # LLVM aborts the process on s8 MFMA for gfx94x
            target = func.attrs.get("target") if func.attrs else None
            mcpu = str(target.attrs.get("mcpu", "")) if target is not None else ""
            if mcpu and mcpu not in INT8_ARCHES and "mfma.i32.16x16x16i8" in func.script():
                raise MfmaScheduleError(f"int8 MFMA 16x16x16 needs {INT8_ARCHES}, not {mcpu}")
        disabled = [*ctx.disabled_pass, "tirx.UnrollLoop"]
        config = {**ctx.config, _NO_CSE: True}
        with tvm.transform.PassContext(ctx.opt_level, config=config, disabled_pass=disabled):
            mod = base(_sink_unroll_pragmas(mod))
        for _ in range(64):  # one warp buffer per run in 0.27, three in an MFMA GEMM
            if tvm_ffi.structural_equal(new := lower_warp(mod), mod):
                with tvm.transform.PassContext(ctx.opt_level, config=config):
                    return unroll(new)
            mod = new
        raise RuntimeError("LowerWarpMemory did not converge after 64 runs")

    return _pipeline, finalize_host, finalize_device


tvm.tirx.compilation_pipeline.register_tir_pipeline(PIPELINE, _mfma_pipeline)


def build_rocm(mod: tvm.IRModule, target: tvm.target.Target):
    """Compile a scheduled module for a ROCm target with :data:`PIPELINE` (sets ROCM_PATH)."""
    os.environ.setdefault("ROCM_PATH", config.rocm_path())
    with tvm.transform.PassContext(opt_level=3):
        return tvm.compile(mod, target=target, tir_pipeline=PIPELINE)


def device_asm(exe) -> str:
    """The AMDGPU assembly of a built executable's ``hip`` device module."""
    for sub in exe.mod.imports:
        if sub.kind == "hip":
            return sub.inspect_source("asm")
    raise RuntimeError("executable has no hip device module")


def rocm_toolchain_problem() -> str | None:
    """Why AMDGPU code cannot be linked here (a message naming the fix), or None when it can.

    Checks what ``tvm.support.rocm`` will use: the first ``ld.lld`` it finds (LLD >= 19 for code
    object v6) and ``ocml``/``ockl`` bitcode in ``$ROCM_PATH/amdgcn/bitcode`` (default as config).
    """
    fix = "run `apt-get install rocm-device-libs lld-22` (or `bash .ci/rocm-setup.sh`)"
    fix += f" and set ROCM_PATH={config.ROCM_DEBIAN_PATH}"
    root = os.environ.get("ROCM_PATH") or config.rocm_path()
    bitcode = os.path.join(root, "amdgcn", "bitcode")
    missing = [n for n in ("ocml", "ockl") if not os.path.exists(os.path.join(bitcode, n + ".bc"))]
    if missing:
        return f"ROCm device-library bitcode {missing} not found under {bitcode}: {fix}"
    from tvm.support.rocm import find_lld

    lld = (find_lld(required=False) or [None])[0]  # the linker TVM will call
    out = subprocess.run([lld, "--version"], capture_output=True, text=True).stdout if lld else ""
    version = int(match.group(1)) if (match := re.search(r"LLD (\d+)", out)) else 0
    if version < 19:
        return f"gfx9 code object v6 needs ld.lld >= 19; TVM picks {lld} (LLD {version}): {fix}"
    return None

# SPDX-License-Identifier: Apache-2.0
"""MetaSchedule glue for the CUDA mma.sync GEMM sketch: rule, mutator, postprocs, builder.

`mma_space(structure)` is a ready `PostOrderApply` design space for one structure; `build_cuda`
is an ``f_build`` for `ms.builder.LocalBuilder` that sets the two pass flags this sketch needs.
"""

from __future__ import annotations

import random
from typing import Any

import tvm
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.schedule import Schedule, SBlockRV, Trace

from .cuda_mma import apply_cuda_mma, gemm_shape, legal
from .cuda_mma_tiles import SMEM_LIMIT, MmaStructureError

# `tirx.use_async_copy` turns the pipelined global->shared copies into cp.async (without it they
# are plain uint4 loads/stores with only the commit/wait left). `tirx.disable_storage_rewrite`
# avoids the 0.27 StorageRewrite f16/f32 merge bug seen with wmma (TVM-0.27-NOTES §3); the mma
# path builds either way, we keep it for safety.
PASS_CONFIG: dict[str, Any] = {"tirx.use_async_copy": 1, "tirx.disable_storage_rewrite": True}


def cuda_target(arch: str = "sm_90a", smem_limit: int = SMEM_LIMIT) -> tvm.target.Target:
    """A CUDA target with the attributes AutoBind/VerifyGPUCode need and opt-in shared memory."""
    return tvm.target.Target(
        {
            "kind": "cuda",
            "arch": arch,
            "max_threads_per_block": 1024,
            "max_shared_memory_per_block": smem_limit,
            "thread_warp_size": 32,
            "registers_per_block": 65536,
        },
        host={"kind": "llvm"},
    )


def build_cuda(mod: tvm.IRModule, target: tvm.target.Target, _params=None):
    """``f_build`` for `ms.builder.LocalBuilder`: tvm.compile under `PASS_CONFIG`.

    The worker must have imported ``tvm.s_tir.tensor_intrin.cuda`` (the ldmatrix layouts are
    index maps registered from Python at import time).
    """
    import tvm.s_tir.tensor_intrin.cuda  # noqa: F401

    with tvm.transform.PassContext(opt_level=3, config=PASS_CONFIG):
        return tvm.compile(mod, target=target)


def cuda_source(mod: tvm.IRModule, target: tvm.target.Target) -> str:
    """CUDA C source of a scheduled module (works without a GPU: no nvcc/NVRTC is run)."""
    return build_cuda(mod, target).mod.imports[0].inspect_source()


def mma_postprocs() -> list[ms.postproc.Postproc]:
    """The "cuda-tensorcore" postproc list. The sketch tensorizes itself, so RewriteTensorize
    and RewriteCooperativeFetch are no-ops kept for compatibility; VerifyGPUCode is the gate."""
    return [
        ms.postproc.DisallowDynamicLoop(),
        ms.postproc.RewriteCooperativeFetch(),
        ms.postproc.RewriteUnboundBlock(),
        ms.postproc.RewriteParallelVectorizeUnroll(),
        ms.postproc.RewriteReductionBlock(),
        ms.postproc.VerifyGPUCode(),
        ms.postproc.RewriteTensorize(),
    ]


@derived_object
class CudaMmaRule(ms.schedule_rule.PyScheduleRule):
    """One sketch per GEMM block: `apply_cuda_mma` with a fixed structure.

    Blocks that are not 3-loop GEMMs, or workloads the structure is illegal for, are left alone
    (the rule returns the schedule unchanged), as MetaSchedule rules do.
    """

    def __init__(self, structure: dict[str, Any]) -> None:
        super().__init__()
        self.structure = dict(structure)

    def _initialize_with_tune_context(self, context) -> None:
        pass

    def apply(self, sch: Schedule, block: SBlockRV) -> list[Schedule]:
        try:
            m, n, k, trans_b = gemm_shape(sch, block)
        except MmaStructureError:
            return [sch]
        structure = {**self.structure, "trans_b": trans_b}
        if legal(m, n, k, **structure) is not None:
            return [sch]
        apply_cuda_mma(sch, block, **structure)
        return [sch]

    def clone(self) -> CudaMmaRule:
        return CudaMmaRule(self.structure)


@derived_object
class MutateCategorical(ms.mutator.PyMutator):
    """Resample one `sample_categorical` decision (the tile choices of the mma sketch).

    The built-in mutators only touch SamplePerfectTile (MutateTileSize) and the categoricals
    that feed unroll pragmas or thread bindings, so without this the sketch's tiles would only
    change through fresh random samples in the evolutionary search.
    """

    def _initialize_with_tune_context(self, context) -> None:
        pass

    def apply(self, trace: Trace, rand_state: int) -> Trace | None:
        # MetaSchedule passes its int64 random state; -1 when called from Python directly.
        rng = random.Random(None if int(rand_state) < 0 else int(rand_state))
        insts = [
            inst
            for inst in trace.insts
            if inst.kind.name == "SampleCategorical" and len(inst.attrs[0]) > 1
        ]
        if not insts:
            return None
        inst = rng.choice(insts)
        current = int(trace.decisions[inst])
        choices = [c for c in range(len(inst.attrs[0])) if c != current]
        return trace.with_decision(inst, rng.choice(choices), remove_postproc=True)

    def clone(self) -> MutateCategorical:
        return MutateCategorical()


def mma_space(structure: dict[str, Any]) -> ms.space_generator.PostOrderApply:
    """Design space with the mma sketch as its only rule (``trans_b`` is read from the block)."""
    return ms.space_generator.PostOrderApply(
        sch_rules=[CudaMmaRule(structure)],
        postprocs=mma_postprocs(),
        mutator_probs={MutateCategorical(): 1.0},
    )

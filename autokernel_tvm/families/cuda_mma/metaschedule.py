# SPDX-License-Identifier: Apache-2.0
"""MetaSchedule glue for the ``cuda.mma`` template: its mutator, its postprocessors, and the
exhaustive enumeration of one structure's candidates (:func:`mma_candidates`).

Build candidates with :func:`autokernel_tvm.builder.build_module` (the pass config they need,
notably ``tirx.use_async_copy`` and StorageRewrite left on, is set there).
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import tvm
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.schedule import SBlockRV, Schedule, Trace

from .schedule import apply_cuda_mma, gemm_shape
from .tiles import MmaStructureError


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


def gemm_block(sch: Schedule) -> SBlockRV:
    """The single GEMM block of a workload (the first block `gemm_shape` accepts)."""
    for rv in sch.get_child_blocks(sch.get_sblock("root")):
        try:
            gemm_shape(sch, rv)
            return rv
        except MmaStructureError:
            continue
    raise MmaStructureError("no 3-loop GEMM block in the workload")


def mma_candidates(
    mod: tvm.IRModule | tvm.tirx.PrimFunc, structure: dict[str, Any], limit: int | None = None
) -> list[tuple[dict[str, int], Schedule]]:
    """Every decision combination of one structure as a scheduled candidate, biggest warp tile
    first (then the larger K tile): the exhaustive check of a structure, or its best guesses.

    Returns ``[({"frag_m": .., "frag_n": .., "k_frags": ..}, schedule), ...]``.
    """
    sketch = Schedule(mod)
    block = gemm_block(sketch)
    trans_b = gemm_shape(sketch, block)[3]
    in_dtype = str(sketch.get(block).reads[-1].source.dtype)
    apply_cuda_mma(sketch, block, **{**structure, "trans_b": trans_b, "in_dtype": in_dtype})
    insts = [i for i in sketch.trace.insts if i.kind.name == "SampleCategorical"]
    values = [[int(v) for v in inst.attrs[0]] for inst in insts]
    combos = sorted(
        itertools.product(*[range(len(v)) for v in values]),
        key=lambda c: (-values[0][c[0]] * values[1][c[1]], -values[2][c[2]], c),
    )
    out = []
    for combo in combos[:limit]:
        trace = sketch.trace
        for inst, index in zip(insts, combo, strict=True):
            trace = trace.with_decision(inst, index, remove_postproc=True)
        sch = Schedule(mod)
        trace.apply_to_schedule(sch, remove_postproc=True)
        picked = [values[i][c] for i, c in enumerate(combo)]
        out.append((dict(zip(("frag_m", "frag_n", "k_frags"), picked, strict=True)), sch))
    return out

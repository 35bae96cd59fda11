# SPDX-License-Identifier: Apache-2.0
"""CPU-only checks of the ``cuda.mma`` family (``autokernel_tvm/families/cuda_mma/``).

Every candidate a structure can sample must pass MetaSchedule's CUDA postprocs and build; nvcc
(skipped when absent) compiles a few to sm_90a cubins. About 2 minutes on 2 cores, half of it
the import of ``tvm.s_tir.tensor_intrin.cuda``.
"""

from __future__ import annotations

import concurrent.futures
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tvm
from tvm.s_tir import meta_schedule as ms

from autokernel_tvm import builder
from autokernel_tvm.families.cuda_mma import FAMILY, MmaParams
from autokernel_tvm.families.cuda_mma.metaschedule import MutateCategorical, mma_candidates
from autokernel_tvm.families.cuda_mma.schedule import (
    MmaStructureError,
    apply_cuda_mma,
    gemm_shape,
    legal,
)
from autokernel_tvm.families.design_space import FamilyRule
from autokernel_tvm.hardware import limits
from autokernel_tvm.targets import make_target
from autokernel_tvm.workloads import Workload

TARGET = make_target("cuda", "sm_90a")
SMEM = limits(TARGET).smem_per_block
# "cp.async.c": cp.async.cg (16 B) or cp.async.ca (4 and 8 B copies)
NEEDLES = ("mma.sync.aligned.m16n8k16", "ldmatrix.sync.aligned", "cp.async.c", "cp.async.wait")


def gemm_func(m: int, n: int, k: int, in_dtype: str = "float16", trans_b: bool = False):
    """``C[i, j] += A[i, k] * B[k, j]`` (``B[j, k]`` if trans_b), fp32 output, block "C"."""
    return Workload("gemm_nt" if trans_b else "gemm", (m, n, k), in_dtype).prim_func()


def cuda_source(mod, target) -> str:
    return builder.cuda_source(builder.build_module(mod, target))


@pytest.fixture(scope="module")
def intrin():
    import tvm.s_tir.tensor_intrin.cuda  # noqa: F401  (~30 s: registers ldmatrix/mma intrinsics)


def params(structure) -> MmaParams:
    """The family parameters a structure dict (``apply_cuda_mma`` keywords) stands for."""
    return MmaParams(
        warps=(structure["warp_m"], structure["warp_n"]),
        stages=structure["stages"],
        smem_layout=structure["smem_layout"],
        vector_bytes=structure["vector_bytes"],
        raster=structure["raster"],
        frag_pipeline=structure.get("frag_pipeline", False),
    )


def mma_space(structure):
    """A design space with the family's rule as its only rule (no stock rules)."""
    return ms.space_generator.PostOrderApply(
        sch_rules=[FamilyRule(FAMILY, params(structure), TARGET)],
        postprocs=FAMILY.postprocs(TARGET),
        mutator_probs=FAMILY.mutators(TARGET),
    )


def postprocs_pass(func, structure, sch) -> bool:
    ctx = ms.TuneContext(mod=func, target=TARGET, space_generator=mma_space(structure))
    sch.enter_postproc()
    return all(p.apply(sch) for p in ctx.space_generator.postprocs)


BASE = dict(
    warp_m=2, warp_n=2, stages=3, smem_layout="swizzle", vector_bytes=16, raster=0, smem_limit=SMEM
)


@pytest.mark.parametrize(
    "shape, structure, reason",
    [
        ((4096, 4096, 4096), BASE, None),
        ((4096, 4096, 4096), {**BASE, "in_dtype": "bfloat16"}, None),
        ((4096, 4096, 4096), {**BASE, "in_dtype": "int8"}, "implemented for"),
        ((4096, 4096, 4096), {**BASE, "unroll": 256}, "local memory"),
        ((4096, 4096, 4096), {**BASE, "epilogue": "shared"}, "StorageRewrite"),
        ((4096, 4096, 4096), {**BASE, "warp_m": 4, "warp_n": 4}, "at most 8"),
        ((4096, 4096, 4096), {**BASE, "warp_m": 3}, "each must be one of"),
        ((4096, 4096, 4096), {**BASE, "stages": 7}, "pipeline depth"),
        ((4096, 4096, 4096), {**BASE, "smem_layout": "zigzag"}, "smem_layout"),
        ((4096, 4096, 4096), {**BASE, "vector_bytes": 32}, "cp.async copies"),
        ((4096, 4096, 4096), {**BASE, "raster": 6}, "power of two"),
        ((4096, 4096, 4100), BASE, "not a multiple of 16"),
        ((4096, 4096, 48), BASE, "no K tile"),
        ((4096, 4096, 64), {**BASE, "stages": 3}, ">= stages=3"),
        ((48, 4096, 4096), BASE, "m=48"),
        ((4096, 4096, 4096), {**BASE, "smem_limit": 8192}, "shared memory"),
        ((4096, 4096, 4096), {**BASE, "split_k": 2}, "bad structure keywords"),
    ],
)
def test_legal(shape, structure, reason):
    why = legal(*shape, trans_b=False, **structure)
    if reason is None:
        assert why is None
    else:
        assert why is not None and reason in why, why


def test_swizzle_needs_bn_multiple_of_32_for_row_major_b():
    one_warp_n = {**BASE, "warp_n": 1}
    assert legal(4096, 16, 4096, trans_b=True, **one_warp_n) is None  # B is [N, K]: BK counts
    assert "n=16" in legal(4096, 16, 4096, trans_b=False, **one_warp_n)  # B is [K, N]: BN=16
    assert legal(4096, 16, 4096, trans_b=False, **{**one_warp_n, "smem_layout": "pad"}) is None


def test_gemm_shape_and_trans_b_check():
    for trans_b in (False, True):
        sch = tvm.s_tir.Schedule(gemm_func(256, 512, 128, trans_b=trans_b))
        assert gemm_shape(sch, sch.get_sblock("C")) == (256, 512, 128, trans_b)
    sch = tvm.s_tir.Schedule(gemm_func(256, 512, 128, trans_b=True))
    with pytest.raises(MmaStructureError, match="trans_b"):
        apply_cuda_mma(sch, sch.get_sblock("C"), trans_b=False, smem_limit=SMEM)


# (shape, trans_b, structure, how many decision combinations; None = all of them)
CASES = [
    ((4096, 4096, 4096), True, BASE, None),
    ((4096, 4096, 4096), False, {**BASE, "warp_n": 4, "stages": 4, "raster": 8}, None),
    ((4096, 4096, 4096), False, {**BASE, "warp_m": 4, "frag_pipeline": True}, 6),
    ((1024, 1024, 1024), False, {**BASE, "stages": 2, "smem_layout": "pad", "vector_bytes": 8}, 6),
    ((1024, 1024, 1024), True, {**BASE, "warp_m": 8, "warp_n": 1, "frag_pipeline": True}, 4),
    ((2048, 8192, 1024), True, {**BASE, "warp_m": 1, "warp_n": 4, "stages": 5, "raster": 4}, 6),
    ((2048, 8192, 1024), False, {**BASE, "smem_layout": "plain", "vector_bytes": 4}, 4),
    ((4096, 4096, 4096), True, {**BASE, "in_dtype": "bfloat16", "warp_n": 4, "stages": 4}, 4),
]


@pytest.mark.parametrize("shape, trans_b, structure, limit", CASES)
def test_candidates_pass_postprocs_and_build(intrin, shape, trans_b, structure, limit):
    func = gemm_func(*shape, in_dtype=structure.get("in_dtype", "float16"), trans_b=trans_b)
    candidates = mma_candidates(func, structure, limit)
    assert candidates and (limit is None or len(candidates) == limit)
    for tiles, sch in candidates:
        assert postprocs_pass(func, structure, sch), (structure, tiles)
        src = cuda_source(sch.mod, TARGET)
        for needle in NEEDLES:
            assert needle in src, (needle, structure, tiles)


def test_random_samples_and_mutator(intrin):
    """Seeded samples of the rule (as MetaSchedule draws them) and categorical mutations."""
    func = gemm_func(4096, 4096, 4096, trans_b=False)
    structure = {**BASE, "warp_n": 4, "frag_pipeline": True}
    seen = set()
    for seed in range(1, 9):
        sch = tvm.s_tir.Schedule(func, seed=seed)
        (sch,) = FamilyRule(FAMILY, params(structure), TARGET).apply(sch, sch.get_sblock("C"))
        seen.add(tuple(int(d) for d in sch.trace.decisions.values()))
        assert postprocs_pass(func, structure, sch)
    assert len(seen) > 1
    ctx = ms.TuneContext(mod=func, target=TARGET, space_generator=mma_space(structure))
    (sketch,) = ctx.generate_design_space()
    trace = sketch.trace
    for _ in range(4):
        mutated = MutateCategorical().apply(trace)
        before = [int(d) for d in trace.decisions.values()]
        after = [int(d) for d in mutated.decisions.values()]
        assert sum(b != a for b, a in zip(before, after, strict=True)) == 1
        sch = tvm.s_tir.Schedule(func)
        mutated.apply_to_schedule(sch, remove_postproc=True)
        assert postprocs_pass(func, structure, sch)
        trace = mutated


def _nvcc(path: Path) -> tuple[int, str]:
    cmd = ["nvcc", "-cubin", "-gencode=arch=compute_90a,code=sm_90a", "-Xptxas", "-v"]
    proc = subprocess.run([*cmd, "-o", str(path.with_suffix(".cubin")), str(path)], text=True,
                          capture_output=True)  # fmt: skip
    return proc.returncode, proc.stderr


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_nvcc_compiles_sm90a(intrin, tmp_path):
    jobs = [  # biggest warp tile of each: the register-heaviest candidates
        ((4096, 4096, 4096), True, BASE),
        ((4096, 4096, 4096), False, {**BASE, "warp_n": 4, "stages": 4, "frag_pipeline": True}),
        ((2048, 8192, 1024), False, {**BASE, "smem_layout": "pad", "raster": 4}),
        ((1024, 1024, 1024), True, {**BASE, "in_dtype": "bfloat16", "frag_pipeline": True}),
    ]
    paths = []
    for i, (shape, trans_b, structure) in enumerate(jobs):
        func = gemm_func(*shape, in_dtype=structure.get("in_dtype", "float16"), trans_b=trans_b)
        (_, sch), *_ = mma_candidates(func, structure, 1)
        paths.append(tmp_path / f"k{i}.cu")
        paths[-1].write_text(cuda_source(sch.mod, TARGET))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(_nvcc, paths))
    for (rc, log), job in zip(results, jobs, strict=True):
        assert rc == 0, (job, log[-2000:])
        assert "0 bytes spill stores" in log and "0 bytes stack frame" in log, (job, log)
        assert int(re.search(r"Used (\d+) registers", log).group(1)) <= 255

# SPDX-License-Identifier: Apache-2.0
"""Sketch proposals on CUDA sm_90a without a GPU: the implicit-GEMM conv2d and the padded GEMM are
scheduled by the ``cuda.mma`` sketch (im2col gather and padding inlined into predicated cp.async
copies, no materialised im2col buffer), build with nvcc, and the tuner tunes the rewritten module
and records the proposals in its report."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from autokernel_tvm import builder
from autokernel_tvm.candidates import sample_candidates
from autokernel_tvm.config import TuneConfig
from autokernel_tvm.families.cuda_mma.metaschedule import mma_candidates
from autokernel_tvm.space import rewrite as sketch
from autokernel_tvm.space import search
from autokernel_tvm.space.design_space import space_for
from autokernel_tvm.space.genome import GenomeError
from autokernel_tvm.space.grammar import Grammar, default_genome
from autokernel_tvm.targets import make_target
from autokernel_tvm.tuner import SpaceRun, Tuner
from autokernel_tvm.workloads import Workload

TARGET = make_target("cuda", "sm_90a")
SM90 = Grammar("cuda", "sm_90a")
BASE = dict(warp_m=2, warp_n=2, stages=3, smem_layout="swizzle", vector_bytes=16, raster=0)
CONV = Workload("conv2d_nhwc", (8, 16, 16, 64, 64, 3, 3, 1, 1), "float16")


def test_conv_and_odd_gemms_get_the_mma_family_with_their_sketch():
    assert SM90.families(CONV) == ["cuda.wgmma", "cuda.mma"]  # the sketch is for cuda.mma
    assert [p.kind for p in SM90.sketch(CONV)] == ["implicit_gemm"]
    assert SM90.families(Workload("conv2d_nhwc", CONV.shape, "float32")) == []
    assert SM90.sketch(Workload("gemm", (4096, 4096, 4096), "float16")) == ()
    assert [p.kind for p in SM90.sketch(Workload("gemm", (1000, 1000, 1000), "float16"))] == ["pad"]
    assert SM90.check(default_genome("cuda.mma"), CONV)  # checked on the implicit GEMM's M, N, K
    short_k = Workload("conv2d_nhwc", (4, 16, 16, 64, 128, 1, 1, 1, 0), "float16")  # K = 64
    with pytest.raises(GenomeError, match="k=64"):
        SM90.check(default_genome("cuda.mma"), short_k)


def test_implicit_gemm_conv_schedules_with_apply_cuda_mma_and_builds(needs_nvcc):
    mod = sketch.apply_all(sketch.propose(CONV), CONV.prim_func())
    (tiles, sch), *_ = mma_candidates(mod, BASE, 1)
    script = sch.mod["main"].script()
    # The im2col gather and the weight reshape are inlined into the shared-memory copies.
    assert not re.search(r"\b(pad|weight)_reindex = T\.sblock_alloc_buffer", script), script
    copy_a = script[script.index('T.sblock("pad_reindex_shared.dyn")') :]
    assert "data[" in copy_a[: copy_a.index("T.sblock(", 10)]
    src = builder.cuda_source(builder.build_module(sch.mod, TARGET))
    for needle in ("mma.sync.aligned.m16n8k16", "ldmatrix.sync.aligned", "cp.async.cg"):
        assert needle in src, needle
    assert "@p cp.async" in src and "@!p st.shared" in src  # zero padding: predicated copies
    assert builder.nvcc_compile(src, "sm_90a")  # a cubin


@pytest.mark.parametrize(
    "workload",
    [
        Workload("conv2d_nhwc", (4, 32, 32, 64, 128, 3, 3, 2, 1), "float16"),
        Workload("gemm", (1000, 1000, 1000), "float16"),
    ],
    ids=lambda w: w.name,
)
def test_generative_space_on_the_sketch_builds_with_tensor_cores(needs_nvcc, workload):
    genome = SM90.check(default_genome("cuda.mma"), workload)
    mod = sketch.apply_all(SM90.sketch(workload), workload.prim_func())
    report = sample_candidates(mod, TARGET, space_for(genome, TARGET), 2)
    assert report.built == 2, report.failures
    for marker in ("mma.sync", "ldmatrix", "cp.async"):
        assert report.markers[marker] == 2, report.markers


class DryTuner(Tuner):
    """The real tuner and search, with measuring replaced by a fixed latency (no GPU)."""

    def run_space(self, workload, space, label, trials, mod=None):
        self.tuned.append(mod)
        return SpaceRun(label, "", trials, Counter(), 1e-3, 0.0, [0.0] * trials, mod)


def test_search_tunes_the_rewritten_module_and_reports_the_sketch(tmp_path):
    config = TuneConfig(target="cuda", arch="sm_90a", trials=16, work_dir=str(tmp_path))
    tuner = DryTuner(config, progress=False)
    tuner.tuned = []
    runs, report = search.run(tuner, CONV)
    assert report["sketch"] == sketch.to_json(sketch.propose(CONV))
    assert report["sketch"][0]["provenance"]["rule"] == "cuda.mma:conv2d_nhwc"
    assert runs and len(tuner.tuned) == len(runs)
    for mod in tuner.tuned:  # every genome tuned the implicit GEMM, not the 7-loop conv
        assert mod is not None and '"SSR"' in mod.script() and "SSSSRRR" not in mod.script()

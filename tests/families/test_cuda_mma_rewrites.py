# SPDX-License-Identifier: Apache-2.0
"""``cuda.mma`` on CUDA sm_90a without a GPU: its design space builds with tensor cores for plain
GEMMs and fused epilogues; conv2d (implicit GEMM) and odd GEMMs (padding) reach it through
TensorIR rewrites (im2col gather and padding inlined into predicated cp.async copies, no
materialised im2col buffer), and the tuner tunes the rewritten module and reports the rewrites."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from autokernel_tvm import builder, rewrite
from autokernel_tvm.candidates import sample_candidates
from autokernel_tvm.config import TuneConfig
from autokernel_tvm.families import GenomeError, Kernel
from autokernel_tvm.families.cuda_mma import FAMILY
from autokernel_tvm.families.cuda_mma.metaschedule import mma_candidates
from autokernel_tvm.hardware import limits
from autokernel_tvm.measure import SpaceRun
from autokernel_tvm.space.genome import Genome
from autokernel_tvm.space.grammar import Grammar
from autokernel_tvm.targets import make_target
from autokernel_tvm.tuner import Tuner, TuneResult
from autokernel_tvm.workloads import Workload

TARGET = make_target("cuda", "sm_90a")
SM90 = Grammar(TARGET)
BASE = dict(warp_m=2, warp_n=2, stages=3, smem_layout="swizzle", vector_bytes=16, raster=0)
BASE["smem_limit"] = limits(TARGET).smem_per_block
MMA = Genome.default("cuda.mma")


def names(workload) -> list[str]:
    return [f.name for f in SM90.families(workload)]


@pytest.mark.parametrize(
    "workload",
    [
        Workload("gemm", (1024, 1024, 1024), "float16"),
        Workload("gemm_nt", (1024, 2048, 512), "bfloat16"),
        Workload("gemm_bias_gelu", (1024, 1024, 1024), "float16"),
        # through the rewrites: implicit GEMM (a strided conv) and padding (odd sizes)
        Workload("conv2d_nhwc", (4, 32, 32, 64, 128, 3, 3, 2, 1), "float16"),
        Workload("gemm", (1000, 1000, 1000), "float16"),
    ],
    ids=lambda w: w.name,
)
def test_generated_candidates_build_with_tensor_cores(needs_nvcc, workload):
    genome = SM90.check(MMA, workload)
    candidate = FAMILY.candidate(genome.params, workload, TARGET)
    report = sample_candidates(candidate.mod, TARGET, candidate.space, 2, family=FAMILY)
    assert report.built == 2, report.failures
    for marker in ("mma.sync", "ldmatrix", "cp.async"):
        assert report.markers[marker] == 2, report.markers


CONV = Workload("conv2d_nhwc", (8, 16, 16, 64, 64, 3, 3, 1, 1), "float16")


def test_conv_and_odd_gemms_get_the_mma_family_with_their_rewrites():
    assert names(CONV) == ["cuda.wgmma", "cuda.mma"]  # the rewrite is cuda.mma's
    assert [p.kind for p in FAMILY.rewrites(CONV)] == ["implicit_gemm"]
    assert names(Workload("conv2d_nhwc", CONV.shape, "float32")) == ["cuda.wgmma"]  # 3xTF32
    assert FAMILY.rewrites(Workload("gemm", (4096, 4096, 4096), "float16")) == ()
    odd = Workload("gemm", (1000, 1000, 1000), "float16")
    assert [p.kind for p in FAMILY.rewrites(odd)] == ["pad"]
    assert SM90.check(MMA, CONV)  # checked on the implicit GEMM's M, N, K
    short_k = Workload("conv2d_nhwc", (4, 16, 16, 64, 128, 1, 1, 1, 0), "float16")  # K = 64
    with pytest.raises(GenomeError, match="k=64"):
        SM90.check(MMA, short_k)


def test_implicit_gemm_conv_schedules_with_apply_cuda_mma_and_builds(needs_nvcc):
    mod = rewrite.apply_all(rewrite.propose(CONV), CONV.prim_func())
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


class DryTuner(Tuner):
    """The real tuner loop and search, with measuring replaced by a fixed latency (no GPU) and
    the gate by a pass-through. A whole kernel is one record, as measured for real."""

    def measure(self, workload, candidate, label, trials=None, ahead=()):
        self.tuned.append(candidate.mod)
        records = 1 if isinstance(candidate, Kernel) else trials
        # as the measurer: the records its database holds already count as found (resumed)
        found, self.records[label] = self.records.get(label, 0), records
        run = SpaceRun(label, "", records, Counter(), 1e-3, 0.0, [0.0] * records, candidate.mod)
        run.resumed = min(found, records)
        return run

    def _pick_verified(self, workload, runs, seconds, report):
        result = dict(workload=workload, target="cuda", arch="sm_90a", latency_s=1e-3)
        result.update(trials=sum(r.trials for r in runs), failures={}, tune_seconds=seconds)
        result.update(resumed=sum(r.resumed for r in runs))
        result.update(trace="", mod=runs[0].mod, curve=[], verify=None, space=runs[0].label)
        return TuneResult(**result, space_report=report)


def test_tuner_tunes_the_rewritten_module_and_reports_the_rewrites(tmp_path):
    """A conv2d of 36 channels, which the wgmma kernels do not take (a pixel's 72 bytes are
    no TMA stride; on a conv they do take, the budget goes to them first): every genome the
    tuner measures is a cuda.mma space over the implicit GEMM the rewrite made."""
    strided = Workload("conv2d_nhwc", (8, 16, 16, 36, 64, 3, 3, 2, 1), "float16")
    config = TuneConfig(target="cuda", arch="sm_90a", trials=16, work_dir=str(tmp_path))
    tuner = DryTuner(config.replace(save_library=False), progress=False)
    tuner._runner = object()  # measuring is faked: no GPU needed
    tuner.tuned, tuner.records = [], {}
    report = tuner.tune(strided).space_report
    rewrites = report["families"]["cuda.mma"]["rewrites"]
    assert rewrites == rewrite.to_json(rewrite.propose(strided))
    assert rewrites[0]["provenance"]["rule"] == "cuda.mma:conv2d_nhwc"
    mma = [m for m in tuner.tuned if not builder.is_tirx(m)]
    assert mma and len(mma) == len(tuner.tuned) == len(report["proposed"])
    for mod in mma:  # every cuda.mma genome tuned the implicit GEMM, not the 7-loop conv
        assert '"SSR"' in mod.script() and "SSSSRRR" not in mod.script()


def test_a_genome_measured_in_two_rungs_counts_its_records_once(tmp_path):
    """Successive halving re-measures the survivor (its database resumes): the result counts
    each genome's records once, and the budget is what was spent."""
    config = TuneConfig(target="cuda", arch="sm_90a", trials=32, work_dir=str(tmp_path))
    # the generator's own draws (two design spaces first), not the proposal model's kernels
    tuner = DryTuner(config.replace(save_library=False, proposal_model=False), progress=False)
    tuner._runner = object()
    tuner.tuned, tuner.records = [], {}
    result = tuner.tune(CONV)
    assert [tuple(rung) for rung in result.space_report["plan"]] == [(2, 8), (1, 16)]
    assert len(tuner.tuned) > len(result.space_report["proposed"])  # a genome measured twice
    assert result.trials == 32  # 8 + (8 + 16): the survivor's 24 records counted once
    assert result.resumed == 0  # its first rung's 8 were this run's, not an earlier run's


@pytest.mark.parametrize(
    "shape", [(8, 56, 56, 3, 64, 3, 3, 1, 1), (2, 8, 8, 32, 64, 1, 1, 1, 0)], ids=str
)
def test_convs_with_a_single_k_step_get_legal_genomes(needs_nvcc, shape):
    """An RGB input conv (R*S*C = 27) or a 1x1 conv of 32 channels: K is padded to two steps
    of 32, so the 2-stage pipeline is legal; with K one step, every genome was refused and the
    tuner fell back to the stock space. (The 32-channel conv is the wgmma family's too: a
    K step of 64 channels, half zero-filled.)"""
    conv = Workload("conv2d_nhwc", shape, "float16", "float16")
    tuner = Tuner(TuneConfig(target="cuda", arch="sm_90a", trials=4), progress=False)
    proposals = tuner.candidates(conv, 4)
    wgmma = {"cuda.wgmma"} if shape[3] % 8 == 0 else set()
    assert proposals and {g.family for g, _ in proposals} == {"cuda.mma"} | wgmma
    proposals = [(g, space) for g, space in proposals if g.family == "cuda.mma"]
    assert {g.params.stages for g, _ in proposals} == {2}  # 2 K steps: 2 stages at most
    genome, space = proposals[0]
    report = sample_candidates(space.mod, TARGET, space.space, 1, family=FAMILY)
    assert report.built == 1 and report.markers["mma.sync"] == 1

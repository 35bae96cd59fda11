# SPDX-License-Identifier: Apache-2.0
"""Real tuning on llvm: few trials, the winner verified; resume from a work dir."""

import json
import os

import numpy as np
import pytest
import tvm
import tvm_ffi

from autokernel_tvm.config import ConfigError, TuneConfig
from autokernel_tvm.progress import count_records
from autokernel_tvm.tuner import TuneError, Tuner, retime_finalists
from autokernel_tvm.workloads import Workload

W = Workload("gemm_nt", (64, 64, 64))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("tune"))
    cfg = TuneConfig(target="llvm", trials=8, trials_per_iter=4, work_dir=work, space="stock")
    return Tuner(cfg, progress=False), Tuner(cfg, progress=False).tune(W), work


@pytest.mark.slow
def test_stock_tuning_gives_a_verified_kernel(tuned):
    _, result, work = tuned
    assert result.trials == 8
    assert 0 < result.latency_s < 1.0
    assert result.verify["passed"] and "determinism" in result.verify["checks"]
    assert len(result.curve) == 8 and result.curve[-1] == pytest.approx(result.tflops)
    assert all(b >= a for a, b in zip(result.curve, result.curve[1:]))
    with open(os.path.join(work, W.name, "report.json")) as f:
        assert json.load(f)["trials"] == 8
    assert set(result.space_report["seconds"]) == {"search", "gate"}  # no genomes: stock


@pytest.mark.slow
def test_winner_computes_the_right_answer(tuned):
    tuner, result, _ = tuned
    exe = tuner.build(result.mod)
    a, b = W.random_inputs(np.random.default_rng(7), "normal")
    out = tvm.runtime.tensor(np.zeros(W.output.shape, np.float32))
    exe["main"](tvm.runtime.tensor(a), tvm.runtime.tensor(b), out)
    np.testing.assert_allclose(out.numpy(), a.astype("f8") @ b.astype("f8").T, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_rerun_resumes_instead_of_starting_over(tuned):
    _, first, work = tuned
    db_dir = os.path.join(work, W.name, "stock")
    assert count_records(db_dir) == 8
    more = TuneConfig(target="llvm", trials=12, trials_per_iter=4, work_dir=work, space="stock")
    again = Tuner(more, progress=False).tune(W)
    assert count_records(db_dir) == 12  # 4 new trials, not 12
    assert again.trials == 12 and (first.resumed, again.resumed) == (0, 8)
    assert again.summary()["resumed_trials"] == 8
    assert again.latency_s <= first.latency_s * 1.5  # the old records still count


@pytest.mark.slow
def test_a_kernel_verified_in_this_process_is_not_rebuilt_or_reverified(tuned, monkeypatch):
    """The model paths ask one tuner for the same kernels again (problem path, then the
    backend): the winner that passed the gate is reused, and the report says so."""
    _, _, work = tuned
    cfg = TuneConfig(target="llvm", trials=8, trials_per_iter=4, work_dir=work, space="stock")
    tuner = Tuner(cfg, progress=False)
    first = tuner.tune(W)
    assert first.verify["passed"] and "reused" not in first.verify
    builds = []
    monkeypatch.setattr(tuner, "build", lambda mod: builds.append(mod))
    again = tuner.tune(W)
    assert builds == [] and again.verify["passed"] and "reused" in again.verify
    assert tvm_ffi.structural_equal(again.mod, first.mod)


def test_cuda_tuning_without_gpu_says_what_to_do(tmp_path):
    cfg = TuneConfig(target="cuda", arch="sm_90a", trials=4, work_dir=str(tmp_path))
    with pytest.raises(TuneError, match="--build-only"):
        Tuner(cfg, progress=False).tune(Workload("gemm", (128, 128, 128), "float16"))


def test_time_budget_stops_the_search_and_still_verifies_the_best(tmp_path):
    """Past its time budget the search proposes nothing more: the best genome measured so far
    goes through the gate, and the report and the run's summary say where it stopped (32
    trials: a first rung of two genomes, of which only the first is measured)."""
    from autokernel_tvm.report import summary_lines

    cfg = TuneConfig(target="llvm", trials=32, trials_per_iter=4, work_dir=str(tmp_path),
                     time_budget_s=1e-3, save_library=False)  # fmt: skip
    result = Tuner(cfg, progress=False).tune(W)
    stopped = result.space_report["stopped"]
    assert stopped == "time budget of 0.001 s reached after 1 genomes", stopped
    assert result.verify and result.verify["passed"]
    ((seconds, best),) = result.space_report["timeline"]  # one measurement: when, how fast
    assert 0 < seconds <= result.tune_seconds and best == pytest.approx(result.tflops)
    lines = summary_lines(result.summary())
    assert any(line.startswith("stopped    time budget") for line in lines)
    # where the time went: the genome's candidate made, MetaSchedule's search, the gate
    seconds = result.space_report["seconds"]
    assert set(seconds) == {"generate", "search", "gate"}, seconds
    assert all(t >= 0 for t in seconds.values()) and seconds["search"] > 0
    assert seconds["generate"] + seconds["search"] <= result.tune_seconds + 0.01
    assert any(line.startswith("time       generate") for line in lines)
    # and the gate's by step: a schedule's record is built again here, then verified
    steps = result.space_report["gate_seconds"]
    assert set(steps) == {"retime", "rebuilt", "verify"}, steps
    assert sum(steps.values()) <= seconds["gate"] + 0.01 and steps["verify"] > 0
    with pytest.raises(Exception, match="time_budget_s"):
        TuneConfig(time_budget_s=-1)


def test_fp8_without_a_family_says_why_the_stock_space_cannot_take_it(tmp_path):
    """fp8 on a CUDA GPU that is not Hopper: no family applies and the stock rules build no
    fp8 kernel for CUDA (TVM 0.27), so the run stops with both reasons instead of measuring
    candidates that all fail to build."""
    from autokernel_tvm.workloads import Workload

    cfg = TuneConfig(target="cuda", arch="sm_80", trials=4, work_dir=str(tmp_path))
    tuner = Tuner(cfg, progress=False)
    fp8 = Workload("gemm_scaled_nt", (256, 256, 256), "float8_e4m3fn", "bfloat16")
    why = tuner._no_stock_reason(fp8)
    assert "cuda.wgmma: needs CUDA sm_90a" in why and "no fp8 kernel" in why
    assert tuner._stock_problem(Workload("gemm_nt", (256, 256, 256), "float16")) == ""


def test_a_library_hit_on_this_device_cuts_the_budget(tmp_path, monkeypatch):
    """A rerun (the user library holds this workload, measured on this GPU, as a whole
    kernel) spends ``hit_trials``; another GPU's entry, or hit_trials=0, the whole budget."""
    from autokernel_tvm.space.genome import Genome
    from autokernel_tvm.space.library import Library

    w = Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16")
    lib = Library("cuda", "gemm", str(tmp_path))
    lib.record(Genome.default("cuda.wgmma"), w, tflops=650.0, latency_us=211.0, trials=16,
               device="NVIDIA H100 80GB HBM3")  # fmt: skip
    lib.save()

    def tuner(device, **options):
        cfg = TuneConfig(target="cuda", arch="sm_90a", trials=32, user_library_dir=str(tmp_path),
                         library_dir=str(tmp_path / "none"),  # not the shipped entries
                         work_dir=str(tmp_path / "work"), **options)  # fmt: skip
        t = Tuner(cfg, progress=False)
        monkeypatch.setattr(t, "device_name", lambda: device)
        return t

    trials, hit = tuner("NVIDIA H100 80GB HBM3").trial_budget(w)
    assert trials == 4 and hit["tflops"] == 650.0
    assert tuner("NVIDIA H200").trial_budget(w) == (32, None)
    assert tuner("NVIDIA H100 80GB HBM3", hit_trials=0).trial_budget(w) == (32, None)
    assert tuner("NVIDIA H100 80GB HBM3").search(w, 4).trials == 4
    with pytest.raises(Exception, match="hit_trials must be >= 0"):
        TuneConfig(hit_trials=-1)


def test_retime_finalists_are_the_near_tied_whole_kernels_in_front():
    # (seconds, label, record, mod, family): record None = a whole kernel
    kernel = [(1.00, "a", None), (1.02, "b", None), (1.025, "c", None), (1.029, "d", None)]
    kernels = [(*c, None, "cuda.wgmma") for c in kernel]
    assert [c[1] for c in retime_finalists(kernels, 0.03)] == ["a", "b", "c"]  # at most three
    assert [c[1] for c in retime_finalists(kernels, 0.015)] == ["a"]  # b is 2% behind
    assert retime_finalists(kernels, 0.0) == []  # off
    record = object()  # a design space's record: timed by MetaSchedule, not re-timed
    mixed = [kernels[0], (1.01, "s", record, None, "cuda.mma"), kernels[1]]
    assert [c[1] for c in retime_finalists(mixed, 0.03)] == ["a"]
    assert retime_finalists([mixed[1], kernels[0]], 0.03) == []  # a record in front
    with pytest.raises(ConfigError, match=r"retime_within must be in \[0, 1\)"):
        TuneConfig(retime_within=1.0)

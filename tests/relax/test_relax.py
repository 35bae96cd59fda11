# SPDX-License-Identifier: Apache-2.0
"""PyTorch models through Relax: tune_model, export/load_model, the "autokernel" pipeline (llvm)."""

from __future__ import annotations

import json
import os

import pytest
import torch
import tvm
from tvm import relax

from autokernel_tvm.config import TuneConfig
from autokernel_tvm.relax import (
    ModelLoadError,
    autokernel_pipeline,
    database_dir,
    load_model,
    rel_error,
    tune_model,
)
from autokernel_tvm.tuner import Tuner

pytestmark = pytest.mark.slow


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(32, 64)
        self.fc2 = torch.nn.Linear(64, 16)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        y = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(y.flatten(1))


@pytest.fixture(scope="module")
def tuner(tmp_path_factory):
    work = tmp_path_factory.mktemp("relax_work")
    config = TuneConfig(
        trials=4,
        trials_per_iter=4,
        work_dir=str(work),
        build_workers=2,
        library_dir=str(work / "library"),  # winners are recorded: not into schedules/
    )
    return Tuner(config, progress=False)


@pytest.fixture(scope="module")
def mlp_tuned(tuner):
    torch.manual_seed(0)
    model = MLP().eval()
    return model, tune_model(model, (torch.randn(8, 32),), config=tuner.config, tuner=tuner)


@pytest.fixture(scope="module")
def mlp_tasks_tuned(tuner):
    """Without kernel dispatch: the fused Relax tasks are tuned by MetaSchedule."""
    torch.manual_seed(0)
    model = MLP().eval()
    x = (torch.randn(8, 32),)
    return model, tune_model(model, x, config=tuner.config, tuner=tuner, dispatch=False)


def test_mlp_dispatched_matches_eager(mlp_tuned):
    model, tuned = mlp_tuned
    served = tuned.report["dispatch"]["served"]
    assert [s["workload"].split("_M")[0] for s in served] == ["gemm_nt", "gemm_nt"]
    assert "relu" in served[0]["epilogue"] and served[0]["verify"]
    assert not any(t["tuned"] and "matmul" in t["name"] for t in tuned.report["tasks"])
    assert tuned.report["check"]["passed"] and tuned.report["check"]["elementwise_ratio"] <= 1
    for seed in range(3):
        torch.manual_seed(seed)
        x = torch.randn(8, 32)
        with torch.no_grad():
            assert rel_error(tuned(x), model(x)) <= 1e-5


def test_mlp_tasks_tuned_matches_eager(mlp_tasks_tuned):
    model, tuned = mlp_tasks_tuned
    tasks = {t["name"]: t for t in tuned.report["tasks"]}
    assert len(tasks) == 2 and all("matmul" in name for name in tasks)
    assert sum(t["budget"] for t in tasks.values()) == 4
    assert all(t["tuned"] and t["best_us"] > 0 and t["flops"] > 0 for t in tasks.values())
    assert tuned.report["check"]["passed"]
    for seed in range(3):
        torch.manual_seed(seed)
        x = torch.randn(8, 32)
        with torch.no_grad():
            assert rel_error(tuned(x), model(x)) <= 1e-5


def test_export_and_load_without_tuner(mlp_tuned, tmp_path):
    model, tuned = mlp_tuned
    path = tmp_path / "mlp.so"
    manifest = tuned.export(path)
    assert manifest["num_inputs"] == 1 and os.path.exists(str(path) + ".params")
    loaded = load_model(path)
    x = torch.randn(8, 32)
    with torch.no_grad():
        assert rel_error(loaded(x), model(x)) <= 1e-5
    with open(path, "ab") as f:  # a changed library is refused
        f.write(b"\0")
    with pytest.raises(ModelLoadError, match="sha256"):
        load_model(str(path) + ".json")


def test_cnn_tuned_matches_eager(tuner):
    torch.manual_seed(1)
    model = CNN().eval()
    x = torch.randn(2, 3, 16, 16)
    tuned = tune_model(model, (x,), config=tuner.config, tuner=tuner)
    by_name = {t["name"]: t for t in tuned.report["tasks"]}
    served = [s["workload"] for s in tuned.report["dispatch"]["served"]]
    assert served[0].startswith("conv2d_nhwc_N2_H16_W16_C3_K8_R3_S3_stride1_pad1"), served
    assert served[1].startswith("gemm_nt_M2_N10_K512"), served
    kept = [t for t in by_name.values() if not t["tuned"]]
    assert all(t["reason"] for t in kept)  # every untuned task says why
    x2 = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert rel_error(tuned(x2), model(x2)) <= 1e-4


def test_pipeline_in_tvm_compile(tuner, mlp_tuned):
    """tvm.compile with relax_pipeline=...: MetaScheduleTuneIRMod reaches our tuner."""
    from tvm.relax.frontend import detach_params
    from tvm.relax.frontend.torch import from_exported_program

    model, _ = mlp_tuned
    x = torch.randn(8, 32)
    mod = from_exported_program(torch.export.export(model, (x,)), keep_params_as_input=True)
    mod, params = detach_params(mod)
    ex = tvm.compile(
        mod, tuner.target, relax_pipeline=autokernel_pipeline(tuner.config, tuner=tuner)
    )
    vm = relax.VirtualMachine(ex, tvm.cpu())
    out = torch.from_dlpack(vm["main"](x, *params["main"])[0])
    with torch.no_grad():
        assert rel_error(out, model(x)) <= 1e-5
    with open(os.path.join(database_dir(tuner), "pipeline_report.json")) as f:
        report = json.load(f)
    assert report["routed"]
    assert len(report["dispatch"]["served"]) == 2 and not report["dispatch"]["unmatched"]
    assert "autokernel" in relax.pipeline.PIPELINE_MAP

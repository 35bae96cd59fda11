# SPDX-License-Identifier: Apache-2.0
"""PyTorch models through Relax: tune_model, export/load_model, the "autokernel" pipeline (llvm)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch
import tvm
from tvm import relax

from autokernel_tvm.config import TuneConfig
from autokernel_tvm.relax import (
    ModelLoadError,
    UnsupportedModelError,
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
    with pytest.raises(TypeError, match="input 0 is a int, not a tensor"):
        loaded(3)
    with pytest.raises(ModelLoadError, match="export to a .so path"):
        tuned.export(tmp_path / "mlp.tar")  # TVM would write a tar no loader reads
    with pytest.raises(ModelLoadError, match="'gpu9'"):
        load_model(path, device="gpu9")
    os.rename(str(path) + ".params", str(path) + ".kept")
    with pytest.raises(ModelLoadError, match=r"mlp\.so\.params: missing"):
        load_model(path)
    os.rename(str(path) + ".kept", str(path) + ".params")
    # cut short, its manifest's sha256 rewritten to match: refused before dlopen (SIGBUS there)
    with open(path, "rb") as f:
        data = f.read()[:-4097]
    with open(path, "wb") as f:
        f.write(data)
    with open(str(path) + ".json") as f:
        edited = json.load(f)
    edited["sha256"] = hashlib.sha256(data).hexdigest()
    with open(str(path) + ".json", "w") as f:
        json.dump(edited, f)
    with pytest.raises(ModelLoadError, match="truncated: the file has"):
        load_model(path)
    # the model loaded before runs from its own copy: rewriting the user's file (cut, above)
    # does not pull its code away (it did: a segfault at exit)
    with torch.no_grad():
        assert rel_error(loaded(x), model(x)) <= 1e-5


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


class Total(torch.nn.Module):
    def forward(self, x):
        return (x * 2.0).sum()


def test_a_reduction_to_one_value_is_tuned(tuner):
    """A reduction with no spatial axis (a loss, x.sum()): the templates' analysis indexed the
    last spatial axis of none (IndexError: a traceback from every model path)."""
    x = torch.randn(64, 256)
    tuned = tune_model(Total(), (x,), config=tuner.config, tuner=tuner)
    x = torch.randn(64, 256)
    with torch.no_grad():
        assert rel_error(tuned(x), Total()(x)) <= 1e-4


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


class _Mutates(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, x):
        self.calls += 1
        return self.fc(x)


class _InPlaceInput(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x):
        x.mul_(2)
        return self.fc(x)


class _Noisy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(x) + torch.rand_like(x)


@pytest.mark.parametrize(
    "model, why",
    [
        (_Mutates(), "changes b_calls in place"),
        (_InPlaceInput(), "changes x in place"),
        (_Noisy(), "random numbers (rand_like)"),
        (torch.nn.Linear(8, 8).double(), "float64"),
    ],
    ids=["buffer", "input", "random", "float64"],
)
def test_models_a_compiled_graph_cannot_reproduce_are_refused_with_the_reason(tuner, model, why):
    """A graph that updates a buffer or an input in place (TVM's import computes a new value
    and drops the update), draws random numbers, or computes in float64 (TVM's import stops at
    float32): never a compiled model that disagrees with eager, always the reason."""
    x = torch.randn(4, 8, dtype=next(model.parameters()).dtype)
    with pytest.raises(UnsupportedModelError, match=why.replace("(", r"\(").replace(")", r"\)")):
        tune_model(model, (x,), config=tuner.config, tuner=tuner)


def test_caller_model_keeps_its_dtype_and_modes(tuner):
    """dtype= casts a copy; eval mode is for the compile only: the caller's model comes back in
    the dtype and the (per-module) training modes it had."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.1), torch.nn.ReLU())
    model.train()
    model[2].eval()
    tuned = tune_model(model, (torch.randn(4, 8),), config=tuner.config, tuner=tuner,
                       dtype="bfloat16")  # fmt: skip
    assert model[0].weight.dtype == torch.float32
    assert [m.training for m in model.modules()] == [True, True, True, False]
    assert tuned(torch.randn(4, 8).bfloat16()).dtype == torch.bfloat16
    with pytest.raises(UnsupportedModelError, match="input 1 is a float, not a tensor"):
        tune_model(model, (torch.randn(4, 8), 0.5), config=tuner.config, tuner=tuner)
    # torch.compile hands a Python float argument over as a 0-d float64 tensor: say so
    with pytest.raises(UnsupportedModelError, match="input 1 is a 0-d float64 tensor"):
        tune_model(model, (torch.randn(4, 8), torch.tensor(0.5, dtype=torch.float64)),
                   config=tuner.config, tuner=tuner)  # fmt: skip


def test_embedding_indices_are_checked_as_eager_checks_them(tuner, tmp_path):
    """Eager raises IndexError for an index outside the table; TVM's gather reads out of
    bounds (NaNs, plausible values or a segfault). The compiled model, and the one loaded from
    its export, raise the same IndexError."""

    class Embed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Embedding(100, 16)
            self.fc = torch.nn.Linear(16, 8)

        def forward(self, ids):
            return self.fc(self.table(ids))

    torch.manual_seed(0)
    model, ids = Embed().eval(), torch.randint(0, 100, (4, 6))
    tuned = tune_model(model, (ids,), config=tuner.config, tuner=tuner)
    assert tuned.report["index_bounds"] == [[0, 100]]
    with torch.no_grad():
        assert rel_error(tuned(ids), model(ids)) < 1e-5
    tuned.export(tmp_path / "embed.so")
    for compiled in (tuned, load_model(tmp_path / "embed.so")):
        for bad in (100, -1, 10**8):
            wrong = ids.clone()
            wrong[1, 2] = bad
            with pytest.raises(IndexError, match="index out of range"):
                compiled(wrong)


def test_every_indexing_op_checks_its_input_indices_or_runs_eagerly(tuner):
    """x[idx] and torch.gather read at input indices too (a segfault, or made-up values, past
    the table): checked per call as embedding's are. Indices computed from the inputs inside
    the graph (table(idx + 1)) cannot be checked before the call: such a graph runs eagerly,
    with the reason."""

    class Rows(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(100, 32))

        def forward(self, idx):
            return self.w[idx] * 2

    class Gather(torch.nn.Module):
        def forward(self, x, idx):
            return torch.gather(x, 1, idx) * 2

    class Shifted(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.e = torch.nn.Embedding(100, 32)

        def forward(self, idx):
            return self.e(idx + 1)

    torch.manual_seed(0)
    x, idx = torch.randn(4, 10), torch.randint(0, 10, (4, 3))
    cases = [(Rows(), (torch.randint(0, 100, (4, 8)),), 0, 100), (Gather(), (x, idx), 1, 10)]
    for model, inputs, position, rows in cases:
        tuned = tune_model(model, inputs, config=tuner.config, tuner=tuner)
        assert tuned.report["index_bounds"] == [[position, rows]]
        with torch.no_grad():
            assert rel_error(tuned(*inputs), model(*inputs)) < 1e-6
        bad = list(inputs)
        bad[position] = torch.full_like(inputs[position], 10**6)
        with pytest.raises(IndexError, match="index out of range"):
            tuned(*bad)
    with pytest.raises(UnsupportedModelError, match=r"indices computed from the inputs \(add"):
        tune_model(Shifted(), (torch.randint(0, 99, (4, 8)),), config=tuner.config, tuner=tuner)


def test_writes_at_input_indices_are_bounded_too():
    """scatter / index_put at input indices: out of range, TVM's scatter writes past the
    tensor (eager raises), so those inputs are range-checked like a gather's."""
    from autokernel_tvm.relax import computed_indices, index_bounds

    class Scatter(torch.nn.Module):
        def forward(self, x, idx, v):
            return x.scatter_add(1, idx, v) * 2

    class Put(torch.nn.Module):
        def forward(self, x, idx, v):
            return x.index_put((idx,), v)

    x, idx = torch.zeros(4, 10), torch.randint(0, 10, (4, 3))
    program = torch.export.export(Scatter(), (x, idx, torch.ones(4, 3)))
    assert index_bounds(program) == [[1, 10]] and computed_indices(program) is None
    program = torch.export.export(Put(), (x.T, torch.randint(0, 10, (3,)), torch.ones(3, 4)))
    assert index_bounds(program) == [[1, 10]]


def test_an_input_unlike_the_compiled_one_is_named(mlp_tuned):
    """TVM's own error names a match_cast; the compiled model names the input, what it got and
    what it was compiled for (only on the error path: no per-call cost)."""
    _, tuned = mlp_tuned
    with pytest.raises(ValueError, match=r"input 0 is float32 \(9, 32\), but .* \(8, 32\)"):
        tuned(torch.randn(9, 32))
    with pytest.raises(ValueError, match=r"input 0 is float64 \(8, 32\), but .* float32"):
        tuned(torch.randn(8, 32, dtype=torch.float64))

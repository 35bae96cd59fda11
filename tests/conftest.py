# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: tool probes, small verified CPU kernels (untuned schedules), a library."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import torch
import tvm

from autokernel_tvm import verify as verify_lib
from autokernel_tvm.builder import build_module
from autokernel_tvm.export import export
from autokernel_tvm.targets import make_target
from autokernel_tvm.tuner import TuneResult
from autokernel_tvm.workloads import Workload

# Runs record their winners in the user library under the cache dir: give the test session its
# own (subprocesses inherit it), so tests neither read nor write the user's.
os.environ["AUTOKERNEL_CACHE_DIR"] = tempfile.mkdtemp(prefix="autokernel_test_cache_")


# NOTE: needs_nvcc and the gpu-marker hook were reconstructed: an earlier tests/conftest.py that
# defined needs_nvcc (used by tests/test_candidates.py) was overwritten while this file was made.
@pytest.fixture(scope="session")
def needs_nvcc() -> str:
    """Path of nvcc; skips the test where the CUDA toolkit is not installed."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found on PATH")
    return nvcc


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``gpu`` where torch sees no CUDA device."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


GEMM_NT = Workload("gemm_nt", (64, 48, 32))
GEMM_BIAS_RELU = Workload("gemm_bias_relu", (64, 48, 32))
GEMM_NT_BF16 = Workload("gemm_nt", (32, 16, 24), "bfloat16")


def parallel_rows(sch: tvm.s_tir.Schedule) -> None:
    """Parallelise the reduction block's outer loop: tuned llvm kernels call the TVM thread pool."""
    sch.parallel(sch.get_loops(sch.get_sblock("C"))[0])


def make_result(
    workload: Workload,
    schedule=None,
    *,
    run_verify: bool = True,
    latency_s: float = 1e-4,
    verify_as: Workload | None = None,
) -> TuneResult:
    """A TuneResult for ``workload`` without tuning: the unscheduled (or ``schedule``d) module.

    ``verify_as`` verifies the built kernel as another workload (to make a failing report).
    """
    sch = tvm.s_tir.Schedule(workload.ir_module())
    if schedule is not None:
        schedule(sch)
    report = None
    if run_verify:
        exe = build_module(sch.mod, make_target("llvm"))
        report = verify_lib.verify(exe["main"], verify_as or workload, seed=0).to_json()
    return TuneResult(
        workload=workload,
        target="llvm",
        arch=None,
        latency_s=latency_s,
        trials=0,
        failures={},
        tune_seconds=0.0,
        trace="",
        mod=sch.mod,
        curve=[],
        verify=report,
        space="untuned",
    )


@pytest.fixture(scope="session")
def cpu_results() -> list[TuneResult]:
    return [
        make_result(GEMM_NT, parallel_rows),
        make_result(GEMM_BIAS_RELU),
        make_result(GEMM_NT_BF16),
    ]


@pytest.fixture(scope="session")
def cpu_lib(tmp_path_factory, cpu_results) -> str:
    """Path of a library with the three CPU kernels (manifest beside it)."""
    path = str(tmp_path_factory.mktemp("lib") / "kernels.so")
    export(cpu_results, path)
    return path


def reshape_copies(mod: tvm.IRModule) -> list[str]:
    """The reshape kernels ``mod``'s ``main`` calls once lowered for llvm (copies; a view is
    ``vm.builtin.reshape``)."""
    import re

    from autokernel_tvm.relax.passes import lower_pipeline

    target = tvm.target.Target("llvm")
    with target:
        text = lower_pipeline(target)(mod)["main"].script()
    return re.findall(r"(\w*reshape\w*)\(", text)


class AttentionBlock(torch.nn.Module):
    """Self-attention as a transformer runs it: one qkv Linear, heads split by a permute,
    causal SDPA, heads merged, the output Linear and a residual."""

    def __init__(self, hidden=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv, self.o = torch.nn.Linear(hidden, 3 * hidden), torch.nn.Linear(hidden, hidden)

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        heads = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return x + self.o(heads.transpose(1, 2).reshape(b, s, h))


class GatedMLP(torch.nn.Module):
    """LLaMA's MLP: down(silu(gate(x)) * up(x)), no biases (the gated-MLP rewrite's model)."""

    def __init__(self, hidden=32, inner=48):
        super().__init__()
        self.gate = torch.nn.Linear(hidden, inner, bias=False)
        self.up = torch.nn.Linear(hidden, inner, bias=False)
        self.down = torch.nn.Linear(inner, hidden, bias=False)

    def forward(self, x):
        return self.down(torch.nn.functional.silu(self.gate(x)) * self.up(x))

# SPDX-License-Identifier: Apache-2.0
"""CUDA arch choice: from the GPU's compute capability, and a clear error when the kernels being
built cannot run on the GPU that would measure them."""

import pytest
import tvm

from autokernel_tvm import config
from autokernel_tvm.targets import arch_for_compute_version, arch_problem, make_target


@pytest.mark.parametrize(
    "version, arch", [("8.0", "sm_80"), ("8.6", "sm_86"), ("8.9", "sm_89"), ("9.0", "sm_90a")]
)
def test_arch_for_compute_version(version, arch):
    assert arch_for_compute_version(version) == arch


def test_arch_problem_names_the_arch_to_use():
    assert arch_problem("sm_90a", "9.0") is None
    assert arch_problem("sm_80", "9.0") is None  # sm_80 code runs on newer GPUs
    why = arch_problem("sm_90a", "8.0")
    assert "compute capability 9.0," in why and "--arch sm_80" in why
    assert "--arch sm_80" in arch_problem("sm_89", "8.0")
    assert "9.0" in arch_problem("sm_90a", "10.0")  # arch-specific code: that major only


def test_default_arch_is_the_environment_then_this_gpu_then_sm90a(monkeypatch):
    monkeypatch.setenv("AUTOKERNEL_CUDA_ARCH", "sm_80")
    assert config.cuda_arch_from_env() == "sm_80"
    assert str(make_target("cuda").attrs["arch"]) == "sm_80"
    assert make_target("cuda").attrs["max_shared_memory_per_block"] == 166912  # hardware table
    monkeypatch.delenv("AUTOKERNEL_CUDA_ARCH")
    assert config.cuda_arch_from_env() is None
    device = tvm.cuda(0)
    want = arch_for_compute_version(device.compute_version) if device.exist else "sm_90a"
    assert str(make_target("cuda").attrs["arch"]) == want

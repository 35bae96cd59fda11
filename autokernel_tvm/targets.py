# SPDX-License-Identifier: Apache-2.0
"""TVM targets for the three back ends, with the limits of the real hardware.

TVM 0.27 rejects CLI target strings (``"cuda -arch=sm_90a"``), so targets are built from dicts.
The stock ``nvidia/nvidia-h100`` tag caps shared memory at 48 KB; Hopper gives a block up to
227 KB once the dynamic limit is raised (TVM's CUDA runtime does that for dyn smem >= 48 KB).
"""

from __future__ import annotations

import os
import re

import tvm

from . import config
from .hardware import UnknownArchError, limits_for_arch

ROCM_ARCHES = ("gfx942", "gfx90a", "gfx908")


class TargetError(RuntimeError):
    """A target cannot be used on this machine; the message says what to install or set."""


def cuda_sm(arch: str) -> int:
    """``"sm_90a"`` -> 90."""
    match = re.fullmatch(r"sm_(\d+)a?", arch)
    if not match:
        raise TargetError(f"CUDA arch must look like sm_80 or sm_90a, got {arch!r}")
    return int(match.group(1))


def arch_for_compute_version(version: str) -> str:
    """The arch to compile for on a GPU of compute capability ``version``: ``"8.0"`` -> sm_80,
    ``"9.0"`` -> sm_90a (the arch-specific target that wgmma, TMA and setmaxnreg need)."""
    major, minor = (int(x) for x in version.split("."))
    return f"sm_{major}{minor}" + ("a" if major == 9 else "")


def detect_cuda_arch() -> str | None:
    """:func:`arch_for_compute_version` of this machine's first CUDA GPU; None without one."""
    device = tvm.cuda(0)
    return arch_for_compute_version(device.compute_version) if device.exist else None


def arch_problem(arch: str, version: str) -> str | None:
    """Why kernels built for ``arch`` cannot run on a GPU of compute capability ``version``."""
    sm, gpu_sm = cuda_sm(arch), cuda_sm(arch_for_compute_version(version))
    need = f"{sm // 10}.{sm % 10}" + ("" if arch.endswith("a") else " or newer")
    if (sm != gpu_sm) if arch.endswith("a") else (sm > gpu_sm):
        return (
            f"{arch} code runs on compute capability {need}, this GPU is {version}: pass "
            f"--arch {arch_for_compute_version(version)} (or set AUTOKERNEL_CUDA_ARCH)"
        )
    return None


def make_target(kind: str, arch: str | None = None, num_cores: int = 0) -> tvm.target.Target:
    """Build the TVM target for ``kind`` (``llvm``, ``cuda`` or ``rocm``).

    Parameters
    ----------
    kind : str
        Back end.
    arch : str, optional
        ``sm_XX[a]`` for CUDA (default ``AUTOKERNEL_CUDA_ARCH``, else this machine's GPU, else
        sm_90a), ``gfx942``/``gfx90a``
        for ROCm (default gfx942), an LLVM CPU name for llvm (default: this machine's CPU).
    num_cores : int
        CPU threads for llvm (0: all physical cores).
    """
    # GPU host code stays generic x86-64: an exported .so must load on the GPU machine's CPU.
    host = {"kind": "llvm"}
    if kind == "llvm":
        return tvm.target.Target(_llvm_dict(arch, num_cores))
    if kind == "cuda":
        _default_cuda_compiler()
        arch = arch or config.cuda_arch_from_env() or detect_cuda_arch() or "sm_90a"
        cuda_sm(arch)  # validates the spelling
        lim = _limits(arch)
        spec = {
            "kind": "cuda",
            "arch": arch,
            "max_threads_per_block": lim.max_threads_per_block,
            "max_shared_memory_per_block": lim.smem_per_block,
            "thread_warp_size": lim.warp_size,
            "registers_per_block": lim.regs_per_block,
        }
        return tvm.target.Target(spec, host=host)
    if kind == "rocm":
        arch = arch or "gfx942"
        if arch not in ROCM_ARCHES:
            raise TargetError(f"ROCm arch must be one of {ROCM_ARCHES}, got {arch!r}")
        problem = rocm_toolchain_problem()
        if problem:
            raise TargetError(problem)
        os.environ.setdefault("ROCM_PATH", config.rocm_path())
        lim = _limits(arch)
        spec = {
            "kind": "rocm",
            "mcpu": arch,
            "max_threads_per_block": lim.max_threads_per_block,
            "max_shared_memory_per_block": lim.smem_per_block,
            "thread_warp_size": lim.warp_size,
        }
        return tvm.target.Target(spec, host=host)
    raise TargetError(f"unknown target {kind!r}; known: {config.TARGETS}")


def _default_cuda_compiler() -> None:
    """On a GPU machine TVM compiles CUDA with NVRTC unless ``TVM_CUDA_COMPILE_MODE=nvcc``;
    NVRTC needs the ``cuda-bindings`` package (TVM-0.27-NOTES §3). Without it, and with nvcc
    on PATH, make nvcc the default (for this process and its build/RPC workers): else every
    candidate fails to build, or is exported as source a C++ process cannot load."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("cuda") is None and shutil.which("nvcc"):
        os.environ.setdefault("TVM_CUDA_COMPILE_MODE", "nvcc")


def _limits(arch: str):
    try:
        return limits_for_arch(arch)
    except UnknownArchError as err:
        raise TargetError(str(err)) from None


def _llvm_dict(mcpu: str | None, num_cores: int) -> dict:
    mcpu = mcpu or tvm.target.codegen.llvm_get_system_cpu()
    return {"kind": "llvm", "mcpu": mcpu, "num-cores": physical_cores(num_cores)}


def physical_cores(num_cores: int = 0) -> int:
    """``num_cores``, or this machine's physical cores when 0."""
    import psutil

    return int(num_cores or psutil.cpu_count(logical=False) or os.cpu_count() or 1)


def use_cores(num_cores: int = 0) -> int:
    """Make TVM's CPU thread pool use the physical cores, unless ``TVM_NUM_THREADS`` is set.

    TVM's runtime defaults to half the hardware threads on x86 (it assumes SMT): on a 2-vCPU
    machine every kernel, tuning measurements included, ran on one thread while torch used two
    (measured: a 512^3 GEMM at 110 vs 210 GFLOP/s). Call before the first parallel kernel runs;
    MetaSchedule's runner workers inherit the variable. Returns the thread count in effect.
    """
    os.environ.setdefault("TVM_NUM_THREADS", str(physical_cores(num_cores)))
    return int(os.environ["TVM_NUM_THREADS"])


def rocm_toolchain_problem() -> str | None:
    """Why AMDGPU code cannot be built here (a message naming the fix), or None when it can."""
    from .families.rocm_mfma.build import rocm_toolchain_problem as problem

    return problem()


def cpu_name() -> str:
    """This machine's CPU model (from /proc/cpuinfo where there is one)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"

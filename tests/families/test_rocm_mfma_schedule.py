# SPDX-License-Identifier: Apache-2.0
"""MFMA GEMM schedules for AMD gfx942 / gfx90a: build on the CPU, find ``v_mfma`` in the assembly.

There is no AMD GPU here, so numerics are NOT checked. Build tests skip, naming the packages to
install, when :func:`rocm_toolchain_problem` reports one (``bash .ci/rocm-setup.sh`` fixes it).
The first schedule pays the one-time import of ``tvm.s_tir.tensor_intrin`` (15-100 s).
"""

from __future__ import annotations

import pytest
import tvm
from tvm import te

from autokernel_tvm.families.rocm_mfma import build as rocm_build
from autokernel_tvm.families.rocm_mfma import schedule as rocm_mfma
from autokernel_tvm.targets import make_target
from autokernel_tvm.workloads import Workload

SIZES = {"warps_m": 2, "warps_n": 2, "tiles_m": 2, "tiles_n": 2, "k_chunk": 2}
ACC = {"float16": "float32", "float32": "float32", "int8": "int32"}


@pytest.fixture(scope="module")
def toolchain() -> None:
    problem = rocm_build.rocm_toolchain_problem()
    if problem is not None:
        pytest.skip(problem)


def gemm(dtype: str, trans_b: bool, m: int = 256, n: int = 256, k: int = 256):
    """C[i, j] = sum_k acc(A[i, k]) * acc(B[k, j]), or B[j, k] when ``trans_b``."""
    a = te.placeholder((m, k), dtype, name="A")
    b = te.placeholder((n, k) if trans_b else (k, n), dtype, name="B")
    r = te.reduce_axis((0, k), name="k")
    acc = ACC.get(dtype, dtype)
    c = te.compute(
        (m, n),
        lambda i, j: te.sum(
            a[i, r].astype(acc) * (b[j, r] if trans_b else b[r, j]).astype(acc), axis=r
        ),
        name="C",
    )
    return te.create_prim_func([a, b, c])


def build_asm(func, arch: str, **sizes) -> str:
    sch = tvm.s_tir.Schedule(func)
    rocm_mfma.schedule_rocm_mfma(sch, "C", **sizes)
    return rocm_build.device_asm(rocm_build.build_rocm(sch.mod, make_target("rocm", arch)))


def test_toolchain_problem_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("ROCM_PATH", str(tmp_path))
    problem = rocm_build.rocm_toolchain_problem()
    assert problem is not None
    assert "apt-get install rocm-device-libs lld-22" in problem
    assert "ROCM_PATH=/usr/lib/x86_64-linux-gnu" in problem


@pytest.mark.parametrize(
    "arch, dtype, trans_b, mnemonic",
    [
        ("gfx942", "float16", False, "v_mfma_f32_16x16x16_f16"),
        ("gfx942", "float16", True, "v_mfma_f32_16x16x16_f16"),
        ("gfx942", "float32", False, "v_mfma_f32_16x16x4_f32"),
        ("gfx942", "float32", True, "v_mfma_f32_16x16x4_f32"),
        ("gfx90a", "float16", False, "v_mfma_f32_16x16x16f16"),
        ("gfx90a", "float32", True, "v_mfma_f32_16x16x4f32"),
        ("gfx90a", "int8", True, "v_mfma_i32_16x16x16i8"),
    ],
)
def test_mfma_gemm_builds(toolchain, arch, dtype, trans_b, mnemonic):
    asm = build_asm(gemm(dtype, trans_b), arch, **SIZES)
    assert mnemonic in asm
    # Every lane loads its own fragment registers: no cross-lane shuffles were needed.
    assert "ds_bpermute" not in asm


def test_project_workload_with_sampled_sizes(toolchain):
    func = Workload("gemm_nt", (512, 512, 256), "float16").prim_func()
    sch = tvm.s_tir.Schedule(func, seed=3)
    sizes = rocm_mfma.schedule_rocm_mfma(sch, "C", max_warps=2)
    samples = [i for i in sch.trace.insts if i.kind.name == "SamplePerfectTile"]
    assert len(samples) == 5  # tiles_m, warps_m, tiles_n, warps_n, k_chunk: all tunable
    assert sch.get(sizes.warps_m) <= 2 and sch.get(sizes.warps_n) <= 2
    exe = rocm_build.build_rocm(sch.mod, make_target("rocm", "gfx942"))
    assert "v_mfma_f32_16x16x16_f16" in rocm_build.device_asm(exe)


def test_int8_refused_on_gfx942(toolchain):
    # LLVM would abort the whole process selecting the s8 16x16x16 MFMA for gfx94x.
    with pytest.raises(Exception, match="int8 MFMA"):
        build_asm(gemm("int8", False), "gfx942", **SIZES)


def test_upstream_recipe_needs_the_pipeline(toolchain):
    """tvm.testing.tir.mfma_schedule fails with the stock 0.27 pipeline and builds with ours."""
    from tvm.s_tir.tensor_intrin import rocm
    from tvm.testing.tir import mfma_schedule

    def tiled(layout):
        return lambda i, j: (i // 16, j // 16, *layout(i % 16, j % 16))

    sch = mfma_schedule(
        gemm("float16", False, 1024, 1024, 1024), 16, "float16", False,
        [1, 8, 2, 4, 1], [1, 16, 2, 1, 2], [32, 2, 1],
        tiled(rocm.shared_16x16_to_local_64x4_layout_A),
        tiled(rocm.shared_16x16_to_local_64x4_layout_B),
        tiled(rocm.shared_16x16_to_local_64x4_layout_C),
        rocm.ROCM_MFMA_LOAD_16x16_A_SHARED_f16_INTRIN,
        rocm.ROCM_MFMA_LOAD_16x16_B_SHARED_f16_INTRIN, rocm.ROCM_MFMA_f16f16f32_INTRIN,
        rocm.ROCM_MFMA_fill_16x16_f32_INTRIN, rocm.ROCM_MFMA_STORE_16x16_f32_INTRIN,
    )  # fmt: skip
    target = make_target("rocm", "gfx942")
    with pytest.raises(Exception, match="LowerWarpMemory"):  # if this passes, TVM fixed it
        tvm.compile(sch.mod, target=target)
    assert "v_mfma" in rocm_build.device_asm(rocm_build.build_rocm(sch.mod, target))


@pytest.mark.parametrize(
    "func, reason",
    [
        (gemm("float16", False, m=40), "M=40 is not a multiple of 16"),
        (gemm("float32", False, k=18), "K=18 is not a multiple of 4"),
        (gemm("float64", False), "no MFMA intrinsic for float64"),
    ],
)
def test_rejects_what_mfma_cannot_do(func, reason):
    with pytest.raises(rocm_mfma.MfmaScheduleError, match=reason):
        rocm_mfma.schedule_rocm_mfma(tvm.s_tir.Schedule(func), "C", **SIZES)


def test_rejects_sizes_that_do_not_divide():
    sch = tvm.s_tir.Schedule(gemm("float16", False))
    with pytest.raises(rocm_mfma.MfmaScheduleError, match="size 3 does not divide"):
        rocm_mfma.schedule_rocm_mfma(sch, "C", warps_m=3)

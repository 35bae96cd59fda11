# SPDX-License-Identifier: Apache-2.0
"""bf16 mma.sync intrinsics: registration, group names, and a hand-scheduled 256^3 GEMM (CPU only).

The GEMM uses upstream's ``tvm.testing.tir.mma_schedule`` (the recipe of TVM's
``test_tir_schedule_tensorize_ldmatrix_mma_numeric.py``), lowers it for sm_90a and checks the CUDA
source; nvcc then builds an sm_90a cubin. No GPU is needed.
"""

from __future__ import annotations

import functools
import shutil

import pytest
import tvm
from tvm.s_tir import TensorIntrin
from tvm.s_tir.tensor_intrin import cuda as upstream
from tvm.support import nvcc
from tvm.testing.tir import mma_schedule

from autokernel_tvm.intrin import cuda_bf16
from autokernel_tvm.targets import make_target
from autokernel_tvm.workloads import Workload

N = 256
MMA_BF16_PTX = "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"
LDMATRIX_TRANS_PTX = "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"
LAYOUTS = [(False, "shared"), (False, "shared.dyn"), (True, "shared"), (True, "shared.dyn")]
TARGET = make_target("cuda", "sm_90a")


def gemm(dtype: str, trans_b: bool) -> tvm.tirx.PrimFunc:
    """C[i, j] = sum_k f32(A[i, k]) * f32(B[k, j]), or B[j, k] when ``trans_b``."""
    return Workload("gemm_nt" if trans_b else "gemm", (N, N, N), dtype).prim_func()


def fragment_map(i, j):
    return (i // 16, j // 16, *upstream.shared_16x16_to_ldmatrix_32x8_layout(i % 16, j % 16))


@functools.cache
def cuda_source(dtype: str, trans_b: bool, scope: str) -> str:
    """CUDA source of the 256^3 GEMM, tensorized with bf16 (ours) or f16 (upstream) intrinsics."""
    if dtype == "bfloat16":
        group = cuda_bf16.bf16_intrin_group(scope, "global", trans_b)
    else:
        group = upstream.get_mma_intrin_group(
            scope, "global", dtype, "float32", False, trans_b, False
        )
    # mma_schedule keys only the copy vector width and the smem row padding on in_dtype; "float16"
    # gives the 2-byte-element values (8-wide, pad 8) for bf16 too.
    sch = mma_schedule(
        gemm(dtype, trans_b),
        16,
        "float16",
        trans_b,
        [1, 2, 2, 4, 1],
        [1, 4, 2, 1, 2],
        [8, 2, 1],
        fragment_map,
        fragment_map,
        fragment_map,
        group["load_a"],
        group["load_b"],
        group["compute"],
        group["init"],
        group["store"],
        shared_scope=scope,
    )
    with tvm.transform.PassContext(opt_level=3, config={"tirx.use_async_copy": 1}):
        executable = tvm.compile(sch.mod, target=TARGET)
    # No libcuda here: tvm.compile gives a source-only device module and does not call nvcc.
    return executable.mod.imports[0].inspect_source()


def kernel_body(src: str) -> str:
    return src[src.index('extern "C" __global__') :]


def test_register_is_idempotent():
    names = cuda_bf16.register()
    assert cuda_bf16.register() == names
    assert names == sorted(
        [
            "ak_mma_bf16bf16f32",
            "ak_mma_bf16bf16f32_trans_b",
            "ak_mma_ldmatrix_bf16_a",
            "ak_mma_ldmatrix_bf16_a_dyn",
            "ak_mma_ldmatrix_bf16_b",
            "ak_mma_ldmatrix_bf16_b_dyn",
            "ak_mma_ldmatrix_bf16_b_trans",
            "ak_mma_ldmatrix_bf16_b_trans_dyn",
            "ak_mma_store_16x16_f32_shared_simple_",
        ]
    )
    assert all(TensorIntrin.get(name, allow_missing=True) is not None for name in names)


@pytest.mark.parametrize("store_scope", ["global", "shared", "shared.dyn"])
@pytest.mark.parametrize("load_scope", ["shared", "shared.dyn"])
@pytest.mark.parametrize("trans_b", [False, True])
def test_group_mirrors_upstream_f16_group(load_scope, store_scope, trans_b):
    group = cuda_bf16.bf16_intrin_group(load_scope, store_scope, trans_b)
    assert all(TensorIntrin.get(name, allow_missing=True) is not None for name in group.values())
    f16 = upstream.get_mma_intrin_group(
        load_scope, store_scope, "float16", "float32", False, trans_b, store_scope != "global"
    )
    for key in ("load_a", "load_b", "compute"):
        assert group[key] == "ak_" + f16[key].replace("f16", "bf16")
    assert group["init"] == f16["init"]
    if store_scope != "shared":  # upstream registers no f32 store to plain shared
        assert group["store"] == f16["store"]


def test_group_rejects_unknown_scope():
    with pytest.raises(ValueError):
        cuda_bf16.bf16_intrin_group("local", "global", False)


def test_retarget_keeps_ldmatrix_call_dtype():
    # The 0.27 printer drops this dtype; parsed as int8 it turns ldmatrix.trans into a loop.
    f16_impl = upstream.get_ldmatrix_intrin(16, "float16", "B", False)[1]
    for dtype in ("float16", "bfloat16"):
        impl = cuda_bf16.retarget_f16_intrin(f16_impl, dtype)
        assert str(impl.body.block.body.body.value.ty) == dtype
    assert cuda_bf16.retarget_f16_intrin(f16_impl, "float16").script() == f16_impl.script()


@pytest.mark.parametrize("trans_b, scope", LAYOUTS)
def test_gemm_source_is_the_f16_kernel_retyped(trans_b, scope):
    src = cuda_source("bfloat16", trans_b, scope)
    assert MMA_BF16_PTX in src
    assert "ldmatrix" in src
    f16 = cuda_source("float16", trans_b, scope)
    retyped = kernel_body(src).replace("nv_bfloat16", "half").replace(".bf16", ".f16")
    assert retyped == kernel_body(f16)


@pytest.mark.parametrize("trans_b, scope", LAYOUTS)
def test_gemm_builds_sm90a_cubin_with_nvcc(trans_b, scope):
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not on PATH")
    src = cuda_source("bfloat16", trans_b, scope)
    with TARGET:  # compile_cuda reads Target.current() even when arch is given
        ptx = nvcc.compile_cuda(src, "ptx", arch="sm_90a", compiler="nvcc").decode()
        cubin = nvcc.compile_cuda(src, "cubin", arch="sm_90a", compiler="nvcc")
    # Per warp per k-step: 4 (i) x 2 (j) m16n16k16 tiles = 16 m16n8k16 mma, unrolled; 2 k-steps.
    assert ptx.count(MMA_BF16_PTX) == 32
    # B as K x N needs the transposing ldmatrix; B as N x K (nn.Linear) does not.
    assert (LDMATRIX_TRANS_PTX in ptx) == (not trans_b)
    assert "ldmatrix.sync.aligned.m8n8.x4.shared.b16" in ptx
    assert bytes(cubin[:4]) == b"\x7fELF"

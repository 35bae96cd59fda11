# SPDX-License-Identifier: Apache-2.0
"""AMD MFMA tensor intrinsics: TVM 0.27's ``rocm_mfma_*`` names per input dtype, and the B^T
(N x K) shared-memory loads TVM lacks, registered by :func:`register_intrins`. The schedule that
uses them is the ``rocm.mfma`` family (``autokernel_tvm/families/rocm_mfma/``)."""

from __future__ import annotations

from collections import namedtuple

#: Name pattern of the B^T (N x K) loads that :func:`register_intrins` adds (TVM has none).
TRANS = "autokernel_{}_trans"

#: TensorIntrin names for one input dtype: MFMA K, copy vector lanes, accumulator dtype, ...
MfmaIntrins = namedtuple("MfmaIntrins", "k vec acc load_a load_b compute fill store")
INTRINS = {
    "float16": MfmaIntrins(16, 8, "float32", "rocm_mfma_load_16x16_a_shared_f16",
        "rocm_mfma_load_b_16x16_shared_f16", "rocm_mfma_f16f16f32", "ROCM_mfma_fill_16x16_f32",
        "rocm_mfma_store_16x16_f32"),
    "float32": MfmaIntrins(4, 4, "float32", "rocm_mfma_load_16x4_a_shared_f32",
        "rocm_mfma_load_b_16x4_shared_f32", "rocm_mfma_f32f32f32", "ROCM_mfma_fill_16x16_f32",
        "rocm_mfma_store_16x16_f32"),
    "int8": MfmaIntrins(16, 16, "int32", "rocm_mfma_load_16x16_a_shared_s8",
        "rocm_mfma_load_b_16x16_shared_s8", "rocm_mfma_s8s8s32", "ROCM_mfma_fill_16x16_i32",
        "rocm_mfma_store_16x16_s32"),
}  # fmt: skip
#: int8 uses ``llvm.amdgcn.mfma.i32.16x16x16i8``, which gfx940+ dropped (gfx90a only).
INT8_ARCHES = ("gfx908", "gfx90a")


def register_intrins() -> None:
    """Import TVM's rocm TensorIntrins and register the B^T loads TVM lacks (idempotent).

    Lazy: the import takes 15-100 s; only the scheduling process needs it, not the builders."""
    from tvm.s_tir import TensorIntrin
    from tvm.s_tir.tensor_intrin import rocm

    for dtype, names in INTRINS.items():
        if TensorIntrin.get(TRANS.format(names.load_b), allow_missing=True) is None:
            intrin = rocm.get_mfma_load_intrin(names.k, dtype, "shared", is_b=True, transposed=True)
            TensorIntrin.register(TRANS.format(names.load_b), *intrin)

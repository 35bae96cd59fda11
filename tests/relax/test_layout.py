# SPDX-License-Identifier: Apache-2.0
"""The shared-memory schedule of layout transposes (NCHW <-> NHWC around the conv kernels)."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.s_tir import dlight as dl
from tvm.script import relax as R

from autokernel_tvm.relax.layout import LayoutTranspose
from autokernel_tvm.targets import make_target


def _permute(shape, perm, dtype="float16"):
    bb = relax.BlockBuilder()
    x = relax.Var("x", R.Tensor(shape, dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.permute_dims(x, perm))
        bb.emit_func_output(y)
    return relax.transform.LegalizeOps()(bb.get())


def _scheduled(mod, target):
    with target:
        mod = dl.ApplyDefaultSchedule(LayoutTranspose())(mod)
    return [f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)][0]


@pytest.mark.parametrize(
    "shape, perm, dtype",
    [
        ((32, 64, 56, 56), [0, 2, 3, 1], "float16"),  # NCHW -> NHWC
        ((32, 56, 56, 128), [0, 3, 1, 2], "bfloat16"),  # NHWC -> NCHW
        ((100, 37), [1, 0], "float32"),  # 2-D, edges on both tiled axes
    ],
)
def test_transpose_is_tiled_through_padded_shared_memory(shape, perm, dtype):
    func = _scheduled(_permute(shape, perm, dtype), make_target("cuda", "sm_90a"))
    text = func.script()
    assert 'scope="shared"' in text and "buffer_dim_align" in text
    assert "blockIdx.x" in text and "threadIdx.y" in text


@pytest.mark.parametrize(
    "shape, perm",
    [((8, 16, 64), [1, 0, 2]), ((4, 3, 64, 64), [0, 2, 3, 1])],  # inner axis kept; thin side
)
def test_rule_declines_what_is_not_a_wide_inner_transpose(shape, perm):
    func = _scheduled(_permute(shape, perm), make_target("cuda", "sm_90a"))
    assert "tirx.is_scheduled" not in str(func.attrs or {})


def test_transpose_builds_for_cuda(needs_nvcc):
    mod = _permute((8, 64, 20, 20), [0, 2, 3, 1])
    target = make_target("cuda", "sm_90a")
    with target:
        mod = dl.ApplyDefaultSchedule(LayoutTranspose())(mod)
    ex = tvm.compile(mod, target=target)
    assert ex is not None


@pytest.mark.gpu
@pytest.mark.parametrize(
    "shape, perm, dtype",
    [
        ((32, 64, 56, 56), [0, 2, 3, 1], "float16"),
        ((3, 70, 9, 130), [0, 3, 1, 2], "float32"),
        ((100, 37), [1, 0], "bfloat16"),
    ],
)
def test_transpose_numerics_on_gpu(shape, perm, dtype):
    import torch

    mod = _permute(shape, perm, dtype)
    target = make_target("cuda")
    with target:
        mod = dl.ApplyDefaultSchedule(LayoutTranspose())(mod)
    vm = relax.VirtualMachine(tvm.compile(mod, target=target), tvm.cuda())
    x = torch.randn(*shape, device="cuda").to(getattr(torch, dtype))
    got = torch.from_dlpack(vm["main"](tvm.runtime.from_dlpack(x)))
    np.testing.assert_array_equal(got.float().cpu().numpy(), x.permute(*perm).float().cpu().numpy())

# SPDX-License-Identifier: Apache-2.0
"""The gate must pass a correct kernel and catch each kind of wrong one."""

import numpy as np
import pytest
import tvm
from tvm.script import tirx as T

from autokernel_tvm.targets import make_target
from autokernel_tvm.verify import VerificationError, require, verify
from autokernel_tvm.workloads import Workload

W = Workload("gemm", (32, 32, 64), "float16")


def _build(func):
    return tvm.compile(tvm.IRModule({"main": func}), target=make_target("llvm"))["main"]


def test_correct_kernel_passes_all_checks():
    report = verify(_build(W.prim_func()), W)
    assert report.passed, report.failures
    assert {"determinism", "shape-rejection", "values:edge", "values:large"} <= set(report.checks)


@T.prim_func(s_tir=True)
def skips_last_row(
    a: T.Buffer((32, 64), "float16"),
    b: T.Buffer((64, 32), "float16"),
    c: T.Buffer((32, 32), "float32"),
):
    for i, j, k in T.grid(31, 32, 64):
        with T.sblock("C"):
            vi, vj, vk = T.axis.remap("SSR", [i, j, k])
            with T.init():
                c[vi, vj] = T.float32(0)
            c[vi, vj] = c[vi, vj] + T.Cast("float32", a[vi, vk]) * T.Cast("float32", b[vk, vj])


@T.prim_func(s_tir=True)
def fp16_accumulate(
    a: T.Buffer((32, 64), "float16"),
    b: T.Buffer((64, 32), "float16"),
    c: T.Buffer((32, 32), "float32"),
):
    acc = T.sblock_alloc_buffer((32, 32), "float16")
    for i, j, k in T.grid(32, 32, 64):
        with T.sblock("C"):
            vi, vj, vk = T.axis.remap("SSR", [i, j, k])
            with T.init():
                acc[vi, vj] = T.float16(0)
            acc[vi, vj] = acc[vi, vj] + a[vi, vk] * b[vk, vj]
    for i, j in T.grid(32, 32):
        with T.sblock("out"):
            vi, vj = T.axis.remap("SS", [i, j])
            c[vi, vj] = T.Cast("float32", acc[vi, vj])


@T.prim_func(s_tir=True)
def drops_last_k(
    a: T.Buffer((32, 64), "float16"),
    b: T.Buffer((64, 32), "float16"),
    c: T.Buffer((32, 32), "float32"),
):
    for i, j, k in T.grid(32, 32, 63):
        with T.sblock("C"):
            vi, vj, vk = T.axis.remap("SSR", [i, j, k])
            with T.init():
                c[vi, vj] = T.float32(0)
            c[vi, vj] = c[vi, vj] + T.Cast("float32", a[vi, vk]) * T.Cast("float32", b[vk, vj])


@pytest.mark.parametrize(
    "func, expect",
    [(skips_last_row, "NaN"), (fp16_accumulate, "the bound"), (drops_last_k, "edge")],
    ids=["unwritten-row", "fp16-accumulate", "drops-last-k"],
)
def test_wrong_kernels_fail(func, expect):
    report = verify(_build(func), W)
    assert not report.passed
    assert any(expect in f for f in report.failures), report.failures
    with pytest.raises(VerificationError):
        require(report)


def test_nondeterministic_kernel_fails():
    good = _build(W.prim_func())
    calls = {"n": 0}

    def flaky(*args):
        good(*args)
        calls["n"] += 1
        if calls["n"] > len(("normal",)):  # every run after the first perturbs one element
            out = args[-1].numpy()
            out[0, 0] = np.nextafter(out[0, 0], np.float32(np.inf))
            args[-1].copyfrom(out)

    report = verify(flaky, W, kinds=("normal",), check_shapes=False)
    assert any("determinism" in f for f in report.failures), report.failures

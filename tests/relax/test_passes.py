# SPDX-License-Identifier: Apache-2.0
"""The lowering pipeline's own passes (llvm): reshapes a function returns become views."""

from __future__ import annotations

import re

import numpy as np
import tvm
from tvm import relax
from tvm.script import relax as R

from autokernel_tvm.relax.passes import lower_pipeline

TARGET = tvm.target.Target("llvm")


def copies(mod: tvm.IRModule) -> list[str]:
    """The reshape kernels ``main`` calls after lowering (a view is ``vm.builtin.reshape``)."""
    with TARGET:
        text = lower_pipeline(TARGET)(mod)["main"].script()
    return re.findall(r"(\w*reshape\w*)\(", text)


@tvm.script.ir_module
class ReturnsReshape:
    @R.function
    def main(x: R.Tensor((16, 64), "float32"), w: R.Tensor((64, 64), "float32")):
        with R.dataflow():
            y = R.matmul(x, w)
            z = R.add(y, y)
            gv = R.reshape(z, [2, 8, 64])
            R.output(gv)
        return gv


@tvm.script.ir_module
class ReturnsReshapedInput:
    @R.function
    def main(x: R.Tensor((16, 64), "float32")):
        with R.dataflow():
            gv = R.reshape(x, [2, 8, 64])
            R.output(gv)
        return gv


def test_a_returned_reshape_of_an_intermediate_is_a_view_and_survives_the_next_call():
    """TVM keeps a reshape a block outputs as a copy kernel; the pass makes it the VM's view.
    The view's tensor stays the caller's: a second call does not write over the first result."""
    assert copies(ReturnsReshape) == []
    vm = relax.VirtualMachine(
        relax.build(ReturnsReshape, target=TARGET, relax_pipeline=lower_pipeline(TARGET)),
        tvm.cpu(),
    )
    rng = np.random.default_rng(0)
    w = rng.random((64, 64), dtype=np.float32)
    xs = [rng.random((16, 64), dtype=np.float32) for _ in range(2)]
    outs = [vm["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(w)) for x in xs]
    for x, out in zip(xs, outs, strict=True):
        np.testing.assert_allclose(out.numpy(), (2 * x @ w).reshape(2, 8, 64), rtol=1e-5)


def test_a_returned_reshape_of_a_parameter_stays_a_copy():
    """A view of the caller's own input would alias it: that reshape is left as TVM made it."""
    assert copies(ReturnsReshapedInput) == ["reshape"]

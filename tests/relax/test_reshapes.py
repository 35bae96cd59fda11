# SPDX-License-Identifier: Apache-2.0
"""``relax/reshapes.py`` in the lowering pipeline (llvm): chains of reshapes folded, and the
reshapes a function returns made views, so a model's reshapes copy nothing."""

from __future__ import annotations

import numpy as np
import tvm
from conftest import reshape_copies
from tvm import relax
from tvm.script import relax as R

from autokernel_tvm.relax.passes import lower_pipeline  # the pipeline these passes run in

TARGET = tvm.target.Target("llvm")


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
    assert reshape_copies(ReturnsReshape) == []
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
    assert reshape_copies(ReturnsReshapedInput) == ["reshape"]


@tvm.script.ir_module
class ReshapesBack:
    @R.function
    def main(x: R.Tensor((16, 64), "float32"), w: R.Tensor((64, 64), "float32")):
        with R.dataflow():
            y = R.matmul(x, w)
            rows = R.reshape(y, [2, 8, 64])  # a kernel's result as the model's 3-D activations
            back = R.reshape(rows, [16, 64])  # the next Linear's rows
            z = R.matmul(back, w)
            other = R.reshape(R.reshape(z, [2, 8, 64]), [4, 4, 64])
            gv = (rows, other)
            R.output(gv)
        return gv


@tvm.script.ir_module
class ReshapesInputBack:
    @R.function
    def main(x: R.Tensor((16, 64), "float32")):
        with R.dataflow():
            rows = R.reshape(x, [2, 8, 64])
            gv = R.reshape(rows, [16, 64])
            R.output(gv)
        return gv


def test_a_reshape_of_a_reshape_reads_the_first_ones_input():
    """Two reshapes in a row fuse into one copy kernel (TVM turns only single reshapes into
    views): the second reads the first one's input, or is it where the shapes agree."""
    assert reshape_copies(ReshapesBack) == []
    vm = relax.VirtualMachine(
        relax.build(ReshapesBack, target=TARGET, relax_pipeline=lower_pipeline(TARGET)),
        tvm.cpu(),
    )
    rng = np.random.default_rng(1)
    x, w = rng.random((16, 64), dtype=np.float32), rng.random((64, 64), dtype=np.float32)
    rows, other = vm["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(w))
    np.testing.assert_allclose(rows.numpy(), (x @ w).reshape(2, 8, 64), rtol=1e-5)
    np.testing.assert_allclose(other.numpy(), (x @ w @ w).reshape(4, 4, 64), rtol=1e-5)


def test_a_returned_reshape_chain_of_a_parameter_is_not_the_parameter():
    """Folded, the output would be the caller's input tensor itself: left a reshape (a copy)."""
    assert reshape_copies(ReshapesInputBack) != []

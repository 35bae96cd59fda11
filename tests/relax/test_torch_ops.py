# SPDX-License-Identifier: Apache-2.0
"""torch's own op for a dispatched workload (the per-op baseline of problem reports)."""

import numpy as np
import pytest
import torch

from autokernel_tvm.relax.torch_ops import torch_op
from autokernel_tvm.workloads import Workload
from autokernel_tvm.workloads.epilogue import ACC, Epilogue, F, operand

CASES = [
    Workload(
        "gemm_nt", (8, 12, 16), epilogue=Epilogue(F("gelu", F("add", ACC, operand(0))), ("n",))
    ),
    Workload("batch_gemm", (2, 8, 12, 16), "float32"),
    Workload("gemm_gated_nt", (8, 12, 16)),
    Workload("conv2d_nhwc", (2, 9, 7, 4, 5, 3, 3, 2, 1)),
    Workload("gemm", (8, 12, 16), epilogue=Epilogue(F("mul", ACC, operand(0)), ("full",))),
]


@pytest.mark.parametrize("workload", CASES, ids=lambda w: w.name)
def test_torch_op_computes_the_workload(workload, monkeypatch):
    """The op on the inputs it drew equals the workload's fp64 reference on them."""
    drawn = []
    real_randn = torch.randn

    def randn(*args, **kwargs):
        drawn.append(real_randn(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(torch, "randn", randn)
    out = torch_op(workload, "cpu")()
    assert tuple(out.shape) == workload.output.shape
    want = workload.reference([x.double().numpy() for x in drawn])
    np.testing.assert_allclose(out.double().numpy(), want, rtol=1e-4, atol=1e-4)

# SPDX-License-Identifier: Apache-2.0
"""The compiled model's call path: what goes to the VM as it is, and what comes back."""

from __future__ import annotations

import pytest
import torch
from tvm import relax

from autokernel_tvm.config import TuneConfig
from autokernel_tvm.relax import import_model, tune_model


class One(torch.nn.Module):
    def forward(self, a, b):
        return torch.relu(a @ b)


class Two(torch.nn.Module):
    def forward(self, a, b):
        return a @ b, a + 1.0


def test_one_output_model_returns_the_tensor_not_a_tuple():
    inputs = (torch.randn(8, 16), torch.randn(16, 4))
    mod, _, _ = import_model(One(), inputs)
    assert not isinstance(mod["main"].ret_ty, relax.TupleType)
    mod, _, _ = import_model(Two(), inputs)
    assert isinstance(mod["main"].ret_ty, relax.TupleType)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    config = TuneConfig(target="llvm", trials=1, work_dir=str(tmp_path_factory.mktemp("rt")))
    inputs = (torch.randn(8, 16), torch.randn(16, 4))
    models = {}
    for name, model in (("one", One()), ("two", Two())):
        models[name] = tune_model(model, inputs, config=config, min_task_flops=1e18)
    return models


def test_calls_match_eager_for_ready_and_unready_inputs(built):
    a, b = torch.randn(8, 16), torch.randn(4, 16).t()  # b: not contiguous, copied first
    assert not b.is_contiguous()
    got = built["one"](a, b)
    assert isinstance(got, torch.Tensor)
    torch.testing.assert_close(got, torch.relu(a @ b))
    wants_grad = a.clone().requires_grad_()  # autograd history: detached first, not refused
    torch.testing.assert_close(built["one"](wants_grad, b.contiguous()), torch.relu(a @ b))
    first, second = built["two"](a, b.contiguous())
    torch.testing.assert_close(first, a @ b)
    torch.testing.assert_close(second, a + 1.0)


def test_device_compares_equal_to_its_tensors_devices(built):
    model = built["one"]
    assert model._ready(torch.randn(2, 2))
    assert not model._ready(torch.randn(4, 2).t())
    assert not model._ready(torch.randn(2, 2, requires_grad=True))


def test_the_vm_scope_warning_is_dropped_and_other_native_stderr_kept(capfd):
    """TVM 0.27's VM writes an empty "Warning: Scope Loaded:" line on every save and load of
    an executable (each cached model a backend compile loads): dropped; other lines written
    to the same descriptor inside the block come out after it, in order."""
    import os

    from autokernel_tvm.relax.runtime import quiet_vm_scopes

    with quiet_vm_scopes():
        os.write(2, b"first\n")
        os.write(
            2, b"[22:01:12] /project/src/runtime/vm/executable.cc:340: Warning: Scope Loaded:\n"
        )
        os.write(2, b"a Warning: Scope in another file stays\n")
    err = capfd.readouterr().err
    assert err == "first\na Warning: Scope in another file stays\n"

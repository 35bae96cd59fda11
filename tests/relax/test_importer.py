# SPDX-License-Identifier: Apache-2.0
"""fp16/bf16 models import with PyTorch's dtypes, build on llvm and match eager."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import tvm
from tvm import relax

from autokernel_tvm.relax import import_model, rel_error
from autokernel_tvm.relax.importer import from_exported_program

DTYPES = [torch.float16, torch.bfloat16]


class Block(torch.nn.Module):
    """Every op of issue 10's list: Linear with/without bias, matmul, bmm, conv2d, scalars,
    ReLU, LeakyReLU, GELU (erf, tanh), SiLU, sigmoid, residual adds."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 24)
        self.fc_nobias = torch.nn.Linear(24, 16, bias=False)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x, a, b, img):
        y = F.leaky_relu(self.fc(x) * 2.0 - 0.5, 0.1)
        y = F.gelu(y) + 1.0
        z = F.gelu(self.fc_nobias(y), approximate="tanh") + x  # residual
        z = F.silu(z) + torch.sigmoid(z @ z.T @ x)
        batched = torch.relu(torch.bmm(a, b) * 0.5)
        conv = torch.relu(self.conv(img)) + img.mean()
        return z, batched, conv


def _inputs(dtype):
    torch.manual_seed(0)
    shapes = [(4, 16), (2, 4, 5), (2, 5, 3), (1, 3, 8, 8)]
    return tuple(torch.randn(s).to(dtype) for s in shapes)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_low_precision_model_imports_builds_and_matches_eager(dtype):
    torch.manual_seed(0)
    model = Block().eval().to(dtype)
    inputs = _inputs(dtype)
    mod = from_exported_program(torch.export.export(model, inputs))
    name = str(dtype).removeprefix("torch.")
    text = mod.script()
    # Accumulate in fp32 and round once: heavy ops keep out_dtype fp32, then cast back.
    assert 'out_dtype="float32"' in text and "R.astype(" in text
    ret = mod["main"].ret_ty
    assert [f.dtype for f in ret.fields] == [name] * 3
    vm = relax.VirtualMachine(tvm.compile(mod, "llvm"), tvm.cpu())
    outs = vm["main"](*[tvm.runtime.from_dlpack(x) for x in inputs])
    with torch.no_grad():
        expected = model(*inputs)
    for out, ref in zip(outs, expected, strict=True):
        got = torch.from_dlpack(out)
        assert got.dtype == dtype
        assert rel_error(got, ref) < 1e-2


def test_stock_importer_still_fails_on_biased_fp16_linear():
    """The trap this module works around (TVM-0.27-NOTES §7 item 18): if TVM fixes it, the
    custom converters can go."""
    from tvm.relax.frontend.torch import from_exported_program as stock

    model = torch.nn.Linear(8, 8).half().eval()
    program = torch.export.export(model, (torch.randn(2, 8).half(),))
    with pytest.raises(Exception, match="same datatype"):
        stock(program)


def test_fp32_import_is_unchanged():
    model = Block().eval()
    inputs = _inputs(torch.float32)
    mod = from_exported_program(torch.export.export(model, inputs))
    assert "R.astype" not in mod.script()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_import_model_with_weights_keeps_dtype(dtype):
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU()).eval().to(dtype)
    mod, params, _ = import_model(model, (torch.randn(4, 8).to(dtype),))
    assert all(p.dtype == dtype for p in params)
    (out,) = mod["main"].ret_ty.fields
    assert out.dtype == str(dtype).removeprefix("torch.")

# SPDX-License-Identifier: Apache-2.0
"""Models with attention on the GPU: exported from CUDA tensors, where torch's own
decomposition picks a fused SDPA kernel op that TVM cannot import. Marked ``gpu``: run on the
GPU machine with ``python -m pytest tests/gpu -m gpu -v``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import autokernel_tvm.torch.backend as backend
from autokernel_tvm.relax import import_model, rel_error

pytestmark = pytest.mark.gpu


class Block(torch.nn.Module):
    def __init__(self, hidden=256, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv, self.o = torch.nn.Linear(hidden, 3 * hidden), torch.nn.Linear(hidden, hidden)

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        heads = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return x + self.o(heads.transpose(1, 2).reshape(b, s, h))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_attention_model_from_cuda_tensors_imports(dtype):
    model = Block().eval().to("cuda", dtype)
    x = torch.randn(2, 128, 256, device="cuda", dtype=dtype)
    mod, _, _ = import_model(model, (x,))
    text = mod["main"].script()
    assert text.count("R.matmul(") == 4  # qkv, the scores, P @ V, o


def test_attention_model_through_the_backend_is_compiled_not_eager(tmp_path):
    torch.manual_seed(0)
    model = Block().eval().to("cuda", torch.float16)
    x = torch.randn(2, 128, 256, device="cuda", dtype=torch.float16)
    options = {"target": "cuda", "trials": 2, "cache_dir": str(tmp_path / "cache"),
               "library_dir": str(tmp_path / "library")}  # fmt: skip
    before = backend.stats()
    with torch.no_grad():
        out = torch.compile(model, backend="autokernel", options=options)(x)
        assert rel_error(out, model(x)) <= 2e-3
    assert backend.stats()["fallbacks"] == before["fallbacks"]

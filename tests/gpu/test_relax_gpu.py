# SPDX-License-Identifier: Apache-2.0
"""Models with attention on the GPU: exported from CUDA tensors, where torch's own
decomposition picks a fused SDPA kernel op that TVM cannot import. Marked ``gpu``: run on the
GPU machine with ``python -m pytest tests/gpu -m gpu -v``."""

from __future__ import annotations

import pytest
import torch
from conftest import AttentionBlock

import autokernel_tvm.torch.backend as backend
from autokernel_tvm.relax import import_model, rel_error

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_attention_model_from_cuda_tensors_imports(dtype):
    model = AttentionBlock(hidden=256).eval().to("cuda", dtype)
    x = torch.randn(2, 128, 256, device="cuda", dtype=dtype)
    mod, _, _ = import_model(model, (x,))
    text = mod["main"].script()
    assert text.count("R.matmul(") == 4  # qkv, the scores, P @ V, o


def test_attention_model_through_the_backend_is_compiled_not_eager(tmp_path):
    torch.manual_seed(0)
    model = AttentionBlock(hidden=256).eval().to("cuda", torch.float16)
    x = torch.randn(2, 128, 256, device="cuda", dtype=torch.float16)
    options = {"target": "cuda", "trials": 2, "cache_dir": str(tmp_path / "cache"),
               "library_dir": str(tmp_path / "library")}  # fmt: skip
    before = backend.stats()
    with torch.no_grad():
        out = torch.compile(model, backend="autokernel", options=options)(x)
        assert rel_error(out, model(x)) <= 2e-3
    assert backend.stats()["fallbacks"] == before["fallbacks"]

# SPDX-License-Identifier: Apache-2.0
"""Long sums in two levels (relax/reductions.py): which reductions are rewritten, the Relax
they become, and their numerics on llvm against fp64 -- and a KernelBench MSE loss, which ran
eagerly before (TVM's one running sum was 1.6e-4 from eager's, past fp32's 1e-4)."""

import numpy as np
import pytest
import torch
import tvm
from tvm import relax

from autokernel_tvm.relax import blocked_reductions, import_model, rel_error, tune_model
from autokernel_tvm.relax.reductions import MIN_COUNT, block_size


def test_block_size_is_the_divisor_nearest_below_the_square_root():
    assert block_size(524288) == 512  # 2^19: 512 blocks of 1024, summed 1024 then 512 long
    assert block_size(128 * 4095) == 720
    assert block_size(65537) is None  # prime: no block of at least MIN_BLOCK
    assert block_size(2 * 65537) is None


class Reduce(torch.nn.Module):
    def __init__(self, op, dims=None, keepdim=False):
        super().__init__()
        self.op, self.dims, self.keepdim = op, dims, keepdim

    def forward(self, x):
        fn = torch.mean if self.op == "mean" else torch.sum
        if self.dims is None:
            return fn(x * x)
        return fn(x * x, dim=self.dims, keepdim=self.keepdim)


def _calls(mod) -> list[str]:
    names = []

    def visit(expr):
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
            names.append(expr.op.name)

    relax.analysis.post_order_visit(mod["main"], visit)
    return names


def _run(mod, *inputs):
    ex = tvm.compile(mod, "llvm")
    vm = relax.VirtualMachine(ex, tvm.cpu())
    out = vm["main"](*[tvm.runtime.tensor(x.numpy()) for x in inputs])
    return torch.from_dlpack(out[0] if isinstance(out, (list, tuple)) else out)


@pytest.mark.parametrize(
    "op, dims, keepdim, shape",
    [
        ("mean", None, False, (128, 4096)),  # MSE: every axis, to one value
        ("sum", (1, 2), True, (4, 256, 1024)),  # the last axes, kept as 1s
        ("sum", (-1,), False, (2, 131072)),  # one long row
    ],
)
def test_long_float_sums_become_two_levels_and_match_fp64(op, dims, keepdim, shape):
    x = torch.randn(*shape)
    mod, _, _ = import_model(Reduce(op, dims, keepdim), (x,))
    calls = _calls(mod)
    assert calls.count("relax.sum") == 2 and "relax.mean" not in calls, calls
    out = _run(mod, x)
    expected = Reduce(op, dims, keepdim)(x.double())
    assert out.shape == expected.shape
    assert rel_error(out.double(), expected) < 2e-6


@pytest.mark.parametrize(
    "dims, shape, dtype",
    [
        ((0,), (4096, 64), torch.float32),  # not a suffix of the axes: one sum (no transpose)
        ((1,), (64, 4096), torch.float32),  # 4096 a row, under MIN_COUNT
        (None, (65537,), torch.float32),  # prime: no block size
        (None, (512, 512), torch.int32),  # integers sum exactly
    ],
)
def test_other_reductions_stay_one_sum(dims, shape, dtype):
    x = (torch.randn(*shape) * 4).to(dtype)
    mod, _, _ = import_model(Reduce("sum", dims), (x,))
    assert _calls(mod).count("relax.sum") == 1
    assert MIN_COUNT > 4096


def test_the_pass_is_idempotent_on_its_output():
    x = torch.randn(128, 4096)
    mod, _, _ = import_model(Reduce("mean"), (x,))
    again = blocked_reductions()(mod)
    assert _calls(again).count("relax.sum") == 2  # its block sums are short: left alone


class MSELoss(torch.nn.Module):  # KernelBench level 1, 94_MSELoss
    def forward(self, predictions, targets):
        return torch.mean((predictions - targets) ** 2)


@pytest.mark.slow
def test_an_mse_loss_compiles_within_fp32_tolerance(tmp_path):
    from autokernel_tvm.config import TuneConfig

    config = TuneConfig(trials=2, trials_per_iter=2, work_dir=str(tmp_path), build_workers=1,
                        library_dir=str(tmp_path / "library"))  # fmt: skip
    p, t = torch.randn(128, 4096), torch.randn(128, 4096)
    tuned = tune_model(MSELoss(), (p, t), config=config)
    p, t = torch.randn(128, 4096), torch.randn(128, 4096)
    got = tuned(p, t)
    assert rel_error(got.double(), MSELoss()(p.double(), t.double())) < 1e-5
    assert np.isfinite(got.item())


@pytest.mark.slow
def test_the_tvm_compile_pipeline_blocks_long_sums(tmp_path):
    """A TVM user's own tvm.compile(..., relax_pipeline=autokernel_pipeline(config)) gets the
    same two-level sums as the model paths."""
    from tvm.relax.frontend import detach_params
    from tvm.relax.frontend.torch import from_exported_program

    from autokernel_tvm.config import TuneConfig
    from autokernel_tvm.relax import autokernel_pipeline

    x = torch.randn(128, 4096)
    mod = from_exported_program(torch.export.export(Reduce("mean"), (x,)))
    mod, _ = detach_params(mod)
    config = TuneConfig(trials=1, trials_per_iter=1, work_dir=str(tmp_path), build_workers=1,
                        library_dir=str(tmp_path / "library"))  # fmt: skip
    ex = tvm.compile(mod, "llvm", relax_pipeline=autokernel_pipeline(config))
    out = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x.numpy()))
    got = torch.tensor((out if hasattr(out, "numpy") else out[0]).numpy())
    assert rel_error(got.double(), Reduce("mean")(x.double())) < 2e-6

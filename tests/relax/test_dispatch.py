# SPDX-License-Identifier: Apache-2.0
"""Kernel dispatch in Relax (llvm): matches, reasons, the rewritten IR, numerics, export."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
import tvm
from conftest import AttentionBlock, GatedMLP, make_result, reshape_copies
from tvm import relax

from autokernel_tvm.config import TuneConfig
from autokernel_tvm.relax import import_model, load_model, rel_error
from autokernel_tvm.relax.dispatch import (
    DispatchReport,
    _dtype,
    dispatch_kernels,
    plan_function,
    rewrite_module,
    served_by_a_family,
)
from autokernel_tvm.relax.importer import from_exported_program
from autokernel_tvm.relax.runtime import TunedModel
from autokernel_tvm.space.grammar import Grammar
from autokernel_tvm.targets import make_target
from autokernel_tvm.tuner import Tuner
from autokernel_tvm.workloads import Workload


class Head(torch.nn.Module):
    """Linear chains, a batched matmul, a residual conv block and a grouped conv."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(32, 16)
        self.fc2 = torch.nn.Linear(16, 16, bias=False)
        self.conv1 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.grouped = torch.nn.Conv2d(8, 8, 3, padding=1, groups=2)

    def forward(self, x, a, b, img):
        y = F.leaky_relu(self.fc(x) * 2.0 - 0.5, 0.1)
        z = F.silu(self.fc2(y)) + y  # the residual reads y: fc's chain must end at y
        batched = torch.sigmoid(torch.bmm(a, b))
        h = torch.relu(self.conv1(img))
        h = torch.relu(self.conv2(h) + img)
        return z, batched, h, self.grouped(h)


def _inputs(dtype=torch.float32):
    torch.manual_seed(0)
    shapes = [(16, 32), (2, 8, 16), (2, 16, 8), (2, 8, 8, 8)]
    return tuple(torch.randn(s).to(dtype) for s in shapes)


def _provider(workload):
    """The gate-verified unscheduled kernel of ``workload`` (tuning is tested in test_relax)."""
    result = make_result(workload)
    assert result.verify["passed"], result.verify
    return result


def _assert_matches_eager(mod, model, inputs):
    """The rewritten module, compiled for llvm, returns what eager ``model`` does."""
    vm = relax.VirtualMachine(tvm.compile(mod, "llvm"), tvm.cpu())
    outs = vm["main"](*[tvm.runtime.from_dlpack(x) for x in inputs])
    with torch.no_grad():
        expected = model(*inputs)
    for out, ref in zip(outs, expected, strict=True):
        assert rel_error(torch.from_dlpack(out), ref) < 1e-5


@pytest.fixture(scope="module")
def tuner(tmp_path_factory):
    work = tmp_path_factory.mktemp("dispatch_work")
    config = TuneConfig(
        trials=2, work_dir=str(work), library_dir=str(work / "lib"), build_workers=1
    )
    return Tuner(config, progress=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_plan_matches_chains_and_gives_reasons(dtype):
    model = Head().eval().to(dtype)
    mod = from_exported_program(torch.export.export(model, _inputs(dtype)))
    matches, unmatched = plan_function(mod["main"])
    name = str(dtype).removeprefix("torch.")
    found = [(m.workload.op, str(m.workload.epilogue)) for m in matches]
    assert found == [
        ("gemm_nt", "leaky_relu((((x0 + acc) * 2.0) - 0.5), 0.1) with x0[n]"),
        ("gemm_nt", "((acc * sigmoid(acc)) + x0) with x0[full]"),  # silu as torch decomposes it
        ("batch_gemm", "sigmoid(acc)"),
        ("conv2d_nhwc", "relu((acc + x0)) with x0[n]"),
        ("conv2d_nhwc", "relu(((acc + x0) + x1)) with x0[n], x1[full]"),
    ]
    assert all(m.workload.dtype == name == m.workload.out_dtype for m in matches)
    assert [u["reason"] for u in unmatched] == [
        "grouped or dilated conv2d: conv2d_nhwc has groups=1, dilation=1"
    ]


def test_pass_replaces_matched_calls_and_matches_eager(tuner):
    model = Head().eval()
    inputs = _inputs()
    mod = from_exported_program(torch.export.export(model, inputs))
    report = DispatchReport()
    new = dispatch_kernels(tuner, report=report, provider=_provider)(mod)
    text = new["main"].script()
    assert text.count("R.call_tir(ak_") == 5
    assert text.count("R.matmul") == 0 and text.count("R.nn.conv2d") == 1  # the grouped conv
    assert "R.nn.leakyrelu" not in text and "R.sigmoid" not in text  # fused into the kernels
    # The second conv reads the first one's NHWC output: one activation transpose per layout.
    assert text.count("R.permute_dims(img, axes=[0, 2, 3, 1])") == 1
    assert len(report.served) == 5 and report.unmatched[0]["op"] == "relax.nn.conv2d"
    _assert_matches_eager(new, model, inputs)


class Transposed(torch.nn.Module):
    """Left operands stored transposed: a weight gradient's ``x.T @ dy``, its batched form,
    and both operands transposed (no kernel reads both: A's transpose stays a copy)."""

    def forward(self, x, dy, a, b, w):
        return torch.matmul(x.T, dy), torch.bmm(a.transpose(1, 2), b), x.T @ w.T


def test_transposed_left_operands_are_read_as_stored(tuner):
    torch.manual_seed(0)
    inputs = tuple(torch.randn(s) for s in [(32, 16), (32, 24), (2, 16, 8), (2, 16, 24), (8, 32)])
    model = Transposed().eval()
    mod = from_exported_program(torch.export.export(model, inputs))
    matches, _ = plan_function(mod["main"])
    assert [(m.workload.op, m.workload.shape) for m in matches] == [
        ("gemm_tn", (16, 24, 32)),
        ("batch_gemm_tn", (2, 8, 24, 16)),
        ("gemm_nt", (16, 8, 32)),
    ]
    new = dispatch_kernels(tuner, provider=_provider)(mod)
    text = new["main"].script()
    assert text.count("R.call_tir(ak_") == 3
    assert text.count("R.permute_dims") == 1  # only x.T of the doubly transposed product
    _assert_matches_eager(new, model, inputs)


@pytest.mark.parametrize(
    "arch, dtype, ops",
    [
        ("sm_90a", torch.float16, ["gemm_tn", "batch_gemm_tn", "gemm_nt"]),
        # 3xTF32's split copy transposes an fp32 A (wgmma transposes 16-bit operands only)
        ("sm_90a", torch.float32, ["gemm_tn", "batch_gemm_tn", "gemm_nt"]),
        # no Hopper kernel: cuda.mma reads A K-major only, so A.T stays a transpose before a
        # gemm (as before gemm_tn existed) rather than fall to the stock space
        ("sm_80", torch.float16, ["gemm", "batch_gemm", "gemm_nt"]),
    ],
    ids=str,
)
def test_a_is_read_as_stored_only_where_a_family_takes_it(arch, dtype, ops):
    inputs = tuple(
        torch.randn(s).to(dtype) for s in [(64, 16), (64, 24), (2, 128, 8), (2, 128, 24), (8, 64)]
    )
    mod = from_exported_program(torch.export.export(Transposed().eval(), inputs))
    grammar = Grammar(make_target("cuda", arch))
    matches, _ = plan_function(mod["main"], lambda w: served_by_a_family(grammar, w))
    assert [m.workload.op for m in matches] == ops


@pytest.mark.parametrize(
    "dtype, tokens, fused",
    [
        (torch.float16, 128, True),
        # fp32: no gated wgmma kernel; 3xTF32 takes each projection (not the stock space)
        (torch.float32, 128, False),
        (torch.float32, 4, True),  # the GEMV takes an fp32 gated GEMM
    ],
    ids=str,
)
def test_gated_mlp_is_fused_on_a_gpu_only_where_a_family_takes_the_gated_gemm(dtype, tokens, fused):
    model = GatedMLP().eval().to(dtype)
    mod = from_exported_program(torch.export.export(model, (torch.randn(tokens, 32).to(dtype),)))
    asked = []

    def provider(workload):  # records what the pass would tune; nothing is built
        asked.append(workload.op)
        raise RuntimeError("not tuned in this test")

    rewrite_module(mod, make_target("cuda", "sm_90a"), provider, DispatchReport())
    assert (asked[0] == "gemm_gated_nt") == fused
    assert asked.count("gemm_nt") == 3  # the down projection, and the pair (fused: its fallback)


def test_external_kernels_link_export_and_reload(tuner, tmp_path):
    """call_dps_packed into separately built kernels (the whole-TIRx-kernel path)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU()).eval()
    x = (torch.randn(16, 32),)
    pass_ = dispatch_kernels(tuner, provider=_provider, external=True)
    mod, params, out_spec = import_model(model, x, rewrite=pass_)
    assert "R.call_dps_packed" in mod["main"].script() and len(mod.attrs["external_mods"]) == 1
    exe = tvm.compile(mod, "llvm")
    tuned = TunedModel(exe, "cpu", params, 1, out_spec)
    with torch.no_grad():
        assert rel_error(tuned(*x), model(*x)) < 1e-5
        tuned.export(tmp_path / "m.so")
        assert rel_error(load_model(tmp_path / "m.so")(*x), model(*x)) < 1e-5


def test_wrong_kernel_is_caught_by_the_model_check(tuner):
    """A kernel with another epilogue (LeakyReLU dropped), or one wrong 8x8 output tile, fails
    the elementwise check against the fp64 run; the right kernels pass it."""
    from autokernel_tvm.relax.check import check, reference64
    from autokernel_tvm.workloads import Workload
    from autokernel_tvm.workloads.epilogue import ACC, Epilogue, F, operand

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.LeakyReLU(0.1)).eval()
    x = (torch.randn(16, 32),)
    ref64 = reference64(model, x)

    def wrong(workload):  # bias added, LeakyReLU dropped: same signature, wrong values
        other = Workload(
            workload.op, workload.shape, epilogue=Epilogue(F("add", ACC, operand(0)), ("n",))
        )
        return dataclasses.replace(make_result(other, run_verify=False), workload=workload)

    def build(provider):
        mod, params, out_spec = import_model(
            model, x, rewrite=dispatch_kernels(tuner, provider=provider)
        )
        return TunedModel(tvm.compile(mod, "llvm"), "cpu", params, 1, out_spec)

    with torch.no_grad():
        expected = model(*x)
        assert not check(build(wrong)(*x), expected, x, ref64)["passed"]
        out = build(_provider)(*x)
        assert check(out, expected, x, ref64)["passed"]
        out[-8:, -8:] = 0  # one wrong tile of a 16x16 output
        assert not check(out, expected, x, ref64)["passed"]


def test_chain_stops_at_a_cast_that_truncates():
    class Truncate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, 8)

        def forward(self, x):
            return (self.fc(x) * 4.0).to(torch.int32).float() * 0.5

    mod = from_exported_program(torch.export.export(Truncate().eval(), (torch.randn(4, 8),)))
    (match,), unmatched = plan_function(mod["main"])
    assert str(match.workload.epilogue) == "((x0 + acc) * 4.0) with x0[n]" and not unmatched


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_gated_mlp_becomes_one_gated_gemm(tuner, dtype):
    """gate and up projections with the SiLU and the product: one gemm_gated_nt over the stacked
    weights (stacked once, in the lifted weight transform), equal to the unrewritten graph."""
    torch.manual_seed(0)
    model = GatedMLP().eval().to(dtype)
    x = (torch.randn(16, 32).to(dtype),)
    mod = from_exported_program(torch.export.export(model, x))
    matches, _ = plan_function(mod["main"])
    assert [(m.workload.op, m.rewrite) for m in matches] == [
        ("gemm_gated_nt", "gated-mlp"),
        ("gemm_nt", ""),
    ]
    assert matches[0].workload.shape == (16, 48, 32) and matches[0].workload.epilogue is None
    report = DispatchReport()
    mod, params, out_spec = import_model(
        model, x, rewrite=dispatch_kernels(tuner, report=report, provider=_provider)
    )
    text = mod["main"].script()
    assert text.count("R.call_tir(ak_gemm_gated_nt") == 1 and "R.matmul" not in text
    assert "R.concat" not in text and "R.concat" in mod["main_transform_params"].script()
    assert [s["rewrite"] for s in report.served] == ["gated-mlp", ""]
    tuned = TunedModel(tvm.compile(mod, "llvm"), "cpu", params, 1, out_spec)
    with torch.no_grad():
        assert rel_error(tuned(*x), model(*x)) < (1e-5 if dtype == torch.float32 else 2e-3)


def test_gated_pair_not_fused_when_the_up_output_is_read_elsewhere():
    class Leaky(GatedMLP):
        def forward(self, x):
            u = self.up(x)
            return self.down(F.silu(self.gate(x)) * u) + u.sum()

    mod = from_exported_program(torch.export.export(Leaky().eval(), (torch.randn(4, 32),)))
    matches, _ = plan_function(mod["main"])
    assert "gemm_gated_nt" not in [m.workload.op for m in matches]


def test_gated_rewrite_falls_back_to_both_projections(tuner):
    """No kernel for the gated GEMM: the two projections are served as before, with the
    reason reported."""
    torch.manual_seed(0)
    model = GatedMLP().eval()
    x = (torch.randn(16, 32),)

    def provider(workload):
        if workload.op == "gemm_gated_nt":
            raise RuntimeError("no candidate passed the gate")
        return _provider(workload)

    report = DispatchReport()
    mod, params, out_spec = import_model(
        model, x, rewrite=dispatch_kernels(tuner, report=report, provider=provider)
    )
    assert mod["main"].script().count("R.call_tir(ak_gemm_nt") == 3
    assert report.unmatched[0]["reason"].startswith("served without the gated-mlp rewrite")
    tuned = TunedModel(tvm.compile(mod, "llvm"), "cpu", params, 1, out_spec)
    with torch.no_grad():
        assert rel_error(tuned(*x), model(*x)) < 1e-5


def test_allowed_tf32_reaches_the_fp32_workloads_of_its_kind_only():
    """TF32 is allowed per kind, as torch allows it: matmuls (torch.backends.cuda.matmul,
    off by default) apart from convolutions (torch.backends.cudnn, on by default)."""
    from autokernel_tvm.relax.dispatch import Match, _with_precision

    fp32 = Workload("gemm_nt", (64, 64, 64), "float32")
    half = Workload("gemm_nt", (64, 64, 64), "float16")
    conv = Workload("conv2d_nhwc", (1, 8, 8, 64, 64, 3, 3, 1, 1), "float32")
    inner = Match(None, None, fp32, "matmul", None, None, [], [])
    match = Match(None, None, fp32, "matmul", None, None, [], [], fallback=(inner,))
    allowed = _with_precision(match, {"gemm": "tf32", "conv": ""})
    assert allowed.workload.precision == "tf32" and allowed.fallback[0].workload.precision
    assert _with_precision(match, {"gemm": "", "conv": "tf32"}).workload.precision == ""
    assert _with_precision(match, None).workload == fp32
    half_match = Match(None, None, half, "matmul", None, None, [], [])
    assert _with_precision(half_match, {"gemm": "tf32"}).workload == half
    conv_match = Match(None, None, conv, "conv2d_nchw", None, None, [], [])
    assert _with_precision(conv_match, {"gemm": "", "conv": "tf32"}).workload.precision == "tf32"
    assert _with_precision(conv_match, {"gemm": "tf32", "conv": ""}).workload.precision == ""


def test_tf32_models_are_checked_at_tf32s_tolerance_and_eager_runs_at_their_flags():
    from autokernel_tvm.relax.check import check
    from autokernel_tvm.torch.baselines import tf32_flags

    ref = torch.randn(64, 64)
    out = ref * (1 + 2.0**-11 * torch.randn(64, 64))  # a TF32-sized error
    assert not check(out, ref, (ref,))["passed"]
    assert check(out, ref, (ref,), tf32=True)["passed"]
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn)
    before = [f.allow_tf32 for f in flags]
    with tf32_flags(True, False):
        assert [f.allow_tf32 for f in flags] == [True, False]
    assert [f.allow_tf32 for f in flags] == before


def test_a_kernel_library_is_built_once_per_process(monkeypatch):
    """Compiling a model again (problem path, then the backend) links the library built the
    first time; a different kernel is built."""
    from autokernel_tvm import builder
    from autokernel_tvm.relax import dispatch
    from autokernel_tvm.targets import make_target

    calls = []
    real = builder.build_module
    monkeypatch.setattr(builder, "build_module", lambda m, t: calls.append(m) or real(m, t))
    monkeypatch.setattr(dispatch, "_BUILT", {})
    target = make_target("llvm")
    one = tvm.IRModule({"main": Workload("gemm", (16, 16, 16)).prim_func()})
    two = tvm.IRModule({"main": Workload("gemm", (16, 16, 32)).prim_func()})
    first = dispatch._built(one, target)
    assert dispatch._built(one, target) is first and len(calls) == 1
    dispatch._built(two, target)
    assert len(calls) == 2


class Rows(torch.nn.Module):
    """A Linear chain on 3-D activations, with a per-row operand (B x S values) and, last, one
    that broadcasts over the batch only (S values, not per row)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(32, 16)

    def forward(self, x, per_pos):
        y = F.gelu(self.fc(x)) * 2.0 + x.sum(-1, keepdim=True)
        return y - per_pos


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_3d_activations_keep_their_epilogue_and_gated_rewrite(tuner, dtype):
    """The importer runs a Linear on [B, S, H] as reshape -> [B*S, H] GEMM -> reshape back; the
    chain read through the reshapes (once it stopped there: no epilogue and no gated GEMM for
    any transformer's 3-D activations). Broadcasts are read against each value's shape: per
    row ([B, S, 1]) is fused, per position ([S, 1], the same for every batch) is not."""
    torch.manual_seed(0)
    rows, x = Rows().eval().to(dtype), torch.randn(2, 8, 32).to(dtype)
    per_pos = torch.randn(8, 1).to(dtype)
    mod = from_exported_program(torch.export.export(rows, (x, per_pos)))
    (match,), _ = plan_function(mod["main"])
    assert match.workload.shape == (16, 16, 32)
    assert str(match.workload.epilogue) == "((gelu((x0 + acc)) * 2.0) + x1) with x0[n], x1[m]"
    gated = GatedMLP().eval().to(dtype)
    mod = from_exported_program(torch.export.export(gated, (x,)))
    matches, _ = plan_function(mod["main"])
    assert [(m.workload.op, m.workload.shape) for m in matches] == [
        ("gemm_gated_nt", (16, 48, 32)),
        ("gemm_nt", (16, 32, 48)),
    ]
    tol = 1e-5 if dtype == torch.float32 else 2e-3
    for model, inputs, kernels in ((rows, (x, per_pos), 1), (gated, (x,), 2)):
        mod, params, out_spec = import_model(
            model, inputs, rewrite=dispatch_kernels(tuner, provider=_provider)
        )
        assert mod["main"].script().count("R.call_tir(ak_") == kernels
        tuned = TunedModel(tvm.compile(mod, "llvm"), "cpu", params, len(inputs), out_spec)
        with torch.no_grad():
            out = tuned(*inputs)
            assert out.shape == model(*inputs).shape
            assert rel_error(out, model(*inputs)) < tol


def test_linear_on_a_non_contiguous_input_is_one_gemm_over_its_rows(tuner):
    """torch.export writes a Linear on a non-contiguous 3-D input (attention heads merged
    back: ``a.transpose(1, 2).reshape(B, S, H)``) as a bmm over the weight broadcast to every
    batch: read as one GEMM over the B * S rows that reads the weight once."""

    class Merge(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.o = torch.nn.Linear(32, 24, bias=False)

        def forward(self, q, x):
            heads = F.scaled_dot_product_attention(q, q, q)
            return x + self.o(heads.transpose(1, 2).reshape(2, 8, 32))

    torch.manual_seed(0)
    model, inputs = Merge().eval(), (torch.randn(2, 4, 8, 8), torch.randn(2, 8, 24))
    mod = from_exported_program(torch.export.export(model, inputs))
    assert "R.broadcast_to" in mod["main"].script()  # the bmm form this test is about
    match = plan_function(mod["main"])[0][-1]  # after the attention's two bmms
    assert (match.workload.op, match.workload.shape) == ("gemm_nt", (16, 24, 32))
    assert str(match.workload.epilogue) == "(x0 + acc) with x0[full]"
    mod, params, out_spec = import_model(
        model, inputs, rewrite=dispatch_kernels(tuner, provider=_provider)
    )
    assert "R.matmul" not in mod["main"].script()
    assert "R.broadcast_to" not in mod["main_transform_params"].script()  # no B copies of W
    tuned = TunedModel(tvm.compile(mod, "llvm"), "cpu", params, 2, out_spec)
    with torch.no_grad():
        assert rel_error(tuned(*inputs), model(*inputs)) < 1e-5


def test_gated_mlp_on_a_non_contiguous_input_is_one_gated_gemm(tuner):
    """The gated pair over bmm-with-broadcast-weight projections (each reading its own
    broadcast of x): one gated GEMM over the rows, equal to eager."""

    class Merged(GatedMLP):
        def forward(self, q):
            x = F.scaled_dot_product_attention(q, q, q).transpose(1, 2).reshape(2, 8, 32)
            return super().forward(x)

    torch.manual_seed(0)
    model, inputs = Merged().eval(), (torch.randn(2, 4, 8, 8),)
    report = DispatchReport()
    mod, params, out_spec = import_model(
        model, inputs, rewrite=dispatch_kernels(tuner, report=report, provider=_provider)
    )
    served = [(s["workload"].split("_M")[0], s["rewrite"]) for s in report.served]
    assert served[-2:] == [("gemm_gated_nt", "gated-mlp"), ("gemm_nt", "")]
    tuned = TunedModel(tvm.compile(mod, "llvm"), "cpu", params, 1, out_spec)
    with torch.no_grad():
        assert rel_error(tuned(*inputs), model(*inputs)) < 1e-5


def test_a_batch_of_one_is_a_gemm(tuner):
    """einsum over a 4-D operand reaches the importer as a bmm with a batch of one: served as
    the plain GEMM (its seeds, library entries and GEMV family), equal to eager."""

    class Einsum(torch.nn.Module):
        def forward(self, a, b):
            return torch.relu(torch.einsum("bijl,lk->bijk", a, b))

    torch.manual_seed(0)
    model, inputs = Einsum().eval(), (torch.randn(2, 3, 16, 40), torch.randn(40, 24))
    report = DispatchReport()
    mod, params, out_spec = import_model(
        model, inputs, rewrite=dispatch_kernels(tuner, report=report, provider=_provider)
    )
    (served,) = report.served
    assert served["workload"].startswith("gemm_M96_N24_K40") and served["epilogue"] == "relu(acc)"
    tuned = TunedModel(tvm.compile(mod, "llvm"), "cpu", params, 2, out_spec)
    with torch.no_grad():
        assert rel_error(tuned(*inputs), model(*inputs)) < 1e-5


def test_3d_kernel_results_are_read_and_returned_without_copies(tuner):
    """On 3-D activations a kernel's ``[M, N]`` result is reshaped to ``[B, S, N]``: a second
    kernel reads it as the result it was (not a reshape back, which fused with the first into a
    copy kernel), and the model returns the last reshape as a view (a copy kernel before: 3%
    of LLaMA's MLP at 4 x 512 tokens). The first call's output outlives the second call."""
    from autokernel_tvm.relax.passes import compile_with_database

    class Pair(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p, self.q = torch.nn.Linear(32, 16), torch.nn.Linear(32, 16)

        def forward(self, x):
            return self.q(x) * torch.relu(self.p(x))

    torch.manual_seed(0)
    model, x = Pair().eval(), torch.randn(2, 8, 32)
    mod, params, out_spec = import_model(
        model, (x,), rewrite=dispatch_kernels(tuner, provider=_provider)
    )
    assert mod["main"].script().count("R.call_tir(ak_") == 2
    assert reshape_copies(mod) == []  # no reshape kernel: views only
    target = tvm.target.Target("llvm")
    tuned = TunedModel(compile_with_database(mod, target, None), "cpu", params, 1, out_spec)
    with torch.no_grad():
        first, second = tuned(x), tuned(2 * x)
        assert rel_error(first, model(x)) < 1e-5 and rel_error(second, model(2 * x)) < 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_attention_gemms_read_their_operands_in_place_and_in_the_input_dtype(tuner, dtype):
    """The scores ``q @ k.T`` of a 4-D attention (torch.export: casts to fp32, k transposed,
    expand + view + bmm) is one batched GEMM with k read as stored (``_nt``) and, for fp16 and
    bf16, q and k read before their casts: the 16-bit GEMM with an fp32 result, the same
    products and sums as the fp32 GEMM of the casts. ``P @ V`` is a 16-bit GEMM."""
    torch.manual_seed(0)
    model, x = AttentionBlock().eval().to(dtype), torch.randn(2, 16, 32).to(dtype)
    name = str(dtype).split(".")[-1]
    mod = from_exported_program(torch.export.export(model, (x,)))
    scores, pv = plan_function(mod["main"])[0][1:3]
    assert scores.workload.op == "batch_gemm_nt" and scores.workload.dtype == name
    assert (scores.workload.out_dtype, _dtype(scores.a), _dtype(scores.b)) == ("float32",) + (
        name,
    ) * 2
    assert (pv.workload.op, pv.workload.dtype) == ("batch_gemm", name)
    report = DispatchReport()
    mod, params, out_spec = import_model(
        model, (x,), rewrite=dispatch_kernels(tuner, report=report, provider=_provider)
    )
    assert len(report.served) == 4 and not report.unmatched
    tuned = TunedModel(tvm.compile(mod, "llvm"), "cpu", params, 1, out_spec)
    with torch.no_grad():
        bound = 1e-5 if dtype == torch.float32 else 2e-3 if dtype == torch.float16 else 1.6e-2
        assert rel_error(tuned(x), model(x)) < bound

# SPDX-License-Identifier: Apache-2.0
"""autokernel_tvm.torch.load: checked calls into exported kernels as torch custom ops."""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest
import torch
from conftest import GEMM_BIAS_RELU, GEMM_NT, GEMM_NT_BF16

import autokernel_tvm.torch as ak_torch
from autokernel_tvm.export import export, load_manifest
from autokernel_tvm.torch import KernelSpec, LibraryError

NT, RELU, BF16 = GEMM_NT.name, GEMM_BIAS_RELU.name, GEMM_NT_BF16.name


@pytest.fixture(scope="module")
def lib(cpu_lib):
    return ak_torch.load(cpu_lib)


def _inputs(workload, dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(a.shape, generator=gen).to(dtype) for a in workload.inputs]


def test_kernels_are_torch_ops_matching_torch(lib):
    a, b = _inputs(GEMM_NT)
    out = getattr(torch.ops.autokernel, NT)(a, b)
    torch.testing.assert_close(out, a @ b.T, rtol=1e-5, atol=1e-5)
    assert lib[NT] is getattr(lib, NT) and lib[NT].op is getattr(torch.ops.autokernel, NT)
    a, w, bias = _inputs(GEMM_BIAS_RELU)
    got = lib[RELU](a, w, bias=bias)
    torch.testing.assert_close(got, torch.relu(torch.nn.functional.linear(a, w, bias)))
    assert lib.manifest["kernels"][0]["name"] == NT and set(lib) == {NT, RELU, BF16}


def test_bf16_kernel_takes_torch_bfloat16(lib):
    a, b = _inputs(GEMM_NT_BF16, torch.bfloat16)
    out = lib[BF16](a, b)
    assert out.dtype == torch.float32 and out.shape == (32, 16)
    torch.testing.assert_close(out, a.float() @ b.float().T, rtol=1e-5, atol=1e-5)


def test_torch_compile_fullgraph_traces_the_op(lib):
    op = lib[RELU]

    def model(a, w, bias):
        return op(a, w, bias) * 2 + 1

    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    args = _inputs(GEMM_BIAS_RELU)
    torch.testing.assert_close(compiled(*args), model(*args))


def test_opcheck_schema_and_fake(lib):
    torch.library.opcheck(lib[NT].default, tuple(_inputs(GEMM_NT)))


@pytest.mark.parametrize(
    "change, error, message",
    [
        (
            lambda a, b: (a, b[:40]),
            ValueError,
            r"argument 'B' has shape \(40, 32\), expected \(48, 32\)",
        ),
        (lambda a, b: (a.double(), b), TypeError, r"argument 'A' has dtype torch.float64"),
        (lambda a, b: (a, b.half()), TypeError, r"argument 'B' has dtype torch.float16"),
        (lambda a, b: (a.T.contiguous().T, b), ValueError, r"argument 'A' is not contiguous"),
        (lambda a, b: (a, b.to("meta")), ValueError, r"argument 'B' is on meta but 'A' is on cpu"),
    ],
    ids=["shape", "dtype-A", "dtype-B", "non-contiguous", "device"],
)
def test_bad_arguments_raise_naming_the_argument(lib, change, error, message):
    with pytest.raises(error, match=f"autokernel.{NT}: {message}"):
        lib[NT](*change(*_inputs(GEMM_NT)))


def test_cuda_kernel_refuses_cpu_tensors(cpu_lib):
    entry = dict(load_manifest(cpu_lib)["kernels"][0], target="cuda", arch="sm_90a")
    spec = KernelSpec(entry)
    with pytest.raises(ValueError, match=r"argument 'A' is on cpu.*cuda \(sm_90a\).*cuda tensor"):
        spec.check(_inputs(GEMM_NT))
    with pytest.raises(TypeError, match="takes 2 tensors"):
        spec.check(_inputs(GEMM_NT)[:1])


def test_output_is_a_view_of_padded_rows_where_the_manifest_says(cpu_lib):
    """An entry with ``out_row_pitch`` gets its output as a view of rows that far apart (the
    kernel stores into them directly), for real and fake (meta) tensors alike; others plain."""
    entry = load_manifest(cpu_lib)["kernels"][0]
    a = _inputs(GEMM_NT)[0]
    plain = KernelSpec(entry).new_output(a)
    rows, cols = plain.shape
    assert plain.is_contiguous()
    padded = KernelSpec(dict(entry, out_row_pitch=cols + 8))
    for like in (a, a.to("meta")):
        out = padded.new_output(like)
        assert out.shape == plain.shape and out.stride() == (cols + 8, 1)
        assert out.dtype == plain.dtype and out.device == like.device


def test_checksum_tampering_is_detected(tmp_path, cpu_lib):
    path = str(tmp_path / "tampered.so")
    shutil.copy(cpu_lib, path)
    shutil.copy(cpu_lib + ".json", path + ".json")
    with open(path, "ab") as f:
        f.write(b"\0")
    want = load_manifest(path)["sha256"]
    with pytest.raises(RuntimeError, match=f"manifest says {want}, the file has [0-9a-f]{{64}}"):
        ak_torch.load(path)
    assert isinstance(ak_torch.load(path, verify_checksum=False), ak_torch.KernelLibrary)


def test_loading_twice_reuses_the_ops(lib, cpu_lib, tmp_path):
    again = ak_torch.load(cpu_lib)
    assert again[NT] is lib[NT]
    copy = str(tmp_path / "copy.so")  # same kernels in another file: identical entries
    shutil.copy(cpu_lib, copy)
    shutil.copy(cpu_lib + ".json", copy + ".json")
    a, b = _inputs(GEMM_NT)
    torch.testing.assert_close(ak_torch.load(copy)[NT](a, b), a @ b.T, rtol=1e-5, atol=1e-5)


def test_same_name_from_a_different_entry_is_refused(lib, cpu_results, tmp_path):
    other = dataclasses.replace(cpu_results[0], latency_s=5e-5)
    path = str(tmp_path / "other.so")
    export(other, path)
    with pytest.raises(LibraryError, match=rf"{NT}' is already registered.*latency_us"):
        ak_torch.load(path)
    a, b = _inputs(GEMM_NT)  # the registered op still works
    torch.testing.assert_close(lib[NT](a, b), a @ b.T, rtol=1e-5, atol=1e-5)


def test_replaced_file_at_same_path_loads_new_code(tmp_path, cpu_results):
    # dlopen of an already-open path returns the old code; the loader must not.
    from conftest import make_result

    from autokernel_tvm.workloads import Workload

    path = str(tmp_path / "swap.so")
    export(make_result(Workload("gemm_nt", (8, 8, 8))), path)
    first = ak_torch.load(path)
    export(make_result(Workload("gemm", (8, 8, 8))), path)
    second = ak_torch.load(path)
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    torch.testing.assert_close(first.names and first[first.names[0]](a, b), a @ b.T)
    torch.testing.assert_close(second[second.names[0]](a, b), a @ b)
    assert os.path.exists(path)


def test_raw_function_and_other_cpu_warning(lib):
    a, b = _inputs(GEMM_NT)
    out = torch.empty(64, 48)
    lib.function(NT)(a, b, out)  # no checks, no dispatch: the bare TVM function
    torch.testing.assert_close(out, a @ b.T, rtol=1e-5, atol=1e-5)
    with pytest.warns(RuntimeWarning, match="built for 'not-this-cpu'"):
        ak_torch.loader._warn_if_other_cpu("x.so", "not-this-cpu")


def test_unknown_kernel_lists_known_names(lib):
    with pytest.raises(KeyError, match=NT):
        lib["nope"]
    with pytest.raises(AttributeError, match=NT):
        _ = lib.nope


def test_meta_tensors_give_the_output_shape(lib):
    a, b = (x.to("meta") for x in _inputs(GEMM_NT))
    out = lib[NT](a, b)
    assert out.device.type == "meta" and out.shape == (64, 48) and out.dtype == torch.float32
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        fa, fb = (mode.from_tensor(x) for x in _inputs(GEMM_NT))
        assert lib[NT](fa, fb).shape == (64, 48)
    with pytest.raises(ValueError, match=r"argument 'B' has shape \(40, 32\)"):
        lib[NT](a, b[:40])


def test_argument_counts_and_keywords_raise_type_error(lib):
    a, b = _inputs(GEMM_NT)
    with pytest.raises(TypeError, match=rf"autokernel.{NT}: takes 2 tensors \(A, B\), got 1"):
        lib[NT](a)
    with pytest.raises(TypeError, match="takes 2 tensors.*got 3"):
        lib[NT](a, b, b)
    with pytest.raises(TypeError, match=r"no argument\(s\) \['C'\]; arguments: \['A', 'B'\]"):
        lib[NT](a, C=b)
    with pytest.raises(TypeError, match="'A' given twice"):
        lib[NT](a, A=a)
    with pytest.raises(TypeError, match="argument 'B' must be a torch.Tensor, got list"):
        lib[NT](a, [1.0])
    torch.testing.assert_close(lib[NT](B=b, A=a), a @ b.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [NT, RELU])
def test_gemm_ops_have_autograd(lib, name):
    workload = GEMM_NT if name == NT else GEMM_BIAS_RELU
    args = [x.requires_grad_() for x in _inputs(workload)]
    lib[name](*args).square().sum().backward()
    want = [x.detach().clone().requires_grad_() for x in args]
    ref = want[0] @ want[1].T if name == NT else torch.relu(torch.nn.functional.linear(*want))
    ref.square().sum().backward()
    for got, expected in zip(args, want, strict=True):
        torch.testing.assert_close(got.grad, expected.grad, rtol=1e-4, atol=1e-4)


def test_forward_only_op_says_so_on_backward(cpu_lib, tmp_path):
    from conftest import make_result

    from autokernel_tvm.workloads import Workload

    conv = Workload("conv2d_nhwc", (1, 6, 6, 4, 8, 3, 3, 1, 1))
    path = str(tmp_path / "conv.so")
    export(make_result(conv), path)
    op = ak_torch.load(path)[conv.name]
    data = torch.randn(1, 6, 6, 4, requires_grad=True)
    out = op(data, torch.randn(8, 3, 3, 4))
    with pytest.raises(RuntimeError, match=rf"{conv.name} \(conv2d_nhwc\) is forward-only"):
        out.sum().backward()

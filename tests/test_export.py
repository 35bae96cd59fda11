# SPDX-License-Identifier: Apache-2.0
"""export(): one .so with every kernel, a manifest beside it, and refusal of unverified kernels."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import tvm
from conftest import GEMM_BIAS_RELU, GEMM_NT, GEMM_NT_BF16, make_result

from autokernel_tvm.export import ExportError, export, load_manifest
from autokernel_tvm.workloads import Workload


def test_manifest_describes_every_kernel(cpu_lib, cpu_results):
    manifest = load_manifest(cpu_lib)
    assert manifest == load_manifest(cpu_lib + ".json")
    assert manifest["format_version"] == 2
    assert manifest["tvm_version"] == tvm.__version__ and manifest["tvm_ffi_version"]
    assert manifest["created"].endswith("+00:00")
    with open(cpu_lib, "rb") as f:
        assert manifest["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert manifest["target"]["kind"] == "llvm" and manifest["device_code"] == "host"
    names = [k["name"] for k in manifest["kernels"]]
    assert names == [GEMM_NT.name, GEMM_BIAS_RELU.name, GEMM_NT_BF16.name]
    kernel = manifest["kernels"][1]
    assert kernel["op"] == "gemm_bias_relu" and kernel["layout"] == "A@B.T"
    assert [a["shape"] for a in kernel["inputs"]] == [[64, 32], [48, 32], [48]]
    assert kernel["output"] == {"name": "out", "shape": [64, 48], "dtype": "float32"}
    assert kernel["latency_us"] == pytest.approx(100.0)
    assert kernel["tflops"] == pytest.approx(cpu_results[1].tflops)
    assert kernel["verify"]["passed"] and "determinism" in kernel["verify"]["checks"]
    assert manifest["kernels"][2]["inputs"][0]["dtype"] == "bfloat16"


def test_library_holds_every_kernel_under_its_name(cpu_lib):
    lib = tvm.runtime.load_module(cpu_lib)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 32)).astype("float32")
    b = rng.standard_normal((48, 32)).astype("float32")
    bias = rng.standard_normal(48).astype("float32")
    out = tvm.runtime.tensor(np.zeros((64, 48), "float32"))
    lib[GEMM_BIAS_RELU.name](*(tvm.runtime.tensor(x) for x in (a, b, bias)), out)
    want = np.maximum(a.astype("f8") @ b.astype("f8").T + bias, 0)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(AttributeError, match="no function 'main'"):
        lib["main"]  # renamed to the workload name


def test_unverified_result_is_refused(tmp_path):
    path = str(tmp_path / "x.so")
    with pytest.raises(ExportError, match="without a verify report"):
        export(make_result(GEMM_NT, run_verify=False), path)
    assert not os.path.exists(path)


def test_result_that_failed_verify_is_refused(tmp_path):
    # A gemm (A@B) kernel checked as gemm_nt (A@B.T) at a square shape: right shapes, wrong values.
    nt = Workload("gemm_nt", (16, 16, 16))
    wrong = dataclasses.replace(
        make_result(Workload("gemm", (16, 16, 16)), verify_as=nt), workload=nt
    )
    assert not wrong.verify["passed"]
    with pytest.raises(ExportError, match="failed verify"):
        export([wrong], str(tmp_path / "x.so"))


def test_mixed_targets_and_duplicate_names_are_refused(tmp_path, cpu_results):
    with pytest.raises(ExportError, match="duplicate"):
        export([cpu_results[0], cpu_results[0]], str(tmp_path / "x.so"))
    cuda = dataclasses.replace(cpu_results[1], target="cuda", arch="sm_90a")
    with pytest.raises(ExportError, match="one target"):
        export([cpu_results[0], cuda], str(tmp_path / "x.so"))
    with pytest.raises(ExportError, match="empty"):
        export([], str(tmp_path / "x.so"))


def test_single_result_and_reexport_replace_library_and_manifest(tmp_path, cpu_results):
    path = str(tmp_path / "one.so")
    first = export(cpu_results[0], path)
    second = export(cpu_results[1], path)
    assert [k["name"] for k in load_manifest(path)["kernels"]] == [GEMM_BIAS_RELU.name]
    assert first["sha256"] != second["sha256"] == load_manifest(path)["sha256"]
    assert sorted(os.listdir(tmp_path)) == ["one.so", "one.so.json"]  # no temporaries left


def _cuda_result(workload: Workload):
    """A gemm_nt scheduled for a GPU (one thread per output), with a stand-in verify report.

    There is no GPU here to run the gate, so the report is written by hand; this test is about
    the export mechanics, not the kernel.
    """
    sch = tvm.s_tir.Schedule(workload.ir_module())
    i, j, _ = sch.get_loops(sch.get_sblock("C"))
    bx, tx = sch.split(sch.fuse(i, j), [None, 128])
    sch.bind(bx, "blockIdx.x")
    sch.bind(tx, "threadIdx.x")
    result = make_result(workload, run_verify=False)
    report = {"workload": workload.name, "passed": True, "checks": ["stand-in"], "failures": []}
    return dataclasses.replace(result, target="cuda", arch="sm_90a", mod=sch.mod, verify=report)


def test_cuda_export_without_gpu_driver_gives_source_library(tmp_path):
    w = Workload("gemm_nt", (64, 48, 32), "float16")
    path = str(tmp_path / "cuda.so")
    manifest = export(_cuda_result(w), path, check_nvcc=shutil.which("nvcc") is not None)
    assert manifest["target"]["kind"] == "cuda" and manifest["target"]["arch"] == "sm_90a"
    assert manifest["kernels"][0]["target"] == "cuda"
    with open(path + ".json") as f:
        assert json.load(f) == manifest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the library would load")
    assert manifest["device_code"] == "cuda-source"
    # the sanitizer step says why it did not run (on a GPU box it runs and records each tool)
    assert manifest["sanitizer"] == {"status": "skipped: no compute-sanitizer/GPU"}
    from autokernel_tvm.torch import LibraryError, load

    with pytest.raises(LibraryError, match="cuda driver"):
        load(path)


def test_wgmma_kernels_with_row_padding_export_with_their_companions(tmp_path):
    """Two cuda.wgmma kernels of odd shapes in one library: each main's host code launches its
    own padding kernels by name, so both sets must be linked, under distinct names."""
    from autokernel_tvm.families.cuda_wgmma import FAMILY, WgmmaParams
    from autokernel_tvm.targets import make_target

    target = make_target("cuda", "sm_90a")
    results = []
    for shape in ((100, 48, 37), (100, 48, 41)):
        w = Workload("gemm_nt", shape, "float16")
        mod = FAMILY.candidate(WgmmaParams(raster=1), w, target).mod
        assert len(mod.functions) == 3  # main, pad_a, pad_b
        results.append(dataclasses.replace(_cuda_result(w), mod=mod))
    path = str(tmp_path / "odd.so")
    manifest = export(results, path, check_nvcc=shutil.which("nvcc") is not None)
    assert [k["name"] for k in manifest["kernels"]] == [r.workload.name for r in results]
    with open(path, "rb") as f:  # no CUDA runtime here to load it: its bytes hold the names
        lib = f.read()
    for r in results:
        for operand in "ab":
            # the companion's exported entry (main's host code only names its kernel)
            assert f"__tvm_ffi_ak_{r.workload.name}_pad_{operand}\0".encode() in lib


def test_gemv_by_class_of_rows_exports_with_its_shift_kernel(tmp_path):
    """cuda.gemv on the tensor cores at a K whose rows are not 16-byte multiples: its host code
    launches the kernel that writes A's shifted copies by name before it, and (K split over
    blocks) the reduction after it; the library links both."""
    from autokernel_tvm.families.cuda_gemv import FAMILY, GemvParams
    from autokernel_tvm.targets import make_target

    w = Workload("gemm_nt", (6, 3735, 11051), "float16", "float16")
    params = GemvParams(rows=1, math="mma", splits=2)
    mod = FAMILY.candidate(params, w, make_target("cuda", "sm_90a")).mod
    result = dataclasses.replace(_cuda_result(w), mod=mod)
    path = str(tmp_path / "shifted.so")
    export([result], path, check_nvcc=shutil.which("nvcc") is not None)
    with open(path, "rb") as f:
        lib = f.read()
    for companion in ("shift_a", "reduce"):
        assert f"__tvm_ffi_ak_{w.name}_{companion}\0".encode() in lib


def test_split_k_kernel_exports_with_its_reduction(tmp_path):
    """A split-K cuda.wgmma kernel's host code launches its reduction by name after the kernel:
    the library links that companion too."""
    from autokernel_tvm.families.cuda_wgmma import FAMILY, WgmmaParams
    from autokernel_tvm.targets import make_target

    w = Workload("gemm_nt", (16, 512, 1024), "float16", "float16")
    params = WgmmaParams(consumers=1, block_n=128, raster=1, splits=2)
    mod = FAMILY.candidate(params, w, make_target("cuda", "sm_90a")).mod
    result = dataclasses.replace(_cuda_result(w), mod=mod)
    path = str(tmp_path / "split.so")
    export([result], path, check_nvcc=shutil.which("nvcc") is not None)
    with open(path, "rb") as f:
        assert f"__tvm_ffi_ak_{w.name}_reduce\0".encode() in f.read()


def test_padded_output_pitch_goes_into_the_manifest(tmp_path):
    """A kernel that also stores into a view of padded C rows (cuda.wgmma, TMA store, C rows
    that are not 16-byte multiples) says their pitch in its manifest entry, which loaders read
    to allocate its output; a kernel of plain rows has no such key."""
    from autokernel_tvm.families.cuda_wgmma import FAMILY, WgmmaParams
    from autokernel_tvm.targets import make_target

    target = make_target("cuda", "sm_90a")
    results = []
    for shape in ((100, 1001, 64), (100, 1024, 64)):
        w = Workload("gemm_nt", shape, "float16", "float16")
        mod = FAMILY.candidate(WgmmaParams(raster=1, store="tma"), w, target).mod
        results.append(dataclasses.replace(_cuda_result(w), mod=mod))
    manifest = export(results, str(tmp_path / "pitch.so"), check_nvcc=False)
    odd, even = manifest["kernels"]
    assert odd["out_row_pitch"] == 1024 and "out_row_pitch" not in even


def test_gemv_and_wgmma_kernels_export_into_one_library(tmp_path):
    """A decode GEMV (cuda.gemv) beside a tensor-core kernel in one library: each kernel is
    exported under its own name, its device function renamed with it (both families write a
    ``main``)."""
    from autokernel_tvm.families import get
    from autokernel_tvm.targets import make_target

    target = make_target("cuda", "sm_90a")
    results = []
    for family, w in (
        ("cuda.gemv", Workload("gemm_nt", (1, 1024, 512), "float16", "float16")),
        ("cuda.wgmma", Workload("gemm_nt", (256, 1024, 512), "float16", "float16")),
    ):
        params = get(family).seed(w, target)
        mod = get(family).candidate(params, w, target).mod
        results.append(dataclasses.replace(_cuda_result(w), mod=mod))
    path = str(tmp_path / "decode.so")
    manifest = export(results, path, check_nvcc=shutil.which("nvcc") is not None)
    assert [k["name"] for k in manifest["kernels"]] == [r.workload.name for r in results]
    with open(path, "rb") as f:
        lib = f.read()
    for r in results:  # the host entry and the device kernel it launches, both by name
        assert f"__tvm_ffi_{r.workload.name}\0".encode() in lib
        assert f"{r.workload.name}_kernel\0".encode() in lib

# SPDX-License-Identifier: Apache-2.0
"""The manifest contract: sha256 of the library plus the manifest embedded in it; any edit of
the .json, a flipped byte, swapped files or a library without the symbol is refused."""

from __future__ import annotations

import json
import shutil

import pytest
import tvm
from conftest import GEMM_NT, make_result

import autokernel_tvm.torch as ak_torch
from autokernel_tvm import manifest as manifest_lib
from autokernel_tvm.builder import build_module
from autokernel_tvm.export import export
from autokernel_tvm.targets import make_target
from autokernel_tvm.torch import LibraryError
from autokernel_tvm.workloads import Workload


def _copy(src: str, dst) -> str:
    dst = str(dst)
    shutil.copy(src, dst)
    shutil.copy(src + ".json", dst + ".json")
    return dst


def _edit(path: str, change) -> None:
    with open(path + ".json") as f:
        data = json.load(f)
    change(data)
    with open(path + ".json", "w") as f:
        json.dump(data, f, indent=1)


def test_library_embeds_the_manifest_minus_sha256(cpu_lib):
    manifest = manifest_lib.read(cpu_lib)
    text = manifest_lib.embedded(cpu_lib)
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    # The exact bytes the C++ loader compares: sorted keys, no spaces.
    assert text == json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert manifest["sha256"] == manifest_lib.file_sha256(cpu_lib)
    manifest_lib.check(cpu_lib, manifest)  # intact: no error


def test_edited_op_is_refused_naming_the_field(tmp_path, cpu_lib):
    path = _copy(cpu_lib, tmp_path / "edited.so")
    _edit(path, lambda m: m["kernels"][0].update(op="gemm"))  # gemm_nt -> gemm: wrong maths
    want = r'manifest field "kernels\[0\]\.op" differs from the library: "gemm" vs "gemm_nt"'
    with pytest.raises(LibraryError, match=want):
        ak_torch.load(path)
    with pytest.raises(LibraryError, match=want):  # skipping the sha256 does not skip this
        ak_torch.load(path, verify_checksum=False)


def test_added_and_removed_fields_are_named(tmp_path, cpu_lib):
    manifest = manifest_lib.read(cpu_lib)
    added = {**manifest, "note": "x"}
    with pytest.raises(manifest_lib.ManifestError, match='"note" differs.*"x" vs "<missing>"'):
        manifest_lib.check(cpu_lib, added)
    fewer = {k: v for k, v in manifest.items() if k != "created"}
    with pytest.raises(manifest_lib.ManifestError, match='"created" differs.*"<missing>" vs'):
        manifest_lib.check(cpu_lib, fewer)


def test_flipped_byte_is_refused(tmp_path, cpu_lib):
    path = _copy(cpu_lib, tmp_path / "flipped.so")
    with open(path, "r+b") as f:
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(LibraryError, match="sha256 mismatch"):
        ak_torch.load(path)


def test_cut_library_is_refused_before_dlopen(tmp_path, cpu_lib):
    """A file cut short whose manifest was rewritten to match (or loaded with the checksum off)
    is refused by its ELF extent: dlopen of it dies of SIGBUS."""
    with open(cpu_lib, "rb") as f:
        data = f.read()
    assert manifest_lib.elf_problem(data) is None
    assert manifest_lib.elf_problem(b"#!/bin/sh\n" * 10) == "not an ELF shared library"
    path = str(tmp_path / "cut.so")
    with open(path, "wb") as f:
        f.write(data[: len(data) * 9 // 10])
    manifest_lib.write(path, manifest_lib.body_of(manifest_lib.read(cpu_lib)))  # sha256 right
    want = rf"cut\.so: truncated: the file has {len(data) * 9 // 10} bytes, its ELF headers"
    with pytest.raises(LibraryError, match=want):
        ak_torch.load(path)
    with pytest.raises(LibraryError, match=want):
        ak_torch.load(path, verify_checksum=False)


def test_swapped_library_and_manifest_are_refused(tmp_path, cpu_lib):
    other = str(tmp_path / "other.so")
    export(make_result(Workload("gemm", (8, 8, 8))), other)
    path = str(tmp_path / "swapped.so")
    shutil.copy(other, path)
    shutil.copy(cpu_lib + ".json", path + ".json")
    with pytest.raises(LibraryError, match="sha256 mismatch"):
        ak_torch.load(path)
    with pytest.raises(LibraryError, match=r'manifest field "\S+" differs from the library'):
        ak_torch.load(path, verify_checksum=False)


def test_library_without_the_symbol_is_refused(tmp_path, cpu_lib):
    path = str(tmp_path / "bare.so")
    build_module(tvm.s_tir.Schedule(GEMM_NT.ir_module()).mod, make_target("llvm")).export_library(
        path
    )
    manifest_lib.write(path, manifest_lib.body_of(manifest_lib.read(cpu_lib)))  # sha256 right
    with pytest.raises(LibraryError, match="no embedded manifest.*re-export with this version"):
        ak_torch.load(path)


def test_version_1_and_foreign_manifests_are_refused(tmp_path, cpu_lib):
    path = _copy(cpu_lib, tmp_path / "old.so")
    _edit(path, lambda m: m.update(format_version=1))
    with pytest.raises(LibraryError, match="format_version 1.*re-export with this version"):
        ak_torch.load(path)
    _edit(path, lambda m: m.update(format="something-else"))
    with pytest.raises(LibraryError, match="not an autokernel-tvm-library manifest"):
        ak_torch.load(path)
    with open(path + ".json", "w") as f:
        f.write('{"format": "autokernel-tvm-library", ')  # cut short
    with pytest.raises(LibraryError, match="not a JSON manifest"):
        ak_torch.load(path)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: str(d / "missing.so"), "no such file"),
        (lambda d: str(d), "is a directory"),
        (lambda d: str(d / "x.so.json"), "this is the manifest; pass the library itself"),
    ],
    ids=["missing", "directory", "json-as-library"],
)
def test_wrong_paths_get_one_clear_error(tmp_path, make, message):
    with pytest.raises(LibraryError, match=message):
        ak_torch.load(make(tmp_path))


def test_text_file_without_manifest(tmp_path):
    path = tmp_path / "notes.so"
    path.write_text("hello\n")
    with pytest.raises(LibraryError, match="no manifest here"):
        ak_torch.load(str(path))
    head = {"format": "autokernel-tvm-library", "format_version": 2, "sha256": "0"}
    (tmp_path / "notes.so.json").write_text(json.dumps(head))
    with pytest.raises(LibraryError, match="sha256 mismatch"):
        ak_torch.load(str(path))


def test_first_difference_paths():
    assert manifest_lib.first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]}) == (
        "a[1].b",
        2,
        3,
    )
    assert manifest_lib.first_difference({"a": [1]}, {"a": [1, 2]}) == ("a", [1], [1, 2])

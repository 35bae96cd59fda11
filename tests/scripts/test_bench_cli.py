# SPDX-License-Identifier: Apache-2.0
"""bench.py end to end in-process: a right kernel gets a row with its ratio, a wrong one exit 1
and no row, an edited manifest exit 2 with one line naming the field."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import sys

from conftest import make_result

from autokernel_tvm.export import export
from autokernel_tvm.workloads import Workload

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
_spec = importlib.util.spec_from_file_location("_ak_bench", os.path.join(ROOT, "scripts/bench.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
FAST = ["--rep-ms", "5", "--warmup-ms", "1"]


def test_right_kernel_is_benchmarked(tmp_path, capsys):
    path = str(tmp_path / "right.so")
    export(make_result(Workload("gemm_nt", (20, 12, 8))), path)
    assert bench.main([path, "--results-dir", str(tmp_path / "res"), *FAST]) == 0
    out = capsys.readouterr().out
    assert "gemm_nt_M20_N12_K8_float32" in out and "ratio" in out
    (row,) = [json.loads(line) for line in open(tmp_path / "res" / "cpu.jsonl")]
    assert row["timing"] == "alternating" and row["ratio"] > 0 and row["max_rel_error"] < 1e-4


def test_tf32_kernels_are_held_to_tf32s_error_not_fp32s():
    """An fp32 kernel allowed TF32 differs from torch's TF32 by TF32's rounding (8.9e-4 seen on
    a conv on the H200): the fp32 limit (1e-4) called it wrong."""
    fp32 = {"dtype": "float32"}
    assert bench.error_limit(fp32) == 1e-4
    assert bench.error_limit({**fp32, "precision": "tf32"}) > 8.9e-4
    assert bench.error_limit({"dtype": "float16", "precision": ""}) == 1e-2


def test_wrong_kernel_exits_1_without_a_row(tmp_path, capsys):
    # An A@B kernel exported as A@B.T with a stand-in report: manifest and library agree, the
    # maths is wrong, and only the comparison with torch can tell.
    nt = Workload("gemm_nt", (12, 12, 12))
    report = {"workload": nt.name, "passed": True, "checks": ["stand-in"], "failures": []}
    wrong = dataclasses.replace(
        make_result(Workload("gemm", (12, 12, 12)), run_verify=False), workload=nt, verify=report
    )
    path = str(tmp_path / "wrong.so")
    export(wrong, path)
    assert bench.main([path, "--results-dir", str(tmp_path / "res"), *FAST]) == 1
    err = capsys.readouterr().err
    assert f"error: {nt.name}: max relative error" in err and "the kernel is wrong" in err
    assert not os.path.exists(tmp_path / "res")


def test_edited_manifest_exits_2_naming_the_field(tmp_path, capsys, cpu_lib):
    path = str(tmp_path / "edited.so")
    shutil.copy(cpu_lib, path)
    manifest = json.load(open(cpu_lib + ".json"))
    manifest["kernels"][1]["op"] = "gemm_bias_gelu"
    json.dump(manifest, open(path + ".json", "w"))
    assert bench.main([path, "--no-append"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {path}: manifest field")
    assert '"kernels[1].op" differs from the library: "gemm_bias_gelu" vs "gemm_bias_relu"' in err

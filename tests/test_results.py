# SPDX-License-Identifier: Apache-2.0
"""The results schema, and scripts/bench.py writing it end to end on the CPU."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from autokernel_tvm import results
from autokernel_tvm.results import ResultSchemaError, append_result, read_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench():
    """scripts/bench.py as a module, run in-process (a subprocess pays the tvm+torch import)."""
    spec = importlib.util.spec_from_file_location(
        "bench", os.path.join(ROOT, "scripts", "bench.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(**changes) -> dict:
    row = {
        "date": results.now_iso(),
        "device": "h100",
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "op": "gemm",
        "shape": [4096, 4096, 4096],
        "dtype": "float16",
        "impl": "generative",
        "tflops": 500.0,
        "baseline": "torch",
        "baseline_tflops": 700.0,
        "ratio": 500.0 / 700.0,
        "trials": 1000,
        "tune_seconds": 3600.0,
        "command": "python scripts/bench.py gemm.so",
    }
    row.update(changes)
    return row


def test_rows_append_as_json_lines(tmp_path):
    path = tmp_path / "sub" / "h100.jsonl"
    append_result(path, _row())
    append_result(path, _row(op="gemm_nt", trials=None, tune_seconds=None, extra={"k": 1}))
    rows = read_results(path)
    assert [r["op"] for r in rows] == ["gemm", "gemm_nt"] and rows[1]["extra"] == {"k": 1}
    assert len(path.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "row, match",
    [
        ({k: v for k, v in _row().items() if k not in ("ratio", "command")}, "'ratio', 'command'"),
        (_row(tflops=float("nan")), "'tflops' must be number"),
        (_row(shape=(1, 2)), "'shape' must be shape"),
        (_row(trials=-1), "'trials'"),
        (_row(device=""), "'device'"),
        (_row(baseline_tflops=None), "'baseline_tflops'"),
        (_row(latency_us=float("inf")), "not plain JSON"),
    ],
    ids=["missing", "nan", "tuple-shape", "negative-trials", "empty", "none", "inf-extra"],
)
def test_bad_rows_are_refused_and_not_written(tmp_path, row, match):
    path = tmp_path / "x.jsonl"
    with pytest.raises(ResultSchemaError, match=match):
        append_result(path, row)
    assert not path.exists()


@pytest.mark.parametrize(
    "full, short",
    [
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA L40S", "l40s"),
        ("AMD Instinct MI300X", "mi300x"),
        ("NVIDIA GeForce RTX 4090", "nvidia-geforce-rtx-4090"),
    ],
)
def test_device_short_names(full, short):
    assert results.device_short_name(full) == short


def test_bench_runs_end_to_end_on_cpu(bench, cpu_lib, tmp_path, capsys, monkeypatch):
    out = tmp_path / "results"
    argv = [cpu_lib, "--warmup-ms", "2", "--rep-ms", "10", "--results-dir", str(out)]
    monkeypatch.setenv("TVM_NUM_THREADS", "")  # restored after the test, like torch's threads
    threads = torch.get_num_threads()
    try:
        assert bench.main([*argv, "--trials", "7", "--cpu-threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr()
    assert "WARNING" not in printed.err
    rows = read_results(out / "cpu.jsonl")
    assert [r["kernel"] for r in rows] == [
        "gemm_nt_M64_N48_K32_float32",
        "gemm_bias_relu_M64_N48_K32_float32",
        "gemm_nt_M32_N16_K24_bfloat16",
    ]
    for row in rows:
        results.validate_row(row)
        assert row["device"] == "cpu" and row["baseline"] == "torch" and row["target"] == "llvm"
        assert (
            row["cpu_threads"] == 1
            and row["trials"] == 7
            and row["tune_seconds"] == 0.0
            and row["impl"] == "untuned"
        )
        assert row["ratio"] == pytest.approx(row["tflops"] / row["baseline_tflops"])
        assert row["latency_us"] > 0 and row["baseline_latency_us"] > 0
        assert 0 < row["kernel_only_latency_us"]
        assert row["max_rel_error"] < (1e-5 if row["dtype"] == "float32" else 1e-2)
        assert row["command"].startswith("python ") and "--rep-ms 10" in row["command"]
    assert rows[2]["dtype"] == "bfloat16" and rows[0]["shape"] == [64, 48, 32]
    assert "gemm_bias_relu_M64_N48_K32_float32" in printed.out  # the table
    kernel = ["--kernel", "gemm_nt_M32_N16_K24_bfloat16", "--no-append"]
    assert bench.main([*argv, *kernel, "--device-name", "h100"]) == 0
    assert sorted(os.listdir(out)) == ["cpu.jsonl"]  # --no-append wrote nothing


def test_bench_unknown_kernel_fails_listing_names(bench, cpu_lib, capsys):
    assert bench.main([cpu_lib, "--kernel", "nope", "--no-append"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --kernel:") and "gemm_nt_M64_N48_K32_float32" in err

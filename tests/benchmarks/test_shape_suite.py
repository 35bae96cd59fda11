# SPDX-License-Identifier: Apache-2.0
"""benchmarks/gpu/shape_suite.py without a GPU: which shapes an earlier call of the same run
already holds, and the one-line refusal where torch sees no GPU."""

import importlib.util
import json
import os

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    "shape_suite", os.path.join(ROOT, "benchmarks", "gpu", "shape_suite.py")
)
shape_suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shape_suite)


def test_done_shapes_need_both_baselines(tmp_path):
    rows = [
        {"shape_name": "square_4096", "dtype": "float16", "baseline": "torch"},
        {"shape_name": "square_4096", "dtype": "float16", "baseline": "torch.compile"},
        {"shape_name": "odd_2047", "dtype": "bfloat16", "baseline": "torch"},  # cut off
        {"op": "problem:llama_mlp", "dtype": "float16", "baseline": "eager"},  # not a shape
    ]
    path = tmp_path / "shapes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert shape_suite.done_shapes([str(path)]) == {("square_4096", "float16")}
    assert shape_suite.done_shapes([]) == set()


def test_suite_refuses_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the suite would run")
    assert shape_suite.main(["--only", "square_4096", "--out", "/tmp/unused_suite"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err

# SPDX-License-Identifier: Apache-2.0
"""benchmarks/suite_geomean.py: the latest shape-suite row of each shape, dtype and baseline,
and the geomeans and floors the any-shape goals read."""

import importlib.util
import json
import math
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    "suite_geomean", os.path.join(ROOT, "benchmarks", "suite_geomean.py")
)
suite_geomean = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite_geomean)

SUITE = "python benchmarks/gpu/shape_suite.py --only x"


def _row(op, shape, dtype, baseline, ratio, date, command=SUITE, **extra):
    return {"date": date, "device": "h100", "op": op, "shape": list(shape), "dtype": dtype,
            "baseline": baseline, "ratio": ratio, "tflops": 100.0 * ratio, "impl": "cuda.wgmma",
            "command": command, **extra}  # fmt: skip


def test_latest_rows_named_by_the_suite_and_their_geomeans(tmp_path, capsys):
    rows = [
        _row("gemm_nt", (4096, 4096, 4096), "float16", "torch", 0.5, "2026-12-01"),  # superseded
        _row("gemm_nt", (4096, 4096, 4096), "float16", "torch", 1.0, "2026-12-06"),
        _row("gemm_nt", (4096, 4096, 4096), "float16", "torch.compile", 1.0, "2026-12-06"),
        _row("gemm_nt", (8205, 5921, 2949), "float16", "torch", 4.0, "2026-12-06"),
        _row("gemm_nt", (8205, 5921, 2949), "float16", "torch.compile", 0.9, "2026-12-06"),
        _row(
            "gemm_nt",
            (1, 4096, 4096),
            "float16",
            "torch",
            0.8,
            "2026-12-05",
            shape_name="decode_1x4096",
        ),  # fmt: skip
        _row("gemm_nt", (4096, 4096, 4096), "float32", "torch", 2.5, "2026-12-06"),
        _row(
            "gemm_nt",
            (4096, 4096, 4096),
            "float16",
            "torch",
            9.0,
            "2026-12-07",
            command="python benchmarks/gpu/genome_check.py",
        ),  # not the suite
        _row("gemm_nt", (5, 5, 5), "float16", "torch", 9.0, "2026-12-07"),  # not a suite shape
    ]
    path = tmp_path / "h100.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shapes = suite_geomean.suite_shapes()
    latest = suite_geomean.latest([str(path)], shapes)
    assert latest[("h100", "square_4096", "float16", "torch")]["ratio"] == 1.0
    assert ("h100", "decode_1x4096", "float16", "torch") in latest
    assert len(latest) == 6
    out = tmp_path / "g.md"
    assert suite_geomean.main(["--rows", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.read_text() == text
    fp16 = next(line for line in text.splitlines() if line.startswith("- **float16**"))
    assert f"3 of {len(shapes)} shapes" in fp16
    assert f"geomean **{math.exp(math.log(4.0 * 0.8) / 3):.3f}x cuBLAS**" in fp16
    assert "below 0.85: decode_1x4096 0.800" in fp16 and "odd_8205 0.90x" in fp16
    both = next(line for line in text.splitlines() if line.startswith("- **fp16 and bf16**"))
    assert "3 rows" in both  # the fp32 (3xTF32) row is listed apart
    assert suite_geomean.main(["--rows", str(path), "--device", "h200"]) == 2
    assert suite_geomean.main(["--rows", str(tmp_path / "missing.jsonl")]) == 2

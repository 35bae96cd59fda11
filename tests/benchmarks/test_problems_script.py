# SPDX-License-Identifier: Apache-2.0
"""benchmarks/gpu/problems.py without a GPU: past ``--stop-after-s`` it starts no problem and
says which one it did not start (a device call returns its finished rows instead of being
killed inside a problem)."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    "problems_script", os.path.join(ROOT, "benchmarks", "gpu", "problems.py")
)
problems = importlib.util.module_from_spec(spec)
spec.loader.exec_module(problems)


def test_no_problem_starts_past_the_limit(tmp_path, capsys):
    argv = ["--only", "matmul_square", "--target", "llvm", "--out", str(tmp_path)]
    assert problems.main([*argv, "--stop-after-s", "1e-9"]) == 0
    assert "matmul_square float16 not started" in capsys.readouterr().out
    assert not (tmp_path / "problems.jsonl").exists()

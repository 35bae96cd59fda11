# SPDX-License-Identifier: Apache-2.0
"""benchmarks/gpu/problems.py without a GPU: past ``--stop-after-s`` it starts no problem and
says which one it did not start (a device call returns its finished rows instead of being
killed inside a problem); a whole problem run on llvm leaves only small files in --out."""

import importlib.util
import json
import os

from test_problem import MATMUL  # a KernelBench-format 32 x 48 @ 48 x 16 matmul

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


def test_a_run_leaves_its_builds_in_the_work_folder_and_small_files_in_out(tmp_path, capsys):
    """A whole problem on llvm (tuned, exported, checked, timed against eager and inductor):
    --out receives the rows, the report and the tuning reports' archive and nothing built
    (the GPU machine returns --out, and built libraries put it over the return limit); the
    exported library and the databases stay in --work-dir."""
    problems_dir, out, work = tmp_path / "problems", tmp_path / "out", tmp_path / "work"
    problems_dir.mkdir()
    (problems_dir / "tiny_mm.py").write_text(MATMUL)
    argv = ["--only", "tiny_mm", "--target", "llvm", "--trials", "2", "--dtypes", "float32",
            "--problems-dir", str(problems_dir), "--out", str(out), "--work-dir", str(work),
            "--rounds", "1", "--rep-ms", "5"]  # fmt: skip
    assert problems.main(argv) == 0
    assert "correct True" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "problems.jsonl",
        "problems_report.json",
        "reports.tgz",
    ]
    rows = [json.loads(line) for line in (out / "problems.jsonl").read_text().splitlines()]
    assert {(r["impl"], r["baseline"]) for r in rows} == {
        (impl, base)
        for impl in ("autokernel-problem", "autokernel-backend")
        for base in ("eager", "torch.compile")
    }
    assert all(r["op"] == "problem:tiny_mm" and r["correct"] for r in rows)
    assert list(work.rglob("*.so"))  # the export, kept where a rerun finds it

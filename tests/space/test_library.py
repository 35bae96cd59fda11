# SPDX-License-Identifier: Apache-2.0
"""The rule library: records, ranking, the shipped (read-only) and user roots, format-1
migration, and the shipped files as package data of a wheel."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from autokernel_tvm.config import TuneConfig
from autokernel_tvm.space import library
from autokernel_tvm.space.genome import Genome
from autokernel_tvm.space.library import Library, LibraryError, prior, similarity
from autokernel_tvm.workloads import Workload

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def default_genome(family: str) -> Genome:
    return Genome.default(family)


def test_save_load_and_prior_ranking(tmp_path):
    lib = Library("llvm", "gemm", str(tmp_path))
    fast = default_genome("cpu.tile")
    slow = fast.replace(vector_lanes=8)
    w512 = Workload("gemm", (512, 512, 512))
    lib.record(fast, w512, tflops=0.2, latency_us=1.3e3, trials=64, device="cpu")
    lib.record(slow, w512, tflops=0.1, latency_us=2.6e3, trials=64, device="cpu")
    path = lib.save()
    data = json.load(open(path))
    assert data["version"] == 2 and len(data["entries"]) == 2
    ranked = prior("llvm", Workload("gemm", (1024, 1024, 1024)), [str(tmp_path)])
    assert [g for g, _ in ranked] == [fast, slow]  # the faster genome first
    assert ranked[0][1] > ranked[1][1] > 0
    conv = Workload("conv2d_nhwc", (1, 8, 8, 8, 8, 3, 3, 1, 1))
    assert prior("llvm", conv, [str(tmp_path)]) == []
    assert prior("llvm", w512, [str(tmp_path)], families=["cuda.mma"]) == []


def test_only_the_best_few_per_workload_are_kept(tmp_path):
    lib = Library("llvm", "gemm", str(tmp_path))
    w = Workload("gemm", (64, 64, 64))
    for lanes, tflops in [(8, 0.1), (16, 0.3), (32, 0.2)]:
        for unroll in [(0, 16, 64, 512), (0, 8, 32)]:
            g = default_genome("cpu.tile").replace(vector_lanes=lanes, unroll=unroll)
            lib.record(g, w, tflops=tflops, latency_us=1.0, trials=8, device="cpu")
    assert len(lib.entries) == 3 and lib.entries[0]["tflops"] == 0.3


def test_similarity_prefers_close_shapes_and_same_op():
    a = Workload("gemm", (512, 512, 512))
    assert similarity(a, a) == 1.0
    assert similarity(a, Workload("gemm", (1024, 512, 512))) > similarity(
        a, Workload("gemm", (4096, 4096, 512))
    )
    assert similarity(a, Workload("gemm_nt", (512, 512, 512))) < 1.0


def test_format_1_files_migrate_to_the_same_genomes(tmp_path):
    """The shipped library was format 1 (genomes as the 18-field union); migrating that file
    gives exactly the genomes (and keys) it has in the shipped format-2 file, which later runs
    added to."""
    old = json.load(open(os.path.join(HERE, "data", "gemm_format1.json")))
    assert old["version"] == 1
    os.makedirs(tmp_path / "cuda")
    (tmp_path / "cuda" / "gemm.json").write_text(json.dumps(old))
    migrated = Library("cuda", "gemm", str(tmp_path))
    shipped = Library("cuda", "gemm", os.path.join(REPO, "schedules"))
    key = lambda e: (e["workload"]["name"], e["key"])  # noqa: E731
    assert set(map(key, migrated.entries)) <= set(map(key, shipped.entries))
    assert len(migrated.entries) == len(old["entries"])
    assert migrated.save() and json.load(open(migrated.path))["version"] == 2


def test_unreadable_library_names_the_file(tmp_path):
    os.makedirs(tmp_path / "llvm")
    (tmp_path / "llvm" / "gemm.json").write_text('{"version": 7, "entries": []}')
    with pytest.raises(LibraryError, match="version 7"):
        Library("llvm", "gemm", str(tmp_path))
    (tmp_path / "llvm" / "gemm.json").write_text("{half a file")
    with pytest.raises(LibraryError, match="gemm.json"):
        Library("llvm", "gemm", str(tmp_path))


def test_runs_read_the_shipped_library_and_write_only_the_user_one(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOKERNEL_CACHE_DIR", str(tmp_path / "cache"))
    config = TuneConfig(target="cuda", arch="sm_90a")
    shipped = library.shipped_root()
    assert os.path.exists(os.path.join(shipped, "cuda", "gemm.json"))
    assert library.roots(config) == [shipped, str(tmp_path / "cache" / "library")]
    assert library.user_root(config) == str(tmp_path / "cache" / "library")
    custom = config.replace(library_dir=str(tmp_path / "lib"), user_library_dir=str(tmp_path / "u"))
    assert library.roots(custom) == [str(tmp_path / "lib"), str(tmp_path / "u")]


def test_the_wheel_ships_the_library_as_package_data(tmp_path):
    """A non-editable install finds the rule library through the package."""
    src = tmp_path / "src"  # a copy: building in place would leave build/ in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "autokernel_tvm", "schedules"):
        copy = shutil.copytree if os.path.isdir(os.path.join(REPO, name)) else shutil.copy
        copy(os.path.join(REPO, name), src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, str(src), "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("autokernel_tvm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "autokernel_tvm/schedules/cuda/gemm.json" in names
    assert "autokernel_tvm/schedules/cuda/conv2d.json" in names

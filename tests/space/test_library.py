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


def test_similarity_weighs_dtypes_by_width():
    """bf16 is nearer fp16 than fp32 or fp8 is, on either side; the output dtype counts: the
    H100 fp32-out winners (per-tile direct stores) once tied the 16-bit H200 ones at 4096^3."""
    shape = (4096, 4096, 4096)
    fp16 = Workload("gemm_nt", shape, "float16", "float16")
    assert similarity(fp16, Workload("gemm_nt", shape, "float16", "float32")) < 1.0
    bf16 = similarity(fp16, Workload("gemm_nt", shape, "bfloat16", "bfloat16"))
    fp32 = similarity(fp16, Workload("gemm_nt", shape, "float32", "float32"))
    fp8 = similarity(fp16, Workload("gemm_scaled_nt", shape, "float8_e4m3fn", "float16"))
    assert 1.0 > bf16 > fp32 and bf16 > fp8
    # the same shape in bf16 outranks a GEMM of another shape in fp16 (8192^3 took the odd
    # 8205 x 5921 x 2949 shape's 192-wide row-store genome first)
    big = Workload("gemm_nt", (8192,) * 3, "float16", "float16")
    odd = Workload("gemm_nt", (8205, 5921, 2949), "float16", "float16")
    assert similarity(big, Workload("gemm_nt", (8192,) * 3, "bfloat16", "bfloat16")) > similarity(
        big, odd
    )


FORMAT1_KEYS = {
    ("batch_gemm_B8_M2048_N2048_K2048_float16", "cuda-wgmma-e3303bb47a"),
    ("gemm_M4096_N4096_K4096_bfloat16", "cuda-wgmma-4e992648b7"),
    ("gemm_M4096_N4096_K4096_float16", "cuda-wgmma-e3303bb47a"),
    ("gemm_bias_gelu_M4096_N4096_K4096_float16", "cuda-wgmma-4e992648b7"),
    ("gemm_bias_gelu_M4096_N4096_K4096_float16", "cuda-mma-64a2ab11ec"),
    ("gemm_nt_M2048_N8192_K1024_float16", "cuda-wgmma-4e992648b7"),
    ("gemm_nt_M4096_N4096_K4096_bfloat16", "cuda-wgmma-4e992648b7"),
    ("gemm_nt_M4096_N4096_K4096_bfloat16", "cuda-mma-64a2ab11ec"),
    ("gemm_nt_M4096_N4096_K4096_float16", "cuda-wgmma-e3303bb47a"),
    ("gemm_nt_M4096_N4096_K4096_float16", "cuda-mma-64a2ab11ec"),
}


def test_format_1_files_migrate_to_the_same_genomes(tmp_path):
    """The shipped library was format 1 (genomes as the 18-field union); migrating that file
    gives exactly the genomes (and keys) it has in the shipped format-2 file, which later runs
    added to."""
    old = json.load(open(os.path.join(HERE, "data", "gemm_format1.json")))
    assert old["version"] == 1
    os.makedirs(tmp_path / "cuda")
    (tmp_path / "cuda" / "gemm.json").write_text(json.dumps(old))
    migrated = Library("cuda", "gemm", str(tmp_path))
    key = lambda e: (e["workload"]["name"], e["key"])  # noqa: E731
    # the keys these genomes had in the shipped format-2 file (until its refresh of 2026-12-05
    # dropped entries measured before the flushed timer)
    assert set(map(key, migrated.entries)) == FORMAT1_KEYS
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


RESULTS = os.path.join(REPO, "benchmarks", "results")
ODD = "h200/session34_2026-12-05/odd/reports/gemm_nt_M8205_N5921_K2949_float16_to_float16"


def _report(name: str = ODD) -> dict:
    with open(os.path.join(RESULTS, name, "report.json")) as f:
        return json.load(f)


def test_verified_winners_come_from_the_committed_reports(tmp_path):
    """A committed report's winner, with its speed and date; reports whose gate failed, of
    another target, or measured before ``since`` are not read."""
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_report()))
    failed = _report()
    failed["verify"]["passed"] = False
    (tmp_path / "failed.json").write_text(json.dumps(failed))
    other = {**_report(), "target": "rocm"}
    (tmp_path / "rocm.json").write_text(json.dumps(other))
    (tmp_path / "junk.json").write_text("[1, 2]")
    paths = sorted(str(p) for p in tmp_path.iterdir())
    found = library.from_reports(paths, "cuda", since="2026-12-04")
    assert len(found) == 1
    (win,) = found
    report = _report()
    assert win["genome"] == Genome.from_json(report["genome"])
    assert win["genome"].params.block_n == 192 and win["genome"].params.store == "rows"
    assert win["tflops"] == report["tflops"] and win["date"] == "2026-12-05"
    assert win["workload"].name == "gemm_nt_M8205_N5921_K2949_float16_to_float16"
    assert library.from_reports(paths, "cuda", since="2026-12-06") == []


def test_refresh_drops_older_entries_keeps_the_fastest_and_is_idempotent(tmp_path):
    root = str(tmp_path)
    old = Library("cuda", "gemm", root)
    stale = Genome.default("cuda.wgmma")
    w = Workload("gemm_nt", (8205, 5921, 2949), "float16", "float16")
    old.record(stale, w, tflops=999.0, latency_us=1.0, trials=8, device="H100", date="2026-11-24")
    old.save()
    found = library.from_reports([os.path.join(RESULTS, ODD, "report.json")], "cuda", "2026-12-04")
    slower = {**found[0], "tflops": found[0]["tflops"] / 2, "date": "2026-12-04"}
    summary = library.refresh(root, "cuda", found + [slower], since="2026-12-04")
    assert summary["gemm"] == {"kept": 0, "added": 1, "dropped": 1, "workloads": 1}
    (entry,) = Library("cuda", "gemm", root).entries
    assert entry["tflops"] == found[0]["tflops"] and entry["date"] == "2026-12-05"
    before = open(old.path).read()
    library.refresh(root, "cuda", found + [slower], since="2026-12-04")
    assert open(old.path).read() == before
    assert not os.path.exists(os.path.join(root, "cuda", "conv2d.json"))


def test_update_library_script(tmp_path):
    script = os.path.join(REPO, "scripts", "update_library.py")
    out = subprocess.run(
        [sys.executable, script, "--reports", os.path.join(RESULTS, "h200", "session34_2026-12-05"),
         "--out", str(tmp_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "cuda/gemm.json: 10 workloads" in out.stdout  # odd shapes, fp8, llama_mlp
    names = {e["workload"]["name"] for e in Library("cuda", "gemm", str(tmp_path)).entries}
    assert "gemm_gated_nt_M2048_N11008_K4096_float16_to_float16" in names
    for args, what in [
        (["--since", "12/04/2026"], "--since"),
        (["--reports", "nope"], "--reports"),
    ]:
        bad = subprocess.run([sys.executable, script, *args, "--out", str(tmp_path)],
                             capture_output=True, text=True)  # fmt: skip
        assert bad.returncode == 2 and bad.stderr.startswith(f"error: {what}:"), bad.stderr


def test_direct_checks_give_each_run_s_fastest_gated_genome(tmp_path):
    """genome_check.py lines: each run's fastest gated genome, with its GPU, arch and day; runs
    before ``since`` and other targets give none; the refresh script reads the committed ones."""
    w = Workload("gemm_nt", (8205, 5921, 2949), "float16", "float16")
    rows = [  # fmt: skip
        {"genes": {"store": "rows"}, "gate": {"passed": True}, "tflops": 540.0, "us": 532.0},
        {
            "genes": {"schedule": "persistent", "store": "tma"},
            "gate": {"passed": True},
            "tflops": 598.0,
            "us": 479,
        },
        {"genes": {"block_n": 128}, "gate": {"passed": False}, "tflops": 700.0, "us": 400.0},
    ]
    runs = [
        {"gpu": "NVIDIA H100 80GB HBM3", "arch": "sm_90a", "date": day, "workload": w.to_json(),
         "rows": rows}
        for day in ("2026-12-06T06:00:30Z", "2026-12-03T01:00:00Z")
    ]  # fmt: skip
    path = tmp_path / "genome_check.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    (win,) = library.from_checks([str(path)], "cuda", since="2026-12-04")
    assert win["genome"].params.schedule == "persistent" and win["genome"].params.store == "tma"
    assert (win["tflops"], win["latency_us"], win["date"]) == (598.0, 479, "2026-12-06")
    assert (win["device"], win["arch"], win["workload"]) == ("NVIDIA H100 80GB HBM3", "sm_90a", w)
    assert library.from_checks([str(path)], "rocm") == []
    committed = os.path.join(RESULTS, "h100", "session38_2026-12-06", "genome_check_gemv_m.jsonl")
    found = library.from_checks([committed], "cuda", since="2026-12-06")
    # GEMV won at 4 rows (plain and gated), the tensor cores at 8
    assert sorted((f["workload"].shape[0], f["genome"].family) for f in found) == [
        (4, "cuda.gemv"), (4, "cuda.gemv"), (8, "cuda.wgmma")]  # fmt: skip


def test_a_hit_is_this_workload_on_this_device_as_a_whole_kernel(tmp_path):
    """The fastest entry of the very workload measured on the same GPU, if its genome is a
    whole kernel; another device, another workload or a design space's genome is no hit."""
    from autokernel_tvm.space.grammar import Grammar
    from autokernel_tvm.targets import make_target

    w = Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16")
    other = Workload("gemm_nt", (4096, 4096, 2048), "float16", "float16")
    families = Grammar(make_target("cuda", "sm_90a")).families(w)
    lib = Library("cuda", "gemm", str(tmp_path))
    wgmma = Genome.default("cuda.wgmma")
    h100, h200 = "NVIDIA H100 80GB HBM3", "NVIDIA H200"
    lib.record(wgmma, w, tflops=600.0, latency_us=229.0, trials=16, device=h100)
    lib.record(wgmma.replace(raster=16), w, tflops=650.0, latency_us=211.0, trials=16, device=h100)
    lib.record(wgmma.replace(raster=4), w, tflops=700.0, latency_us=196.0, trials=16, device=h200)
    lib.record(wgmma.replace(raster=1), other, tflops=800.0, latency_us=86.0, trials=8, device=h100)
    lib.save()
    found = library.hit("cuda", w, [str(tmp_path)], h100, families)
    assert found["key"] == wgmma.replace(raster=16).key and found["device"] == h100
    assert library.hit("cuda", w, [str(tmp_path)], "NVIDIA A100", families) is None
    mma_only = [f for f in families if f.name == "cuda.mma"]  # a design space: no hit
    assert library.hit("cuda", w, [str(tmp_path)], h100, mma_only) is None

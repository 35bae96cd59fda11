# SPDX-License-Identifier: Apache-2.0
"""The lines a person reads at the end of a run name the winner and what it adds over its
family's first template."""

from autokernel_tvm.families.cuda_wgmma import FAMILY, WgmmaParams
from autokernel_tvm.report import summary_lines
from autokernel_tvm.space.genome import Genome
from autokernel_tvm.workloads import Workload

SUMMARY = {
    "workload": Workload("gemm_nt", (4096, 4096, 4096), "float16", "float16").to_json(),
    "target": "cuda",
    "arch": "sm_90a",
    "space": "genomes/x",
    "best_latency_us": 201.2,
    "tflops": 683.0,
    "trials": 8,
    "tune_seconds": 25.0,
    "failures": {},
}


def test_winner_line_names_the_genes_beyond_the_first_template():
    params = WgmmaParams(schedule="persistent", store="tma")
    assert FAMILY.additions(params) == ["schedule=persistent", "store=tma"]
    assert FAMILY.additions(WgmmaParams(block_n=128, stages=5)) == []
    genome = Genome("cuda.wgmma", params).to_json()
    (line,) = [x for x in summary_lines({**SUMMARY, "genome": genome}) if x.startswith("winner")]
    assert "schedule=persistent" in line and "(adds: schedule=persistent, store=tma)" in line
    assert not any(x.startswith("winner") for x in summary_lines({**SUMMARY, "genome": None}))


def test_fp32_winner_is_reported_as_3xtf32():
    genome = Genome("cuda.wgmma", WgmmaParams()).to_json()
    fp32 = {**SUMMARY, "genome": genome}
    fp32["workload"] = Workload("gemm", (4096, 4096, 4096), "float32").to_json()
    notes = [x for x in summary_lines(fp32) if x.startswith("note")]
    assert len(notes) == 1 and "3xTF32" in notes[0]
    assert not any(x.startswith("note") for x in summary_lines({**SUMMARY, "genome": genome}))


def test_allowed_tf32_is_reported_as_such_and_built_with_one_product():
    from autokernel_tvm.families.cuda_wgmma import structure

    tf32 = Workload("gemm_nt", (4096, 4096, 4096), "float32", precision="tf32")
    assert structure(WgmmaParams(), tf32)["tf32_passes"] == 1
    summary = {**SUMMARY, "genome": Genome("cuda.wgmma", WgmmaParams()).to_json()}
    notes = [x for x in summary_lines({**summary, "workload": tf32.to_json()}) if "note" in x]
    assert len(notes) == 1 and "TF32 (allowed)" in notes[0]
    # A @ B: one pass too (B read from a K-major copy), and reported so
    nn_tf32 = Workload("gemm", (4096, 4096, 4096), "float32", precision="tf32")
    assert structure(WgmmaParams(), nn_tf32)["tf32_passes"] == 1
    notes = [x for x in summary_lines({**summary, "workload": nn_tf32.to_json()}) if "note" in x]
    assert len(notes) == 1 and "TF32 (allowed)" in notes[0]


def test_trials_line_says_how_many_an_earlier_run_measured():
    """A rerun in the same work folder reports its own seconds: the line says the trials it
    found measured, so 8 trials in 0 s is not read as a search that cost nothing."""
    (line,) = [x for x in summary_lines({**SUMMARY, "resumed_trials": 8}) if "trials" in x]
    assert line == "trials     8 in 25 s (8 resumed from the work folder)"
    (line,) = [x for x in summary_lines(SUMMARY) if x.startswith("trials")]
    assert line == "trials     8 in 25 s"


def test_reports_are_packed_into_one_archive(tmp_path):
    """Every tuning report.json of a work folder goes into one archive, as reports/<path>:
    what the GPU machine can send back (8 files), rewritten whole each time."""
    import json
    import os
    import tarfile

    from autokernel_tvm.report import pack_reports

    work = tmp_path / "work"
    for name in ("gemm_a", "gemm_b/genomes"):
        os.makedirs(work / name)
        (work / name / "report.json").write_text(json.dumps({"name": name}))
    (work / "gemm_a" / "kernel.json").write_text("{}")  # a record, not a report
    archive = pack_reports(str(work), str(tmp_path / "reports.tgz"))
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        assert names == ["reports/gemm_a/report.json", "reports/gemm_b/genomes/report.json"]
        assert json.load(tar.extractfile(names[1])) == {"name": "gemm_b/genomes"}
    assert not os.path.exists(archive + ".part")


def test_a_library_hit_is_said_with_the_trials_it_left():
    hit = {"key": "k", "describe": "d", "tflops": 730.4, "date": "2026-12-06", "trials": 4,
           "of": 64}  # fmt: skip
    lines = summary_lines({**SUMMARY, "space_report": {"library_hit": hit}})
    (line,) = [x for x in lines if x.startswith("library")]
    assert line == (
        "library    this workload on this device: 730.4 TFLOP/s (2026-12-06); "
        "4 of 64 trials (hit_trials)"
    )
    assert not any(x.startswith("library") for x in summary_lines(SUMMARY))

# SPDX-License-Identifier: Apache-2.0
"""Direct checks (``benchmarks/gpu/genome_check.py`` lines) as measured genomes: the genome of a
row however it was spelled, and only gated, timed rows of lines that are runs."""

import json

from autokernel_tvm.space.checks import genome_of_row, read_checks
from autokernel_tvm.space.genome import Genome
from autokernel_tvm.workloads import Workload

DECODE = Workload("gemm_nt", (1, 4096, 4096), "float16", "float16")


def test_a_row_names_its_genome_by_params_or_by_genes_over_a_family_default():
    gemv = Genome.default("cuda.gemv").replace(rows=1, unroll=8)
    by_params = {"family": "cuda.gemv", "params": gemv.params.to_json(), "genes": {"rows": 1}}
    assert genome_of_row(by_params) == gemv
    assert genome_of_row({"genes": {"family": "cuda.gemv", "rows": 1, "unroll": 8}}) == gemv
    wgmma = genome_of_row({"genes": {"block_n": 128}})
    assert wgmma.family == "cuda.wgmma" and wgmma.params.block_n == 128


def test_only_gated_timed_rows_of_runs_are_read_with_their_gpu_arch_and_date(tmp_path):
    run = {
        "gpu": "NVIDIA H100 80GB HBM3", "arch": "sm_90a", "date": "2026-12-06T06:10:00Z",
        "workload": DECODE.to_json(),
        "rows": [
            {"genes": {"family": "cuda.gemv"}, "gate": {"passed": True}, "tflops": 1.5, "us": 22.3},
            {"genes": {"family": "cuda.gemv", "rows": 4}, "gate": {"passed": False}, "tflops": 2},
            {"genes": "block_n=64,splits=2", "error": "GenomeError: ..."},
            {"genes": {"family": "cuda.nope"}, "gate": {"passed": True}, "tflops": 9.0},
        ],
    }  # fmt: skip
    path = tmp_path / "genome_check.jsonl"
    path.write_text(json.dumps(run) + "\n[1]\n" + json.dumps({**run, "workload": {}}) + "\n")
    (got,) = read_checks(str(path))
    assert got.genome == Genome.default("cuda.gemv") and got.workload == DECODE
    assert (got.gpu, got.arch, got.date[:10]) == ("NVIDIA H100 80GB HBM3", "sm_90a", "2026-12-06")
    assert (got.tflops, got.latency_us, got.run) == (1.5, 22.3, f"{path}#1")

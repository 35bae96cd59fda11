# SPDX-License-Identifier: Apache-2.0
"""The direct checks of ``benchmarks/gpu/genome_check.py`` as measured genomes: each line of its
``genome_check.jsonl`` is one run (a workload, the GPU, the date) of chosen genomes, each gated
and timed in one process against PyTorch's op. The proposal model trains on them
(:func:`autokernel_tvm.space.ranker.records`) and the library refresh takes their winners
(:func:`autokernel_tvm.space.library.from_checks`) like a tuning run's."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..workloads import Workload
from ..workloads.errors import WorkloadError
from .genome import Genome, GenomeError

#: the files of direct checks under a results folder (``genome_check.jsonl``, renamed per call)
FILES = "genome_check*.jsonl"


@dataclass(frozen=True)
class Checked:
    run: str  # ``path#line``
    gpu: str  # the GPU's full name, as torch gives it
    arch: str  # the target's arch ("" in runs before 2026-12-06, all on sm_90a GPUs)
    date: str  # ISO time of the run
    workload: Workload
    genome: Genome
    tflops: float
    latency_us: float


def genome_of_genes(genes: dict) -> Genome:
    """``genes`` (``genome_check.py --genomes``) over the default of their ``family=``
    (``cuda.wgmma`` without one). Raises :class:`GenomeError` for a family or gene this
    version does not have."""
    rest = dict(genes)
    family = rest.pop("family", "cuda.wgmma")
    return Genome.default(family).replace(**rest)


def genome_of_row(row: dict) -> Genome:
    """The genome a row measured: its ``family`` and ``params`` (rows since 2026-12-06), else
    its genes as the script built them (:func:`genome_of_genes`)."""
    if "params" in row:
        return Genome.from_json({"family": row["family"], "params": row["params"]})
    return genome_of_genes(row["genes"])


def read_checks(path: str) -> list[Checked]:
    """The genomes of ``path``'s runs that passed the gate and were timed; lines that are not
    runs of ``genome_check.py``, and genomes this version cannot spell, are skipped."""
    out = []
    with open(path) as f:
        for i, line in enumerate(f):
            try:
                run = json.loads(line)
                workload = Workload.from_json(run["workload"])
            except (ValueError, KeyError, TypeError, WorkloadError):
                continue
            for row in run.get("rows", []):
                if not (row.get("gate") or {}).get("passed") or not row.get("tflops"):
                    continue
                try:
                    genome = genome_of_row(row)
                except (GenomeError, KeyError, TypeError, AttributeError):
                    continue
                out.append(Checked(
                    f"{path}#{i + 1}", run.get("gpu", ""), run.get("arch", ""),
                    run.get("date", ""), workload, genome, float(row["tflops"]),
                    float(row.get("us") or 0.0),
                ))  # fmt: skip
    return out

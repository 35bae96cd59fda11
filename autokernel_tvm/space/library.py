# SPDX-License-Identifier: Apache-2.0
"""The rule library: the best genomes found, with measured performance, as versioned JSON data.

One file per target and op family: ``schedules/<target>/<family>.json`` (``gemm`` holds every
matmul op, ``conv2d`` the convolutions). Each entry: genome, workload, TFLOP/s, latency, trials,
device, arch, date. New runs read it as a prior (:meth:`Library.prior`): entries for similar
workloads weigh more, so a new shape starts from what earlier runs discovered.
"""

from __future__ import annotations

import datetime
import json
import math
import os

from ..workloads import Workload
from .genome import Genome

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "schedules")
VERSION = 1
MAX_PER_WORKLOAD = 3


def op_family(op: str) -> str:
    return "conv2d" if op.startswith("conv2d") else "gemm"


class Library:
    """Genomes that won earlier runs for one target and op family."""

    def __init__(self, target: str, family: str, root: str = ROOT):
        self.path = os.path.join(root, target, f"{family}.json")
        self.entries: list[dict] = []
        if os.path.exists(self.path):
            with open(self.path) as f:
                data = json.load(f)
            if data.get("version") != VERSION:
                raise ValueError(f"{self.path}: library version {data.get('version')} unknown")
            self.entries = data["entries"]

    @classmethod
    def for_workload(cls, target: str, workload: Workload, root: str = ROOT) -> Library:
        return cls(target, op_family(workload.op), root)

    def record(
        self,
        genome: Genome,
        workload: Workload,
        *,
        tflops: float,
        latency_us: float,
        trials: int,
        device: str,
        arch: str = "",
    ) -> dict:
        """Add a measured genome; keep the best few per workload."""
        entry = {
            "genome": genome.to_json(),
            "key": genome.key,
            "describe": genome.describe(),
            "workload": workload.to_json(),
            "tflops": tflops,
            "latency_us": latency_us,
            "trials": trials,
            "device": device,
            "arch": arch,
            "date": datetime.date.today().isoformat(),
        }
        same = [e for e in self.entries if e["workload"]["name"] == workload.name]
        rest = [e for e in self.entries if e["workload"]["name"] != workload.name]
        same = [e for e in same if e["key"] != genome.key] + [entry]
        same.sort(key=lambda e: -e["tflops"])
        self.entries = rest + same[:MAX_PER_WORKLOAD]
        return entry

    def save(self) -> str:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        entries = sorted(self.entries, key=lambda e: (e["workload"]["name"], -e["tflops"]))
        with open(self.path, "w") as f:
            json.dump({"version": VERSION, "entries": entries}, f, indent=1)
            f.write("\n")
        return self.path

    def prior(self, workload: Workload, limit: int = 3) -> list[tuple[Genome, float]]:
        """Library genomes ranked for ``workload``: weight = similarity x relative speed."""
        scored: dict[str, tuple[Genome, float]] = {}
        best = {}
        for e in self.entries:
            name = e["workload"]["name"]
            best[name] = max(best.get(name, 0.0), e["tflops"])
        for e in self.entries:
            rel = e["tflops"] / best[e["workload"]["name"]] if best[e["workload"]["name"]] else 0
            weight = similarity(workload, Workload.from_json(e["workload"])) * rel
            genome = Genome.from_json(e["genome"])
            if weight > scored.get(genome.key, (None, 0.0))[1]:
                scored[genome.key] = (genome, weight)
        ranked = sorted(scored.values(), key=lambda gw: -gw[1])
        return [gw for gw in ranked if gw[1] > 0][:limit]


def similarity(a: Workload, b: Workload) -> float:
    """1 for the same workload, less for other shapes / layouts / dtypes (log-shape distance)."""
    if op_family(a.op) != op_family(b.op):
        return 0.0
    score = 1.0 if a.op == b.op else 0.6
    score *= 1.0 if a.dtype == b.dtype else 0.5
    dist = sum(abs(math.log2(x) - math.log2(y)) for x, y in zip(a.shape, b.shape) if x and y)
    return score / (1.0 + 0.25 * dist)

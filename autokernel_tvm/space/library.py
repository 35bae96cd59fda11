# SPDX-License-Identifier: Apache-2.0
"""The rule library: the best genomes found, with measured performance, as versioned JSON data.

One file per target and op family: ``<root>/<target>/<family>.json`` (``gemm`` holds every
matmul op, ``conv2d`` the convolutions). Each entry: genome, workload, TFLOP/s, latency, trials,
device, arch, date. New runs read it as a prior (:func:`prior`): entries for similar workloads
weigh more, so a new shape starts from what earlier runs discovered.

Two roots are read: the shipped library (package data ``autokernel_tvm.schedules``, built from
the repository's ``schedules/``; ``AUTOKERNEL_LIBRARY`` points elsewhere) is read-only, and the
user library (``<cache dir>/library``, or ``TuneConfig.user_library_dir``) is where runs write
their winners, never into the source tree or the installed package. Format-1 files (genomes as
the old 18-field union) are migrated on load, per family (:meth:`Family.from_legacy`).
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os

from ..database import atomic_write_json
from ..workloads import Workload
from ..workloads.dtypes import np_dtype
from ..workloads.errors import WorkloadError
from .genome import Genome, GenomeError

log = logging.getLogger("autokernel_tvm")
VERSION = 2
MAX_PER_WORKLOAD = 3


class LibraryError(ValueError):
    """A library file that cannot be read; the message names the file and what is wrong."""


def shipped_root() -> str:
    """The shipped library: package data when installed, else ``schedules/`` of the checkout."""
    from importlib import resources

    try:
        root = str(resources.files("autokernel_tvm.schedules"))
    except ModuleNotFoundError:  # a source checkout on PYTHONPATH, not installed
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        root = os.path.join(here, "schedules")
    return root


def roots(config) -> list[str]:
    """The library roots a run reads: the read-only one (shipped, or ``library_dir``), then the
    user library."""
    return list(dict.fromkeys([config.library_dir or shipped_root(), user_root(config)]))


def user_root(config) -> str:
    """Where a run writes its winners: ``user_library_dir``, else ``<cache dir>/library``."""
    from ..config import cache_dir

    return config.user_library_dir or os.path.join(cache_dir(), "library")


OP_FAMILIES = ("gemm", "conv2d")  # one library file each


def op_family(op: str) -> str:
    return "conv2d" if op.startswith("conv2d") else "gemm"


class Library:
    """Genomes that won earlier runs for one target and op family, in one file."""

    def __init__(self, target: str, family: str, root: str):
        self.path = os.path.join(root, target, f"{family}.json")
        self.entries: list[dict] = []
        if os.path.exists(self.path):
            self.entries = _read(self.path)

    @classmethod
    def for_workload(cls, target: str, workload: Workload, root: str) -> Library:
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
        date: str = "",
    ) -> dict:
        """Add a measured genome (``date``: when it was measured, default today); keep the best
        few per workload."""
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
            "date": date or datetime.date.today().isoformat(),
        }
        same = [e for e in self.entries if e["workload"]["name"] == workload.name]
        rest = [e for e in self.entries if e["workload"]["name"] != workload.name]
        same = [e for e in same if e["key"] != genome.key] + [entry]
        same.sort(key=lambda e: -e["tflops"])
        self.entries = rest + same[:MAX_PER_WORKLOAD]
        return entry

    def save(self) -> str:
        """Write the file atomically (a killed run never leaves half a library)."""
        entries = sorted(self.entries, key=lambda e: (e["workload"]["name"], -e["tflops"]))
        return atomic_write_json(self.path, {"version": VERSION, "entries": entries})


def _read(path: str) -> list[dict]:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise LibraryError(f"{path}: not a rule library ({err}); delete or fix it") from err
    version = data.get("version") if isinstance(data, dict) else None
    if version not in (1, VERSION):
        raise LibraryError(f"{path}: library version {version!r} unknown (this is {VERSION})")
    entries = data["entries"]
    if version == 1:
        for entry in entries:
            genome = Genome.from_legacy(entry["genome"])
            entry.update(genome=genome.to_json(), key=genome.key, describe=genome.describe())
        log.info(
            "%s: migrated %d format-1 entries (saved as format 2 on write)", path, len(entries)
        )
    return entries


def prior(
    target: str, workload: Workload, roots, families=None, limit: int = 3
) -> list[tuple[Genome, float]]:
    """Library genomes of every root ranked for ``workload``: weight = similarity x relative
    speed (to the best entry of the same workload); only ``families`` when given."""
    entries = [e for root in roots for e in Library.for_workload(target, workload, root).entries]
    best: dict[str, float] = {}
    for e in entries:
        name = e["workload"]["name"]
        best[name] = max(best.get(name, 0.0), e["tflops"])
    scored: dict[str, tuple[Genome, float]] = {}
    for e in entries:
        genome = Genome.from_json(e["genome"])
        if families is not None and genome.family not in families:
            continue
        top = best[e["workload"]["name"]]
        weight = similarity(workload, Workload.from_json(e["workload"])) * (
            e["tflops"] / top if top else 0.0
        )
        if weight > scored.get(genome.key, (None, 0.0))[1]:
            scored[genome.key] = (genome, weight)
    ranked = sorted(scored.values(), key=lambda gw: -gw[1])
    return [gw for gw in ranked if gw[1] > 0][:limit]


def hit(target: str, workload: Workload, roots, device: str, families) -> dict | None:
    """The fastest entry of any root for this very workload measured on ``device`` (the GPU's
    or CPU's name) whose genome is a whole kernel of one of ``families`` (objects): what a
    rerun, or a model's layer met before, finds. None where there is none. A design space's
    genome is no hit: its kernel is a sample of the space, not the entry itself."""
    whole = {f.name for f in families if f.whole_kernels}
    found = [
        e for root in roots for e in Library.for_workload(target, workload, root).entries
        if e["workload"]["name"] == workload.name and e.get("device") == device
        and e["genome"].get("family") in whole
    ]  # fmt: skip
    return max(found, key=lambda e: e["tflops"], default=None)


def similarity(a: Workload, b: Workload) -> float:
    """1 for the same workload, less for other shapes / layouts / dtypes (log-shape distance).
    Another input or output dtype of the same width (fp16 / bf16) costs little: the same tiles
    fit, and the H200 winners of both at one shape share block width, schedule and store on
    most shapes of the library; another width costs more (an fp32 C is twice the bytes to
    stage and store; an fp32 or fp8 input another K step)."""
    if op_family(a.op) != op_family(b.op):
        return 0.0
    score = 1.0 if a.op == b.op else 0.6
    score *= _dtype_likeness(a.dtype, b.dtype, 0.5) * _dtype_likeness(a.out_dtype, b.out_dtype, 0.8)
    dist = sum(abs(math.log2(x) - math.log2(y)) for x, y in zip(a.shape, b.shape) if x and y)
    return score / (1.0 + 0.25 * dist)


def _dtype_likeness(a: str, b: str, other_width: float) -> float:
    if a == b:
        return 1.0
    return 0.9 if np_dtype(a).itemsize == np_dtype(b).itemsize else other_width


def from_reports(paths, target: str, since: str = "") -> list[dict]:
    """The verified winners of the tuning reports at ``paths`` (``report.json`` of
    ``scripts/tune.py`` and the suites) for ``target``, measured on or after ``since``
    (YYYY-MM-DD), as keyword arguments of :meth:`Library.record` plus ``genome`` and
    ``workload``. A report counts where the gate passed and the run recorded its library entry
    (device, arch, date)."""
    from ..report import read_reports

    out = []
    for _, report in read_reports(paths):
        if report.get("target") != target:
            continue
        entry = (report.get("space_report") or {}).get("library_entry")
        if not entry or not report.get("genome") or not (report.get("verify") or {}).get("passed"):
            continue
        if entry.get("date", "") < since:
            continue
        try:
            genome = Genome.from_json(report["genome"])
            workload = Workload.from_json(report["workload"])
        except (GenomeError, WorkloadError, KeyError, TypeError):
            continue  # a family, gene or op this version no longer has
        out.append({
            "genome": genome,
            "workload": workload,
            "tflops": float(report["tflops"]),
            "latency_us": float(report["best_latency_us"]),
            "trials": int(report["trials"]),
            "device": entry["device"],
            "arch": entry.get("arch", ""),
            "date": entry["date"],
        })  # fmt: skip
    return out


def from_checks(paths, target: str, since: str = "") -> list[dict]:
    """The fastest gated genome of each run in the direct checks at ``paths`` (lines of
    ``genome_check.jsonl``, :func:`autokernel_tvm.space.checks.read_checks`; CUDA only) measured
    on or after ``since``, like :func:`from_reports`' winners: a genome the tuner's few trials
    did not reach but a check timed faster then seeds later runs."""
    from .checks import read_checks

    if target != "cuda":
        return []
    best: dict[str, object] = {}
    for path in sorted(paths):
        for c in read_checks(path):
            if c.date[:10] >= since and c.tflops > getattr(best.get(c.run), "tflops", 0.0):
                best[c.run] = c
    return [
        {"genome": c.genome, "workload": c.workload, "tflops": c.tflops,
         "latency_us": c.latency_us, "trials": 1, "device": c.gpu,
         "arch": c.arch, "date": c.date[:10]}
        for c in best.values()
    ]  # fmt: skip


def refresh(root: str, target: str, found: list[dict], since: str = "") -> dict:
    """Rewrite the libraries under ``root`` for ``target``: their entries measured on or after
    ``since`` plus the winners ``found`` (:func:`from_reports`), the best few per workload.
    Returns ``{family file: {"kept", "added", "dropped", "workloads"}}``."""
    summary = {}
    for family in OP_FAMILIES:
        lib = Library(target, family, root)
        if not os.path.exists(lib.path) and not any(
            op_family(f["workload"].op) == family for f in found
        ):
            continue
        before = {(e["workload"]["name"], e["key"]) for e in lib.entries}
        lib.entries = [e for e in lib.entries if e.get("date", "") >= since]
        for f in sorted(found, key=lambda f: f["tflops"]):  # a genome's fastest run last: kept
            if op_family(f["workload"].op) == family:
                lib.record(**f)
        after = {(e["workload"]["name"], e["key"]) for e in lib.entries}
        lib.save()
        summary[family] = {
            "kept": len(before & after),
            "added": len(after - before),
            "dropped": len(before - after),
            "workloads": len({name for name, _ in after}),
        }
    return summary

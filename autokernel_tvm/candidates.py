# SPDX-License-Identifier: Apache-2.0
"""Sample candidates from a design space and build them, without a device.

This is how code generation is checked on a machine with no GPU: sample the design space as
MetaSchedule's search would (sketch + random decisions + postprocessors), build each candidate
(for CUDA with nvcc to an sm_XX cubin), and count what fails and why, and which tensor-core
instructions the generated code contains.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import tvm
from tvm.s_tir import meta_schedule as ms

from .builder import build_module, cuda_source, failure_reason
from .families import DesignSpace, Kernel, get

#: Instruction markers counted in generated device code.
MARKERS = {
    "mma.sync": r"mma\.sync",
    "ldmatrix": r"ldmatrix",
    "cp.async": r"cp\.async",
    "wmma": r"wmma::",
    "v_mfma": r"v_mfma",
    "wgmma": r"wgmma\.mma_async",
    "tma": r"cp\.async\.bulk\.tensor",
}


@dataclass
class CandidateReport:
    """How many sampled candidates built, why the others failed, and what code they hold."""

    sampled: int = 0
    built: int = 0
    failures: Counter = field(default_factory=Counter)
    markers: Counter = field(default_factory=Counter)
    sources: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "sampled": self.sampled,
            "built": self.built,
            "failed": self.sampled - self.built,
            "failures": dict(self.failures),
            "candidates_with_marker": dict(self.markers),
        }


def build_only(tuner, workload, n: int, stock: bool = False) -> dict:
    """What ``scripts/tune.py --build-only N`` reports: ``n`` sampled candidates of the first
    design-space genome the search would try, built, and up to ``n`` whole kernels, built."""
    if stock:
        report = sample_candidates(workload.ir_module(), tuner.target, "post-order-apply", n)
        return {"space": "stock", **report.to_json()}
    out: dict = {"families": tuner.families_report(workload)}
    search = tuner.search(workload)
    proposals = tuner.candidates(workload, 4 * n, search)
    if not proposals:  # what tuning would do instead, and why
        out["nothing_to_build"] = tuner.fallback_reason(workload, search)
    spaces = [(g, c) for g, c in proposals if isinstance(c, DesignSpace)][:1]
    kernels = [(g, c) for g, c in proposals if isinstance(c, Kernel)][:n]
    for genome, candidate in spaces:
        family = get(genome.family)
        report = sample_candidates(candidate.mod, tuner.target, candidate.space, n, family=family)
        out["design_space"] = {"genome": genome.describe(), **report.to_json()}
    if kernels:
        out["kernels"] = build_kernels([c.mod for _, c in kernels], tuner.target).to_json()
        out["kernels"]["genomes"] = [genome.describe() for genome, _ in kernels]
    return out


def sample_candidates(
    mod: tvm.IRModule,
    target: tvm.target.Target,
    space,
    n: int,
    seed: int = 0,
    keep_source=False,
    family=None,
) -> CandidateReport:
    """Sample ``n`` candidates of ``space`` for ``mod`` and build each one.

    Parameters
    ----------
    space : SpaceGenerator or str
        A MetaSchedule space generator (``"post-order-apply"`` for the stock space).
    family : ScheduleFamily, optional
        The family whose design space this is: a candidate its template did not schedule (an
        untiled fallback) is counted as a failure with that reason, not as built.
    """
    report = CandidateReport()
    for i in range(n):
        ctx = ms.TuneContext(
            mod=mod, target=target, space_generator=space, rand_state=seed * 100003 + i + 1
        )
        sketches = ctx.generate_design_space()
        report.sampled += 1
        if not sketches:
            report.failures["space: no sketch"] += 1
            continue
        sch = sketches[i % len(sketches)]
        failed = next((p for p in ctx.space_generator.postprocs if not p.apply(sch)), None)
        if failed is not None:
            report.failures[f"postproc: {type(failed).__name__}"] += 1
            continue
        if family is not None and not family.realised(sch.trace):
            report.failures[f"not realised: {family.name} left the block untiled"] += 1
            continue
        _build_and_count(report, sch.mod, target, keep_source)
    return report


def build_kernels(mods, target: tvm.target.Target, keep_source=False) -> CandidateReport:
    """Build whole-kernel candidates (``cuda.wgmma``: no decisions left to sample)."""
    report = CandidateReport()
    for mod in mods:
        report.sampled += 1
        _build_and_count(report, mod, target, keep_source)
    return report


def _build_and_count(report: CandidateReport, mod, target, keep_source: bool) -> None:
    """Build one candidate into ``report``: a failure by reason, or its code markers."""
    try:
        exe = build_module(mod, target, check_nvcc=target.kind.name == "cuda")
    except Exception as err:  # a failed candidate is data
        report.failures["build: " + failure_reason(f"{type(err).__name__}: {err}")] += 1
        return
    report.built += 1
    source = device_source(exe, target)
    for name, pattern in MARKERS.items():
        if re.search(pattern, source):
            report.markers[name] += 1
    if keep_source:
        report.sources.append(source)


def device_source(exe, target: tvm.target.Target) -> str:
    """Generated device code: CUDA C for cuda, AMDGPU assembly for rocm, '' for llvm."""
    kind = target.kind.name
    if kind == "cuda":
        return cuda_source(exe)
    if kind == "rocm":
        for sub in exe.mod.imports:
            for fmt in ("asm", "s", ""):
                try:
                    text = sub.inspect_source(fmt)
                except Exception:
                    continue
                if text:
                    return text
    return ""

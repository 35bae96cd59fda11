# SPDX-License-Identifier: Apache-2.0
"""Which genomes are legal for a target and workload.

A grammar asks each registered family whether it applies to the workload on the target
(:meth:`Family.applies`) and whether a parameter value is legal (:meth:`Family.check`, which
reads the target's hardware limits). ``check`` raises
:class:`~autokernel_tvm.families.GenomeError` whose ``reason`` is a short key; the generator
counts rejections by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..families import Family, GenomeError, all_families, get
from ..workloads import Workload
from .genome import Genome


@dataclass(frozen=True)
class Grammar:
    """The legal genomes for one TVM target."""

    target: object  # tvm.target.Target (kept opaque: a grammar only hands it to families)

    def families(self, workload: Workload) -> list[Family]:
        """Families that can schedule ``workload`` here, in preference order (empty: the
        stock space; :meth:`why_not` says why)."""
        return [f for f in all_families() if f.applies(workload, self.target) is None]

    def why_not(self, workload: Workload) -> dict[str, str]:
        """Family name -> why it does not apply to ``workload`` here."""
        reasons = {f.name: f.applies(workload, self.target) for f in all_families()}
        return {name: why for name, why in reasons.items() if why is not None}

    def check(self, genome: Genome, workload: Workload) -> Genome:
        """Return ``genome`` if legal for ``workload`` here, else raise GenomeError(reason)."""
        family = get(genome.family)
        why = family.applies(workload, self.target)
        if why is not None:
            raise GenomeError("family-not-for-target", f"{genome.family}: {why}")
        family.check(genome.params, workload, self.target)
        return genome

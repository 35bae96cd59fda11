# SPDX-License-Identifier: Apache-2.0
"""The generative model over kernel families.

Read in this order: ``genome.py`` (a genome is ``(family, params)``), ``grammar.py`` (legality
per target, asked of each family), ``generator.py`` (the generative model over genes),
``ranker.py`` (the learned proposal model that picks among the generator's draws), ``search.py``
(which genome to measure next, successive halving), ``library.py`` (the shipped and user rule
libraries). The families themselves are in :mod:`autokernel_tvm.families`.
"""

from .genome import Genome, GenomeError

__all__ = ["Genome", "GenomeError", "task_design_space"]


def task_design_space(target, roots):
    """``(space, label)`` for an arbitrary task module (Relax tasks, fused TIR functions):
    ``"generative"`` or ``"stock"``.

    On llvm every reduction block gets the ``cpu.tile`` design space of the libraries' best
    genome for GEMM-like work (or the family default); elsewhere the task keeps the stock space,
    because the tensor-core templates match plain GEMM blocks only.
    """
    from ..families import get
    from .library import Library

    if target.kind.name != "llvm":
        return "post-order-apply", "stock"
    family = get("cpu.tile")
    entries = [e for root in roots for e in Library("llvm", "gemm", root).entries]
    genomes = [Genome.from_json(e["genome"]) for e in sorted(entries, key=lambda e: -e["tflops"])]
    params = next((g.params for g in genomes if g.family == family.name), family.default)
    from ..families.design_space import design_space

    return design_space(family, params, target), "generative"

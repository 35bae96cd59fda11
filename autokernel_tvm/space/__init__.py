# SPDX-License-Identifier: Apache-2.0
"""The generative search-space module.

Read in this order: ``genome.py`` (the rule genome value), ``grammar.py`` (legality per target),
``rules/`` (genome -> ScheduleRule / SpaceGenerator), ``generator.py`` (the learned proposal
model), ``search.py`` (the successive-halving loop the tuner runs), ``library.py`` (the shipped
rule library in ``schedules/``).
"""

from .genome import Genome, GenomeError, Staging

__all__ = ["Genome", "GenomeError", "Staging", "space_for"]


def space_for(tuner, mod):
    """``(space, label)``: the design space for an arbitrary task module (Relax tasks, fused TIR
    functions) and ``"generative"`` or ``"stock"``.

    On llvm every reduction block gets the ``cpu.tile`` rule of the library's best genome for
    GEMM-like work (or the default genome); elsewhere the task keeps the stock space, because
    the tensor-core templates match plain GEMM blocks only.
    """
    from .design_space import space_for as genome_space
    from .grammar import default_genome
    from .library import ROOT, Library

    if tuner.target.kind.name != "llvm":
        return tuner.stock_space(), "stock"
    library = Library(tuner.config.target, "gemm", tuner.config.library_dir or ROOT)
    best = sorted(library.entries, key=lambda e: -e["tflops"])
    genome = Genome.from_json(best[0]["genome"]) if best else default_genome("cpu.tile")
    return genome_space(genome, tuner.target), "generative"

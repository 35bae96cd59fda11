# SPDX-License-Identifier: Apache-2.0
"""The generative search-space module.

Read in this order: ``genome.py`` (the rule genome value), ``grammar.py`` (legality per target),
``rules/`` (genome -> ScheduleRule / SpaceGenerator), ``generator.py`` (the learned proposal
model), ``search.py`` (the successive-halving loop the tuner runs), ``library.py`` (the shipped
rule library in ``schedules/``).
"""

from .genome import Genome, GenomeError, Staging

__all__ = ["Genome", "GenomeError", "Staging"]

# SPDX-License-Identifier: Apache-2.0
"""Kernel families: one folder each, one registry line each.

Read :mod:`.base` (the :class:`~.base.Family` interface) first, then any family folder. A new
family is a folder with a ``FAMILY`` object and one line in :data:`MODULES`; nothing else in
the package names families. The order of :data:`MODULES` is the order in which families are
offered for a workload (a whole-kernel family first where it applies).
"""

from __future__ import annotations

import importlib

from .base import DesignSpace, Family, GenomeError, Kernel, Params, Rejection

#: Registry: family folder modules, in preference order.
MODULES = (
    "cuda_gemv",
    "cuda_wgmma",
    "cuda_mma",
    "cpu_tile",
    "rocm_mfma",
)
_REGISTRY: dict[str, Family] = {}

__all__ = ["DesignSpace", "Family", "GenomeError", "Kernel", "Params", "Rejection"]
__all__ += ["all_families", "get"]


def all_families() -> list[Family]:
    """Every registered family, in preference order (imports the family folders once)."""
    if not _REGISTRY:
        for module in MODULES:
            family = importlib.import_module(f"{__name__}.{module}").FAMILY
            if family.name in _REGISTRY:
                raise KeyError(f"family {family.name!r} is registered twice")
            _REGISTRY[family.name] = family
    return list(_REGISTRY.values())


def get(name: str) -> Family:
    """The family called ``name``; an unknown name lists the known ones."""
    families = {f.name: f for f in all_families()}
    if name not in families:
        raise GenomeError("bad-family", f"{name!r}; known families: {sorted(families)}")
    return families[name]

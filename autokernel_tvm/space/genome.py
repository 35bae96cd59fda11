# SPDX-License-Identifier: Apache-2.0
"""The genome: one point of the generative space, ``(family, params)``.

``family`` names a registered kernel family (:mod:`autokernel_tvm.families`) and ``params`` is a
value of that family's frozen parameter type, whose fields are exactly the genes the generator
samples and the choices that change the generated code. Numeric tile sizes of design-space
families are not in a genome: they stay MetaSchedule sampling decisions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..families import GenomeError, Params, Rejection, get

__all__ = ["Genome", "GenomeError", "Rejection", "LEGACY_FIELDS"]

#: Fields of the format-1 genome (one union of every family's fields): a dict with them is an
#: old library entry, migrated by the family's ``from_legacy``.
LEGACY_FIELDS = ("structure", "binds", "intrinsic", "warps", "a", "b", "accumulator")


@dataclass(frozen=True)
class Genome:
    """A family name and a value of its parameter type, validated on construction."""

    family: str
    params: Params

    def __post_init__(self) -> None:
        family = get(self.family)
        if isinstance(self.params, dict):
            object.__setattr__(self, "params", family.params.from_json(self.params))
        if type(self.params) is not family.params:
            raise GenomeError(
                "bad-params", f"{self.family} takes {family.params.__name__}, got {self.params!r}"
            )

    @classmethod
    def default(cls, family: str) -> Genome:
        return cls(family, get(family).default)

    def to_json(self) -> dict:
        return {"family": self.family, "params": self.params.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> Genome:
        if set(data) != {"family", "params"}:
            if set(LEGACY_FIELDS) <= set(data):
                return cls.from_legacy(data)
            raise GenomeError(
                "unknown-field", f"a genome is {{family, params}}, got {sorted(data)}"
            )
        return cls(data["family"], data["params"])

    @classmethod
    def from_legacy(cls, data: dict) -> Genome:
        """Migrate a format-1 genome (the 18-field union of every family's fields)."""
        family = get(data["family"])
        return cls(family.name, family.from_legacy(data))

    def replace(self, **changes) -> Genome:
        return Genome(self.family, self.params.replace(**changes))

    @property
    def key(self) -> str:
        """A short stable id (hash of the JSON form), used for directories and the library."""
        digest = hashlib.sha1(f"{self.family}:{self.params.text()}".encode()).hexdigest()[:10]
        return self.family.replace(".", "-") + "-" + digest

    def describe(self) -> str:
        return f"{self.family} {get(self.family).describe(self.params)}"

# SPDX-License-Identifier: Apache-2.0
"""Rewrite proposals as values: a kind, integer parameters and provenance (see the package)."""

from __future__ import annotations

from dataclasses import dataclass

from ..families.base import Rejection

KINDS = {  # kind -> required integer parameters
    "implicit_gemm": ("m", "n", "k"),
    "pad": ("m", "n", "k"),
    "split_k": ("splits",),
}


class RewriteError(Rejection):
    """A proposal that is invalid, or that does not apply to a workload; ``reason`` is a key."""


@dataclass(frozen=True)
class Provenance:
    """Who proposed a rewrite and why: ``rule`` (the proposing rule), ``why`` (one sentence)."""

    rule: str
    why: str


@dataclass(frozen=True)
class RewriteProposal:
    """One rewrite: ``kind`` with integer ``params`` (a dict is accepted and frozen sorted)."""

    kind: str
    params: tuple[tuple[str, int], ...]
    provenance: Provenance

    def __post_init__(self) -> None:
        params = self.params.items() if isinstance(self.params, dict) else self.params
        object.__setattr__(self, "params", tuple(sorted((str(k), int(v)) for k, v in params)))
        if isinstance(self.provenance, dict):
            object.__setattr__(self, "provenance", Provenance(**self.provenance))
        if self.kind not in KINDS:
            raise RewriteError("bad-kind", f"{self.kind!r} not in {sorted(KINDS)}")
        names = sorted(k for k, _ in self.params)
        if names != sorted(KINDS[self.kind]):
            raise RewriteError("bad-params", f"{self.kind} takes {KINDS[self.kind]}, got {names}")
        if min(v for _, v in self.params) < 1:
            raise RewriteError("bad-params", f"{self.kind}: parameters must be >= 1: {self.params}")

    def param(self, name: str) -> int:
        return dict(self.params)[name]

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "params": dict(self.params),
            "provenance": {"rule": self.provenance.rule, "why": self.provenance.why},
        }

    @classmethod
    def from_json(cls, data: dict) -> RewriteProposal:
        unknown = set(data) - {"kind", "params", "provenance"}
        if unknown:
            raise RewriteError("unknown-field", str(sorted(unknown)))
        return cls(data["kind"], data["params"], data["provenance"])

    def describe(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.kind}({params}) by {self.provenance.rule}"

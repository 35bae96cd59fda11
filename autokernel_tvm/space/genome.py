# SPDX-License-Identifier: Apache-2.0
"""The rule genome: a frozen value describing the STRUCTURE of a schedule rule.

A genome says how a reduction block is tiled and where its operands live, never the numeric tile
sizes: those stay sampling instructions (``sample_perfect_tile``, ``sample_categorical``) in the
rule it compiles to, so MetaSchedule's evolutionary search and mutators still tune them.

Fields (each one a choice the generator learns a distribution over):

* ``family``: which rule template realises it (``cpu.tile``, ``cuda.mma``, ``cuda.wgmma``,
  ``rocm.mfma``).
* ``structure``: multi-level tiling, one letter per level (``S`` spatial, ``R`` reduction), e.g.
  ``SSRSRS``; ``binds``: what the spatial levels bind to, outermost first (``parallel``,
  ``blockIdx``, ``threadIdx``, ``warp``, ``serial``).
* ``intrinsic``: ``none``, ``mma.m16n8k16``, ``mma.m16n8k8``, ``wgmma.m64n{256,128,64}k16``,
  ``mfma.16x16x16``.
* ``warps``: warps per block along M and N (tensor-core families).
* ``a``, ``b``: :class:`Staging` of each operand (scope, tile level, vector width, layout).
* ``accumulator`` (``local``/``global``) and ``write_back`` (``direct``/``shared``).
* ``stages`` (software-pipeline depth, 0 = none) and ``async_copy`` (cp.async).
* ``raster``: block rasterization group for L2 reuse (0 = none); ``split_k``: K split factor.
* ``unroll``: the unroll depths the search may pick from; ``vector_lanes``: innermost vector width
  (CPU); ``epilogue``: ``inline`` (fused into the write-back) or ``separate``.
* ``frag_pipeline``: double-buffer the tensor-core fragments in registers (prefetch the next
  ldmatrix while the mma runs).
* ``micro``: the register block (rows, vectors per row) of the innermost tile, fixed by the
  structure so every candidate has a full micro-kernel; ``(0, 0)`` leaves it to sampling.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

FAMILIES = ("cpu.tile", "cuda.mma", "cuda.wgmma", "rocm.mfma")
SCOPES = ("global", "shared", "shared.dyn", "local")
LAYOUTS = ("plain", "pad", "swizzle", "pack")
INTRINSICS = (
    "none",
    "mma.m16n8k16",
    "mma.m16n8k8",
    "wgmma.m64n256k16",
    "wgmma.m64n128k16",
    "wgmma.m64n64k16",
    "mfma.16x16x16",
)
BINDS = ("parallel", "blockIdx", "threadIdx", "warp", "serial")


class Rejection(ValueError):
    """A value a rule refuses; ``reason`` is a short key that rejections are counted by."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class GenomeError(Rejection):
    """An invalid genome (the generator counts rejections by ``reason``)."""


@dataclass(frozen=True)
class Staging:
    """Where one operand is staged before the compute.

    ``scope``: ``global`` (read in place), ``shared``, ``shared.dyn`` or ``local`` (registers,
    through ldmatrix on tensor cores). ``level``: index of the tile level the copy is placed at.
    ``vector_bytes``: copy width. ``layout``: ``plain``, ``pad`` (storage alignment offset),
    ``swizzle`` (permuted, conflict-free ldmatrix) or ``pack`` (a layout transform of the operand
    so that the innermost tile is contiguous).
    """

    scope: str = "shared"
    level: int = 0
    vector_bytes: int = 16
    layout: str = "plain"

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise GenomeError("bad-scope", f"{self.scope!r} not in {SCOPES}")
        if self.layout not in LAYOUTS:
            raise GenomeError("bad-layout", f"{self.layout!r} not in {LAYOUTS}")
        if self.vector_bytes not in (0, 4, 8, 16, 32, 64):
            raise GenomeError("bad-vector", f"vector_bytes {self.vector_bytes}")
        if self.level < 0:
            raise GenomeError("bad-level", f"level {self.level}")


@dataclass(frozen=True)
class Genome:
    """One schedule-rule structure; validated on construction (see module doc)."""

    family: str
    structure: str = "SSRSRS"
    binds: tuple[str, ...] = ("parallel", "serial", "serial", "serial")
    intrinsic: str = "none"
    warps: tuple[int, int] = (1, 1)
    a: Staging = field(default_factory=lambda: Staging("global", 0, 0))
    b: Staging = field(default_factory=lambda: Staging("global", 0, 0))
    accumulator: str = "local"
    write_back: str = "direct"
    stages: int = 0
    async_copy: bool = False
    raster: int = 0
    split_k: int = 1
    unroll: tuple[int, ...] = (0, 16, 64, 512)
    vector_lanes: int = 16
    epilogue: str = "inline"
    micro: tuple[int, int] = (0, 0)
    frag_pipeline: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "binds", tuple(self.binds))
        object.__setattr__(self, "warps", tuple(self.warps))
        object.__setattr__(self, "unroll", tuple(self.unroll))
        object.__setattr__(self, "micro", tuple(self.micro))
        for name in ("a", "b"):
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, Staging(**value))
        if self.family not in FAMILIES:
            raise GenomeError("bad-family", f"{self.family!r} not in {FAMILIES}")
        if not self.structure or set(self.structure) - {"S", "R"}:
            raise GenomeError("bad-structure", f"{self.structure!r} must be letters S and R")
        if self.structure.count("S") != len(self.binds):
            raise GenomeError(
                "binds-mismatch",
                f"{len(self.binds)} binds for {self.structure.count('S')} spatial levels",
            )
        if set(self.binds) - set(BINDS):
            raise GenomeError("bad-bind", f"{self.binds} has a name outside {BINDS}")
        if self.intrinsic not in INTRINSICS:
            raise GenomeError("bad-intrinsic", f"{self.intrinsic!r} not in {INTRINSICS}")
        if self.accumulator not in ("local", "global"):
            raise GenomeError("bad-accumulator", self.accumulator)
        if self.write_back not in ("direct", "shared"):
            raise GenomeError("bad-write-back", self.write_back)
        if self.epilogue not in ("inline", "separate"):
            raise GenomeError("bad-epilogue", self.epilogue)
        if not 0 <= self.stages <= 8:
            raise GenomeError("bad-stages", str(self.stages))
        if self.split_k < 1 or self.raster < 0 or min(self.warps) < 1:
            raise GenomeError("bad-count", f"split_k={self.split_k} raster={self.raster}")
        if not self.unroll or min(self.unroll) < 0:
            raise GenomeError("bad-unroll", str(self.unroll))
        if len(self.micro) != 2 or min(self.micro) < 0:
            raise GenomeError("bad-micro", str(self.micro))

    # -- values ---------------------------------------------------------------------------
    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Genome:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise GenomeError("unknown-field", f"{sorted(unknown)}")
        return cls(**data)

    def replace(self, **changes) -> Genome:
        return dataclasses.replace(self, **changes)

    @property
    def key(self) -> str:
        """A short stable id (hash of the JSON form), used for directories and the library."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return self.family.replace(".", "-") + "-" + hashlib.sha1(text.encode()).hexdigest()[:10]

    def describe(self) -> str:
        parts = [self.family, self.structure, "/".join(self.binds)]
        if self.intrinsic != "none":
            parts += [self.intrinsic, f"warps={self.warps[0]}x{self.warps[1]}"]
        parts += [f"A={self.a.scope}:{self.a.layout}", f"B={self.b.scope}:{self.b.layout}"]
        if self.stages:
            parts.append(f"stages={self.stages}{'+async' if self.async_copy else ''}")
        if self.raster:
            parts.append(f"raster={self.raster}")
        if self.split_k > 1:
            parts.append(f"splitk={self.split_k}")
        parts += [f"wb={self.write_back}", f"acc={self.accumulator}", f"vec={self.vector_lanes}"]
        if any(self.micro):
            parts.append(f"micro={self.micro[0]}x{self.micro[1]}")
        return " ".join(parts)

# SPDX-License-Identifier: Apache-2.0
"""The interface every kernel family implements, and the values it trades in.

Read :class:`Family` first. A family is one folder under ``families/`` holding everything about
one way of producing kernels: its parameters (a frozen :class:`Params` subclass whose fields are
exactly the genes the generator samples), their domain and default, the legality check (reading
hardware limits from the target), and how a parameter value becomes a candidate: either a
MetaSchedule design space (:class:`DesignSpace`: a schedule template applied to the reduction
block, the target's stock rules for the rest) or one whole kernel (:class:`Kernel`). Grammar,
generator, library, search and tuner only talk to this interface.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing
from dataclasses import dataclass
from typing import Any, ClassVar


class Rejection(ValueError):
    """A value a family refuses; ``reason`` is a short key that rejections are counted by."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class GenomeError(Rejection):
    """Invalid family parameters, or parameters illegal for a workload on a target."""


@dataclass(frozen=True)
class Params:
    """Base of a family's parameters: frozen, JSON round-trip, every field a gene.

    Subclasses are frozen dataclasses; tuple-typed fields accept lists (JSON) and are frozen to
    tuples. ``__post_init__`` of a subclass validates and raises :class:`GenomeError`.
    """

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list) or (
                str(hints.get(f.name, "")).startswith("tuple") and not isinstance(value, tuple)
            ):
                object.__setattr__(self, f.name, tuple(value))

    def to_json(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: dict) -> Params:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GenomeError("unknown-field", f"{cls.__qualname__} has no {unknown}")
        return cls(**data)

    def replace(self, **changes) -> Params:
        return dataclasses.replace(self, **changes)

    #: genes added after genomes of the family were stored: left out of :meth:`text` (the
    #: genome key) at their default, so the genomes that existed before keep their keys
    later_genes: typing.ClassVar[tuple[str, ...]] = ()

    def added_genes(self) -> dict:
        """The later genes whose value is not their default: what these parameters add over the
        genomes that existed before those genes."""
        base = type(self)()
        return {
            g: getattr(self, g) for g in self.later_genes if getattr(self, g) != getattr(base, g)
        }

    def text(self) -> str:
        data = self.to_json()
        for name in set(self.later_genes) - set(self.added_genes()):
            del data[name]
        return json.dumps(data, sort_keys=True)


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class DesignSpace:
    """A MetaSchedule design space over ``mod`` (the workload after the family's rewrites)."""

    space: Any  # ms.space_generator.SpaceGenerator or "post-order-apply" (the stock space)
    mod: Any  # tvm.IRModule


@dataclass(frozen=True)
class Kernel:
    """One whole kernel: nothing left to sample, measured as a single candidate."""

    mod: Any  # tvm.IRModule


class Family:
    """One kernel family. Subclasses set the class attributes and implement the methods.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"cuda.wgmma"``.
    params : type
        The :class:`Params` subclass.
    domain : dict
        Field -> the values the generator samples (every field of ``params``).
    held_back : dict
        Field -> values of ``domain`` the generator does not draw unless asked to
        (``TuneConfig.held_back_genes``): built and tested, not yet shown on a GPU to win
        anywhere. A genome naming them (the library, ``genome_check.py``) is still taken.
    default : Params
        The first proposal when the library has nothing for a workload.
    whole_kernels : bool
        Whether :meth:`candidate` returns whole kernels (:class:`Kernel`): a genome is then
        measured once, one trial, and the search gives the family its first one on any budget.
    """

    name: ClassVar[str]
    whole_kernels: ClassVar[bool] = False
    #: genes that set the block tile's shape: every other genome the learned model picks has a
    #: tile shape no proposal had yet (:meth:`Generator._model_pick`), so a model trained on
    #: runs that measured one shape still gets the others measured
    tile_genes: ClassVar[tuple[str, ...]] = ()
    params: ClassVar[type[Params]]
    domain: ClassVar[dict[str, tuple]]
    held_back: ClassVar[dict[str, tuple]] = {}
    default: ClassVar[Params]

    def applies(self, workload, target) -> str | None:
        """Why this family cannot schedule ``workload`` on ``target`` at all, or None."""
        raise NotImplementedError

    def check(self, params: Params, workload, target) -> None:
        """Raise :class:`GenomeError` (with a reason key) if ``params`` is illegal here."""
        raise NotImplementedError

    def seed(self, workload, target) -> Params:
        """The family's own first proposal for ``workload`` before anything is measured: the
        default, unless the family knows a structure the shape needs (a split-K grid for a
        GEMM whose tiles leave most of the GPU idle)."""
        return self.default

    def upgrade(self, params: Params, workload, target) -> Params:
        """``params`` (a library genome, measured on another workload or before a gene
        existed) with the genes this family sets one way on any structure where legal -- a
        choice the measurements made for the whole family, not for a tile -- set so; itself
        where none applies. The search proposes the upgrade beside the library's genome."""
        return params

    def first_legal(self, candidates, workload, target) -> Params:
        """The first of ``candidates`` that :meth:`check` takes here, else the default (what a
        :meth:`seed` with a preference order returns)."""
        for params in candidates:
            try:
                self.check(params, workload, target)
            except GenomeError:
                continue
            return params
        return self.default

    def impossible(self, workload, target) -> dict[str, tuple]:
        """Gene values no genome may take on ``workload`` whatever its other genes (the
        generator never draws them); every other value at least one legal genome has."""
        return {}

    def features(self, params: Params, workload, target) -> dict[str, float] | None:
        """Numbers describing ``params`` on ``workload`` for the learned proposal model
        (:mod:`autokernel_tvm.space.ranker`); None: the family's genomes are not ranked."""
        return None

    def rewrites(self, workload) -> tuple:
        """TensorIR rewrites (:mod:`autokernel_tvm.rewrite` proposals) applied to ``workload``
        before this family schedules it; ``()`` for none."""
        return ()

    def candidate(self, params: Params, workload, target) -> DesignSpace | Kernel:
        """What gets measured for ``params`` on ``workload``."""
        raise NotImplementedError

    def describe(self, params: Params) -> str:
        """One line naming every field (each changes the generated code)."""
        return " ".join(f"{k}={_short(v)}" for k, v in params.to_json().items())

    def additions(self, params: Params) -> list[str]:
        """The genes of ``params`` that go beyond the family's first template: its later genes
        (:attr:`Params.later_genes`) away from their defaults, as ``gene=value``."""
        return [f"{name}={_short(value)}" for name, value in params.added_genes().items()]

    def notes(self, params: Params, workload) -> list[str]:
        """What a person should know about the kernel ``params`` makes for ``workload`` beyond
        its genes (e.g. the arithmetic it runs an fp32 GEMM in); printed with a run's winner."""
        return []

    def from_legacy(self, genome: dict) -> Params:
        """The params of a library-format-1 genome (the 18-field union of all families)."""
        raise NotImplementedError


@functools.cache
def _hints(cls) -> dict:
    """A params class's resolved annotations (resolving them costs ~0.3 ms a genome)."""
    return typing.get_type_hints(cls)


def _short(value) -> str:
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return str(value)

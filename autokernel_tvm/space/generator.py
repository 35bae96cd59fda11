# SPDX-License-Identifier: Apache-2.0
"""A learned generative model over genomes: per-gene categorical distributions (cross-entropy
method), plus mutation and crossover of the best genomes measured so far.

Read :meth:`Generator.propose` and :meth:`Generator.update`. Distributions start uniform and are
tilted toward the library's genomes for similar workloads (the prior ``p0``). After each measured
genome they are re-fit to the elite fraction of everything measured so far:
``p = (1 - lr) p0 + lr f_elite`` (``f_elite`` Laplace-smoothed), so they never collapse.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np

from ..families import GenomeError, get
from .genome import Genome
from .grammar import Grammar

POOL = 8  # draws the learned proposal model chooses among, per proposal
#: illegal draws of one family, none within two genes of a legal genome, after which a family
#: that has given no legal genome is dropped for the workload: each such draw's repair tries
#: ~700 neighbours, and a 16-channel fp32 conv that no wgmma tile divides spent 70 s in 1579
#: of them before the tuner learnt that nothing was legal
BARREN = 16
#: most genomes the proposal model ranks over a family's masked domain; a larger domain gives
#: that many drawn at random (the gated GEMM's 131072 genomes took 10 s to build and check, its
#: 1966080 with the held-back genes 2 minutes)
DOMAIN_SAMPLE = 16384


class Generator:
    """Propose legal, untried genomes for one workload and learn from their scores.

    Parameters
    ----------
    grammar : Grammar
        Legality for the target.
    workload : Workload
        What is being tuned (legality and the prior depend on it).
    seed : int
        Random seed.
    prior : list of (Genome, weight)
        Library genomes for similar workloads; weight in (0, 1].
    lr : float
        Cross-entropy step toward the elite frequencies.
    elite_frac : float
        Fraction of measured genomes that count as elite.
    ranker : Ranker, optional
        The learned proposal model (:mod:`.ranker`): each drawn genome is the best it predicts
        of ``POOL`` draws of the same family; None draws one.
    held_back : bool
        Leave out the values each family holds back (:attr:`Family.held_back`).
    """

    def __init__(
        self, grammar: Grammar, workload, *, seed=0, prior=(), lr=0.5, elite_frac=0.3,
        ranker=None, held_back=True,
    ):  # fmt: skip
        self.grammar, self.workload = grammar, workload
        self.rng = np.random.default_rng(seed)
        self.lr, self.elite_frac = lr, elite_frac
        self.families = [f.name for f in grammar.families(workload)]
        self.dist = {f: {g: _uniform(v) for g, v in _domain(f).items()} for f in self.families}
        # values a gene cannot take on this workload whatever the other genes are: never drawn
        self.mask = {f: _mask(f, workload, grammar.target, held_back) for f in self.families}
        self.prior = [(g, w) for g, w in prior if g.family in self.families]
        for genome, weight in self.prior:
            self._tilt(genome, 0.5 * weight)
        self.base = {f: {g: p.copy() for g, p in d.items()} for f, d in self.dist.items()}
        self.scores: dict[str, tuple[Genome, float]] = {}
        self.proposed: set[str] = set()
        self.proposed_genomes: list[Genome] = []
        self.rejections: Counter = Counter()
        self.unrepaired: Counter = Counter()  # per family: draws no two-gene change made legal
        self.dropped: dict[str, str] = {}  # family -> why no more of it is drawn
        self._yielded: set[str] = set()  # families that gave a legal genome
        self.ranker = ranker
        self.ranked = 0  # draws the model chose among several
        self._ranked_domain: list[Genome] | None = None
        self._explore = False  # the next model pick takes an untried tile shape

    # -- proposing ------------------------------------------------------------------------
    def propose(self, n: int, max_attempts: int = 200, families=None) -> list[Genome]:
        """Up to ``n`` new legal genomes: prior first, then children of elites, then samples;
        only of ``families`` (names) when given."""
        out: list[Genome] = []
        sources = [g for g, _ in sorted(self.prior, key=lambda p: -p[1])]
        for attempt in range(max_attempts):
            if len(out) >= n or not self.families:
                break
            if sources:
                genome = self._legal(sources.pop(0))
            elif self.ranker is None:
                genome = self._legal(self._draw(attempt))
            elif attempt % 2 == 0 and (pick := self._model_pick(self._explore)) is not None:
                genome = pick  # the model's best untried genome of all (or of a new tile)
                self._explore = not self._explore
            else:
                genome = self._best_of(attempt)  # the model's pick among a few draws
            if genome is not None and families is not None and genome.family not in families:
                continue
            if genome is not None and genome.key not in self.proposed:
                self.proposed.add(genome.key)
                self.proposed_genomes.append(genome)
                out.append(genome)
        return out

    def _draw(self, attempt: int) -> Genome | GenomeError:
        if len(self.scores) >= 2 and attempt % 2 == 0:
            return self._child()
        return self.sample()

    def _model_pick(self, explore: bool = False) -> Genome | None:
        """The untried legal genome of the ranker's family that the model ranks highest over
        the family's whole domain (enumerated once, masked values left out; beyond
        :data:`DOMAIN_SAMPLE` genomes, that many drawn from it at random); ``explore``: the
        highest whose tile shape (:attr:`Family.tile_genes`) no proposal has yet, if any. The
        model learns only from what runs measured: trained on conv2d runs whose genomes were
        all 256 wide, it ranked every 128-wide tile below them, though 128 fills the waves of a
        196-tile grid on 132 SMs better."""
        if self._ranked_domain is None:
            self._ranked_domain = []
            family = self.ranker.family
            if family in self.families:
                domain = _domain(family)
                values = [
                    [v for v, keep in zip(vs, self.mask[family][g]) if keep]
                    for g, vs in domain.items()
                ]
                legal = []
                for combo in _combos(values, DOMAIN_SAMPLE, self.rng):
                    genome = _decode(family, dict(zip(domain, combo)))
                    try:
                        legal.append(self.grammar.check(genome, self.workload))
                    except GenomeError:
                        continue
                if legal:
                    scores = self.ranker.score(legal, self.workload, self.grammar.target)
                    order = np.argsort(-scores, kind="stable")
                    self._ranked_domain = [legal[i] for i in order]
        # skip what was proposed and its one-gene neighbours: the draws explore near it
        while self._ranked_domain and self._near_proposed(self._ranked_domain[0]):
            self._ranked_domain.pop(0)
        genes = get(self.ranker.family).tile_genes
        if explore and genes and self._ranked_domain:
            seen = {
                _tile(g, genes) for g in self.proposed_genomes if g.family == self.ranker.family
            }
            untried = (g for g in self._ranked_domain if _tile(g, genes) not in seen)
            pick = next((g for g in untried if not self._near_proposed(g)), None)
            if pick is not None:
                return pick
        return self._ranked_domain[0] if self._ranked_domain else None

    def _near_proposed(self, genome: Genome) -> bool:
        genes = encode(genome)
        for other in self.proposed_genomes:
            if other.family == genome.family:
                theirs = encode(other)
                if sum(genes[g] != theirs[g] for g in genes) <= 1:
                    return True
        return False

    def _best_of(self, attempt: int) -> Genome | None:
        """The model's pick among up to ``POOL`` legal, untried draws of the first draw's family
        (the generator still decides which family is tried)."""
        pool: dict[str, Genome] = {}
        for _ in range(POOL):
            if not self.families:  # the last was dropped (:data:`BARREN`)
                break
            genome = self._legal(self._draw(attempt))
            if genome is None or genome.key in self.proposed:
                continue
            if pool and genome.family != next(iter(pool.values())).family:
                continue
            pool.setdefault(genome.key, genome)
        if not pool:
            return None
        genomes = list(pool.values())
        scores = self.ranker.score(genomes, self.workload, self.grammar.target)
        if len(genomes) == 1 or np.isnan(scores).all():
            return genomes[0]
        self.ranked += 1
        return genomes[int(np.nanargmax(scores))]

    def sample(self) -> Genome | GenomeError:
        family = self.families[int(self.rng.integers(len(self.families)))]
        genes = {
            g: _draw(self.rng, _domain(family)[g], self._p(family, g)) for g in _domain(family)
        }
        return _decode(family, genes)

    def _child(self) -> Genome | GenomeError:
        elites = self.elites()
        a = elites[int(self.rng.integers(len(elites)))]
        b = elites[int(self.rng.integers(len(elites)))]
        genes = {}
        genes_a, genes_b = encode(a), encode(b) if b.family == a.family else encode(a)
        for gene in genes_a:  # uniform crossover
            genes[gene] = genes_a[gene] if self.rng.random() < 0.5 else genes_b[gene]
        gene = list(genes)[int(self.rng.integers(len(genes)))]  # point mutation
        genes[gene] = _draw(self.rng, _domain(a.family)[gene], self._p(a.family, gene))
        return _decode(a.family, genes)

    def _legal(self, candidate) -> Genome | None:
        if isinstance(candidate, GenomeError):
            self.rejections[candidate.reason] += 1
            return None
        try:
            genome = self.grammar.check(candidate, self.workload)
        except GenomeError as err:
            self.rejections[err.reason] += 1
            genome = self._repair(candidate)
            if genome is None:
                self._unrepairable(candidate.family)
                return None
        self._yielded.add(genome.family)
        return genome

    def _unrepairable(self, family: str) -> None:
        """Count a draw of ``family`` that no repair made legal; drop the family after
        :data:`BARREN` of them if it never gave a legal genome, saying why its default is
        illegal (a drawn genome's own reason is often a gene's, not the workload's)."""
        self.unrepaired[family] += 1
        if (
            self.unrepaired[family] < BARREN
            or family in self._yielded
            or family not in self.families
        ):
            return
        self.families.remove(family)
        try:
            self.grammar.check(Genome(family, get(family).default), self.workload)
            why = ""
        except GenomeError as err:
            why = f"; its default: {err}"
        self.dropped[family] = f"no legal genome in {BARREN} draws and their repairs{why}"

    def _repair(self, genome: Genome) -> Genome | None:
        """The likeliest legal genome at most two genes away from an illegal one. A prior
        tilted toward genes this workload rules out (a persistent schedule on a one-wave grid,
        a TMA store of fp32) would otherwise make nearly every sample illegal."""
        family, genes = genome.family, encode(genome)
        moves = [
            (p, gene, value)
            for gene, values in _domain(family).items()
            for value, p in zip(values, self._p(family, gene))
            if value != genes[gene]
        ]
        moves.sort(key=lambda m: -m[0])

        def first_legal(changes) -> Genome | None:
            for change in changes:
                candidate = _decode(family, {**genes, **{g: v for _, g, v in change}})
                if isinstance(candidate, GenomeError):
                    continue
                try:
                    return self.grammar.check(candidate, self.workload)
                except GenomeError:
                    continue
            return None

        repaired = first_legal((m,) for m in moves)
        if repaired is None:  # the pairs only when no single gene repairs it
            pairs = [(a, b) for i, a in enumerate(moves) for b in moves[i + 1 :] if a[1] != b[1]]
            repaired = first_legal(sorted(pairs, key=lambda ab: -ab[0][0] * ab[1][0]))
        return repaired

    # -- learning -------------------------------------------------------------------------
    def update(self, genome: Genome, score: float) -> None:
        """Record a measured ``score`` (higher is better; 0 for a failed genome) and re-fit."""
        self.scores[genome.key] = (genome, float(score))
        elites = self.elites()
        for family, genes in self.dist.items():
            for gene, values in _domain(family).items():
                counts = np.ones(len(values))  # Laplace smoothing keeps every value alive
                for elite in elites:
                    value = encode(elite).get(gene) if elite.family == family else None
                    if value in values:
                        counts[values.index(value)] += 1
                freq = counts / counts.sum()
                genes[gene] = (1 - self.lr) * self.base[family][gene] + self.lr * freq

    def elites(self) -> list[Genome]:
        ranked = sorted(self.scores.values(), key=lambda gs: -gs[1])
        keep = max(1, int(round(self.elite_frac * len(ranked))))
        return [g for g, s in ranked[:keep] if s > 0] or [ranked[0][0]]

    def best(self) -> tuple[Genome, float] | None:
        return max(self.scores.values(), key=lambda gs: gs[1], default=None)

    def _p(self, family: str, gene: str) -> np.ndarray:
        return self.dist[family][gene] * self.mask[family][gene]

    def probabilities(self, family: str, gene: str) -> dict:
        p = self._p(family, gene)
        return dict(zip(_domain(family)[gene], (p / p.sum()).tolist()))

    def _tilt(self, genome: Genome, step: float) -> None:
        for gene, value in encode(genome).items():
            values = _domain(genome.family).get(gene, ())
            if value not in values:
                continue
            target = np.array([1.0 if v == value else 0.0 for v in values])
            p = self.dist[genome.family][gene]
            self.dist[genome.family][gene] = (1 - step) * p + step * target


def _combos(values: list, limit: int, rng):
    """Every combination of one value per gene of ``values``, or (more than ``limit``) up to
    ``limit`` distinct ones drawn uniformly, in a fixed order for a seeded ``rng``."""
    if math.prod(len(v) for v in values) <= limit:
        return itertools.product(*values)
    picks = np.unique(np.stack([rng.integers(len(v), size=limit) for v in values], 1), axis=0)
    return ([v[i] for v, i in zip(values, pick)] for pick in picks.tolist())


def _tile(genome: Genome, genes: tuple) -> tuple:
    return tuple(getattr(genome.params, g) for g in genes)


def _uniform(values) -> np.ndarray:
    return np.full(len(values), 1.0 / len(values))


def _mask(family: str, workload, target, held_back: bool = True) -> dict:
    """Per gene, 1 for each value the family may take on ``workload`` and 0 for those it
    rules out whatever the other genes are (:meth:`Family.impossible`) and (``held_back``)
    those it holds back (:attr:`Family.held_back`)."""
    ruled_out = get(family).impossible(workload, target)
    kept = get(family).held_back if held_back else {}
    mask = {}
    for gene, values in _domain(family).items():
        off = (*ruled_out.get(gene, ()), *kept.get(gene, ()))
        mask[gene] = np.array([0.0 if v in off else 1.0 for v in values])
    return mask


def _draw(rng, values, probs):
    return values[int(rng.choice(len(values), p=probs / probs.sum()))]


def _domain(family: str) -> dict:
    return get(family).domain


def encode(genome: Genome) -> dict:
    """The genes of ``genome``: its parameter fields, as values of its family's domain."""
    return {gene: getattr(genome.params, gene) for gene in _domain(genome.family)}


def _decode(family: str, genes: dict):
    try:
        return Genome(family, get(family).params(**genes))
    except GenomeError as err:
        return err

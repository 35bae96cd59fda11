# SPDX-License-Identifier: Apache-2.0
"""Which genomes to measure next and with how many trials: successive halving over the
generator's proposals, then new proposals for budget an exhausted space left unspent -- whole
kernels first (one trial each), design spaces once no whole kernel is left to propose.

:class:`Search` knows nothing of building or measuring: the tuner iterates it (each item is a
genome and the total trials it should have by now), measures, and reports back with
:meth:`Search.learn`. That feedback re-fits the generator before the next proposal.
"""

from __future__ import annotations

import math
from collections import Counter

from .generator import Generator
from .genome import Genome
from .grammar import Grammar

MIN_TRIALS = 8  # fewer than this per genome and one XGB batch says little about a structure
MAX_GENOMES = 4
MAX_EXTRA_GENOMES = 16  # bound on genomes proposed to spend budget an exhausted space left
# (or the budget itself, where whole kernels spend it one trial at a time)
SEED_WEIGHT = 0.5  # a family's shape-specific seed: above its default's 0.3, below a library hit
#: whole kernels the budget left buys, proposed together: the tuner builds them at once in its
#: workers (a build took most of a candidate's ~2.5 s on the H200, one at a time), and the
#: generator re-fits to all of them before the next batch
WHOLE_BATCH = 4


def _with_upgrades(prior, families, workload, target) -> list:
    """``prior`` with each genome's :meth:`Family.upgrade` (a gene its family now sets one way
    on any structure) just before it, at its weight, where that differs."""
    by_name = {f.name: f for f in families}
    out = []
    for genome, weight in prior:
        family = by_name.get(genome.family)
        if family is not None:
            up = family.upgrade(genome.params, workload, target)
            if up != genome.params and all(g.params != up for g, _ in prior):
                out.append((Genome(genome.family, up), weight))
        out.append((genome, weight))
    return out


def halving_plan(trials: int, max_genomes: int = MAX_GENOMES) -> list[tuple[int, int]]:
    """Rungs as (genomes alive, extra trials each), spending at most ``trials`` in total.

    The first rung is as wide as the budget allows with ``MIN_TRIALS`` per genome; each later
    rung halves the survivors and gives them the same share of the budget.
    """
    for n0 in range(max(1, min(max_genomes, trials // MIN_TRIALS)), 0, -1):
        rungs = math.ceil(math.log2(n0)) + 1
        per_rung = trials // rungs
        if per_rung // n0 >= MIN_TRIALS or n0 == 1:
            plan = [(max(1, n0 >> r), per_rung // max(1, n0 >> r)) for r in range(rungs)]
            used = sum(n * t for n, t in plan)
            alive, extra = plan[-1]
            plan[-1] = (alive, extra + (trials - used) // alive)
            return plan
    return [(1, trials)]


class Search:
    """Successive halving over generated genomes for one workload.

    Parameters
    ----------
    grammar : Grammar
        Legality on the target.
    workload : Workload
        What is tuned.
    trials : int
        The whole budget (MetaSchedule candidates; a whole kernel counts as one).
    prior : list of (Genome, weight)
        Library genomes for similar workloads; families without one start at their default.
    seed : int
        Random seed of the generator.
    ranker : Ranker, optional
        The learned proposal model the generator ranks its draws with.
    held_back : bool
        Leave the families' held-back gene values out of the draws (:attr:`Family.held_back`).
    model_note : str
        Which model that is, or why there is none (the report's ``proposal_model``).
    """

    def __init__(
        self, grammar: Grammar, workload, trials: int, *, prior=(), seed: int = 0, ranker=None,
        model_note: str = "", held_back: bool = True,
    ):  # fmt: skip
        self.workload, self.trials = workload, trials
        families = grammar.families(workload)
        known = {g.family for g, _ in prior}
        self.prior = list(prior) + [
            (Genome(f.name, f.default), 0.3) for f in families if f.name not in known
        ]
        self.prior = _with_upgrades(self.prior, families, workload, grammar.target)
        # A family's pick for this shape (e.g. split-K for a grid smaller than the GPU) goes
        # first: the library's genomes for similar workloads may not even be legal here.
        for family in families:
            pick = Genome(family.name, family.seed(workload, grammar.target))
            if pick.params != family.default:
                self.prior.insert(0, (pick, SEED_WEIGHT))
        self.generator = Generator(
            grammar, workload, seed=seed, prior=self.prior, ranker=ranker, held_back=held_back
        )
        self.model_note = model_note
        self.plan = halving_plan(trials)
        self.proposed: list[Genome] = []
        self.used: dict[str, int] = {}
        self.scores: dict[str, float] = {}
        self.rungs: list = []
        self.kept: list[str] = []
        self.granted: Counter = Counter()  # genome key -> trials it was given
        # Families whose genome is one candidate (a whole kernel): measured once however many
        # trials it is given, so the budget it leaves buys further genomes of that family.
        self.one_shot: set[str] = set()
        self.whole_exhausted = False  # the one-shot families proposed every genome they had
        self.whole = [f.name for f in families if f.whole_kernels]
        #: the genomes proposed with the one being measured, yielded after it before the next
        #: proposal: the tuner builds their kernels ahead
        self.upcoming: list[Genome] = []

    def __iter__(self):
        """Yield ``(genome, total trials it should have)``; call :meth:`learn` after each."""
        alive = self.generator.propose(self.plan[0][0])
        self.proposed += alive
        spent: Counter = Counter()
        besides = self._whole_kernels_besides(alive)
        for i, genome in enumerate(besides):
            self.upcoming = besides[i + 1 :] + alive
            spent[genome.key] = self.granted[genome.key] = 1
            yield genome, 1
            self.rungs.append([{"key": genome.key, "tflops": self.scores[genome.key]}])
        for width, extra in self.plan:
            alive = alive[:width]
            for i, genome in enumerate(alive):
                self.upcoming = alive[i + 1 :]
                spent[genome.key] += extra
                self.granted[genome.key] = spent[genome.key]
                yield genome, spent[genome.key]
            alive.sort(key=lambda g: -self.scores.get(g.key, 0.0))
            self.rungs.append([{"key": g.key, "tflops": self.scores[g.key]} for g in alive])
        self.kept = [g.key for g in alive]
        for _ in range(max(MAX_EXTRA_GENOMES, self.trials)):
            left = self.trials - sum(self.used.values())
            if left < 1 or not alive:
                break
            new = self._extra(left)
            if not new:
                break
            self.proposed += new
            for i, genome in enumerate(new):
                self.upcoming = new[i + 1 :]
                self.granted[genome.key] = min(left - i, 2 * MIN_TRIALS)
                yield genome, self.granted[genome.key]
                self.rungs.append([{"key": genome.key, "tflops": self.scores[genome.key]}])
        self.upcoming = []

    def _extra(self, left: int) -> list[Genome]:
        """More genomes for the ``left`` trials the plan did not spend: up to ``WHOLE_BATCH``
        whole kernels while their family still proposes them (one candidate each, seconds to
        build and time), else one design space's genome if ``left`` still buys its
        ``MIN_TRIALS`` (each a kernel built and timed: a 24-trial conv2d run on the H200 gave
        16 trials to a cuda.mma space and did not finish in 180 s)."""
        if self.one_shot and not self.whole_exhausted:
            # half the batch from the leading genome's family (the proposal model ranks one
            # family's genomes: another family in the lead, e.g. cuda.gemv at a decode shape,
            # would otherwise get no neighbours), the rest from any whole-kernel family
            batch, best = min(left, WHOLE_BATCH), self.generator.best()
            lead = best[0].family if best and best[1] > 0 else None
            new = []
            if lead in self.one_shot and self.one_shot != {lead}:
                new = self.generator.propose(-(-batch // 2), families={lead})
            if len(new) < batch:
                new += self.generator.propose(batch - len(new), families=self.one_shot)
            if new or left < MIN_TRIALS:
                return new
            self.whole_exhausted = True
        return self.generator.propose(1) if left >= MIN_TRIALS else []

    def _whole_kernels_besides(self, rung: list[Genome]) -> list[Genome]:
        """The best proposal of each whole-kernel family the first rung left out (the prior put
        a design space first and the budget buys one genome: a conv2d at 6 trials never tried
        the wgmma kernels), one trial each, taken from the plan's last rung."""
        present = {g.family for g in rung}
        if self.trials < 2:  # one trial buys one genome, whichever
            return []
        missing = [f for f in self.whole if f not in present]
        out = [g for f in missing for g in self.generator.propose(1, families={f})]
        if out:
            self.proposed += out
            width, extra = self.plan[-1]
            self.plan[-1] = (width, max(1, extra - -(-len(out) // width)))
        return out

    def learn(self, genome: Genome, trials: int, tflops: float) -> None:
        """A measured genome: ``trials`` records so far, best ``tflops`` (0 if all failed)."""
        self.used[genome.key] = trials
        self.scores[genome.key] = tflops
        # a whole kernel: one trial used of more granted, or one of a family measured beside
        # the first rung (granted one: cuda.gemv's default at a decode shape, whose neighbours
        # the extra genomes must then include)
        if trials == 1 and (self.granted[genome.key] > 1 or genome.family in self.whole):
            self.one_shot.add(genome.family)
        self.generator.update(genome, tflops)

    def genome(self, key: str) -> Genome:
        return next(g for g in self.proposed if g.key == key)

    def report(self) -> dict:
        best = self.generator.best()
        report = {
            "plan": self.plan,
            "prior": [{"key": g.key, "weight": w, "describe": g.describe()} for g, w in self.prior],
            "proposed": [{"key": g.key, "describe": g.describe()} for g in self.proposed],
            "all_genomes": [{"key": g.key, "genome": g.to_json()} for g in self.proposed],
            "rejected": dict(self.generator.rejections),
            "dropped": dict(self.generator.dropped),
            "proposal_model": self.model_note,
            "ranked_draws": self.generator.ranked,
            "rungs": self.rungs,
            "kept": self.kept,
        }
        if best is not None:
            genome, score = best
            report["winner"] = {
                "genome": genome.to_json(),
                "key": genome.key,
                "describe": genome.describe(),
                "tflops": score,
            }
        return report

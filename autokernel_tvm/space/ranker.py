# SPDX-License-Identifier: Apache-2.0
"""The learned proposal model: ranks a family's legal genomes for a workload before anything is
built, so the generator's random draws go to the structures most likely to win.

Read :class:`Ranker`. A gradient-boosted regressor (xgboost) over :meth:`Family.features` --
workload, genes, and what they make of each other on the target (waves, K steps per block, edge
waste) -- predicts a genome's speed relative to the best genome of the same tuning run. It is
trained on every measured genome in committed tuning reports and direct structure checks
(``genome_check.jsonl``, :func:`records`; ``scripts/train_ranker.py``) and
shipped beside the rule library as ``<library root>/<target>/ranker.json`` (versioned: the file
names the feature list it was trained with, and a mismatch is refused rather than mis-read).
:func:`held_out` measures what it is worth: for each shape left out of training, whether the
model's top 4 of that run's measured genomes contain the run's winner.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

import numpy as np

from ..families import GenomeError, get
from ..workloads import Workload
from .checks import read_checks
from .genome import Genome

VERSION = 1
FILE = "ranker.json"
TOP = 4  # a rung of the search measures up to 4 genomes (search.MAX_GENOMES)
PARAMS = {"n_estimators": 200, "max_depth": 4, "learning_rate": 0.1, "subsample": 0.9}


class RankerError(ValueError):
    """A model file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Record:
    """One measured genome: ``run`` names the tuning run (its scores compare with each other)."""

    run: str
    workload: Workload
    genome: Genome
    tflops: float


class Ranker:
    """A trained model for one family on one target kind."""

    def __init__(self, booster, family: str, features: list[str], meta: dict):
        self.booster, self.family, self.features, self.meta = booster, family, features, meta

    def score(self, genomes: list[Genome], workload, target) -> np.ndarray:
        """Predicted relative speed of each genome (higher is better; NaN: not this family)."""
        import xgboost as xgb

        rows, where = [], []
        for i, genome in enumerate(genomes):
            if genome.family == self.family:
                f = get(self.family).features(genome.params, workload, target)
                if sorted(f) != sorted(self.features):
                    raise RankerError(
                        f"{self.family}: the model was trained on other features than the "
                        "family has now; retrain it (scripts/train_ranker.py)"
                    )
                rows.append([f[name] for name in self.features])
                where.append(i)
        out = np.full(len(genomes), np.nan)
        if rows:
            out[where] = self.booster.predict(xgb.DMatrix(np.array(rows, dtype=float)))
        return out

    def describe(self) -> str:
        held = self.meta.get("held_out", {})
        text = f"{self.family} v{VERSION}, trained on {self.meta.get('records')} genomes"
        if held:
            text += f"; held-out top-{held['top']} hit rate {held['model']:.0%}"
        return text

    def save(self, path: str) -> None:
        model = json.loads(self.booster.save_raw("json").decode())
        data = {"version": VERSION, "family": self.family, "features": self.features,
                "meta": self.meta, "model": model}  # fmt: skip
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(data, f)

    @classmethod
    def load(cls, path: str) -> Ranker:
        import xgboost as xgb

        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise RankerError(f"{path}: {err}") from err
        if data.get("version") != VERSION:
            raise RankerError(f"{path}: model version {data.get('version')}, expected {VERSION}")
        booster = xgb.Booster()
        booster.load_model(bytearray(json.dumps(data["model"]).encode()))
        return cls(booster, data["family"], data["features"], data["meta"])


def shipped(target, roots: list[str]) -> Ranker | None:
    """The first model under ``roots`` for ``target``'s kind, or None if there is none."""
    for root in roots:
        path = os.path.join(root, target.kind.name, FILE)
        if os.path.exists(path):
            return _load(path, os.stat(path).st_mtime_ns)
    return None


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> Ranker:
    """One load per file version: a model's tasks (Relax dispatch) each start a search."""
    return Ranker.load(path)


def records(paths: list[str]) -> list[Record]:
    """Every measured genome (score > 0) in the tuning reports (``report*.json``) at ``paths``,
    and in the direct checks (``*.jsonl`` of ``benchmarks/gpu/genome_check.py``: each line one
    run of chosen genomes on one workload, timed in one process)."""
    out = []
    for path in sorted(paths):
        if path.endswith(".jsonl"):
            out += _checked(path)
            continue
        with open(path) as f:
            report = json.load(f)
        space = report.get("space_report") or {} if isinstance(report, dict) else {}
        if "workload" not in report or "rungs" not in space:
            continue  # not a tuning report
        workload = Workload.from_json(report["workload"])
        genomes = {}
        for entry in space.get("all_genomes", []):
            try:
                genomes[entry["key"]] = Genome.from_json(entry["genome"])
            except (GenomeError, KeyError, TypeError):
                continue  # a genome of a family or field this version no longer has
        best: dict[str, float] = {}
        for rung in space["rungs"]:
            for e in rung:
                if e["key"] in genomes and e["tflops"] > best.get(e["key"], 0.0):
                    best[e["key"]] = e["tflops"]
        out += [Record(path, workload, genomes[key], t) for key, t in best.items()]
    return out


def _checked(path: str) -> list[Record]:
    """The genomes of a ``genome_check.py`` line that passed the gate and were timed; a line's
    run is ``path#line``."""
    return [Record(c.run, c.workload, c.genome, c.tflops) for c in read_checks(path)]


def train(data: list[Record], family: str, target) -> Ranker:
    """Fit the model on ``data``'s genomes of ``family``: target = TFLOP/s / the run's best."""
    import xgboost as xgb

    data = [r for r in data if r.genome.family == family]
    if not data:
        raise RankerError(f"no measured {family} genomes to train on")
    best = {}
    for r in data:
        best[r.run] = max(best.get(r.run, 0.0), r.tflops)
    rows = [get(family).features(r.genome.params, r.workload, target) for r in data]
    names = sorted(rows[0])
    x = np.array([[row[n] for n in names] for row in rows], dtype=float)
    y = np.array([r.tflops / best[r.run] for r in data])
    booster = xgb.train(
        {**{k: v for k, v in PARAMS.items() if k != "n_estimators"}, "seed": 0,
         "objective": "reg:squarederror"},
        xgb.DMatrix(x, label=y), num_boost_round=PARAMS["n_estimators"],
    )  # fmt: skip
    runs = sorted({r.run for r in data})
    meta = {"records": len(data), "runs": len(runs), "params": PARAMS}
    return Ranker(booster, family, names, meta)


def shape_of(workload: Workload) -> str:
    """What a held-out fold leaves out: the op and shape (every dtype of it)."""
    return f"{workload.op}{list(workload.shape)}"


def held_out(data: list[Record], family: str, target, top: int = TOP) -> dict:
    """Leave-one-shape-out: for each shape, train on the others and rank each of its runs'
    measured genomes; a hit when the run's winner is among the model's ``top``. Against two
    baselines on the same runs: the first ``top`` genomes in the order the search measured
    them, and the expected hit rate of ``top`` random picks."""
    data = [r for r in data if r.genome.family == family]
    runs: dict[str, list[Record]] = {}
    for r in data:
        runs.setdefault(r.run, []).append(r)
    runs = {run: rs for run, rs in runs.items() if len(rs) > top}  # else every order hits
    folds = []
    for shape in sorted({shape_of(rs[0].workload) for rs in runs.values()}):
        rest = [r for r in data if shape_of(r.workload) != shape]
        if not rest:
            continue
        model = train(rest, family, target)
        for run, rs in runs.items():
            if shape_of(rs[0].workload) != shape:
                continue
            winner = max(range(len(rs)), key=lambda i: rs[i].tflops)
            scores = model.score([r.genome for r in rs], rs[0].workload, target)
            ranked = list(np.argsort(-scores, kind="stable"))
            folds.append({
                "run": run, "shape": shape, "genomes": len(rs),
                "model_hit": winner in ranked[:top], "search_order_hit": winner < top,
                "random_hit": top / len(rs),
                "model_top_best": max(rs[i].tflops for i in ranked[:top]) / rs[winner].tflops,
                "search_order_top_best": max(r.tflops for r in rs[:top]) / rs[winner].tflops,
            })  # fmt: skip
    n = max(len(folds), 1)
    return {
        "family": family, "top": top, "runs": len(folds),
        "model": sum(f["model_hit"] for f in folds) / n,
        "search_order": sum(f["search_order_hit"] for f in folds) / n,
        "random": sum(f["random_hit"] for f in folds) / n,
        "model_top_best_mean": sum(f["model_top_best"] for f in folds) / n,
        "search_order_top_best_mean": sum(f["search_order_top_best"] for f in folds) / n,
        "folds": folds,
    }  # fmt: skip

"""Bench: does model help pay off? A labeling session replayed with simulated annotators.

    .venv/bin/python bench/active_learning.py [--quick] [--seeds 5] [--workers 2]
        [--svg docs/active_learning.svg]

Two real data sets, no database:
- `digits`: scikit-learn's bundled 8x8 digits (1,797 images, 64 pixel features, 10 classes),
  the built-in model's `embedding` pipeline (standardised features, logistic regression);
- `sentiment`: the vendored review sentences (tests/data/sentiment, 3,000 sentences, 2
  classes), the built-in model's `text` pipeline (TF-IDF word and character n-grams, logistic
  regression).

Per seed, the items are split into a held-out test set and a pool. Ten simulated annotators
have known accuracies spread evenly over 0.6-0.9; an annotator answers the true class with
their accuracy, otherwise a class drawn uniformly from the other classes. Every (item,
annotator) answer and the annotator who gives an item its first, second, ... label are drawn
once per seed, so the three orders meet the same annotators giving the same answers.

A session buys `seed_labels` labels in random order (the same for every order), then
`refresh_every` labels at a time until `budget`, as Concord's queue does between two score
refreshes (`Project.scores_refresh_every`, scaled down to the pool). After each batch the
model is refreshed as Concord's built-in model is: training labels are the majority vote of
each item's labels (ties: no label, as `analysis.services.label_issues` trains), out-of-sample
probabilities by 5-fold cross-validation (`analysis.metrics.out_of_sample`; unlabeled items
get the mean of the fold models). Held-out accuracy is that of the same pipeline fitted on
every training label. The orders choose the next batch:
- `import`: random order, one label per item until every item has one, then a second round;
- `uncertainty`: fewest labels first, then least confident top class
  (`analysis.metrics.active_learning.uncertainty_scores`);
- `activelab`: `analysis.metrics.active_learning.activelab_scores` over labeled and unlabeled
  items on one scale, lowest first; an item already labeled may be asked again (by an
  annotator who has not labeled it), until every annotator has labeled it.

Savings, per seed: `labels_needed` = the fewest labels bought after which an order's held-out
accuracy reaches the `import` order's accuracy at the full budget (on the refresh grid);
`saving = 1 - labels_needed / budget` (null when the order never reaches it).
`met`: the mean saving over seeds is at least 0.30 for both uncertainty and activelab on digits;
`met_every_seed`: every seed's saving is. `mean_curve_saving` reads the mean curves the same
way. The `import` order's own saving (its curve may touch its final accuracy a little before
the end) shows how noisy one seed's reading is. `ceiling_true_labels_whole_pool`: the model
trained on every pool item's true class, to show the budget's accuracy is no plateau.

Prints JSON: date, machine, load average, config, per data set and order the mean curve with
its min-max band over seeds, per-seed final accuracies, labels needed and savings. `--svg`
also draws the curves (mean and min-max band). Runs in a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

# One BLAS thread per process: the work is spread over processes instead.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # benchdb, when imported by path (the tests)

import benchdb  # noqa: E402

from analysis.figures import learning_curve_svg  # noqa: E402
from analysis.metrics.active_learning import activelab_scores, uncertainty_scores  # noqa: E402
from analysis.metrics.consensus import majority_vote  # noqa: E402
from analysis.metrics.out_of_sample import (  # noqa: E402
    CannotTrain,
    out_of_sample_probabilities,
    pipeline_for,
)

ORDERS = ("import", "uncertainty", "activelab")
TARGET_SAVING = 0.30


@dataclass(frozen=True)
class Config:
    """One data set's session: sizes in items and labels."""

    dataset: str
    test_items: int
    seed_labels: int
    budget: int
    refresh_every: int
    annotators: int = 10
    accuracy_low: float = 0.6
    accuracy_high: float = 0.9
    folds: int = 5


FULL = {
    # Budget: half the pool, so the random order labels half the items once.
    "digits": Config("digits", test_items=497, seed_labels=100, budget=650, refresh_every=25),
    "sentiment": Config(
        "sentiment", test_items=1000, seed_labels=100, budget=1000, refresh_every=50
    ),
}
QUICK = {
    "digits": Config("digits", test_items=497, seed_labels=100, budget=400, refresh_every=50),
    "sentiment": Config(
        "sentiment", test_items=1000, seed_labels=100, budget=500, refresh_every=100
    ),
}


@dataclass(frozen=True)
class Dataset:
    kind: str  # the built-in model's feature kind
    features: np.ndarray
    truth: np.ndarray
    n_classes: int


def load_dataset(name: str) -> Dataset:
    if name == "digits":
        digits = load_digits()
        return Dataset("embedding", digits.data.astype(float), digits.target.astype(int), 10)
    if name == "sentiment":
        texts, labels = [], []
        for path in sorted((ROOT / "tests" / "data" / "sentiment").glob("*.tsv")):
            for line in path.read_text(encoding="utf-8").splitlines():
                text, _, label = line.rpartition("\t")
                if text:
                    texts.append(text)
                    labels.append(int(label))
        return Dataset("text", np.asarray(texts, dtype=object), np.asarray(labels), 2)
    raise ValueError(f"Unknown data set {name!r}; allowed: digits, sentiment.")


class Session:
    """The pool's labels so far, answered by the simulated annotators of one seed."""

    def __init__(self, data: Dataset, config: Config, seed: int):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(data.truth))
        self.test, self.pool = order[: config.test_items], order[config.test_items :]
        self.data, self.config, self.seed = data, config, seed
        n, a, k = len(self.pool), config.annotators, data.n_classes
        self.accuracies = np.linspace(config.accuracy_low, config.accuracy_high, a)
        truth = data.truth[self.pool]
        right = rng.random((n, a)) < self.accuracies[None, :]
        wrong = (truth[:, None] + rng.integers(1, k, (n, a))) % k  # uniform over other classes
        self.answers = np.where(right, truth[:, None], wrong)
        self.next_annotator = np.argsort(rng.random((n, a)), axis=1)  # who gives label 1, 2, ...
        self.import_order = rng.permutation(n)
        self.labels = np.full((n, a), -1)
        self.counts = np.zeros(n, dtype=int)
        self.bought = 0

    def give(self, items: np.ndarray) -> None:
        annotators = self.next_annotator[items, self.counts[items]]
        self.labels[items, annotators] = self.answers[items, annotators]
        self.counts[items] += 1
        self.bought += len(items)

    def import_batch(self, size: int) -> np.ndarray:
        n = len(self.pool)
        steps = np.arange(self.bought, self.bought + size)
        return self.import_order[steps % n]

    def training_labels(self) -> np.ndarray:
        winner, _, _ = majority_vote(self.labels, self.data.n_classes, tie_rule="unresolved")
        return winner

    def probabilities(self, training: np.ndarray) -> np.ndarray:
        """Out-of-sample probabilities of every pool item (uniform where the model cannot)."""
        k = self.data.n_classes
        try:
            result = out_of_sample_probabilities(
                self.data.features[self.pool],
                training,
                n_classes=k,
                kind=self.data.kind,
                folds=self.config.folds,
                seed=self.seed,
            )
            probs = result.probabilities
        except CannotTrain:
            probs = np.full((len(self.pool), k), np.nan)
        return np.where(np.isnan(probs), 1.0 / k, probs)

    def ceiling_accuracy(self) -> float:
        """Held-out accuracy of the model trained on every pool item's true class."""
        return self.held_out_accuracy(self.data.truth[self.pool])

    def held_out_accuracy(self, training: np.ndarray) -> float:
        rows = np.flatnonzero(training >= 0)
        truth = self.data.truth[self.test]
        if len(np.unique(training[rows])) < 2:
            return float((truth == (training[rows][0] if len(rows) else 0)).mean())
        model = pipeline_for(self.data.kind, None)
        model.fit(self.data.features[self.pool][rows], training[rows])
        return float((model.predict(self.data.features[self.test]) == truth).mean())

    def choose(self, order: str, size: int, probs: np.ndarray) -> np.ndarray:
        if order == "import":
            return self.import_batch(size)
        open_items = self.counts < self.config.annotators
        if order == "uncertainty":
            ranked = np.lexsort((uncertainty_scores(probs), self.counts))
        elif order == "activelab":
            labeled = self.counts > 0
            matrix = self.labels[labeled].astype(float)
            matrix[matrix < 0] = np.nan
            matrix = matrix[:, ~np.isnan(matrix).all(axis=0)]  # annotators with no label yet
            scores = np.empty(len(self.pool))
            scores[labeled], scores[~labeled] = activelab_scores(
                matrix, probs[labeled], probs[~labeled]
            )
            ranked = np.argsort(scores, kind="stable")
        else:
            raise ValueError(f"Unknown order {order!r}; allowed: {', '.join(ORDERS)}.")
        return ranked[open_items[ranked]][:size]


def simulate(data: Dataset, config: Config, order: str, seed: int) -> dict:
    """One session: {"labels": [...bought at each refresh], "accuracy": [...held-out]}.
    order "ceiling": no session, the model trained on every pool item's true class."""
    np.random.seed(seed)  # cleanlab breaks ActiveLab's rare ties with numpy's global generator
    session = Session(data, config, seed)
    if order == "ceiling":
        return {"labels": [len(session.pool)], "accuracy": [session.ceiling_accuracy()]}
    session.give(session.import_batch(config.seed_labels))
    curve_labels, curve_accuracy = [], []
    while True:
        training = session.training_labels()
        curve_labels.append(session.bought)
        curve_accuracy.append(round(session.held_out_accuracy(training), 4))
        if session.bought >= config.budget:
            break
        size = min(config.refresh_every, config.budget - session.bought)
        probs = session.probabilities(training) if order != "import" else None
        session.give(session.choose(order, size, probs))
    return {"labels": curve_labels, "accuracy": curve_accuracy}


def labels_needed(curve: dict, target: float) -> int | None:
    for labels, accuracy in zip(curve["labels"], curve["accuracy"], strict=True):
        if accuracy >= target:
            return labels
    return None


def summarise(config: Config, curves: dict[str, list[dict]], seeds: list[int]) -> dict:
    out = {"config": asdict(config), "orders": {}}
    targets = [c["accuracy"][-1] for c in curves["import"]]
    for order in ORDERS:
        accuracy = np.array([c["accuracy"] for c in curves[order]])
        needed = [labels_needed(c, t) for c, t in zip(curves[order], targets, strict=True)]
        savings = [None if n is None else round(1 - n / config.budget, 4) for n in needed]
        reached = [s for s in savings if s is not None]
        out["orders"][order] = {
            "labels": curves[order][0]["labels"],
            "mean": np.round(accuracy.mean(axis=0), 4).tolist(),
            "low": accuracy.min(axis=0).tolist(),
            "high": accuracy.max(axis=0).tolist(),
            "per_seed": [
                {"seed": s, "final_accuracy": c["accuracy"][-1], "labels_needed": n, "saving": v}
                for s, c, n, v in zip(seeds, curves[order], needed, savings, strict=True)
            ],
            # A seed that never reaches the target counts as no saving at all.
            "mean_saving": round(float(np.mean([s if s is not None else 0.0 for s in savings])), 4),
            "seeds_reaching_target": len(reached),
        }
    # The same reading on the mean curves (less noisy than one seed's curve).
    mean_curves = {o: {"labels": out["orders"][o]["labels"], "accuracy": out["orders"][o]["mean"]}
                   for o in ORDERS}  # fmt: skip
    target = mean_curves["import"]["accuracy"][-1]
    for order in ORDERS:
        needed = labels_needed(mean_curves[order], target)
        out["orders"][order]["mean_curve_saving"] = (
            None if needed is None else round(1 - needed / config.budget, 4)
        )
    return out


def _run(task: tuple[Config, str, int]) -> dict:
    config, order, seed = task
    # cleanlab prints notes (an annotator with no overlap yet) to stdout, where the JSON goes.
    with contextlib.redirect_stdout(io.StringIO()):
        return simulate(load_dataset(config.dataset), config, order, seed)


def run(configs: dict[str, Config], seeds: list[int], workers: int) -> dict:
    tasks = [(c, o, s) for c in configs.values() for o in (*ORDERS, "ceiling") for s in seeds]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_run, tasks))
    by_task = dict(zip([(c.dataset, o, s) for c, o, s in tasks], results, strict=True))
    report = {}
    for name, config in configs.items():
        curves = {o: [by_task[(name, o, s)] for s in seeds] for o in ORDERS}
        report[name] = summarise(config, curves, seeds)
        ceiling = [by_task[(name, "ceiling", s)]["accuracy"][0] for s in seeds]
        report[name]["ceiling_true_labels_whole_pool"] = round(float(np.mean(ceiling)), 4)
    return report


def draw(report: dict, path: Path) -> None:
    colors = {"import": "#868e96", "uncertainty": "#3b5bdb", "activelab": "#e8590c"}
    panels = []
    for name, summary in report.items():
        series = [
            {"name": order, "x": s["labels"], "y": s["mean"], "low": s["low"],
             "high": s["high"], "color": colors[order]}
            for order, s in summary["orders"].items()
        ]  # fmt: skip
        panels.append(
            learning_curve_svg(
                series,
                title=f"{name}: held-out accuracy (mean, min-max over seeds)",
                x_label="labels bought",
                y_label="accuracy",
            )
        )
    width = sum(p.width for p in panels)
    height = max(p.height for p in panels)
    inner, x = [], 0
    for panel in panels:
        inner.append(f'<g transform="translate({x},0)">{panel.body}</g>')
        x += panel.width
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">{"".join(inner)}</svg>\n',
        encoding="utf-8",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, smaller budgets")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--datasets", default="digits,sentiment")
    parser.add_argument("--svg", type=Path, help="also draw the curves into this SVG file")
    args = parser.parse_args()
    table = QUICK if args.quick else FULL
    configs = {name: table[name] for name in args.datasets.split(",")}
    seeds = list(range(2 if args.quick else args.seeds))
    load_before = round(os.getloadavg()[0], 2)
    start = time.perf_counter()
    report = run(configs, seeds, args.workers)
    seconds = round(time.perf_counter() - start, 1)
    digits = report.get("digits", {}).get("orders", {})
    active = ("uncertainty", "activelab")
    met = bool(digits) and all(digits[o]["mean_saving"] >= TARGET_SAVING for o in active)
    met_every_seed = bool(digits) and all(
        (p["saving"] or 0.0) >= TARGET_SAVING for o in active for p in digits[o]["per_seed"]
    )
    if args.svg:
        draw(report, args.svg)
    print(
        json.dumps(
            {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                **benchdb.machine(),
                "load_average_1m_before": load_before,
                "load_average_1m_after": round(os.getloadavg()[0], 2),
                "seconds": seconds,
                "seeds": seeds,
                "quick": args.quick,
                "target_saving": TARGET_SAVING,
                "met": met,
                "met_every_seed": met_every_seed,
                "datasets": report,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

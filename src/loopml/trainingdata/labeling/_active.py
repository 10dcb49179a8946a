"""Active learning: which rows to send to a labeler next, when to stop, and whether it pays.

Scores (higher = more worth labeling): least confidence, margin, entropy, vote entropy of a
committee (query by committee), each optionally weighted by density (how typical a row is,
so outliers are not queried first). Batches trade score for diversity greedily. A
stopping rule watches predictions stabilise. The simulator replays a labeled dataset as the
oracle and draws learning curves against random sampling over several seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError
from loopml.trainingdata.labeling._matrix import FloatArray, IntArray, one_blas_thread

__all__ = [
    "LearningCurves",
    "StabilizingPredictions",
    "density_weights",
    "query",
    "select_batch",
    "simulate_active_learning",
    "uncertainty_scores",
    "vote_entropy",
]

Strategy = Literal["least_confidence", "margin", "entropy", "vote_entropy", "random"]
STRATEGIES: tuple[str, ...] = ("least_confidence", "margin", "entropy", "vote_entropy", "random")


def _check_proba(proba: Any) -> FloatArray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2 or not np.isfinite(p).all():
        raise DataError(
            f"proba must be a finite (rows x classes) array with 2+ classes. Got {p.shape}."
        )
    return p


def uncertainty_scores(proba: Any, strategy: str = "entropy") -> FloatArray:
    """How uncertain the model is per row: least confidence, margin or entropy.

    Margin is returned as ``1 - (p1 - p2)`` so that higher always means "ask first".

    >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]])
    >>> uncertainty_scores(p, "least_confidence").round(2)
    array([0.1, 0.4, 0.5])
    >>> uncertainty_scores(p, "margin").round(2), uncertainty_scores(p, "entropy").round(2)
    (array([0.2, 0.8, 1. ]), array([0.33, 0.67, 0.69]))
    """
    p = _check_proba(proba)
    if strategy == "least_confidence":
        return np.asarray(1.0 - p.max(axis=1))
    if strategy == "margin":
        top2 = np.sort(p, axis=1)[:, -2:]
        return np.asarray(1.0 - (top2[:, 1] - top2[:, 0]))
    if strategy == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * np.log(p), 0.0)
        return np.asarray(-terms.sum(axis=1))
    raise ConfigError(
        "The 'strategy' parameter of uncertainty_scores must be one of least_confidence, "
        f"margin, entropy. Got {strategy!r} instead."
    )


def vote_entropy(committee_labels: Any, cardinality: int) -> FloatArray:
    """Query by committee: entropy of the members' votes per row (members x rows input).

    >>> vote_entropy(np.array([[0, 0, 1], [0, 1, 1], [0, 0, 0]]), 2).round(2)
    array([0.  , 0.64, 0.64])
    """
    votes = np.asarray(committee_labels)
    if votes.ndim != 2:
        raise DataError(f"committee_labels must be (members x rows). Got shape {votes.shape}.")
    shares = np.stack([(votes == c).mean(axis=0) for c in range(cardinality)], axis=1)
    return uncertainty_scores(np.clip(shares, 0, 1), "entropy")


def density_weights(X: Any, k: int = 10) -> FloatArray:
    """How typical each row is: mean cosine similarity to its ``k`` nearest rows, in [0, 1].

    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [1.0, 0.05], [0.0, 1.0]])
    >>> density_weights(X, k=2).round(2)
    array([1.  , 1.  , 1.  , 0.07])
    """
    features = _dense(X)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.where(norms > 0, norms, 1.0)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    k = min(k, len(unit) - 1)
    if k < 1:
        return np.ones(len(unit))
    nearest = np.sort(similarity, axis=1)[:, -k:]
    return np.asarray(np.clip(nearest.mean(axis=1), 0, 1))


def _dense(X: Any) -> FloatArray:
    toarray = getattr(X, "toarray", None)
    array = np.asarray(toarray() if callable(toarray) else X, dtype=np.float64)
    if array.ndim != 2:
        raise DataError(f"X must be a 2-D feature matrix. Got shape {array.shape}.")
    return array


def select_batch(scores: Any, batch_size: int, X: Any = None, diversity: float = 0.0) -> IntArray:
    """Pick ``batch_size`` rows: the top scores, or a greedy trade-off with diversity.

    With ``diversity`` in (0, 1] and features ``X``, each pick maximises
    ``(1 - diversity) * score + diversity * distance to the rows already picked`` (both
    scaled to [0, 1]), so a batch does not ask the same question ten times.

    >>> X = np.array([[0.0], [0.01], [1.0], [0.02]])
    >>> select_batch([0.9, 0.89, 0.5, 0.88], 2).tolist()
    [0, 1]
    >>> select_batch([0.9, 0.89, 0.5, 0.88], 2, X=X, diversity=0.7).tolist()
    [0, 2]
    """
    s = np.asarray(scores, dtype=np.float64)
    if not 1 <= batch_size <= len(s) or not 0 <= diversity <= 1:
        raise ConfigError(
            f"select_batch needs 1 <= batch_size <= {len(s)} and diversity in [0, 1]. "
            f"Got batch_size={batch_size}, diversity={diversity} instead."
        )
    if diversity == 0 or X is None:
        return np.argsort(-s, kind="stable")[:batch_size]
    features = _dense(X)
    scaled = (s - s.min()) / (np.ptp(s) or 1.0)
    chosen = [int(np.argmax(scaled))]
    distance = np.linalg.norm(features - features[chosen[0]], axis=1)
    for _ in range(batch_size - 1):
        spread = distance / (distance.max() or 1.0)
        value = (1 - diversity) * scaled + diversity * spread
        value[chosen] = -np.inf
        pick = int(np.argmax(value))
        chosen.append(pick)
        distance = np.minimum(distance, np.linalg.norm(features - features[pick], axis=1))
    return np.asarray(chosen)


def query(
    proba: Any,
    batch_size: int,
    *,
    strategy: str = "entropy",
    X: Any = None,
    density_beta: float = 0.0,
    diversity: float = 0.0,
    committee_labels: Any = None,
    seed: int | None = None,
) -> IntArray:
    """The rows to label next (positions), best first.

    ``strategy``: ``least_confidence``, ``margin``, ``entropy``, ``vote_entropy`` (needs
    ``committee_labels``; ties go to the higher entropy of ``proba``) or ``random``.
    ``density_beta > 0`` multiplies scores by
    ``density ** beta`` (needs ``X``).

    >>> query(np.array([[0.9, 0.1], [0.55, 0.45], [0.7, 0.3]]), 2).tolist()
    [1, 2]
    """
    p = _check_proba(proba)
    if strategy == "random":
        return np.random.default_rng(seed).permutation(len(p))[:batch_size]
    if strategy == "vote_entropy":
        if committee_labels is None:
            raise ConfigError("strategy='vote_entropy' needs committee_labels (members x rows).")
        # a small committee's vote entropy takes few values: break its ties by the
        # model's own entropy (scaled below the smallest step between vote entropies)
        scores = vote_entropy(committee_labels, p.shape[1])
        scores = scores + 1e-3 * uncertainty_scores(p, "entropy") / np.log(p.shape[1])
    elif strategy in STRATEGIES:
        scores = uncertainty_scores(p, strategy)
    else:
        raise ConfigError(
            f"The 'strategy' parameter of query must be one of {', '.join(STRATEGIES)}. "
            f"Got {strategy!r} instead."
        )
    if density_beta:
        if X is None:
            raise ConfigError("density_beta > 0 needs the feature matrix X.")
        scores = scores * density_weights(X) ** density_beta
    return select_batch(scores, batch_size, X=X, diversity=diversity)


@dataclass
class StabilizingPredictions:
    """Stop when predictions on a fixed stop set agree round after round.

    Stabilizing predictions (Bloodgood & Vijay-Shanker 2009): stop once Cohen's kappa
    between consecutive rounds' predictions is at least ``threshold`` for ``window``
    rounds in a row.

    >>> rule = StabilizingPredictions(threshold=0.99, window=2)
    >>> [rule.update(p) for p in ([0, 1, 1, 0], [0, 1, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1])]
    [False, False, False, True]
    """

    threshold: float = 0.99
    window: int = 3
    history: list[float] = field(default_factory=list)
    _previous: IntArray | None = None

    def update(self, predictions: Any) -> bool:
        """Record this round's predictions on the stop set; True when it is time to stop."""
        current = np.asarray(predictions)
        if self._previous is not None:
            if current.shape != self._previous.shape:
                raise DataError("Stop-set predictions changed shape between rounds.")
            self.history.append(_kappa(self._previous, current))
        self._previous = current
        recent = self.history[-self.window :]
        return len(recent) == self.window and min(recent) >= self.threshold


def _kappa(a: IntArray, b: IntArray) -> float:
    observed = float(np.mean(a == b))
    classes = np.union1d(a, b)
    expected = float(sum(np.mean(a == c) * np.mean(b == c) for c in classes))
    return 1.0 if expected >= 1 else (observed - expected) / (1 - expected)


@dataclass(frozen=True)
class LearningCurves:
    """Test accuracy per round and strategy: ``raw`` (one row per seed) and ``summary``.

    ``summary`` has ``mean``, ``std``, ``min`` and ``max`` over seeds for each strategy
    and number of labels.
    """

    raw: pd.DataFrame
    summary: pd.DataFrame

    def gain_over_random(self) -> pd.Series:
        """Mean accuracy minus random sampling's, per strategy, averaged over rounds."""
        table = self.summary.pivot(index="n_labeled", columns="strategy", values="mean")
        gains = table.sub(table["random"], axis=0).drop(columns="random")
        return gains.mean()

    def to_svg(self, width: int = 560, height: int = 320) -> str:
        """A line chart (mean, with a min-max band per strategy) as standalone SVG."""
        return _svg(self.summary, width, height)


def simulate_active_learning(
    make_estimator: Callable[[], Any],
    X: Any,
    y: Any,
    X_test: Any,
    y_test: Any,
    *,
    strategies: Sequence[str] = ("entropy", "random"),
    initial_size: int = 20,
    batch_size: int = 10,
    rounds: int = 10,
    seeds: Sequence[int] = (0, 1, 2),
    committee_size: int = 5,
) -> LearningCurves:
    """Replay a labeled pool as the oracle and measure test accuracy round by round.

    Each seed draws the same initial labeled set for every strategy, so curves differ only
    by what was queried. ``random`` is always included as the baseline. ``vote_entropy``
    trains ``committee_size`` members on bootstrap samples of the labeled rows.

    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> curves = simulate_active_learning(LogisticRegression, X[:200], y[:200], X[200:],
    ...     y[200:], initial_size=10, batch_size=5, rounds=3, seeds=[0, 1])
    >>> sorted(curves.summary["strategy"].unique()), len(curves.raw)
    (['entropy', 'random'], 16)
    """
    features, labels = _dense(X), np.asarray(y)
    test_features, test_labels = _dense(X_test), np.asarray(y_test)
    names = list(dict.fromkeys([*strategies, "random"]))
    for name in names:
        if name not in STRATEGIES:
            raise ConfigError(f"Unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}.")
    if initial_size + batch_size * rounds > len(labels):
        raise ConfigError(
            f"The pool has {len(labels)} rows; initial_size + batch_size * rounds = "
            f"{initial_size + batch_size * rounds} would exhaust it."
        )
    records = []
    with one_blas_thread():  # many small fits: BLAS threads cost 7x here on 2 busy cores
        for seed in seeds:
            start = _initial_rows(labels, initial_size, seed)
            for name in names:
                records += _run_strategy(
                    make_estimator,
                    features,
                    labels,
                    test_features,
                    test_labels,
                    name,
                    start,
                    batch_size,
                    rounds,
                    seed,
                    committee_size,
                )
    raw = pd.DataFrame(records)
    summary = (
        raw.groupby(["strategy", "n_labeled"])["accuracy"]
        .agg(["mean", "std", "min", "max"])
        .reset_index()
    )
    return LearningCurves(raw, summary)


def _initial_rows(labels: IntArray, size: int, seed: int) -> IntArray:
    """A random start that holds every class at least once (so a classifier can fit)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    firsts = [order[labels[order] == c][0] for c in np.unique(labels)]
    taken = set(firsts)
    rest = [i for i in order if i not in taken][: max(size - len(firsts), 0)]
    return np.asarray([*firsts, *rest])


def _run_strategy(
    make_estimator: Callable[[], Any],
    X: FloatArray,
    y: IntArray,
    X_test: FloatArray,
    y_test: IntArray,
    strategy: str,
    start: IntArray,
    batch_size: int,
    rounds: int,
    seed: int,
    committee_size: int,
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed + 1_000)
    labeled = np.zeros(len(y), dtype=bool)
    labeled[start] = True
    records = []
    for round_ in range(rounds + 1):
        model = make_estimator().fit(X[labeled], y[labeled])
        accuracy = float(np.mean(model.predict(X_test) == y_test))
        records.append(
            {
                "strategy": strategy,
                "seed": seed,
                "round": round_,
                "n_labeled": int(labeled.sum()),
                "accuracy": accuracy,
            }
        )
        if round_ == rounds:
            break
        pool = np.flatnonzero(~labeled)
        picked = _pick(
            model, make_estimator, X, y, labeled, pool, strategy, batch_size, rng, committee_size
        )
        labeled[pool[picked]] = True
    return records


def _pick(
    model: Any,
    make_estimator: Callable[[], Any],
    X: FloatArray,
    y: IntArray,
    labeled: Any,
    pool: IntArray,
    strategy: str,
    batch_size: int,
    rng: np.random.Generator,
    committee_size: int,
) -> IntArray:
    if strategy == "random":
        return rng.permutation(len(pool))[:batch_size]
    proba = model.predict_proba(X[pool])
    committee = None
    if strategy == "vote_entropy":
        rows = np.flatnonzero(labeled)
        members = []
        for _ in range(committee_size):
            sample = rng.choice(rows, size=len(rows), replace=True)
            if len(np.unique(y[sample])) < 2:
                sample = rows
            members.append(make_estimator().fit(X[sample], y[sample]).predict(X[pool]))
        committee = np.stack(members)
    return query(proba, batch_size, strategy=strategy, committee_labels=committee)


def _svg(summary: pd.DataFrame, width: int, height: int) -> str:
    pad = 40
    xs, ys = summary["n_labeled"], pd.concat([summary["min"], summary["max"]])
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()

    def point(x: float, y: float) -> str:
        px = pad + (x - x0) / ((x1 - x0) or 1) * (width - 2 * pad)
        py = height - pad - (y - y0) / ((y1 - y0) or 1) * (height - 2 * pad)
        return f"{px:.1f},{py:.1f}"

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#7f7f7f"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">']
    for i, (name, group) in enumerate(summary.groupby("strategy")):
        colour = colours[i % len(colours)]
        upper = [point(x, v) for x, v in zip(group["n_labeled"], group["max"], strict=True)]
        lower = [point(x, v) for x, v in zip(group["n_labeled"], group["min"], strict=True)]
        band = " ".join(upper + lower[::-1])
        line = " ".join(point(x, v) for x, v in zip(group["n_labeled"], group["mean"], strict=True))
        parts.append(f'<polygon points="{band}" fill="{colour}" fill-opacity="0.15"/>')
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}"/>')
        parts.append(f'<text x="{pad}" y="{16 + 14 * i}" fill="{colour}">{name}</text>')
    parts.append(
        f'<text x="{width / 2}" y="{height - 8}">labels ({x0}-{x1}); accuracy '
        f"{y0:.3f}-{y1:.3f}</text></svg>"
    )
    return "".join(parts)

"""Label matrices generated from known labeling-function accuracies (for tests, benchmarks
and for checking a label model on a task shaped like yours)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from loopml.core import ConfigError
from loopml.trainingdata.labeling._matrix import FloatArray, IntArray, label_dtype

__all__ = ["SyntheticLabels", "synthetic_label_matrix"]


@dataclass(frozen=True)
class SyntheticLabels:
    """A generated label matrix with its truth: gold labels and each function's accuracy."""

    L: IntArray
    y: IntArray
    accuracies: FloatArray
    coverages: FloatArray


def synthetic_label_matrix(
    n: int,
    accuracies: Sequence[float],
    coverages: Sequence[float] | float = 0.5,
    *,
    cardinality: int = 2,
    class_balance: Sequence[float] | None = None,
    copies: Sequence[tuple[int, int, float]] = (),
    seed: int = 0,
) -> SyntheticLabels:
    """Votes from conditionally independent functions with known accuracies and coverages.

    Function ``j`` votes on a row with probability ``coverages[j]`` (whatever the class) and
    is then right with probability ``accuracies[j]``, else votes a wrong class uniformly.
    ``copies`` adds correlation: ``(j, source, rate)`` makes function ``j`` repeat
    ``source``'s vote on a share ``rate`` of the rows (its marginal accuracy is unchanged
    when both have the same accuracy and coverage).

    >>> data = synthetic_label_matrix(10_000, [0.9, 0.7], 0.5, seed=0)
    >>> data.L.shape, data.L.dtype.name
    ((10000, 2), 'int8')
    >>> voted = data.L[:, 0] != -1
    >>> round(float((data.L[voted, 0] == data.y[voted]).mean()), 2)
    0.9
    """
    acc = np.asarray(accuracies, dtype=np.float64)
    cov = np.broadcast_to(np.asarray(coverages, dtype=np.float64), acc.shape).copy()
    if ((acc < 0) | (acc > 1) | (cov < 0) | (cov > 1)).any() or n < 1 or cardinality < 2:
        raise ConfigError(
            "synthetic_label_matrix needs n >= 1, cardinality >= 2 and accuracies and "
            f"coverages in [0, 1]. Got n={n}, accuracies={list(acc)}, coverages={list(cov)}."
        )
    rng = np.random.default_rng(seed)
    balance = np.full(cardinality, 1 / cardinality) if class_balance is None else class_balance
    y = rng.choice(cardinality, size=n, p=np.asarray(balance, dtype=np.float64))
    m = len(acc)
    right = rng.random((n, m)) < acc
    wrong = (y[:, None] + rng.integers(1, cardinality, size=(n, m))) % cardinality
    votes = np.where(right, y[:, None], wrong)
    L = np.where(rng.random((n, m)) < cov, votes, -1)
    for j, source, rate in copies:
        repeat = rng.random(n) < rate
        L[repeat, j] = L[repeat, source]
    return SyntheticLabels(L.astype(label_dtype(cardinality)), y, acc, cov)

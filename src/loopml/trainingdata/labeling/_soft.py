"""Probabilistic labels as training data: soft labels or sample weights, with a coverage
filter that reports what it left out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from loopml.core import ConfigError, DataError
from loopml.trainingdata.labeling._matrix import (
    ABSTAIN,
    FloatArray,
    IntArray,
    check_label_matrix,
)

__all__ = ["TrainingLabels", "training_labels"]


@dataclass(frozen=True)
class TrainingLabels:
    """Rows kept for training, with their soft labels, hard labels and weights.

    ``rows`` are positions in the original data; ``dropped`` counts rows left out by the
    coverage or confidence filter (never silently: it is here and in ``summary()``).
    """

    rows: IntArray
    proba: FloatArray
    labels: IntArray
    sample_weight: FloatArray
    dropped: int

    def expanded(self) -> tuple[IntArray, IntArray, FloatArray]:
        """One copy of each row per class, weighted by its probability.

        Training any classifier with a log-loss on these ``(rows, labels, weights)`` is
        training on the soft labels exactly (the expected cross-entropy).

        >>> t = training_labels(np.array([[0.75, 0.25]]))
        >>> t.expanded()
        (array([0, 0]), array([0, 1]), array([0.75, 0.25]))
        """
        k = self.proba.shape[1]
        rows = np.repeat(self.rows, k)
        labels = np.tile(np.arange(k), len(self.rows))
        weights = self.proba.ravel()
        keep = weights > 0
        return rows[keep], labels[keep], weights[keep]

    def summary(self) -> str:
        """One line: how many rows are kept and dropped."""
        return f"{len(self.rows)} rows kept for training, {self.dropped} dropped by the filter"


def training_labels(
    proba: Any, L: Any = None, *, min_votes: int = 1, min_confidence: float = 0.0
) -> TrainingLabels:
    """Turn a label model's ``predict_proba`` into training labels.

    Rows with fewer than ``min_votes`` non-abstain votes in ``L`` (when given) or whose top
    probability is below ``min_confidence`` are dropped; ``sample_weight`` is the top
    probability, for learners that take hard labels and weights.

    >>> proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    >>> L = np.array([[0, 0], [-1, -1], [1, -1]])
    >>> t = training_labels(proba, L)
    >>> t.rows, t.labels, t.sample_weight, t.dropped
    (array([0, 2]), array([0, 1]), array([0.9, 0.8]), 1)
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2 or not np.isfinite(p).all():
        raise DataError(f"proba must be a finite (rows x classes) array. Got shape {p.shape}.")
    if min_votes < 0 or not 0 <= min_confidence <= 1:
        raise ConfigError(
            "training_labels needs min_votes >= 0 and min_confidence in [0, 1]. Got "
            f"min_votes={min_votes}, min_confidence={min_confidence} instead."
        )
    keep = p.max(axis=1) >= min_confidence
    if L is not None:
        matrix = check_label_matrix(L, p.shape[1])
        if matrix.shape[0] != p.shape[0]:
            raise DataError(f"L has {matrix.shape[0]} rows but proba has {p.shape[0]}.")
        keep &= (matrix != ABSTAIN).sum(axis=1) >= min_votes
    rows = np.flatnonzero(keep)
    kept = p[rows]
    return TrainingLabels(
        rows, kept, kept.argmax(axis=1), kept.max(axis=1), int(len(p) - len(rows))
    )

"""Self-training: pseudo-label the rows a model is sure about, if its guess survives noise."""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from loopml.core import ConfigError, DataError
from loopml.trainingdata.labeling._matrix import FloatArray, IntArray

__all__ = ["SelfTraining"]


class SelfTraining:
    """Wrap a classifier; ``fit(X, y)`` with ``y = -1`` on unlabeled rows.

    Each iteration fits on the labeled rows, predicts the unlabeled ones and accepts a
    pseudo-label where the top probability is at least ``threshold`` *and* the predicted
    class is unchanged on ``n_perturbations`` copies of the row with Gaussian noise of
    ``noise`` times each column's standard deviation (the perturbation-consistency check:
    confident but brittle guesses are where self-training teaches itself its own
    mistakes). It stops when nothing new is accepted or after ``max_iter`` rounds.
    Fitted: ``estimator_``, ``transduction_`` (labels used, -1 = never labeled),
    ``labeled_iter_`` (0 = given, i = added at iteration i), ``history_``.

    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 2)); truth = (X[:, 0] > 0).astype(int)
    >>> y = np.where(np.arange(400) < 20, truth, -1)
    >>> model = SelfTraining(LogisticRegression(), threshold=0.9, seed=0).fit(X, y)
    >>> int((model.labeled_iter_ > 0).sum()) > 100, model.score(X, truth) > 0.9
    (True, True)
    """

    def __init__(
        self,
        estimator: Any,
        threshold: float = 0.9,
        max_iter: int = 10,
        noise: float = 0.1,
        n_perturbations: int = 5,
        seed: int | None = 0,
    ) -> None:
        self.estimator = estimator
        self.threshold = threshold
        self.max_iter = max_iter
        self.noise = noise
        self.n_perturbations = n_perturbations
        self.seed = seed

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters."""
        names = ("estimator", "threshold", "max_iter", "noise", "n_perturbations", "seed")
        return {name: getattr(self, name) for name in names}

    def fit(self, X: Any, y: Any) -> Self:
        """Self-train on ``X`` with ``y`` = class index or -1 (unlabeled)."""
        from sklearn.base import clone

        features, labels = self._check(X, y)
        rng = np.random.default_rng(self.seed)
        scale = features.std(axis=0) * self.noise
        self.transduction_ = labels.copy()
        self.labeled_iter_ = np.where(labels != -1, 0, -1)
        self.history_: list[dict[str, int]] = []
        for iteration in range(1, self.max_iter + 1):
            known = self.transduction_ != -1
            self.estimator_ = clone(self.estimator).fit(features[known], self.transduction_[known])
            accepted, brittle = self._pseudo_label(features, ~known, scale, rng)
            self.history_.append(
                {"iteration": iteration, "added": len(accepted), "rejected_unstable": brittle}
            )
            if not len(accepted):
                break
            self.labeled_iter_[accepted] = iteration
        known = self.transduction_ != -1
        self.estimator_ = clone(self.estimator).fit(features[known], self.transduction_[known])
        self.n_iter_ = len(self.history_)
        return self

    def _pseudo_label(
        self, X: FloatArray, unlabeled: Any, scale: FloatArray, rng: np.random.Generator
    ) -> tuple[IntArray, int]:
        rows = np.flatnonzero(unlabeled)
        if not len(rows):
            return rows, 0
        proba = self.estimator_.predict_proba(X[rows])
        guess = self.estimator_.classes_[proba.argmax(axis=1)]
        confident = proba.max(axis=1) >= self.threshold
        if not confident.any():
            return rows[:0], 0
        stable = confident.copy()
        for _ in range(self.n_perturbations):
            noisy = X[rows[confident]] + rng.normal(size=X[rows[confident]].shape) * scale
            stable[confident] &= self.estimator_.predict(noisy) == guess[confident]
        accepted = rows[stable]
        self.transduction_[accepted] = guess[stable]
        return accepted, int(confident.sum() - stable.sum())

    def _check(self, X: Any, y: Any) -> tuple[FloatArray, IntArray]:
        if not 0 < self.threshold <= 1 or self.max_iter < 1 or self.noise < 0:
            raise ConfigError(
                "SelfTraining needs 0 < threshold <= 1, max_iter >= 1 and noise >= 0. Got "
                f"threshold={self.threshold}, max_iter={self.max_iter}, noise={self.noise}."
            )
        features = np.asarray(X, dtype=np.float64)
        labels = np.asarray(y)
        if features.ndim != 2 or labels.shape != (features.shape[0],):
            raise DataError(
                f"X must be (rows x features) and y one label per row; got X {features.shape}"
                f" and y {labels.shape}."
            )
        if not np.issubdtype(labels.dtype, np.integer) or (labels < -1).any():
            raise DataError("y must hold class indices, with -1 for unlabeled rows.")
        if len(np.unique(labels[labels != -1])) < 2:
            raise DataError("SelfTraining needs labeled rows of at least two classes.")
        return features, labels.astype(np.int64)

    def predict(self, X: Any) -> Any:
        """The final estimator's predictions."""
        return self.estimator_.predict(np.asarray(X, dtype=np.float64))

    def predict_proba(self, X: Any) -> Any:
        """The final estimator's probabilities."""
        return self.estimator_.predict_proba(np.asarray(X, dtype=np.float64))

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on ``(X, y)``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

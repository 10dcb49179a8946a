"""``ResampledClassifier``: resampling that lives inside ``fit``, so it never crosses a split.

This module imports scikit-learn at the top; ``loopml.trainingdata`` loads it on first use.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin, clone

from loopml.trainingdata._imbalance import sampler_for

__all__ = ["ResampledClassifier"]


class ResampledClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Resample the rows given to ``fit`` (and only those), then fit ``estimator``.

    Because resampling lives inside ``fit``, cross-validation and :func:`make_split` can
    never put a resampled copy of a training row into the rows it is scored on.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.random.default_rng(0).normal(size=(200, 2)); y = (X[:, 0] > 1.3).astype(int)
    >>> model = ResampledClassifier(LogisticRegression(), "random_over").fit(X, y)
    >>> model.n_resampled_, int(np.bincount(y)[0] * 2)
    (366, 366)
    """

    def __init__(self, estimator: Any, method: str | Any = "random_over", seed: int = 0) -> None:
        self.estimator = estimator
        self.method = method
        self.seed = seed

    def fit(self, X: Any, y: Any, **fit_params: Any) -> ResampledClassifier:  # noqa: N803
        """Resample ``X, y`` and fit a clone of the estimator on the result."""
        X_res, y_res = sampler_for(self.method, self.seed).fit_resample(X, y)  # noqa: N806
        self.estimator_ = clone(self.estimator).fit(X_res, y_res, **fit_params)
        self.classes_ = self.estimator_.classes_
        self.n_resampled_ = len(y_res)
        return self

    def predict(self, X: Any) -> Any:  # noqa: N803
        """Predictions of the fitted estimator."""
        return self.estimator_.predict(X)

    def predict_proba(self, X: Any) -> Any:  # noqa: N803
        """Class probabilities of the fitted estimator (skewed by the resampling: recalibrate
        on untouched validation rows before reading them as probabilities)."""
        return self.estimator_.predict_proba(X)

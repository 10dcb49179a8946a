"""Label shift: black-box shift estimation (Lipton, Wang & Smola, 2018).

Under label shift, P(y) changes but P(x | y) does not. The model's confusion matrix on the
validation set, ``C[i, j] = P_val(prediction = i, label = j)``, and the distribution of its
predictions on the current window, ``mu[i] = P_now(prediction = i)``, satisfy
``mu = C @ w`` where ``w[j] = P_now(y = j) / P_val(y = j)``. Solving for ``w`` gives the new
class priors without a single current label, and ``w`` are the importance weights that
re-weight the validation (or training) rows to the current priors for retraining.
The soft variant uses predicted probabilities instead of hard predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError
from loopml.monitoring._results import clean_float

__all__ = ["LabelShiftResult", "estimate_label_shift"]


@dataclass(frozen=True)
class LabelShiftResult:
    """Estimated current class priors and the importance weights per class."""

    classes: list[Any]
    source_priors: np.ndarray
    target_priors: np.ndarray
    weights: np.ndarray
    p_value: float
    alpha: float
    drifted: bool
    reason: str
    condition_number: float

    def importance_weights(self, labels: Any) -> np.ndarray:
        """The weight of each labelled row, for retraining on the current priors."""
        lookup = {c: w for c, w in zip(self.classes, self.weights, strict=True)}
        values = pd.Series(labels)
        unknown = sorted(set(values.unique()) - set(lookup), key=str)
        if unknown:
            raise DataError(f"labels {unknown[:5]} are not among the classes {self.classes}")
        return values.map(lookup).to_numpy(np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "classes": [str(c) for c in self.classes],
            "source_priors": self.source_priors.tolist(),
            "target_priors": self.target_priors.tolist(),
            "weights": self.weights.tolist(),
            "p_value": clean_float(self.p_value),
            "alpha": self.alpha,
            "drifted": self.drifted,
            "reason": self.reason,
            "condition_number": clean_float(self.condition_number),
        }


def estimate_label_shift(
    y_true_validation: Any,
    y_pred_validation: Any,
    y_pred_current: Any,
    *,
    classes: list[Any] | None = None,
    alpha: float = 0.01,
) -> LabelShiftResult:
    """Black-box shift estimation of the current class priors.

    ``y_pred_*`` are hard predictions (one label per row) or, for the soft variant,
    probability matrices with one column per class in ``classes`` order.

    >>> rng = np.random.default_rng(0)
    >>> y_val = rng.integers(0, 2, 20_000)
    >>> flip = rng.random(20_000) < 0.2  # a model that is right 80 % of the time
    >>> pred_val = np.where(flip, 1 - y_val, y_val)
    >>> y_now = (rng.random(20_000) < 0.8).astype(int)  # priors move from 50/50 to 20/80
    >>> pred_now = np.where(rng.random(20_000) < 0.2, 1 - y_now, y_now)
    >>> result = estimate_label_shift(y_val, pred_val, pred_now)
    >>> result.target_priors.round(2).tolist(), result.drifted
    ([0.2, 0.8], True)
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"The 'alpha' parameter must be between 0 and 1. Got {alpha!r} instead.")
    labels = pd.Series(y_true_validation).to_numpy()
    if len(labels) == 0:
        raise DataError(
            "the validation labels are empty; BBSE needs the model's validation predictions"
        )
    known = list(classes) if classes is not None else sorted(pd.unique(labels).tolist(), key=str)
    k = len(known)
    if k < 2:
        raise DataError(
            f"label shift needs at least two classes; the validation labels hold {known}"
        )
    val_probs = _as_probabilities(y_pred_validation, known, "y_pred_validation", len(labels))
    now_probs = _as_probabilities(y_pred_current, known, "y_pred_current", None)
    onehot = _one_hot(labels, known, "y_true_validation")
    joint = val_probs.T @ onehot / len(labels)  # C[i, j] = P(pred = i, y = j)
    mu = now_probs.mean(axis=0)
    weights, *_ = np.linalg.lstsq(joint, mu, rcond=None)
    weights = np.clip(weights, 0.0, None)
    source = onehot.mean(axis=0)
    target = weights * source
    target = target / target.sum() if target.sum() > 0 else source
    weights = np.divide(target, source, out=np.zeros(k), where=source > 0)
    p_value = _prediction_shift_p(val_probs, now_probs)
    singular = np.linalg.svd(joint, compute_uv=False)
    condition = float(singular[0] / singular[-1]) if singular[-1] > 0 else float("inf")
    drifted = bool(p_value < alpha)
    reason = (
        f"predicted-class distribution {'changed' if drifted else 'did not change'} "
        f"(chi-square p={p_value:.3g} vs alpha {alpha:g}); estimated priors "
        f"{dict(zip(map(str, known), target.round(3).tolist(), strict=True))} from "
        f"{dict(zip(map(str, known), source.round(3).tolist(), strict=True))}; "
        f"confusion-matrix condition number {condition:.3g}"
    )
    return LabelShiftResult(
        known, source, target, weights, p_value, alpha, drifted, reason, condition
    )


def _one_hot(values: np.ndarray, classes: list[Any], name: str) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    try:
        codes = np.array([index[v] for v in values])
    except KeyError as error:
        raise DataError(
            f"{name} holds {error.args[0]!r}, not among the classes {classes}"
        ) from None
    return np.asarray(np.eye(len(classes))[codes])


def _as_probabilities(values: Any, classes: list[Any], name: str, rows: int | None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 2:
        if array.shape[1] != len(classes):
            raise DataError(
                f"{name} has {array.shape[1]} probability columns for {len(classes)} classes "
                f"{classes}"
            )
        matrix = array.astype(np.float64)
    else:
        matrix = _one_hot(array, classes, name)
    if rows is not None and matrix.shape[0] != rows:
        raise DataError(f"{name} has {matrix.shape[0]} rows; the validation labels have {rows}")
    if matrix.shape[0] == 0:
        raise DataError(f"{name} is empty")
    return matrix


def _prediction_shift_p(val_probs: np.ndarray, now_probs: np.ndarray) -> float:
    """Chi-square test that the (expected) predicted-class counts have the same distribution."""
    from scipy.special import gammaincc

    table = np.vstack([val_probs.sum(axis=0), now_probs.sum(axis=0)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return float(gammaincc((table.shape[1] - 1) / 2.0, statistic / 2.0))

"""Model quality: with labels as they arrive, and estimated without them (CBPE).

Labels come late. ``quality_over_windows`` joins the prediction log with the feedback log
by ``request_id`` and scores a window only once ``label_delay`` has passed since its end
(earlier, its metrics would be biased towards the cases whose labels come fast). Until
then it shows the performance *estimated* from calibrated confidences (confidence-based
performance estimation, as NannyML's CBPE): if the model's probabilities are calibrated,
the expected confusion matrix of a window follows from its scores alone. When the labels
arrive, the estimate's error is measured and reported beside it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError, SchemaError, ensure_utc
from loopml.monitoring._windows import Window, split_by_windows

__all__ = [
    "CBPE",
    "classification_metrics",
    "quality_over_windows",
    "regression_metrics",
]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def _binary_labels(labels: Any, name: str = "label") -> np.ndarray:
    array = pd.to_numeric(pd.Series(labels), errors="coerce").to_numpy(np.float64)
    bad = ~np.isin(array, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{name} at row {row} is {pd.Series(labels).iloc[row]!r}; binary labels must be 0 or 1"
        )
    return array


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from scipy.stats import rankdata

    positives = labels.sum()
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float(
        (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def _from_confusion(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    total = tp + fp + fn + tn
    nan = float("nan")
    return {
        "accuracy": (tp + tn) / total if total else nan,
        "precision": tp / (tp + fp) if tp + fp else nan,
        "recall": tp / (tp + fn) if tp + fn else nan,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else nan,
    }


def classification_metrics(labels: Any, scores: Any, *, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC AUC, log loss and Brier score of binary scores.

    >>> classification_metrics([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.1])["accuracy"]
    0.75
    """
    y = _binary_labels(labels)
    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-12, 1 - 1e-12)
    predicted = p >= threshold
    tp, fp = float(np.sum(predicted & (y == 1))), float(np.sum(predicted & (y == 0)))
    fn, tn = float(np.sum(~predicted & (y == 1))), float(np.sum(~predicted & (y == 0)))
    metrics = _from_confusion(tp, fp, fn, tn)
    metrics["roc_auc"] = _auc(p, y)
    metrics["log_loss"] = (
        float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if y.size else float("nan")
    )
    metrics["brier"] = float(np.mean((p - y) ** 2)) if y.size else float("nan")
    metrics["positive_rate"] = float(y.mean()) if y.size else float("nan")
    return metrics


def regression_metrics(targets: Any, predictions: Any) -> dict[str, float]:
    """MAE, RMSE and bias (mean prediction minus mean target).

    >>> regression_metrics([1.0, 2.0], [1.5, 2.5])
    {'mae': 0.5, 'rmse': 0.5, 'bias': 0.5}
    """
    y = np.asarray(targets, dtype=np.float64)
    f = np.asarray(predictions, dtype=np.float64)
    error = f - y
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "bias": float(np.mean(error)),
    }


class CBPE:
    """Confidence-based performance estimation for a binary classifier.

    ``fit`` on reference scores with labels (the validation set) learns an isotonic
    calibration (skip it with ``calibrate=False`` when the scores are calibrated already);
    ``estimate`` returns the expected accuracy, precision, recall, F1 and ROC AUC of a
    window from its scores alone. It assumes the calibration still holds (no concept
    drift): it tracks covariate shift, not a change of P(y | x).

    >>> rng = np.random.default_rng(0)
    >>> p = rng.beta(2, 2, 20_000)
    >>> y = (rng.random(20_000) < p).astype(int)
    >>> cbpe = CBPE(calibrate=False).fit(p, y)
    >>> new_p = rng.beta(5, 1, 5000)  # covariate shift: more confident positives
    >>> new_y = (rng.random(5000) < new_p).astype(int)
    >>> est = cbpe.estimate(new_p)["accuracy"]
    >>> real = classification_metrics(new_y, new_p)["accuracy"]
    >>> abs(est - real) < 0.02
    True
    """

    def __init__(self, threshold: float = 0.5, calibrate: bool = True) -> None:
        self.threshold = threshold
        self.calibrate = calibrate

    def fit(self, scores: Any, labels: Any) -> CBPE:
        """Learn the calibration map from reference scores and labels."""
        from sklearn.isotonic import IsotonicRegression

        if not 0 < self.threshold < 1:
            raise ConfigError(
                f"The 'threshold' parameter of CBPE must be in (0, 1). Got {self.threshold!r} "
                "instead."
            )
        s = np.asarray(scores, dtype=np.float64)
        y = _binary_labels(labels)
        if s.size != y.size or s.size == 0:
            raise DataError(f"CBPE.fit needs as many scores as labels (got {s.size} and {y.size})")
        self.calibrator_ = (
            IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
            if self.calibrate
            else None
        )
        self.reference_metrics_ = classification_metrics(y, s, threshold=self.threshold)
        return self

    def calibrated(self, scores: Any) -> np.ndarray:
        """Calibrated probabilities of the positive class."""
        s = np.asarray(scores, dtype=np.float64)
        if not hasattr(self, "reference_metrics_"):
            raise ConfigError(
                "CBPE is not fitted yet; call fit(scores, labels) on the validation set first"
            )
        return s if self.calibrator_ is None else np.asarray(self.calibrator_.predict(s))

    def estimate(self, scores: Any) -> dict[str, float]:
        """Expected metrics of a window whose labels are not known."""
        s = np.asarray(scores, dtype=np.float64)
        p = self.calibrated(s)
        predicted = s >= self.threshold
        tp, fp = float(np.sum(p * predicted)), float(np.sum((1 - p) * predicted))
        fn, tn = float(np.sum(p * ~predicted)), float(np.sum((1 - p) * ~predicted))
        metrics = _from_confusion(tp, fp, fn, tn)
        metrics["roc_auc"] = _expected_auc(s, p)
        return metrics


def _expected_auc(scores: np.ndarray, p: np.ndarray) -> float:
    """E[concordant pairs] / E[positive-negative pairs], with ties counted half."""
    order = np.argsort(scores, kind="stable")
    s, q = scores[order], p[order]
    _, start = np.unique(s, return_index=True)
    group_p = np.add.reduceat(q, start)
    group_n = np.add.reduceat(1 - q, start)
    above = np.concatenate([np.cumsum(group_p[::-1])[::-1][1:], [0.0]])
    within = group_n * group_p - np.add.reduceat(q * (1 - q), start)
    concordant = float(np.sum(group_n * above) + 0.5 * np.sum(within))
    pairs = float(q.sum() * (1 - q).sum() - np.sum(q * (1 - q)))
    return concordant / pairs if pairs > 0 else float("nan")


def _latest_labels(feedback: pd.DataFrame, now: datetime) -> pd.DataFrame:
    missing = {"request_id", "label"} - set(feedback.columns)
    if missing:
        raise SchemaError(
            f"the feedback log has no column(s) {sorted(missing)}",
            hint="it needs request_id, time and label",
        )
    rows = feedback
    if "time" in feedback.columns:
        times = pd.to_datetime(feedback["time"], utc=True)
        rows = feedback.assign(time=times)[times <= pd.Timestamp(now)].sort_values("time")
    return rows.drop_duplicates("request_id", keep="last")[["request_id", "label"]]


def quality_over_windows(
    predictions: pd.DataFrame,
    feedback: pd.DataFrame,
    windows: list[Window],
    *,
    now: datetime,
    label_delay: str | timedelta = "0s",
    task: Literal["binary_classification", "regression"] = "binary_classification",
    threshold: float = 0.5,
    estimator: CBPE | None = None,
) -> pd.DataFrame:
    """One row per window: realized metrics once its labels are due, CBPE estimates always.

    ``status`` is ``"scored"`` when ``window.end + label_delay <= now``, else
    ``"waiting for labels"``. ``label_coverage`` is the share of the window's predictions
    that have a label. With an ``estimator``, ``estimated_<metric>`` columns hold the CBPE
    estimate and ``error_<metric>`` its error (estimate minus realized) where scored.
    """
    from loopml.core import parse_duration

    delay = parse_duration(label_delay, name="label_delay")
    now = ensure_utc(now, where="now")
    if "request_id" not in predictions.columns or "prediction" not in predictions.columns:
        raise SchemaError("the prediction log needs 'request_id' and 'prediction' columns")
    labels = _latest_labels(feedback, now)
    joined = predictions.merge(labels, on="request_id", how="left")
    rows = []
    for window, part in split_by_windows(joined, windows):
        end = window.end if isinstance(window.end, datetime) else now
        row: dict[str, Any] = {
            "window": window.index,
            "start": window.start,
            "end": window.end,
            "n_predictions": len(part),
        }
        labelled = part.dropna(subset=["label"])
        row["n_labelled"] = len(labelled)
        row["label_coverage"] = len(labelled) / len(part) if len(part) else float("nan")
        due = end + delay <= now
        row["status"] = "scored" if due and len(labelled) else "waiting for labels"
        if row["status"] == "scored":
            metrics = (
                classification_metrics(
                    labelled["label"], labelled["prediction"], threshold=threshold
                )
                if task == "binary_classification"
                else regression_metrics(labelled["label"], labelled["prediction"])
            )
            row.update(metrics)
        if estimator is not None and len(part):
            estimate = estimator.estimate(part["prediction"].to_numpy(np.float64))
            for name, value in estimate.items():
                row[f"estimated_{name}"] = value
                if row["status"] == "scored":
                    row[f"error_{name}"] = value - row[name]
        rows.append(row)
    return pd.DataFrame(rows)

"""Metrics used to rank baselines and candidates, with their direction.

>>> import numpy as np
>>> y, p = np.array([0, 1]), np.array([0.2, 0.9])
>>> score("binary_classification", "average_precision", y, p)
1.0
>>> higher_is_better("log_loss")
False
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loopml.core import ConfigError

__all__ = ["METRICS", "default_metric", "evaluate", "higher_is_better", "score"]

METRICS: dict[str, tuple[str, ...]] = {
    "binary_classification": ("average_precision", "roc_auc", "log_loss", "brier", "accuracy"),
    "multiclass_classification": ("log_loss", "accuracy", "macro_f1"),
    "regression": ("rmse", "mae", "r2"),
}
_LOWER = {"log_loss", "brier", "rmse", "mae"}


def default_metric(task: str) -> str:
    """The metric a task is ranked by unless the config names another."""
    return METRICS[task][0]


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better."""
    return metric not in _LOWER


def check_metric(task: str, metric: str) -> str:
    """``metric`` if the task knows it, else a ConfigError that lists the valid ones."""
    if metric not in METRICS[task]:
        valid = ", ".join(METRICS[task])
        raise ConfigError(
            f"The 'metric' parameter of train must be one of {valid} for {task}. "
            f"Got {metric!r} instead."
        )
    return metric


def score(task: str, metric: str, y: np.ndarray, prediction: np.ndarray) -> float:
    """One metric; ``prediction`` is P(positive), class probabilities, or values."""
    from sklearn import metrics as m

    if task == "regression":
        error = np.asarray(prediction, dtype=np.float64) - y
        if metric == "rmse":
            return float(np.sqrt(np.mean(error**2)))
        if metric == "mae":
            return float(np.mean(np.abs(error)))
        return float(m.r2_score(y, prediction))
    if task == "binary_classification":
        p = np.clip(np.asarray(prediction, dtype=np.float64), 1e-15, 1 - 1e-15)
        functions: dict[str, Any] = {
            "average_precision": lambda: m.average_precision_score(y, p),
            "roc_auc": lambda: m.roc_auc_score(y, p) if len(np.unique(y)) > 1 else np.nan,
            "log_loss": lambda: m.log_loss(y, p, labels=[0, 1]),
            "brier": lambda: np.mean((p - y) ** 2),
            "accuracy": lambda: np.mean((p >= 0.5) == y),
        }
        return float(functions[metric]())
    probs = np.asarray(prediction, dtype=np.float64)
    labels = np.arange(probs.shape[1])
    if metric == "log_loss":
        return float(m.log_loss(y, np.clip(probs, 1e-15, 1), labels=labels))
    chosen = probs.argmax(axis=1)
    if metric == "accuracy":
        return float(np.mean(chosen == y))
    return float(m.f1_score(y, chosen, average="macro", labels=labels))


def evaluate(task: str, y: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """Every metric of the task.

    Binary classification sorts the scores once for both ranking metrics (scikit-learn
    sorts, and checks the labels by sorting, once per metric); the values match
    scikit-learn's to rounding.

    >>> y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    >>> round(evaluate("binary_classification", y, p)["roc_auc"], 4)
    0.75
    """
    if task == "binary_classification":
        fast = _binary_metrics(np.asarray(y), np.asarray(prediction, dtype=np.float64))
        if fast is not None:
            return fast
    return {metric: score(task, metric, y, prediction) for metric in METRICS[task]}


def _binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float] | None:
    """Every binary metric from one sort; None when a class is absent (scikit-learn's
    own warnings and conventions apply then) or the labels are not 0/1."""
    positives = int(np.count_nonzero(y == 1))
    if p.ndim != 1 or positives in (0, len(y)) or positives + np.count_nonzero(y == 0) != len(y):
        return None
    p = np.clip(p, 1e-15, 1 - 1e-15)
    truth = y == 1
    order = np.argsort(p, kind="stable")[::-1]
    ranked = p[order]
    # the last row of each run of tied scores is one threshold of the curves
    ends = np.flatnonzero(ranked[1:] != ranked[:-1])
    ends = np.append(ends, len(ranked) - 1)
    tps = np.cumsum(truth[order], dtype=np.float64)[ends]
    fps = (ends + 1) - tps
    recall = tps / tps[-1]
    precision = tps / (ends + 1)
    average_precision = float(np.sum(np.diff(recall, prepend=0.0) * precision))
    fpr, tpr = np.concatenate([[0.0], fps / fps[-1]]), np.concatenate([[0.0], recall])
    roc_auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2)
    log_loss = float(-np.mean(np.where(truth, np.log(p), np.log1p(-p))))
    return {
        "average_precision": average_precision,
        "roc_auc": roc_auc,
        "log_loss": log_loss,
        "brier": float(np.mean((p - truth) ** 2)),
        "accuracy": float(np.mean((p >= 0.5) == truth)),
    }

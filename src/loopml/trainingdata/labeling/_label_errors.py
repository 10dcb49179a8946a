"""Likely label errors by confident learning (Northcutt, Jiang & Chuang 2021).

From out-of-fold predicted probabilities: per-class thresholds (the mean self-confidence
of each given class), the confident joint of given vs. likely-true labels, calibrated to
the class counts, then "prune by noise rate": for each off-diagonal cell, the rows of that
given label with the largest margin towards the other class. Implemented here (NumPy only)
rather than depending on ``cleanlab``. The result is a ranked report; nothing is dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError
from loopml.trainingdata.labeling._matrix import FloatArray, IntArray

__all__ = ["confident_joint", "find_label_errors", "out_of_fold_proba"]


def _check(y: Any, proba: Any) -> tuple[IntArray, FloatArray]:
    labels = np.asarray(y)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or labels.shape != (p.shape[0],) or not np.isfinite(p).all():
        raise DataError(
            f"y must have one label per row of proba (rows x classes); got y {labels.shape} "
            f"and proba {p.shape}."
        )
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise DataError("y must hold class indices 0..k-1 (encode string labels first).")
    if labels.max() >= p.shape[1]:
        row = int(np.argmax(labels >= p.shape[1]))
        raise DataError(
            f"y has class {labels[row]} at row {row} but proba has only {p.shape[1]} columns."
        )
    return labels.astype(np.int64), p


def confident_joint(y: Any, proba: Any) -> tuple[IntArray, IntArray]:
    """The confident joint ``C[given, likely]`` and each row's likely label (-1 if none).

    A row counts towards ``likely = j`` when ``proba[row, j]`` reaches class ``j``'s
    threshold (the mean ``proba[:, j]`` over rows labelled ``j``), taking the most
    probable such ``j``.

    >>> y = np.array([0, 0, 0, 1, 1, 1])
    >>> p = np.array([[.9, .1], [.8, .2], [.2, .8], [.1, .9], [.3, .7], [.2, .8]])
    >>> C, likely = confident_joint(y, p)
    >>> C.tolist(), likely.tolist()
    ([[2, 1], [0, 2]], [0, 0, 1, 1, -1, 1])
    """
    labels, p = _check(y, proba)
    k = p.shape[1]
    thresholds = np.array(
        [p[labels == c, c].mean() if (labels == c).any() else np.inf for c in range(k)]
    )
    above = p >= thresholds - 1e-12
    masked = np.where(above, p, -np.inf)
    likely = np.where(above.any(axis=1), masked.argmax(axis=1), -1)
    joint = np.zeros((k, k), dtype=np.int64)
    counted = likely >= 0
    np.add.at(joint, (labels[counted], likely[counted]), 1)
    return joint, likely


def find_label_errors(y: Any, proba: Any) -> pd.DataFrame:
    """Rows whose given label is likely wrong, most suspicious first.

    Columns: ``row`` (position), ``given_label``, ``suggested_label``,
    ``given_label_proba`` (self-confidence), ``suggested_proba``, ``margin``
    (``suggested - given``). ``df.attrs`` holds the estimated number of errors per
    ``(given, true)`` pair and the noise rate. Review them; loopml never drops rows for you.

    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> p = np.array([[.9, .1], [.8, .2], [.85, .15], [.1, .9],
    ...               [.1, .9], [.2, .8], [.15, .85], [.95, .05]])
    >>> find_label_errors(y, p)[["row", "given_label", "suggested_label"]].values.tolist()
    [[7, 1, 0], [3, 0, 1]]
    """
    labels, p = _check(y, proba)
    joint, _ = confident_joint(labels, p)
    counts = np.bincount(labels, minlength=p.shape[1])
    rows_per_class = joint.sum(axis=1, keepdims=True)
    calibrated = joint / np.where(rows_per_class > 0, rows_per_class, 1) * counts[:, None]
    flagged: dict[int, int] = {}
    for given in range(p.shape[1]):
        members = np.flatnonzero(labels == given)
        for true in range(p.shape[1]):
            n_errors = int(round(calibrated[given, true])) if true != given else 0
            if n_errors == 0 or not len(members):
                continue
            margin = p[members, true] - p[members, given]
            for row in members[np.argsort(-margin, kind="stable")[:n_errors]]:
                if p[row, true] > p[row, given]:
                    flagged.setdefault(int(row), true)
    report = _report(labels, p, flagged)
    report.attrs["estimated_errors"] = {
        f"{g}->{t}": int(round(calibrated[g, t]))
        for g in range(p.shape[1])
        for t in range(p.shape[1])
        if g != t
    }
    report.attrs["noise_rate"] = float(len(report) / len(labels))
    return report


def _report(labels: IntArray, p: FloatArray, flagged: dict[int, int]) -> pd.DataFrame:
    rows = np.asarray(sorted(flagged), dtype=np.int64)
    suggested = np.asarray([flagged[r] for r in rows], dtype=np.int64)
    given_p = p[rows, labels[rows]] if len(rows) else np.zeros(0)
    suggested_p = p[rows, suggested] if len(rows) else np.zeros(0)
    report = pd.DataFrame(
        {
            "row": rows,
            "given_label": labels[rows],
            "suggested_label": suggested,
            "given_label_proba": given_p,
            "suggested_proba": suggested_p,
            "margin": suggested_p - given_p,
        }
    )
    return report.sort_values(["given_label_proba", "row"]).reset_index(drop=True)


def out_of_fold_proba(estimator: Any, X: Any, y: Any, *, cv: int = 5, seed: int = 0) -> FloatArray:
    """``predict_proba`` for each row from a model that never saw it (stratified K-fold).

    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.r_[np.zeros((10, 1)), np.ones((10, 1))]; y = np.r_[[0] * 10, [1] * 10]
    >>> out_of_fold_proba(LogisticRegression(), X, y, cv=2).shape
    (20, 2)
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    labels = np.asarray(y)
    if cv < 2:
        raise ConfigError(f"The 'cv' parameter must be at least 2. Got {cv} instead.")
    smallest = int(np.bincount(labels).min()) if len(labels) else 0
    if smallest < cv:
        raise DataError(
            f"A class has only {smallest} row(s): stratified {cv}-fold needs {cv} per class.",
            hint="lower cv, or label more rows of the rare class",
        )
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    return np.asarray(
        cross_val_predict(estimator, X, labels, cv=folds, method="predict_proba"),
        dtype=np.float64,
    )

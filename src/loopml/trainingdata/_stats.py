"""Pure statistics shared by the leakage checks and the samplers: arrays in, numbers out."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "auc",
    "average_ranks",
    "domain_scores",
    "feature_power",
    "model_matrix",
    "numeric_view",
    "spearman",
    "target_kind",
]

TargetKind = Literal["binary", "multiclass", "regression"]


def target_kind(values: pd.Series) -> TargetKind:
    """``"regression"`` for a float target with more than 20 values, else binary/multiclass."""
    clean = values.dropna()
    if pd.api.types.is_float_dtype(clean.dtype) and clean.nunique() > 20:
        return "regression"
    return "binary" if clean.nunique() <= 2 else "multiclass"


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank (scipy's ``rankdata``, faster: an
    unstable sort is enough because tied values get one rank anyway).

    >>> average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist()
    [3.5, 1.0, 3.5, 2.0]
    """
    order = np.argsort(values)
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(ordered)] - 1
    ranks = np.empty(len(values))
    ranks[order] = ((starts + ends) / 2.0 + 1.0)[np.cumsum(first) - 1]
    return ranks


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula (ties get average ranks).

    >>> round(auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])), 2)
    0.75
    """
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(np.asarray(score, dtype=float))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (nan when either side is constant)."""
    rx = average_ranks(np.asarray(x, dtype=float))
    ry = average_ranks(np.asarray(y, dtype=float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def numeric_view(values: pd.Series) -> np.ndarray | None:
    """A float array to rank (numbers, booleans, timestamps as ns); ``None`` for text/categories.

    Missing values become one value below the minimum, so missingness keeps its signal.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        as_ns = values.astype("int64").to_numpy().astype(float)
        as_ns[values.isna().to_numpy()] = np.nan
        array = as_ns
    elif pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    else:
        return None
    missing = np.isnan(array)
    if missing.any():
        low = np.nanmin(array) - 1.0 if not missing.all() else 0.0
        array = np.where(missing, low, array)
    return array


def _encode(
    train_values: pd.Series, train_y: np.ndarray, apply_to: pd.Series, smoothing: float = 10.0
) -> np.ndarray:
    """Smoothed mean of ``train_y`` per category of ``train_values``, looked up for ``apply_to``."""
    prior = float(train_y.mean())
    keys = train_values.astype("string").fillna("<NA>").to_numpy(dtype=object)
    stats = pd.DataFrame({"k": keys, "y": train_y}).groupby("k")["y"].agg(["sum", "count"])
    means = (stats["sum"] + smoothing * prior) / (stats["count"] + smoothing)
    lookup = apply_to.astype("string").fillna("<NA>").to_numpy(dtype=object)
    return pd.Series(lookup).map(means).fillna(prior).to_numpy(dtype=float)


def _scores(
    train_x: pd.Series, train_y: np.ndarray, test_x: pd.Series, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Scores for train (out-of-fold for encodings) and test from one feature."""
    num_train, num_test = numeric_view(train_x), numeric_view(test_x)
    if num_train is not None and num_test is not None:
        return num_train, num_test
    fold = rng.integers(0, 2, len(train_x))
    out_of_fold = np.empty(len(train_x))
    for k in (0, 1):
        held = fold == k
        out_of_fold[held] = _encode(train_x[~held], train_y[~held], train_x[held])
    return out_of_fold, _encode(train_x, train_y, test_x)


def feature_power(
    train_x: pd.Series,
    train_y: np.ndarray,
    test_x: pd.Series,
    test_y: np.ndarray,
    kind: TargetKind,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """How well one feature alone predicts the label, on train and on test.

    Binary and multiclass (one-vs-rest, best class): AUC folded to >= 0.5 with the direction
    taken from train. Regression: absolute Spearman correlation. Categories are target-encoded
    on train (out-of-fold for the train score), so an identifier cannot score by memorising.
    """
    train_x = train_x.reset_index(drop=True)
    test_x = test_x.reset_index(drop=True)
    if kind == "regression":
        s_train, s_test = _scores(train_x, train_y.astype(float), test_x, rng)
        return abs(spearman(s_train, train_y)), abs(spearman(s_test, test_y))
    classes = pd.Series(train_y).value_counts().index[:10]
    if kind == "binary":
        classes = classes[:1]
    best = (float("nan"), float("nan"))
    for cls in classes:
        pos_train, pos_test = train_y == cls, test_y == cls
        s_train, s_test = _scores(train_x, pos_train.astype(float), test_x, rng)
        a_train, a_test = auc(s_train, pos_train), auc(s_test, pos_test)
        if a_train < 0.5:
            a_train, a_test = 1.0 - a_train, 1.0 - a_test
        if np.isnan(best[0]) or a_train > best[0]:
            best = (a_train, a_test)
    return best


def model_matrix(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Columns LightGBM can read: numbers as float, everything else as shared category codes."""
    stacked = pd.concat([f[columns] for f in frames], ignore_index=True)
    out = {}
    for column in columns:
        values = numeric_view(stacked[column])
        if values is None:
            codes, _ = pd.factorize(stacked[column].astype("string"))
            out[column] = pd.Series(codes, dtype="int64").astype("category")
        else:
            out[column] = pd.Series(values)
    return pd.DataFrame(out)


def domain_scores(
    first: pd.DataFrame,
    second: pd.DataFrame,
    columns: list[str],
    *,
    seed: int,
    params: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Cross-fitted P(row is from ``second``) from a small LightGBM domain classifier.

    Returns (scores for the stacked rows, is_second labels, gain importance per column).
    Two folds: every score comes from a model that did not see that row.
    """
    import lightgbm as lgb

    matrix = model_matrix([first, second], columns)
    label = np.r_[np.zeros(len(first)), np.ones(len(second))]
    fold = np.random.default_rng(seed).integers(0, 2, len(label))
    scores = np.empty(len(label))
    gains = np.zeros(len(columns))
    for k in (0, 1):
        settings: dict[str, Any] = {
            "n_estimators": 60,
            "num_leaves": 15,
            "learning_rate": 0.1,
            "min_child_samples": 20,
            "colsample_bytree": 0.8,
            **(params or {}),
        }
        model = lgb.LGBMClassifier(
            subsample=0.8, subsample_freq=1, random_state=seed, n_jobs=1, verbose=-1, **settings
        )
        fit_rows = fold != k
        model.fit(matrix[fit_rows], label[fit_rows])
        proba: np.ndarray = np.asarray(model.predict_proba(matrix[~fit_rows]))
        scores[~fit_rows] = proba[:, 1]
        gains += model.booster_.feature_importance(importance_type="gain")
    total = gains.sum() or 1.0
    return scores, label, dict(zip(columns, (gains / total).tolist(), strict=True))

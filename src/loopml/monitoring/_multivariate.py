"""Multivariate drift: a domain classifier, MMD with a permutation test, PCA reconstruction.

Univariate tests miss a change in how columns move together; these three catch it.
All take two DataFrames (reference rows, current rows) and return a ``MultivariateResult``.
Numeric columns are standardised with the reference's mean and standard deviation (a
missing value becomes the mean, plus a missing-indicator column); categorical columns are
one-hot encoded on the reference's 20 most frequent categories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ConfigError, SchemaError
from loopml.monitoring._reference import is_numeric_series
from loopml.monitoring._results import clean_float

__all__ = [
    "MultivariateResult",
    "domain_classifier_test",
    "encode_frames",
    "mmd_test",
    "pca_reconstruction_test",
]


@dataclass(frozen=True)
class MultivariateResult:
    """A multivariate drift test: score, p-value, threshold and why."""

    test: str
    score: float
    p_value: float | None
    threshold: float
    drifted: bool
    reason: str
    n_reference: int
    n_current: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "test": self.test,
            "score": clean_float(self.score),
            "p_value": clean_float(self.p_value),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reason": self.reason,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "details": self.details,
        }


def encode_frames(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    max_categories: int = 20,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Encode both frames into numeric matrices with the reference's scaling.

    >>> ref = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    >>> a, b, names = encode_frames(ref, ref)
    >>> names
    ['x', 'c=a', 'c=b']
    """
    names = list(reference.columns) if columns is None else columns
    missing = [n for n in names if n not in current.columns or n not in reference.columns]
    if missing:
        raise SchemaError(f"column(s) {missing} are missing from the reference or the current data")
    ref_parts: list[np.ndarray] = []
    cur_parts: list[np.ndarray] = []
    labels: list[str] = []
    for name in names:
        if is_numeric_series(reference[name]):
            r = reference[name].to_numpy(np.float64, na_value=np.nan)
            c = pd.to_numeric(current[name], errors="coerce").to_numpy(np.float64, na_value=np.nan)
            mean, std = np.nanmean(r), np.nanstd(r)
            scale = std if std > 0 else 1.0
            ref_parts.append(np.nan_to_num((r - mean) / scale)[:, None])
            cur_parts.append(np.nan_to_num((c - mean) / scale)[:, None])
            labels.append(name)
            if np.isnan(r).any() or np.isnan(c).any():
                ref_parts.append(np.isnan(r)[:, None].astype(float))
                cur_parts.append(np.isnan(c)[:, None].astype(float))
                labels.append(f"{name}=<null>")
        else:
            r_text, c_text = reference[name].astype(str), current[name].astype(str)
            top = r_text.value_counts().index[:max_categories]
            for category in top:
                ref_parts.append((r_text == category).to_numpy(float)[:, None])
                cur_parts.append((c_text == category).to_numpy(float)[:, None])
                labels.append(f"{name}={category}")
    return np.hstack(ref_parts), np.hstack(cur_parts), labels


def _check(n_permutations: int, alpha: float) -> None:
    if n_permutations < 1:
        raise ConfigError(
            f"The 'n_permutations' parameter must be >= 1. Got {n_permutations!r} instead."
        )
    if not 0 < alpha < 1:
        raise ConfigError(f"The 'alpha' parameter must be between 0 and 1. Got {alpha!r} instead.")


def _subsample(matrix: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if matrix.shape[0] <= limit:
        return matrix
    return matrix[rng.choice(matrix.shape[0], limit, replace=False)]


def _p_reason(test: str, score_text: str, p_value: float, alpha: float, n_perm: int) -> str:
    verdict = "<" if p_value < alpha else ">="
    what = "the joint distribution changed" if p_value < alpha else "no evidence of a joint change"
    return (
        f"{test} {score_text}; permutation p-value {p_value:.3g} (with +1 correction, "
        f"{n_perm} permutations) {verdict} alpha {alpha:g}: {what}"
    )


# -- domain classifier ---------------------------------------------------------------------
def domain_classifier_test(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    n_splits: int = 5,
    n_permutations: int = 1000,
    alpha: float = 0.01,
    max_rows: int = 20_000,
    seed: int = 0,
) -> MultivariateResult:
    """Can LightGBM tell current rows from reference rows? Out-of-fold AUC and a p-value.

    Rows are labelled 0 (reference) and 1 (current); a LightGBM classifier is fitted in
    ``n_splits`` stratified folds and scores the rows it did not see. The score is the mean
    of the per-fold AUCs; the p-value permutes the labels within each fold against the
    fixed out-of-fold scores (1 + count of permuted AUCs >= observed) / (1 + permutations).
    Under no drift the held-out labels are independent of the scores of their fold, so each
    fold's permutation distribution is exact; ``details`` names the most telling columns.

    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    >>> cur = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    >>> cur["b"] = cur["a"] + 0.3 * cur["b"]  # same marginals shape, new correlation
    >>> result = domain_classifier_test(ref, cur, n_permutations=200)
    >>> result.drifted, result.score > 0.6
    (True, True)
    """
    import lightgbm as lgb
    from sklearn.model_selection import StratifiedKFold

    _check(n_permutations, alpha)
    rng = np.random.default_rng(seed)
    ref_matrix, cur_matrix, names = encode_frames(reference, current, columns=columns)
    ref_matrix, cur_matrix = (
        _subsample(ref_matrix, max_rows, rng),
        _subsample(cur_matrix, max_rows, rng),
    )
    features = np.vstack([ref_matrix, cur_matrix])
    labels = np.r_[np.zeros(len(ref_matrix)), np.ones(len(cur_matrix))]
    scores = np.zeros(labels.size)
    folds: list[np.ndarray] = []
    importance = np.zeros(features.shape[1])
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for train, test in splitter.split(features, labels):
        model = lgb.LGBMClassifier(
            n_estimators=100,
            learning_rate=0.1,
            num_leaves=15,
            min_child_samples=20,
            subsample=0.8,
            subsample_freq=1,
            random_state=seed,
            verbose=-1,
            n_jobs=1,
        )
        model.fit(features[train], labels[train])
        probabilities: Any = model.predict_proba(features[test])
        scores[test] = probabilities[:, 1]
        importance += model.booster_.feature_importance("gain")
        folds.append(test)
    observed = float(np.mean([_auc(scores[f], labels[f]) for f in folds]))
    null = np.mean(
        [_permuted_aucs(scores[f], labels[f], n_permutations, rng) for f in folds], axis=0
    )
    p_value = float((1 + np.sum(null >= observed)) / (1 + n_permutations))
    order = np.argsort(importance)[::-1][:5]
    total = importance.sum() or 1.0
    top = {names[i]: round(float(importance[i] / total), 4) for i in order if importance[i] > 0}
    return MultivariateResult(
        "domain_classifier",
        observed,
        p_value,
        alpha,
        p_value < alpha,
        _p_reason(
            "domain classifier",
            f"out-of-fold AUC {observed:.3f} (0.5 = indistinguishable)",
            p_value,
            alpha,
            n_permutations,
        ),
        len(ref_matrix),
        len(cur_matrix),
        {"top_features": top, "n_splits": n_splits},
    )


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(_permuted_aucs(scores, labels, 0, None, observed_only=True)[0])


def _permuted_aucs(
    scores: np.ndarray,
    labels: np.ndarray,
    n_permutations: int,
    rng: np.random.Generator | None,
    *,
    observed_only: bool = False,
) -> np.ndarray:
    """AUC (Mann-Whitney with mid-ranks) of the labels, or of ``n_permutations`` shuffles."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    positives = int(labels.sum())
    negatives = labels.size - positives
    if observed_only:
        matrix = labels[None, :]
    else:
        assert rng is not None
        matrix = rng.permuted(np.tile(labels, (n_permutations, 1)), axis=1)
    rank_sums = matrix @ ranks
    return np.asarray((rank_sums - positives * (positives + 1) / 2) / (positives * negatives))


# -- MMD -----------------------------------------------------------------------------------
def mmd_test(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    n_permutations: int = 500,
    alpha: float = 0.01,
    max_rows: int = 1000,
    seed: int = 0,
) -> MultivariateResult:
    """Maximum mean discrepancy with a Gaussian kernel and a permutation p-value.

    The bandwidth is the median pairwise distance of the pooled sample; the statistic is
    the (biased, V-statistic) squared MMD; the p-value is (1 + count of permuted statistics
    >= observed) / (1 + permutations), which keeps the test's size at most alpha. At most
    ``max_rows`` rows of each side are used (a random subsample).

    >>> rng = np.random.default_rng(1)
    >>> ref = pd.DataFrame({"a": rng.normal(size=300)})
    >>> mmd_test(ref, pd.DataFrame({"a": rng.normal(1.0, 1, size=300)}), n_permutations=100).drifted
    True
    """
    _check(n_permutations, alpha)
    rng = np.random.default_rng(seed)
    ref_matrix, cur_matrix, _ = encode_frames(reference, current, columns=columns)
    x, y = _subsample(ref_matrix, max_rows, rng), _subsample(cur_matrix, max_rows, rng)
    pooled = np.vstack([x, y])
    squared = np.maximum(
        np.sum(pooled**2, 1)[:, None] + np.sum(pooled**2, 1)[None, :] - 2 * pooled @ pooled.T, 0.0
    )
    upper = squared[np.triu_indices_from(squared, k=1)]
    bandwidth = float(np.median(upper[upper > 0])) if np.any(upper > 0) else 1.0
    kernel = np.exp(-squared / bandwidth)
    n, m = len(x), len(y)
    membership = np.r_[np.full(n, 1.0 / n), np.full(m, -1.0 / m)]
    observed = float(membership @ kernel @ membership)
    shuffled = rng.permuted(np.tile(membership, (n_permutations, 1)), axis=1)
    null = np.einsum("ij,ij->i", shuffled @ kernel, shuffled)
    p_value = float((1 + np.sum(null >= observed)) / (1 + n_permutations))
    return MultivariateResult(
        "mmd",
        observed,
        p_value,
        alpha,
        p_value < alpha,
        _p_reason("MMD", f"squared MMD {observed:.4g}", p_value, alpha, n_permutations),
        n,
        m,
        {"bandwidth": bandwidth},
    )


# -- PCA reconstruction error --------------------------------------------------------------
def pca_reconstruction_test(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    variance: float = 0.9,
    alpha: float = 0.01,
    min_ratio: float = 1.1,
    seed: int = 0,
) -> MultivariateResult:
    """Reconstruction error of the current rows by a PCA fitted on half of the reference.

    The components keep ``variance`` of the reference's variance. The other half of the
    reference gives the error expected without drift; the score is the ratio of the mean
    current error to that; the p-value is a one-sided Mann-Whitney test of the two error
    samples. Drift needs both p < alpha and a ratio >= ``min_ratio``.

    >>> rng = np.random.default_rng(2)
    >>> z = rng.normal(size=(2000, 1))
    >>> ref = pd.DataFrame({"a": z[:, 0], "b": z[:, 0] + 0.1 * rng.normal(size=2000)})
    >>> cur = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    >>> result = pca_reconstruction_test(ref, cur)
    >>> result.drifted, result.score > 5
    (True, True)
    """
    from scipy.stats import mannwhitneyu
    from sklearn.decomposition import PCA

    if not 0 < variance < 1:
        raise ConfigError(
            f"The 'variance' parameter must be between 0 and 1. Got {variance!r} instead."
        )
    rng = np.random.default_rng(seed)
    ref_matrix, cur_matrix, _ = encode_frames(reference, current, columns=columns)
    order = rng.permutation(len(ref_matrix))
    half = len(order) // 2
    fit_rows, holdout = ref_matrix[order[:half]], ref_matrix[order[half:]]
    pca = PCA(n_components=variance, svd_solver="full", random_state=seed).fit(fit_rows)

    def errors(matrix: np.ndarray) -> np.ndarray:
        rebuilt = pca.inverse_transform(pca.transform(matrix))
        return np.asarray(np.sum((matrix - rebuilt) ** 2, axis=1))

    base, now = errors(holdout), errors(cur_matrix)
    ratio = float(now.mean() / base.mean()) if base.mean() > 0 else float("inf")
    p_value = float(mannwhitneyu(now, base, alternative="greater").pvalue)
    drifted = p_value < alpha and ratio >= min_ratio
    reason = (
        f"mean reconstruction error {ratio:.3g}x the reference's ({pca.n_components_} "
        f"components for {variance:.0%} variance); one-sided Mann-Whitney p={p_value:.3g}; "
        f"drift needs p < {alpha:g} and ratio >= {min_ratio:g}"
    )
    return MultivariateResult(
        "pca_reconstruction",
        ratio,
        p_value,
        min_ratio,
        drifted,
        reason,
        len(holdout),
        len(cur_matrix),
        {
            "components": int(pca.n_components_),
            "reference_error": float(base.mean()),
            "current_error": float(now.mean()),
        },
    )

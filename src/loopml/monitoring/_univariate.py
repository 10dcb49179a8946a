"""Univariate drift statistics: pure functions, arrays (or a reference summary) in, results out.

Two families:

- **exact** functions take two samples: ``ks_test``, ``cramer_von_mises_test``,
  ``chi_square_test``, ``psi``, ``jensen_shannon``, ``hellinger``, ``wasserstein``;
- **profile** functions take a persisted reference summary (``NumericReference`` /
  ``CategoricalReference``) and the current sample, so the reference rows are never read:
  ``compare_numeric`` and ``compare_categorical`` return every statistic at once.

From a profile, the reference CDF ``G(x) = P(X < x)`` is known exactly at the histogram
edges and to within 1/100 at the 101 quantiles; the current sample is counted on the same
grid in one pass. The KS distance computed on that grid is a lower bound of the exact one,
less by at most the largest reference mass between two neighbouring grid points (<= 0.01),
so its p-value is conservative. The Wasserstein distance integrates ``|G_ref - G_cur|`` on
the grid (trapezoids) plus the exact contribution of current values outside the reference
range. PSI, Jensen-Shannon, Hellinger and chi-square use ten bins of about 10 % reference
mass each, plus an underflow and an overflow bin for values outside the reference range.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError
from loopml.monitoring._reference import OTHER, CategoricalReference, NumericReference
from loopml.monitoring._results import DriftTestResult

__all__ = [
    "DEFAULT_THRESHOLDS",
    "CategoricalComparison",
    "NumericComparison",
    "chi_square_test",
    "compare_categorical",
    "compare_numeric",
    "cramer_von_mises_test",
    "hellinger",
    "jensen_shannon",
    "kolmogorov_sf",
    "ks_critical_value",
    "ks_test",
    "psi",
    "wasserstein",
]

DEFAULT_THRESHOLDS: dict[str, float] = {
    "psi": 0.2,
    "jensen_shannon": 0.1,
    "hellinger": 0.1,
    "wasserstein": 0.1,
}
"""Conventional score thresholds (PSI 0.1-0.25 'moderate', >0.25 'major'; Evidently's 0.1)."""

_PSI_FLOOR = 1e-4


# -- distributions -------------------------------------------------------------------------
def kolmogorov_sf(x: float) -> float:
    """Survival function of the Kolmogorov distribution (limit of sqrt(n) * KS distance).

    >>> round(kolmogorov_sf(1.358), 3)
    0.05
    """
    if x <= 0.0:
        return 1.0
    if x < 0.2:
        return 1.0
    k = np.arange(1, 101, dtype=np.float64)
    terms = (-1.0) ** (k - 1) * np.exp(-2.0 * k * k * x * x)
    return float(min(1.0, max(0.0, 2.0 * terms.sum())))


def _ks_p_value(distance: float, n: int, m: int) -> float:
    """Asymptotic two-sample KS p-value with Stephens' small-sample correction."""
    if n == 0 or m == 0:
        return float("nan")
    en = math.sqrt(n * m / (n + m))
    return kolmogorov_sf((en + 0.12 + 0.11 / en) * distance)


def ks_critical_value(alpha: float, n: int, m: int) -> float:
    """The smallest KS distance significant at ``alpha`` for samples of ``n`` and ``m``.

    This is what "sample-size aware" means for KS: at n = m = 1,000,000 a distance of
    0.0023 is already significant at 0.01, which is why a drift decision also needs an
    effect size.

    >>> round(ks_critical_value(0.01, 1_000_000, 1_000_000), 4)
    0.0023
    """
    if n == 0 or m == 0:
        return float("nan")
    en = math.sqrt(n * m / (n + m))
    return _kolmogorov_isf(alpha) / (en + 0.12 + 0.11 / en)


@functools.lru_cache(maxsize=64)
def _kolmogorov_isf(alpha: float) -> float:
    low, high = 0.0, 10.0
    for _ in range(60):
        middle = (low + high) / 2
        if kolmogorov_sf(middle) > alpha:
            low = middle
        else:
            high = middle
    return high


def _chi2_sf(statistic: float, dof: int) -> float:
    from scipy.special import gammaincc

    if dof <= 0:
        return 1.0
    return float(gammaincc(dof / 2.0, statistic / 2.0))


# -- helpers -------------------------------------------------------------------------------
def _numbers(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"the {name} sample must hold numbers; got values like "
            f"{list(pd.Series(values).dropna()[:3])!r}",
            hint="pass a numeric column, or treat the column as categorical",
        ) from None
    return array[~np.isnan(array)]


def _test_result(
    test: str, score: float, p_value: float, alpha: float, n: int, m: int, method: str
) -> DriftTestResult:
    drifted = bool(p_value < alpha)
    verdict = "<" if drifted else ">="
    why = "the distributions differ" if drifted else "no evidence of a difference"
    reason = f"{test} p-value {p_value:.3g} {verdict} alpha {alpha:g}: {why} (n={n:,}, m={m:,})"
    return DriftTestResult(test, float(score), float(p_value), alpha, drifted, reason, method, n, m)


def _score_result(
    test: str, score: float, threshold: float | None, n: int, m: int, method: str
) -> DriftTestResult:
    limit = DEFAULT_THRESHOLDS[test] if threshold is None else threshold
    drifted = bool(score >= limit)
    origin = "the conventional threshold" if threshold is None else "the configured threshold"
    verdict = ">=" if drifted else "<"
    reason = f"{test} {score:.4g} {verdict} {limit:g} ({origin}; no p-value for this score)"
    return DriftTestResult(test, float(score), None, limit, drifted, reason, method, n, m)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"The 'alpha' parameter must be between 0 and 1. Got {alpha!r} instead.")


# -- binned scores (shared by exact and profile paths) -------------------------------------
def _psi_score(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.maximum(p, _PSI_FLOOR), np.maximum(q, _PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def _js_score(p: np.ndarray, q: np.ndarray) -> float:
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log2(p / m), 0.0)
        right = np.where(q > 0, q * np.log2(q / m), 0.0)
    return float(math.sqrt(max(0.0, 0.5 * left.sum() + 0.5 * right.sum())))


def _hellinger_score(p: np.ndarray, q: np.ndarray) -> float:
    return float(math.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(p * q))))))


def _chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """2 x K contingency chi-square on counts; bins empty in both are dropped."""
    keep = (ref_counts + cur_counts) > 0
    table = np.vstack([ref_counts[keep], cur_counts[keep]]).astype(np.float64)
    if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, _chi2_sf(statistic, table.shape[1] - 1)


def _proportions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else counts.astype(np.float64)


# -- numeric comparison from a reference summary -------------------------------------------
@dataclass(frozen=True)
class NumericComparison:
    """Every statistic of a numeric column: reference summary vs current sample."""

    ks_distance: float
    ks_p_value: float
    wasserstein: float
    wasserstein_normalized: float
    psi: float
    jensen_shannon: float
    hellinger: float
    chi_square: float
    chi_square_p_value: float
    n_reference: int
    n_current: int
    nulls_current: int
    out_of_range: float

    def results(
        self, alpha: float, method: str, thresholds: dict[str, float] | None = None
    ) -> list[DriftTestResult]:
        """One ``DriftTestResult`` per statistic."""
        given = thresholds or {}
        n, m = self.n_reference, self.n_current
        return [
            _test_result("ks", self.ks_distance, self.ks_p_value, alpha, n, m, method),
            _test_result(
                "chi_square", self.chi_square, self.chi_square_p_value, alpha, n, m, method
            ),
            _score_result(
                "wasserstein", self.wasserstein_normalized, given.get("wasserstein"), n, m, method
            ),
            _score_result("psi", self.psi, given.get("psi"), n, m, method),
            _score_result(
                "jensen_shannon", self.jensen_shannon, given.get("jensen_shannon"), n, m, method
            ),
            _score_result("hellinger", self.hellinger, given.get("hellinger"), n, m, method),
        ]


@dataclass(frozen=True)
class _Grid:
    """Points x where the reference CDF is known: exactly (histogram edges) or bounded."""

    points: np.ndarray
    level: np.ndarray  # point estimate of G_ref(x) = P(X < x)
    upper_left: np.ndarray  # a >= P(X < x)
    lower_right: np.ndarray  # b <= P(X <= x)
    exact: np.ndarray  # G_ref known exactly here


def _reference_grid(ref: NumericReference) -> _Grid:
    parts: list[tuple[np.ndarray, ...]] = []
    counts = ref.histogram_counts
    if counts.size and counts.sum() > 0:
        cumulative = (np.concatenate([[0.0], np.cumsum(counts)]) / counts.sum())[:-1]
        edges = ref.histogram_edges[:-1]  # the last edge is inclusive: G unknown there
        parts.append((edges, cumulative, cumulative, cumulative, np.ones(edges.size, bool)))
    if ref.quantiles.size:
        levels = np.linspace(0.0, 1.0, ref.quantiles.size)
        unique, first, repeats = np.unique(ref.quantiles, return_index=True, return_counts=True)
        last = first + repeats - 1
        previous = np.where(first > 0, levels[np.maximum(first - 1, 0)], 0.0)
        point = np.where(repeats > 1, previous, levels[first])  # an atom: P(X < v) >= previous
        parts.append((unique, point, levels[first], levels[last], np.zeros(unique.size, bool)))
    top = max(float(part[0].max()) for part in parts) if parts else ref.max
    one = np.array([1.0])
    parts.append((np.array([np.nextafter(top, np.inf)]), one, one, one, np.array([True])))
    joined = [np.concatenate([part[i] for part in parts]) for i in range(5)]
    points, keep = np.unique(joined[0], return_index=True)  # histogram edges come first: win
    level = np.maximum.accumulate(joined[1][keep])
    return _Grid(points, level, joined[2][keep], joined[3][keep], joined[4][keep])


def _ks_on_grid(grid: _Grid, below: np.ndarray, equal: np.ndarray, m: int) -> float:
    """A lower bound of the KS distance from the grid (exact where G_ref is exact)."""
    g_cur = below / m
    f_cur = (below + equal) / m
    exact = np.abs(grid.level - g_cur)
    bounded = np.maximum(grid.lower_right - f_cur, g_cur - grid.upper_left)
    return float(np.max(np.where(grid.exact, exact, np.maximum(bounded, 0.0))))


_FINE_BINS = 8192


def _count_on_grid(
    points: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Count values per grid cell in one pass, as ``np.searchsorted(points, v, 'right')`` would.

    A uniform fine grid locates most values by arithmetic; only the values that fall in a
    fine bin holding (or touching) a grid point, or outside the grid, are placed by binary
    search. Returns the counts per cell (``len(points) + 1``), the counts exactly on each
    point, and the sums of the values below the first and at or above the last point.
    """
    lo, hi = float(points[0]), float(points[-1])
    with np.errstate(over="ignore", divide="ignore"):
        scale = _FINE_BINS / (hi - lo) if hi > lo else 0.0
    if not (np.isfinite(scale) and scale > 0 and np.isfinite(hi - lo)):
        return _count_by_search(points, values)
    last = _FINE_BINS + 1
    position = values - lo
    position *= scale
    np.floor(position, out=position)
    np.clip(position, -1, _FINE_BINS, out=position)
    fine = position.astype(np.int32)
    del position
    fine += 1  # 0: below lo, 1..F: inside, F+1: at or above hi
    table = np.searchsorted(points, lo + (np.arange(last + 1) - 1) / scale, side="right")
    owner = np.clip(np.floor((points - lo) * scale).astype(np.int64) + 1, 0, last)
    ambiguous_bin = np.zeros(last + 1, dtype=bool)
    for shift in (-1, 0, 1):
        ambiguous_bin[np.clip(owner + shift, 0, last)] = True
    ambiguous_bin[[0, last]] = True
    table = np.where(ambiguous_bin, -1, table).astype(np.int32)
    index = table[fine]
    del fine
    ambiguous = index < 0
    near = values[ambiguous]
    near_index = np.searchsorted(points, near, side="right")
    index[ambiguous] = near_index
    cells = np.bincount(index, minlength=points.size + 1).astype(np.float64)
    on_point = near_index[near == points[np.maximum(near_index - 1, 0)]] - 1
    equal = np.bincount(on_point[on_point >= 0], minlength=points.size).astype(np.float64)
    sum_below = float(near[near_index == 0].sum())
    sum_above = float(near[near_index == points.size].sum())
    return cells, equal, sum_below, sum_above


_CHUNK = 1 << 18  # 2 MB of float64: the passes over a chunk stay in the CPU cache


def _in_chunks(
    counter: Any, points: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Run ``counter`` over cache-sized chunks and add the results up."""
    cells = np.zeros(points.size + 1)
    equal = np.zeros(points.size)
    below = above = 0.0
    for start in range(0, values.size, _CHUNK):
        part = counter(points, values[start : start + _CHUNK])
        cells += part[0]
        equal += part[1]
        below += part[2]
        above += part[3]
    return cells, equal, below, above


def _count_by_search(
    points: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float]:
    index = np.searchsorted(points, values, side="right")
    cells = np.bincount(index, minlength=points.size + 1).astype(np.float64)
    on_point = index[values == points[np.maximum(index - 1, 0)]] - 1
    equal = np.bincount(on_point[on_point >= 0], minlength=points.size).astype(np.float64)
    return cells, equal, float(values[index == 0].sum()), float(values[index == points.size].sum())


def _decile_groups(level: np.ndarray, bins: int = 10) -> np.ndarray:
    """Group grid cells into ~``bins`` bins of equal reference mass, plus under/overflow."""
    cells = level.size + 1  # cell 0: below the grid, cell L: at or above the last point
    left = np.concatenate([[0.0], level])[: cells - 1]
    inner = np.clip(np.floor(left * bins + 1e-9).astype(np.int64), 0, bins - 1) + 1
    groups = np.concatenate([[0], inner[1:], [bins + 1]])
    return groups


def compare_numeric(
    reference: NumericReference, current: Any, *, bins: int = 10
) -> NumericComparison:
    """Compare a current numeric sample with a reference summary, in one pass over it.

    >>> rng = np.random.default_rng(0)
    >>> ref = NumericReference.from_values(rng.normal(size=20_000))
    >>> same = compare_numeric(ref, rng.normal(size=20_000))
    >>> moved = compare_numeric(ref, rng.normal(0.5, 1.0, size=20_000))
    >>> same.ks_p_value > 0.01, moved.ks_p_value < 1e-6, round(moved.wasserstein_normalized, 1)
    (True, True, 0.5)
    """
    raw = np.asarray(current, dtype=np.float64)
    values = raw[~np.isnan(raw)] if np.isnan(raw).any() else raw
    n, m = reference.count, int(values.size)
    if n == 0 or m == 0:
        nan = float("nan")
        return NumericComparison(
            nan, nan, nan, nan, nan, nan, nan, nan, nan, n, m, raw.size - m, nan
        )
    grid = _reference_grid(reference)
    points, g_ref = grid.points, grid.level
    atoms = (
        reference.quantiles.size
        and np.unique(reference.quantiles).size < reference.quantiles.size / 2
    )
    counter = _count_by_search if atoms else _count_on_grid  # discrete data: most values on points
    cur_cells, equal_counts, sum_below, sum_above = _in_chunks(counter, points, values)
    below_counts = np.cumsum(cur_cells)[:-1]
    distance = _ks_on_grid(grid, below_counts, equal_counts, m)
    # Wasserstein-1: trapezoids on the grid plus the exact tails outside it.
    gap = np.abs(g_ref - below_counts / m)
    inside = float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(points)))
    below = cur_cells[0] * points[0] - sum_below
    above = sum_above - cur_cells[-1] * points[-1]
    w1 = inside + (below + above) / m
    # binned scores on ~10 bins of equal reference mass
    ref_cells = np.diff(np.concatenate([[0.0], g_ref, [1.0]]))
    groups = _decile_groups(g_ref, bins)
    p = np.bincount(groups, weights=ref_cells)
    q = _proportions(np.bincount(groups, weights=cur_cells))
    chi2, chi2_p = _chi_square(p * n, q * m)
    return NumericComparison(
        ks_distance=distance,
        ks_p_value=_ks_p_value(distance, n, m),
        wasserstein=float(w1),
        wasserstein_normalized=_normalize(float(w1), reference.std),
        psi=_psi_score(p, q),
        jensen_shannon=_js_score(p, q),
        hellinger=_hellinger_score(p, q),
        chi_square=chi2,
        chi_square_p_value=chi2_p,
        n_reference=n,
        n_current=m,
        nulls_current=int(raw.size - m),
        out_of_range=float((cur_cells[0] + cur_cells[-1]) / m),
    )


def _normalize(distance: float, scale: float) -> float:
    if scale > 0 and math.isfinite(scale):
        return distance / scale
    return 0.0 if distance == 0 else float("inf")


# -- categorical comparison ----------------------------------------------------------------
@dataclass(frozen=True)
class CategoricalComparison:
    """Every statistic of a categorical column: reference counts vs current sample."""

    chi_square: float
    chi_square_p_value: float
    psi: float
    jensen_shannon: float
    hellinger: float
    total_variation: float
    n_reference: int
    n_current: int
    nulls_current: int
    new_categories: list[str]
    new_share: float

    def results(
        self, alpha: float, method: str, thresholds: dict[str, float] | None = None
    ) -> list[DriftTestResult]:
        """One ``DriftTestResult`` per statistic."""
        given = thresholds or {}
        n, m = self.n_reference, self.n_current
        return [
            _test_result(
                "chi_square", self.chi_square, self.chi_square_p_value, alpha, n, m, method
            ),
            _score_result(
                "jensen_shannon", self.jensen_shannon, given.get("jensen_shannon"), n, m, method
            ),
            _score_result("psi", self.psi, given.get("psi"), n, m, method),
            _score_result("hellinger", self.hellinger, given.get("hellinger"), n, m, method),
        ]


def compare_categorical(reference: CategoricalReference, current: Any) -> CategoricalComparison:
    """Compare a current categorical sample with reference category counts.

    Categories the reference never saw are counted in one extra bin (or in ``__other__``
    when the profile kept one), and listed in ``new_categories``.

    >>> ref = CategoricalReference.from_values(["a"] * 500 + ["b"] * 500)
    >>> result = compare_categorical(ref, ["a"] * 700 + ["b"] * 250 + ["c"] * 50)
    >>> result.chi_square_p_value < 1e-6, result.new_categories, result.new_share
    (True, ['c'], 0.05)
    """
    series = current if isinstance(current, pd.Series) else pd.Series(current)
    nulls = int(series.isna().sum())
    counts = series.value_counts(dropna=True)  # on a categorical dtype: no strings built
    counts = counts[counts > 0]
    counts.index = counts.index.astype(str)
    if not counts.index.is_unique:  # e.g. 1 and "1" in one object column
        counts = counts.groupby(level=0).sum()
    known = reference.categories
    names = list(known)
    new = [str(name) for name in counts.index if name not in known]
    ref_counts = np.array([known[name] for name in names] + [0], dtype=np.float64)
    cur_counts = np.array([counts.get(name, 0) for name in names] + [0], dtype=np.float64)
    new_total = float(counts[new].sum()) if new else 0.0
    if OTHER in known:
        cur_counts[names.index(OTHER)] += new_total
    else:
        cur_counts[-1] = new_total
    m = int(cur_counts.sum())
    p, q = _proportions(ref_counts), _proportions(cur_counts)
    chi2, chi2_p = _chi_square(ref_counts, cur_counts)
    return CategoricalComparison(
        chi_square=chi2,
        chi_square_p_value=chi2_p if m and reference.count else float("nan"),
        psi=_psi_score(p, q),
        jensen_shannon=_js_score(p, q),
        hellinger=_hellinger_score(p, q),
        total_variation=float(0.5 * np.abs(p - q).sum()),
        n_reference=reference.count,
        n_current=m,
        nulls_current=nulls,
        new_categories=sorted(new),
        new_share=new_total / m if m else 0.0,
    )


# -- exact two-sample functions ------------------------------------------------------------
def ks_test(reference: Any, current: Any, *, alpha: float = 0.05) -> DriftTestResult:
    """Two-sample Kolmogorov-Smirnov test on the full samples (scipy, exact or asymptotic).

    >>> rng = np.random.default_rng(1)
    >>> ks_test(rng.normal(size=5000), rng.normal(0.2, 1, size=5000)).drifted
    True
    """
    from scipy.stats import ks_2samp

    _check_alpha(alpha)
    x, y = _numbers(reference, "reference"), _numbers(current, "current")
    result = ks_2samp(x, y)
    return _test_result("ks", result.statistic, result.pvalue, alpha, x.size, y.size, "exact")


def cramer_von_mises_test(reference: Any, current: Any, *, alpha: float = 0.05) -> DriftTestResult:
    """Two-sample Cramer-von Mises test (asymptotic p-value; scipy).

    More sensitive than KS to differences spread over the whole distribution.

    >>> rng = np.random.default_rng(2)
    >>> cramer_von_mises_test(rng.normal(size=3000), rng.normal(0.2, 1, size=3000)).drifted
    True
    """
    from scipy.stats import cramervonmises_2samp

    _check_alpha(alpha)
    x, y = _numbers(reference, "reference"), _numbers(current, "current")
    result = cramervonmises_2samp(x, y, method="asymptotic")
    return _test_result(
        "cramer_von_mises", result.statistic, result.pvalue, alpha, x.size, y.size, "exact"
    )


def chi_square_test(reference: Any, current: Any, *, alpha: float = 0.05) -> DriftTestResult:
    """Chi-square test of homogeneity: categories for text, ten reference deciles for numbers.

    >>> chi_square_test(["a"] * 50 + ["b"] * 50, ["a"] * 90 + ["b"] * 10).drifted
    True
    """
    _check_alpha(alpha)
    comparison = _binned(reference, current)
    return comparison.results(alpha, "exact")[_CHI2_INDEX[type(comparison)]]


def psi(reference: Any, current: Any, *, threshold: float | None = None) -> DriftTestResult:
    """Population stability index on ten reference-decile bins (or the categories).

    >>> psi(["a"] * 50 + ["b"] * 50, ["a"] * 50 + ["b"] * 50).score
    0.0
    """
    return _binned_score("psi", reference, current, threshold)


def jensen_shannon(
    reference: Any, current: Any, *, threshold: float | None = None
) -> DriftTestResult:
    """Jensen-Shannon distance (base 2, in [0, 1]) on reference-decile bins or categories.

    >>> round(jensen_shannon(["a"] * 10, ["b"] * 10).score, 3)
    1.0
    """
    return _binned_score("jensen_shannon", reference, current, threshold)


def hellinger(reference: Any, current: Any, *, threshold: float | None = None) -> DriftTestResult:
    """Hellinger distance (in [0, 1]) on reference-decile bins or categories.

    >>> round(hellinger(["a"] * 10, ["b"] * 10).score, 3)
    1.0
    """
    return _binned_score("hellinger", reference, current, threshold)


def wasserstein(reference: Any, current: Any, *, threshold: float | None = None) -> DriftTestResult:
    """Wasserstein-1 distance divided by the reference standard deviation (exact, scipy).

    A value of 0.1 means the mass moved by a tenth of a reference standard deviation on
    average; a pure mean shift of d standard deviations scores d.

    >>> rng = np.random.default_rng(3)
    >>> round(wasserstein(rng.normal(size=50_000), rng.normal(0.3, 1, size=50_000)).score, 1)
    0.3
    """
    from scipy.stats import wasserstein_distance

    x, y = _numbers(reference, "reference"), _numbers(current, "current")
    score = _normalize(float(wasserstein_distance(x, y)), float(x.std()))
    return _score_result("wasserstein", score, threshold, x.size, y.size, "exact")


_CHI2_INDEX = {NumericComparison: 1, CategoricalComparison: 0}


def _binned(reference: Any, current: Any) -> NumericComparison | CategoricalComparison:
    series = pd.Series(np.asarray(reference) if not isinstance(reference, pd.Series) else reference)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series):
        return compare_numeric(NumericReference.from_values(series.to_numpy(np.float64)), current)
    return compare_categorical(CategoricalReference.from_values(series), current)


def _binned_score(
    test: str, reference: Any, current: Any, threshold: float | None
) -> DriftTestResult:
    comparison = _binned(reference, current)
    score = float(getattr(comparison, test))
    n, m = comparison.n_reference, comparison.n_current
    return _score_result(test, score, threshold, n, m, "exact")

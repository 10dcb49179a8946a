"""The drift report: every column tested, the family corrected, effects sized.

A column is flagged only when both hold:

1. its primary test (KS for numbers, chi-square for categories) is significant after the
   multiplicity correction of the whole family of columns (Holm by default), and
2. its effect size reaches ``min_effect``: the Wasserstein distance in reference standard
   deviations for numbers, the Jensen-Shannon distance for categories.

At small samples the p-value is the binding threshold (the report gives the smallest KS
distance that would have been significant at that size); at a million rows any difference
is significant and the effect size decides, so a real but negligible difference is reported
as such instead of raising an alarm.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError, SchemaError
from loopml.monitoring._multiplicity import Correction, adjust_p_values
from loopml.monitoring._reference import (
    CategoricalReference,
    ColumnReference,
    NumericReference,
    is_numeric_series,
    reference_from_frame,
    reference_from_profile,
)
from loopml.monitoring._results import DriftTestResult, clean_float
from loopml.monitoring._univariate import (
    compare_categorical,
    compare_numeric,
    cramer_von_mises_test,
    ks_critical_value,
    ks_test,
    wasserstein,
)

__all__ = ["ColumnDrift", "DriftReport", "drift_report"]

Method = Literal["auto", "exact", "profile"]


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict of one column, with every statistic behind it."""

    column: str
    kind: str
    tests: list[DriftTestResult]
    primary_test: str
    p_value: float
    p_adjusted: float
    effect_name: str
    effect: float
    effect_threshold: float
    critical_value: float | None
    drifted: bool
    reason: str
    null_rate_reference: float
    null_rate_current: float
    out_of_range_share: float
    new_categories: list[str] = field(default_factory=list)

    def test(self, name: str) -> DriftTestResult:
        """The result of one statistic by name (``"ks"``, ``"psi"``, ...)."""
        for result in self.tests:
            if result.test == name:
                return result
        raise KeyError(f"column '{self.column}' has no '{name}' result")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "column": self.column,
            "kind": self.kind,
            "drifted": self.drifted,
            "reason": self.reason,
            "primary_test": self.primary_test,
            "p_value": clean_float(self.p_value),
            "p_adjusted": clean_float(self.p_adjusted),
            "effect_name": self.effect_name,
            "effect": clean_float(self.effect),
            "effect_threshold": self.effect_threshold,
            "critical_value": clean_float(self.critical_value),
            "null_rate_reference": clean_float(self.null_rate_reference),
            "null_rate_current": clean_float(self.null_rate_current),
            "out_of_range_share": clean_float(self.out_of_range_share),
            "new_categories": self.new_categories[:20],
            "tests": [result.to_dict() for result in self.tests],
        }


@dataclass(frozen=True)
class DriftReport:
    """Drift of every column of a window against its reference.

    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(size=5000)})
    >>> cur = pd.DataFrame({"x": rng.normal(0.5, 1, size=5000), "y": rng.normal(size=5000)})
    >>> report = drift_report(ref, cur)
    >>> report.drifted_columns, report.share_drifted
    (['x'], 0.5)
    """

    columns: list[ColumnDrift]
    alpha: float
    correction: str
    min_effect: float
    method: str
    n_current: int

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the columns flagged as drifted."""
        return [column.column for column in self.columns if column.drifted]

    @property
    def share_drifted(self) -> float:
        """Share of the tested columns flagged as drifted."""
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def drifted(self) -> bool:
        """Whether any column drifted (the family-wise decision)."""
        return bool(self.drifted_columns)

    def column(self, name: str) -> ColumnDrift:
        """The verdict of one column."""
        for column in self.columns:
            if column.column == name:
                return column
        raise KeyError(f"no column '{name}' in this report")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        return {
            "alpha": self.alpha,
            "correction": self.correction,
            "min_effect": self.min_effect,
            "method": self.method,
            "n_current": self.n_current,
            "drifted": self.drifted,
            "share_drifted": self.share_drifted,
            "drifted_columns": self.drifted_columns,
            "columns": [column.to_dict() for column in self.columns],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per column: verdict, p-values, effect, reason."""
        keys = [
            "column",
            "kind",
            "drifted",
            "p_value",
            "p_adjusted",
            "effect_name",
            "effect",
            "null_rate_current",
            "out_of_range_share",
            "reason",
        ]
        return pd.DataFrame([{k: c.to_dict()[k] for k in keys} for c in self.columns])


class _ParquetColumns:
    """A Parquet file read one column at a time: memory holds one column, not the table."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read the current window from {path}: {error}") from None
        text = [f.name for f in schema if str(f.type) in ("string", "large_string")]
        self._file = pq.ParquetFile(path, read_dictionary=text)
        self.columns = list(schema.names)

    def __len__(self) -> int:
        return int(self._file.metadata.num_rows)

    def __getitem__(self, name: str) -> pd.Series:
        series: pd.Series = self._file.read(columns=[name]).column(0).to_pandas()
        return series


def drift_report(
    reference: Any,
    current: pd.DataFrame | str | os.PathLike[str],
    *,
    columns: list[str] | None = None,
    alpha: float = 0.01,
    correction: Correction = "holm",
    min_effect: float = 0.05,
    thresholds: dict[str, float] | None = None,
    method: Method = "auto",
    cramer_von_mises: bool = False,
) -> DriftReport:
    """Test every column of ``current`` against ``reference`` and correct for multiplicity.

    ``reference`` is a DataFrame (rows), a ``loopml.data.Profile`` (or its dict), or a
    mapping of column name to ``NumericReference`` / ``CategoricalReference``. With rows
    and ``method="auto"`` or ``"exact"`` KS and Wasserstein are exact; with a profile (or
    ``method="profile"``) every statistic comes from the summary (see ``compare_numeric``).
    ``current`` is a DataFrame or the path of a Parquet file, read one column at a time.
    """
    _check_parameters(alpha, min_effect, method)
    source: Any = current if isinstance(current, pd.DataFrame) else _ParquetColumns(current)
    frame = reference if isinstance(reference, pd.DataFrame) else None
    summaries = _summaries(reference, columns, source)
    names = list(summaries) if columns is None else columns
    exact = frame is not None and method != "profile"
    partial = [
        _column_drift(
            name, summaries[name], source[name], frame, exact, alpha, thresholds, cramer_von_mises
        )
        for name in names
    ]
    adjusted = adjust_p_values([item["p_value"] for item in partial], correction)
    verdicts = [
        _verdict(item, float(p_adj), alpha, correction, min_effect)
        for item, p_adj in zip(partial, adjusted, strict=True)
    ]
    return DriftReport(
        verdicts, alpha, correction, min_effect, "exact" if exact else "profile", len(source)
    )


def _check_parameters(alpha: float, min_effect: float, method: str) -> None:
    if not 0.0 < alpha < 1.0:
        raise ConfigError(
            f"The 'alpha' parameter of drift_report must be between 0 and 1. Got {alpha!r} instead."
        )
    if min_effect < 0:
        raise ConfigError(
            f"The 'min_effect' parameter of drift_report must be >= 0. Got {min_effect!r} instead."
        )
    if method not in ("auto", "exact", "profile"):
        raise ConfigError(
            "The 'method' parameter of drift_report must be 'auto', 'exact' or 'profile'. Got "
            f"{method!r} instead."
        )


def _summaries(
    reference: Any, columns: list[str] | None, current: Any
) -> dict[str, ColumnReference]:
    if isinstance(reference, pd.DataFrame):
        names = columns if columns is not None else list(reference.columns)
        summaries = reference_from_frame(reference, columns=names)
    elif isinstance(reference, Mapping) and all(
        isinstance(v, NumericReference | CategoricalReference) for v in reference.values()
    ):
        summaries = dict(reference)
    else:
        summaries = reference_from_profile(reference)
    wanted = columns if columns is not None else list(summaries)
    missing_ref = [name for name in wanted if name not in summaries]
    if missing_ref:
        raise SchemaError(
            f"the reference has no column(s) {missing_ref}",
            hint=f"reference columns: {sorted(summaries)}",
        )
    missing = [name for name in wanted if name not in current.columns]
    if missing:
        raise SchemaError(
            f"the current window has no column(s) {missing} that the reference has",
            hint="check the feature names in the prediction log, or pass columns=[...]",
        )
    if not wanted:
        raise SchemaError("no column to compare: the reference and the current data share none")
    return {name: summaries[name] for name in wanted}


def _numeric_values(name: str, series: pd.Series) -> np.ndarray:
    if not is_numeric_series(series):
        try:
            return pd.to_numeric(series, errors="raise").to_numpy(np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            bad = series.dropna().astype(str)
            bad = bad[pd.to_numeric(bad, errors="coerce").isna()]
            raise DataError(
                f"column '{name}' is numeric in the reference but holds {bad.iloc[0]!r} "
                f"at row {bad.index[0]} of the current window",
                hint="fix the producer of this column, or re-profile it as categorical",
            ) from None
    return series.to_numpy(np.float64, na_value=np.nan)


def _column_drift(
    name: str,
    summary: ColumnReference,
    series: pd.Series,
    frame: pd.DataFrame | None,
    exact: bool,
    alpha: float,
    thresholds: dict[str, float] | None,
    cvm: bool,
) -> dict[str, Any]:
    total_ref = summary.count + summary.nulls
    base = {
        "column": name,
        "null_rate_reference": summary.nulls / total_ref if total_ref else np.nan,
    }
    method = "exact" if exact else "profile"
    if isinstance(summary, NumericReference):
        values = _numeric_values(name, series)
        numeric = compare_numeric(summary, values)
        tests = numeric.results(alpha, method, thresholds)
        if exact and frame is not None and numeric.n_current and numeric.n_reference:
            tests = _exact_numeric(tests, frame[name], values, alpha, thresholds, cvm)
        ks = tests[0]
        critical = (
            ks_critical_value(alpha, numeric.n_reference, numeric.n_current)
            if numeric.n_current
            else None
        )
        return base | {
            "kind": "numeric",
            "tests": tests,
            "primary_test": "ks",
            "p_value": ks.p_value if numeric.n_current else np.nan,
            "effect_name": "wasserstein",
            "effect": _by_name(tests, "wasserstein").score,
            "critical_value": critical,
            "n_current": numeric.n_current,
            "null_rate_current": numeric.nulls_current / len(series) if len(series) else np.nan,
            "out_of_range_share": numeric.out_of_range,
            "new_categories": [],
        }
    categorical = compare_categorical(summary, series)
    tests = categorical.results(alpha, method, thresholds)
    return base | {
        "kind": "categorical",
        "tests": tests,
        "primary_test": "chi_square",
        "p_value": tests[0].p_value if categorical.n_current else np.nan,
        "effect_name": "jensen_shannon",
        "effect": categorical.jensen_shannon,
        "critical_value": None,
        "n_current": categorical.n_current,
        "null_rate_current": categorical.nulls_current / len(series) if len(series) else np.nan,
        "out_of_range_share": categorical.new_share,
        "new_categories": categorical.new_categories,
    }


def _by_name(tests: list[DriftTestResult], name: str) -> DriftTestResult:
    return next(t for t in tests if t.test == name)


def _exact_numeric(
    tests: list[DriftTestResult],
    reference: pd.Series,
    values: np.ndarray,
    alpha: float,
    thresholds: dict[str, float] | None,
    cvm: bool,
) -> list[DriftTestResult]:
    ref_values = reference.to_numpy(np.float64, na_value=np.nan)
    replaced = {
        "ks": ks_test(ref_values, values, alpha=alpha),
        "wasserstein": wasserstein(
            ref_values, values, threshold=(thresholds or {}).get("wasserstein")
        ),
    }
    out = [replaced.get(t.test, t) for t in tests]
    if cvm:
        out.append(cramer_von_mises_test(ref_values, values, alpha=alpha))
    return out


def _verdict(
    item: dict[str, Any], p_adjusted: float, alpha: float, correction: str, min_effect: float
) -> ColumnDrift:
    p_value, effect = item["p_value"], float(item["effect"])
    significant = bool(p_adjusted < alpha)
    large = bool(effect >= min_effect)
    label = {"holm": "Holm", "bh": "BH", "none": "unadjusted"}[correction]
    effect_text = f"{item['effect_name']} {effect:.3g}"
    if item["n_current"] == 0:
        reason = "no non-null values in the current window: not tested"
    elif significant and large:
        reason = (
            f"drift: {item['primary_test']} p={p_value:.3g} ({label} {p_adjusted:.3g}) < alpha "
            f"{alpha:g} and {effect_text} >= {min_effect:g}"
        )
    elif significant:
        reason = (
            f"significant ({label} p={p_adjusted:.3g}) but {effect_text} < {min_effect:g}: "
            f"a real but negligible difference at n={item['n_current']:,}"
        )
    else:
        detectable = ""
        if item["critical_value"] is not None:
            critical = item["critical_value"]
            detectable = f"; at this size the smallest significant KS distance is {critical:.3g}"
        reason = f"no drift: {label} p={p_adjusted:.3g} >= alpha {alpha:g}{detectable}"
    return ColumnDrift(
        column=item["column"],
        kind=item["kind"],
        tests=item["tests"],
        primary_test=item["primary_test"],
        p_value=float(p_value),
        p_adjusted=p_adjusted,
        effect_name=item["effect_name"],
        effect=effect,
        effect_threshold=min_effect,
        critical_value=item["critical_value"],
        drifted=significant and large,
        reason=reason,
        null_rate_reference=float(item["null_rate_reference"]),
        null_rate_current=float(item["null_rate_current"]),
        out_of_range_share=float(item["out_of_range_share"]),
        new_categories=list(item["new_categories"]),
    )

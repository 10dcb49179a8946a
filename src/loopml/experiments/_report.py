"""The A/B report: SRM check first, then the fixed-horizon test and the always-valid one.

Pure: a frame of per-unit outcomes in, an ``ABReport`` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.core import DataError, SchemaError
from loopml.experiments._sequential import SequentialResult, msprt
from loopml.experiments._stats import (
    SRMResult,
    TestResult,
    cuped_ttest,
    srm_test,
    two_proportion_ztest,
    welch_ttest,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ABReport", "ab_report"]


@dataclass(frozen=True)
class ABReport:
    """SRM, the test, the sequential view and the overall decision."""

    metric: str
    control: str
    treatment: str
    srm: SRMResult
    test: TestResult
    sequential: SequentialResult | None

    @property
    def decision(self) -> str:
        """The test's decision, or a refusal when the split itself is broken."""
        if self.srm.alarm:
            return (
                "invalid: sample ratio mismatch (fix assignment or logging before reading results)"
            )
        return self.test.decision

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        out: dict[str, Any] = {
            "metric": self.metric,
            "control": self.control,
            "treatment": self.treatment,
            "n": [self.test.n_control, self.test.n_treatment],
            "means": [self.test.control_mean, self.test.treatment_mean],
            "test": self.test.test,
            "effect": self.test.effect,
            "relative_effect": self.test.relative_effect,
            "ci": [self.test.ci_low, self.test.ci_high],
            "p_value": self.test.p_value,
            "srm_p_value": self.srm.p_value,
            "srm_alarm": self.srm.alarm,
            "variance_reduction": self.test.variance_reduction,
            "decision": self.decision,
        }
        if self.sequential is not None:
            out["always_valid_p_value"] = self.sequential.p_value
            out["sequential_decision"] = self.sequential.decision
        return out

    def summary(self) -> str:
        """A few lines for a terminal."""
        t = self.test
        lines = [
            f"{self.metric}: {self.control} {t.control_mean:.4g} (n={t.n_control}) vs "
            f"{self.treatment} {t.treatment_mean:.4g} (n={t.n_treatment})",
            t.summary(),
            f"sample ratio check: p = {self.srm.p_value:.3g}{' ALARM' if self.srm.alarm else ''}",
        ]
        if self.sequential is not None:
            lines.append(
                f"always-valid (mSPRT) p = {self.sequential.p_value:.3g}: "
                f"{self.sequential.decision}"
            )
        lines.append(f"decision: {self.decision}")
        return "\n".join(lines)


def ab_report(
    frame: pd.DataFrame,
    *,
    metric: str,
    variant_column: str = "variant",
    control: str = "control",
    treatment: str = "treatment",
    covariate: str | None = None,
    order_column: str | None = None,
    expected_fractions: Sequence[float] | None = None,
    alpha: float = 0.05,
) -> ABReport:
    """Analyse one metric of a two-variant test from a frame of one row per unit.

    A 0/1 metric gets the two-proportion z-test, any other Welch's t-test, or CUPED when a
    pre-period ``covariate`` column is named. With ``order_column`` (arrival time) the mSPRT
    always-valid p-value is added.

    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"variant": np.repeat(["control", "treatment"], 5000),
    ...                    "converted": np.r_[rng.random(5000) < 0.10, rng.random(5000) < 0.13]})
    >>> ab_report(df, metric="converted").decision
    'treatment better'
    """
    missing = [
        c for c in (variant_column, metric, covariate, order_column) if c and c not in frame.columns
    ]
    if missing:
        raise SchemaError(
            f"The experiment data lacks the column(s) {missing}; it has {list(frame.columns)}.",
            hint="name yours with variant_column= / metric= (--variant-column / --metric)",
        )
    data = frame.sort_values(order_column, kind="stable") if order_column else frame
    groups = {}
    for name in (control, treatment):
        part = data[data[variant_column].astype(str) == name]
        if len(part) < 2:
            raise DataError(
                f"Variant {name!r} has {len(part)} rows in column '{variant_column}'; the "
                "test needs 2 or more.",
                hint=f"variants present: {sorted(map(str, data[variant_column].unique()))}",
            )
        groups[name] = part
    c_part, t_part = groups[control], groups[treatment]
    srm = srm_test([len(c_part), len(t_part)], expected_fractions)
    y_c = _numeric(c_part[metric], metric)
    y_t = _numeric(t_part[metric], metric)
    if covariate:
        test = cuped_ttest(
            y_c,
            _numeric(c_part[covariate], covariate),
            y_t,
            _numeric(t_part[covariate], covariate),
            alpha=alpha,
        )
    elif np.isin(np.r_[y_c, y_t], (0.0, 1.0)).all():
        test = two_proportion_ztest(int(y_c.sum()), y_c.size, int(y_t.sum()), y_t.size, alpha=alpha)
    else:
        test = welch_ttest(y_c, y_t, alpha=alpha)
    sequential = None
    if order_column:
        n = min(y_c.size, y_t.size)
        looks = np.unique(np.linspace(min(100, n), n, num=min(n, 50)).astype(np.int64))
        sequential = msprt(y_c, y_t, alpha=alpha, looks=looks.tolist(), min_samples=min(100, n))
    return ABReport(metric, control, treatment, srm, test, sequential)


def _numeric(series: pd.Series, column: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    try:
        values = np.asarray(series.astype("float64").to_numpy(), dtype=np.float64)
    except (TypeError, ValueError):
        raise SchemaError(
            f"Column '{column}' must be numeric (or 0/1); it holds {series.dtype} values."
        ) from None
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DataError(
            f"Column '{column}' has {bad.size} missing value(s), first at row "
            f"{series.index[bad[0]]!r}.",
            hint="drop or fill them before the analysis",
        )
    return values

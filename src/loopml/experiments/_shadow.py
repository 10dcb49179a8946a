"""The shadow comparison report: champion and challenger scored on the same requests.

``shadow_report`` takes paired arrays (one row per request, both models' scores);
``pair_shadow_log`` builds them from a long prediction-log frame (one row per request and
version, as the service logs them) by joining on the request id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from loopml.core import ConfigError, DataError, SchemaError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ShadowReport", "pair_shadow_log", "shadow_report"]

F = NDArray[np.float64]


@dataclass(frozen=True)
class ShadowReport:
    """Agreement, score deltas, latency and errors; quality once labels arrive."""

    n: int
    agreement: float
    mean_delta: float
    mean_abs_delta: float
    p95_abs_delta: float
    correlation: float
    latency_p50_ms: tuple[float, float]
    latency_p99_ms: tuple[float, float]
    error_rate: tuple[float, float]
    n_labelled: int = 0
    quality_metric: str = ""
    quality: tuple[float, float] = (math.nan, math.nan)
    quality_p_value: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (pairs as ``[champion, challenger]``)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [
            f"{self.n} paired requests; agreement {self.agreement:.1%}; mean |delta| "
            f"{self.mean_abs_delta:.4g}"
            f" (p95 {self.p95_abs_delta:.4g}); correlation {self.correlation:.3f}",
            f"latency p99 champion {self.latency_p99_ms[0]:.3g} ms, challenger "
            f"{self.latency_p99_ms[1]:.3g} ms;"
            f" error rate {self.error_rate[0]:.2%} vs {self.error_rate[1]:.2%}",
        ]
        if self.n_labelled:
            lines.append(
                f"{self.quality_metric} on {self.n_labelled} labels: champion "
                f"{self.quality[0]:.4g}, "
                f"challenger {self.quality[1]:.4g} (paired p = {self.quality_p_value:.3g})"
            )
        return "\n".join(lines)


def _pair(name: str, values: ArrayLike | None, n: int, default: float) -> F:
    if values is None:
        return np.full(n, default)
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size != n:
        raise DataError(f"shadow_report: '{name}' has {array.size} values for {n} requests.")
    return array


def _quantile(values: F, q: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if finite.size else math.nan


def shadow_report(
    champion: ArrayLike,
    challenger: ArrayLike,
    *,
    champion_latency_ms: ArrayLike | None = None,
    challenger_latency_ms: ArrayLike | None = None,
    champion_error: ArrayLike | None = None,
    challenger_error: ArrayLike | None = None,
    labels: ArrayLike | None = None,
    task: Literal["binary", "regression"] = "binary",
    threshold: float = 0.5,
    tolerance: float = 0.0,
) -> ShadowReport:
    """Compare paired scores. NaN scores count as errors; NaN labels as not yet arrived.

    For ``binary`` scores (probabilities) agreement is the share of requests with the same
    decision at ``threshold`` and quality is accuracy (paired test: McNemar). For
    ``regression`` agreement is the share with ``|delta| <= tolerance`` and quality is the
    mean absolute error (paired t-test on the absolute errors).

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 2000)
    >>> a = np.clip(y * 0.6 + rng.normal(0.2, 0.2, 2000), 0, 1)
    >>> b = np.clip(y * 0.7 + rng.normal(0.15, 0.2, 2000), 0, 1)
    >>> report = shadow_report(a, b, labels=y)
    >>> report.n, report.quality_metric, report.quality[1] > report.quality[0]
    (2000, 'accuracy', True)
    """
    if task not in ("binary", "regression"):
        raise ConfigError(
            "The 'task' parameter of shadow_report must be 'binary' or 'regression'. Got "
            f"{task!r} instead."
        )
    c = np.asarray(champion, dtype=np.float64).ravel()
    t = _pair("challenger", challenger, c.size, math.nan)
    if c.size == 0:
        raise DataError("shadow_report got no paired requests.")
    err_c = _pair("champion_error", champion_error, c.size, 0.0).astype(bool) | np.isnan(c)
    err_t = _pair("challenger_error", challenger_error, c.size, 0.0).astype(bool) | np.isnan(t)
    ok = ~(err_c | err_t)
    delta = (t - c)[ok]
    if task == "binary":
        agree = (c[ok] >= threshold) == (t[ok] >= threshold)
    else:
        agree = np.abs(delta) <= tolerance
    lat_c = _pair("champion_latency_ms", champion_latency_ms, c.size, math.nan)
    lat_t = _pair("challenger_latency_ms", challenger_latency_ms, c.size, math.nan)
    both = ok.sum() > 1 and np.std(c[ok]) > 0 and np.std(t[ok]) > 0
    report = ShadowReport(
        n=int(c.size),
        agreement=float(agree.mean()) if agree.size else math.nan,
        mean_delta=float(delta.mean()) if delta.size else math.nan,
        mean_abs_delta=float(np.abs(delta).mean()) if delta.size else math.nan,
        p95_abs_delta=_quantile(np.abs(delta), 0.95),
        correlation=float(np.corrcoef(c[ok], t[ok])[0, 1]) if both else math.nan,
        latency_p50_ms=(_quantile(lat_c, 0.5), _quantile(lat_t, 0.5)),
        latency_p99_ms=(_quantile(lat_c, 0.99), _quantile(lat_t, 0.99)),
        error_rate=(float(err_c.mean()), float(err_t.mean())),
    )
    if labels is None:
        return report
    return _with_quality(
        report, c, t, ok, _pair("labels", labels, c.size, math.nan), task, threshold
    )


def _with_quality(
    report: ShadowReport, c: F, t: F, ok: NDArray[np.bool_], y: F, task: str, threshold: float
) -> ShadowReport:
    from scipy import stats

    labelled = ok & np.isfinite(y)
    n = int(labelled.sum())
    if n < 2:
        return report
    yc, yt, yy = c[labelled], t[labelled], y[labelled]
    if task == "binary":
        right_c, right_t = (yc >= threshold) == (yy == 1), (yt >= threshold) == (yy == 1)
        only_c, only_t = int((right_c & ~right_t).sum()), int((right_t & ~right_c).sum())
        discordant = only_c + only_t
        p = 1.0 if discordant == 0 else float(stats.binomtest(only_t, discordant).pvalue)
        quality = (float(right_c.mean()), float(right_t.mean()))
        metric = "accuracy"
    else:
        abs_c, abs_t = np.abs(yc - yy), np.abs(yt - yy)
        diff = abs_t - abs_c
        p = 1.0 if np.all(diff == diff[0]) else float(stats.ttest_1samp(diff, 0.0).pvalue)
        quality = (float(abs_c.mean()), float(abs_t.mean()))
        metric = "mean absolute error"
    return ShadowReport(
        **{
            **report.__dict__,
            "n_labelled": n,
            "quality_metric": metric,
            "quality": quality,
            "quality_p_value": p,
        }
    )


def pair_shadow_log(
    frame: pd.DataFrame,
    champion: str,
    challenger: str,
    *,
    request_column: str = "request_id",
    version_column: str = "version",
    score_column: str = "score",
) -> pd.DataFrame:
    """Join a long log (one row per request and version) into paired columns.

    The result has ``request_id``, ``champion``, ``challenger`` and, when the log has them,
    ``champion_latency_ms``/``challenger_latency_ms``, ``champion_error``/``challenger_error``
    and ``label``. Requests that only one version scored are dropped.

    >>> import pandas as pd
    >>> log = pd.DataFrame({"request_id": ["r1", "r1", "r2"], "version": ["v1", "v2", "v1"],
    ...                     "score": [0.2, 0.3, 0.9]})
    >>> paired = pair_shadow_log(log, "v1", "v2")
    >>> paired[["request_id", "champion", "challenger"]].to_dict("records")
    [{'request_id': 'r1', 'champion': 0.2, 'challenger': 0.3}]
    """
    missing = [c for c in (request_column, version_column, score_column) if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"The shadow log lacks the column(s) {missing}; it has {list(frame.columns)}.",
            hint="pass request_column/version_column/score_column to name yours",
        )
    parts = []
    for role, version in (("champion", champion), ("challenger", challenger)):
        part = frame[frame[version_column] == version].drop_duplicates(request_column, keep="last")
        if part.empty:
            raise DataError(f"The shadow log has no row for version {version!r} ({role}).")
        renamed = {score_column: role, "latency_ms": f"{role}_latency_ms", "error": f"{role}_error"}
        keep = [request_column] + [c for c in renamed if c in part.columns]
        if role == "champion" and "label" in part.columns:
            keep.append("label")
        parts.append(part[keep].rename(columns=renamed))
    paired = parts[0].merge(parts[1], on=request_column, how="inner")
    return paired.rename(columns={request_column: "request_id"}).reset_index(drop=True)

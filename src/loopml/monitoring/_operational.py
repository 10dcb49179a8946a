"""Operational metrics of the prediction log, compared with their own history.

ML Test Score "Monitor 4" (the model is not too stale) and "Monitor 6" (latency, errors,
fallbacks have not regressed). From the prediction log: ``latency_ms``, ``fallback`` and,
when present, ``error`` (bool or text; non-empty = failed), ``model_created_at`` (when the
serving model version was trained) and ``features_time`` (when the online features used
were last updated). Each window's values are compared with the previous windows by a
robust z-score (median and MAD), so "slow" means slow for this service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import SchemaError
from loopml.monitoring._windows import Window, split_by_windows

__all__ = [
    "HistoryCheck",
    "compare_with_history",
    "operational_metrics",
    "operational_over_windows",
]

HIGHER_IS_WORSE = (
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "fallback_rate",
    "error_rate",
    "model_staleness_h",
    "feature_staleness_p50_s",
)


def _failed(column: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.fillna(0).astype(bool)
    return column.notna() & (column.astype(str).str.len() > 0)


def operational_metrics(frame: pd.DataFrame, *, now: Any = None) -> dict[str, float]:
    """Latency percentiles, fallback and error rates, staleness of the model and features.

    >>> log = pd.DataFrame({"latency_ms": [1.0, 2.0, 3.0, 40.0],
    ...                     "fallback": [False, False, True, False]})
    >>> m = operational_metrics(log)
    >>> m["latency_p50_ms"], m["fallback_rate"]
    (2.5, 0.25)
    """
    metrics: dict[str, float] = {"requests": float(len(frame))}
    if "latency_ms" in frame.columns and len(frame):
        latency = pd.to_numeric(frame["latency_ms"], errors="coerce").dropna().to_numpy()
        for q in (50, 90, 99):
            metrics[f"latency_p{q}_ms"] = (
                float(np.percentile(latency, q)) if latency.size else float("nan")
            )
        metrics["latency_max_ms"] = float(latency.max()) if latency.size else float("nan")
    if "fallback" in frame.columns and len(frame):
        metrics["fallback_rate"] = float(_failed(frame["fallback"]).mean())
    if "error" in frame.columns and len(frame):
        metrics["error_rate"] = float(_failed(frame["error"]).mean())
    reference = pd.Timestamp(now) if now is not None else None
    if "time" in frame.columns and len(frame):
        end = pd.to_datetime(frame["time"], utc=True).max()
        reference = reference or end
    if "model_created_at" in frame.columns and reference is not None and len(frame):
        created = pd.to_datetime(frame["model_created_at"], utc=True).max()
        metrics["model_staleness_h"] = float((reference - created).total_seconds() / 3600)
    if {"features_time", "time"} <= set(frame.columns) and len(frame):
        age = pd.to_datetime(frame["time"], utc=True) - pd.to_datetime(
            frame["features_time"], utc=True
        )
        metrics["feature_staleness_p50_s"] = float(age.dt.total_seconds().median())
    return metrics


@dataclass(frozen=True)
class HistoryCheck:
    """One metric of the latest window against its history."""

    metric: str
    value: float
    median: float
    robust_z: float
    anomalous: bool
    reason: str


def compare_with_history(
    current: dict[str, float],
    history: list[dict[str, float]],
    *,
    z: float = 4.0,
    min_history: int = 3,
) -> list[HistoryCheck]:
    """Flag metrics that got worse than their history by a robust z-score of ``z``.

    >>> past = [{"latency_p99_ms": v} for v in (10.0, 11.0, 9.0, 10.5, 9.5)]
    >>> compare_with_history({"latency_p99_ms": 30.0}, past)[0].anomalous
    True
    """
    checks = []
    for metric in HIGHER_IS_WORSE:
        values = np.array([h[metric] for h in history if metric in h and np.isfinite(h[metric])])
        if metric not in current or values.size < min_history:
            continue
        median = float(np.median(values))
        spread = 1.4826 * float(np.median(np.abs(values - median)))
        spread = max(spread, 1e-9, abs(median) * 0.01)
        score = (current[metric] - median) / spread
        bad = bool(score >= z)
        reason = (
            f"{metric} {current[metric]:.4g} vs median {median:.4g} of {values.size} windows: "
            f"robust z {score:.2f} {'>=' if bad else '<'} {z:g}"
        )
        checks.append(
            HistoryCheck(metric, float(current[metric]), median, float(score), bad, reason)
        )
    return checks


def operational_over_windows(frame: pd.DataFrame, windows: list[Window]) -> pd.DataFrame:
    """Operational metrics per window, each compared with the windows before it."""
    if "time" not in frame.columns:
        raise SchemaError("the prediction log has no 'time' column")
    rows: list[dict[str, Any]] = []
    history: list[dict[str, float]] = []
    for window, part in split_by_windows(frame, windows):
        metrics = operational_metrics(part, now=window.end)
        anomalies = [c.metric for c in compare_with_history(metrics, history) if c.anomalous]
        rows.append(
            {
                "window": window.index,
                "start": window.start,
                **metrics,
                "anomalies": ",".join(anomalies),
            }
        )
        history.append(metrics)
    return pd.DataFrame(rows)

"""The data freshness experiment: how much does a model lose per day of staleness?

For each staleness ``s`` (0, 1, 7, 30 days ...), train on the ``train_window`` of labeled rows
that ends ``s`` before the evaluation window, and score the same evaluation window. Quality
against staleness tells a team how often retraining pays (ML Test Score "Model 4": the impact of
model staleness is known).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from loopml.core import DataError, parse_duration

__all__ = ["FreshnessResult", "freshness_experiment"]


@dataclass(frozen=True)
class FreshnessResult:
    """Quality on one evaluation window of models trained on staler and staler data."""

    table: pd.DataFrame  # staleness_days, train_rows, train_end, quality
    metric: str
    evaluation_rows: int

    def svg(self, width: int = 420, height: int = 220) -> str:
        """Quality against staleness as an inline SVG line chart."""
        x = self.table["staleness_days"].to_numpy(dtype=float)
        y = self.table["quality"].to_numpy(dtype=float)
        pad = 35
        span_x = max(x.max() - x.min(), 1.0)
        low, high = float(np.nanmin(y)), float(np.nanmax(y))
        span_y = max(high - low, 1e-9)
        points = " ".join(
            f"{pad + (a - x.min()) / span_x * (width - 2 * pad):.1f},"
            f"{height - pad - (b - low) / span_y * (height - 2 * pad):.1f}"
            for a, b in zip(x, y, strict=True)
        )
        return (
            f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>'
            f'<text x="{pad}" y="{height - 8}" font-size="11">staleness (days) 0 .. {x.max():g}'
            f'</text><text x="4" y="14" font-size="11">{self.metric} {low:.3f} .. {high:.3f}'
            "</text></svg>"
        )


def freshness_experiment(
    frame: pd.DataFrame,
    *,
    timestamp: str,
    target: str,
    features: list[str],
    evaluation: str | timedelta = "7d",
    train_window: str | timedelta = "30d",
    staleness: tuple[int, ...] = (0, 1, 7, 30),
    task: str = "binary_classification",
    metric: str = "accuracy",
    seed: int = 0,
) -> FreshnessResult:
    """Train one model per staleness (days) and score each on the last ``evaluation`` period.

    >>> rng = np.random.default_rng(0)
    >>> t = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(6000), unit="h")
    >>> frame = pd.DataFrame({"t": t, "x": rng.normal(size=6000)})
    >>> drift = np.arange(6000) / 6000 * 4           # the decision boundary moves over time
    >>> frame["y"] = (frame["x"] > drift - 2).astype(int)
    >>> result = freshness_experiment(frame, timestamp="t", target="y", features=["x"],
    ...                               staleness=(0, 60))
    >>> q = result.table.set_index("staleness_days")["quality"]
    >>> bool(q[0] > q[60])
    True
    """
    from loopml.continual._learners import make_learner
    from loopml.continual._simulate import check_stream

    check_stream(frame, timestamp=timestamp)
    times = frame[timestamp]
    window = parse_duration(train_window, name="train_window")
    eval_start = times.iloc[-1] - parse_duration(evaluation, name="evaluation")
    test = (times > eval_start).to_numpy()
    learner = make_learner("lightgbm", task=task, seed=seed, rounds=60)
    x = frame[features].to_numpy(dtype=np.float64)
    y = frame[target].to_numpy(dtype=np.float64)
    rows = []
    for days in staleness:
        end = eval_start - timedelta(days=days)
        train = ((times <= end) & (times > end - window)).to_numpy() & ~np.isnan(y)
        if train.sum() < 20 or len(np.unique(y[train])) < 2:
            raise DataError(
                f"staleness {days}d leaves {int(train.sum())} labeled training rows "
                f"in the {window} before {end}",
                hint="use fewer days or a longer history",
            )
        fitted = learner.fit(x[train], y[train])
        scores = learner.predict(fitted, x[test])
        rows.append(
            {
                "staleness_days": days,
                "train_rows": int(train.sum()),
                "train_end": end,
                "quality": _quality(y[test], scores, metric, task),
            }
        )
    return FreshnessResult(pd.DataFrame(rows), metric, int(test.sum()))


def _quality(y: np.ndarray, scores: np.ndarray, metric: str, task: str) -> float:
    if metric == "accuracy" and task != "regression":
        return float(np.mean((scores >= 0.5) == (y == 1)))
    from loopml.evaluation import compute_metrics

    return float(compute_metrics(y, scores, task=task)[metric])

"""Natural labels: join predictions (or events) to labels that arrive later.

A label counts when it arrives within the feedback window after the prediction. Once the
window has passed without one, the prediction gets the implicit label (``implicit_label``,
e.g. "no chargeback in 30 days means legitimate") or stays unlabeled; before that it is
*waiting*. The label-delay distribution, measured on predictions old enough to have seen
their slow labels, shows how long a window has to be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError, LabelsConfig, format_duration, utcnow
from loopml.trainingdata._timecols import as_duration, require_columns, utc_column

__all__ = [
    "LabelDelayReport",
    "LabeledPredictions",
    "join_labels",
    "join_labels_from_config",
    "label_delay",
]

_CANDIDATES = ("1h", "6h", "1d", "3d", "7d", "14d", "30d", "60d", "90d")
_QUANTILES = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True, eq=False)
class LabelDelayReport:
    """How long labels take to arrive, and where every prediction stands.

    ``coverage`` maps a candidate window to the share of labels arriving within it, measured
    on the *cohort*: predictions at least ``horizon`` old, so slow labels had time to arrive.
    ``status`` counts predictions that are labeled, implicit, unlabeled or still waiting.
    """

    predictions: int
    labels: int
    cohort: int
    horizon: timedelta | None
    quantiles: dict[str, timedelta | None]
    coverage: dict[str, float]
    status: dict[str, int] = field(default_factory=dict)
    late_labels: int = 0
    labels_before_prediction: int = 0
    unmatched_labels: int = 0
    delays: np.ndarray = field(default_factory=lambda: np.array([], dtype="timedelta64[ns]"))

    @property
    def waiting(self) -> int:
        """Predictions whose window is still open and that have no label yet."""
        return self.status.get("waiting", 0)

    def suggest_window(self, coverage: float = 0.95) -> timedelta | None:
        """The shortest window that catches ``coverage`` of the cohort's labels."""
        if not 0.0 < coverage <= 1.0:
            raise ConfigError(f"The 'coverage' parameter must lie in (0, 1]. Got {coverage!r}.")
        if len(self.delays) == 0:
            return None
        value = np.quantile(self.delays.astype("int64"), coverage, method="inverted_cdf")
        return timedelta(microseconds=int(value) // 1000)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (durations written like ``"3d"``)."""

        def text(value: timedelta | None) -> str | None:
            return None if value is None else _text(value)

        return {
            "predictions": self.predictions,
            "labels": self.labels,
            "cohort": self.cohort,
            "horizon": text(self.horizon),
            "quantiles": {k: text(v) for k, v in self.quantiles.items()},
            "coverage": dict(self.coverage),
            "status": dict(self.status),
            "late_labels": self.late_labels,
            "labels_before_prediction": self.labels_before_prediction,
            "unmatched_labels": self.unmatched_labels,
            "suggested_window_95": text(self.suggest_window(0.95)),
        }


@dataclass(frozen=True, eq=False)
class LabeledPredictions:
    """Predictions with ``label``, ``label_status``, ``label_time`` and ``label_delay`` added."""

    frame: pd.DataFrame
    report: LabelDelayReport

    def trainable(self) -> pd.DataFrame:
        """Rows with a label (arrived in the window, or implicit): what training may use."""
        return self.frame[self.frame["label_status"].isin(["labeled", "implicit"])]


def _text(value: timedelta) -> str:
    return format_duration(value) if value.total_seconds() >= 0.001 else "0s"


def label_delay(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    key: str,
    prediction_time: str,
    label_time: str,
    now: datetime | None = None,
    horizon: str | timedelta | None = None,
) -> LabelDelayReport:
    """The label-delay distribution, to choose a feedback window from data.

    The cohort is the predictions at least ``horizon`` old (default: the largest delay seen),
    so a label that takes long had time to arrive; coverage is measured on it.

    Examples
    --------
    >>> import pandas as pd
    >>> t0 = pd.Timestamp("2024-01-01", tz="UTC")
    >>> preds = pd.DataFrame({"id": range(4), "at": [t0] * 4})
    >>> labels = pd.DataFrame({"id": [0, 1, 2], "seen": t0 + pd.to_timedelta([1, 2, 10], "D")})
    >>> report = label_delay(preds, labels, key="id", prediction_time="at", label_time="seen",
    ...                      now=t0 + pd.Timedelta(days=60))
    >>> report.quantiles["p50"], report.suggest_window(0.6)
    (datetime.timedelta(days=2), datetime.timedelta(days=2))
    >>> report.coverage["7d"]
    0.6666666666666666
    """
    matched, pred_times, counts, now_ts = _match(
        predictions, labels, key, prediction_time, label_time, now
    )
    delays = matched["delay"].to_numpy(dtype="timedelta64[ns]")
    limit = as_duration(horizon, name="horizon") or (
        delays.max().astype("timedelta64[us]").item() if len(delays) else None
    )
    return _report(predictions, labels, matched, pred_times, now_ts, limit, counts, {})


def join_labels(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    key: str,
    target: str,
    prediction_time: str,
    label_time: str,
    window: str | timedelta,
    implicit_label: Any = None,
    now: datetime | None = None,
) -> LabeledPredictions:
    """Attach to each prediction the first label that arrived within ``window`` after it.

    ``now`` (default: the current time) decides which windows have closed: a prediction
    without a label gets ``implicit_label`` once its window has closed (status ``implicit``,
    or ``unlabeled`` when ``implicit_label`` is None) and is ``waiting`` before that.
    Labels that arrive after their window are counted as late and not used.

    Examples
    --------
    >>> import pandas as pd
    >>> t0 = pd.Timestamp("2024-01-01", tz="UTC")
    >>> preds = pd.DataFrame({"id": [1, 2, 3, 4],
    ...                       "at": [t0, t0, t0, t0 + pd.Timedelta(days=40)]})
    >>> chargebacks = pd.DataFrame({"id": [1, 2], "fraud": [1, 1],
    ...                             "reported": [t0 + pd.Timedelta(days=3),
    ...                                          t0 + pd.Timedelta(days=35)]})
    >>> out = join_labels(preds, chargebacks, key="id", target="fraud", prediction_time="at",
    ...                   label_time="reported", window="30d", implicit_label=0,
    ...                   now=t0 + pd.Timedelta(days=45))
    >>> out.frame[["id", "label", "label_status"]].values.tolist()
    [[1, 1, 'labeled'], [2, 0, 'implicit'], [3, 0, 'implicit'], [4, None, 'waiting']]
    >>> out.report.late_labels, out.report.waiting
    (1, 1)
    """
    window_td = as_duration(window, name="window")
    assert window_td is not None
    require_columns(labels, [target], what="join_labels (labels)")
    matched, pred_times, counts, now_ts = _match(
        predictions, labels, key, prediction_time, label_time, now, target=target
    )
    in_window = matched[matched["delay"] <= window_td]
    counts["late_labels"] = int((matched["delay"] > window_td).sum())
    frame = _labeled_frame(
        predictions, pred_times, in_window, target, window_td, implicit_label, now_ts
    )
    found = frame["label_status"].value_counts()
    status = {s: int(found.get(s, 0)) for s in ("labeled", "implicit", "unlabeled", "waiting")}
    report = _report(predictions, labels, matched, pred_times, now_ts, window_td, counts, status)
    return LabeledPredictions(frame, report)


def join_labels_from_config(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    config: LabelsConfig,
    *,
    key: str,
    prediction_time: str,
    now: datetime | None = None,
) -> LabeledPredictions:
    """:func:`join_labels` with ``loopml.yaml``'s ``labels:`` section (target, timestamp,
    feedback_window, implicit_label)."""
    if config.feedback_window is None or config.timestamp is None:
        raise ConfigError(
            "labels: joining natural labels needs 'feedback_window' and 'timestamp'",
            hint="add e.g. `feedback_window: 30d` and `timestamp: reported_at` under labels:",
        )
    return join_labels(
        predictions,
        labels,
        key=key,
        target=config.target,
        prediction_time=prediction_time,
        label_time=config.timestamp,
        window=config.feedback_window,
        implicit_label=config.implicit_label,
        now=now,
    )


def _match(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    key: str,
    prediction_time: str,
    label_time: str,
    now: datetime | None,
    *,
    target: str | None = None,
) -> tuple[pd.DataFrame, pd.Series, dict[str, int], pd.Timestamp]:
    require_columns(predictions, [key, prediction_time], what="natural labels (predictions)")
    require_columns(labels, [key, label_time], what="natural labels (labels)")
    duplicated = predictions[key].duplicated().to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise DataError(
            f"natural labels: predictions have {int(duplicated.sum())} repeated '{key}' values "
            f"(first at row {row}: {predictions[key].iloc[row]!r})",
            hint="join on a key that names one prediction (e.g. the prediction or event id)",
        )
    pred_times = utc_column(predictions, prediction_time, what="natural labels (predictions)")
    lab_times = utc_column(labels, label_time, what="natural labels (labels)")
    now_ts = pd.Timestamp(utcnow() if now is None else now)
    if now_ts.tzinfo is None:
        raise DataError(
            f"natural labels: 'now' {now_ts.isoformat()} has no time zone",
            hint="pass a timezone-aware UTC datetime",
        )
    now_ts = now_ts.tz_convert("UTC")
    columns = {key: labels[key].to_numpy(), "label_time": lab_times.to_numpy()}
    if target is not None:
        columns["label_value"] = labels[target].to_numpy()
    arrived = pd.DataFrame(columns)[lab_times.to_numpy() <= now_ts]
    left = pd.DataFrame(
        {
            key: predictions[key].to_numpy(),
            "prediction_time": pred_times.array,
            "position": np.arange(len(predictions)),
        }
    )
    merged = left.merge(arrived, on=key, how="inner")
    merged["delay"] = merged["label_time"] - merged["prediction_time"]
    early = merged["delay"] < pd.Timedelta(0)
    counts = {
        "labels_before_prediction": int(early.sum()),
        "unmatched_labels": int((~arrived[key].isin(left[key])).sum()),
    }
    matched = merged[~early].sort_values(["position", "label_time"], kind="stable")
    matched = matched.drop_duplicates("position", keep="first")
    return matched, pred_times, counts, now_ts


def _labeled_frame(
    predictions: pd.DataFrame,
    pred_times: pd.Series,
    in_window: pd.DataFrame,
    target: str,
    window: timedelta,
    implicit_label: Any,
    now: pd.Timestamp,
) -> pd.DataFrame:
    n = len(predictions)
    label = np.full(n, None, dtype=object)
    label_time = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
    positions = in_window["position"].to_numpy()
    label[positions] = in_window["label_value"].to_numpy()
    label_time.iloc[positions] = in_window["label_time"].to_numpy()
    closed = (pred_times + window <= now).to_numpy()
    has = np.zeros(n, dtype=bool)
    has[positions] = True
    status = np.where(has, "labeled", np.where(closed, "implicit", "waiting")).astype(object)
    if implicit_label is None:
        status[(status == "implicit")] = "unlabeled"
    else:
        label[(status == "implicit")] = implicit_label
    frame = predictions.copy()
    frame["label"] = label
    frame["label_status"] = status
    frame["label_time"] = label_time.to_numpy()
    frame["label_delay"] = (label_time - pred_times.reset_index(drop=True)).to_numpy()
    return frame


def _report(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    matched: pd.DataFrame,
    pred_times: pd.Series,
    now: pd.Timestamp,
    horizon: timedelta | None,
    counts: dict[str, int],
    status: dict[str, int],
) -> LabelDelayReport:
    if horizon is not None:
        old_enough = (pred_times + horizon <= now).to_numpy()
        cohort_rows = np.flatnonzero(old_enough)
        mature = matched[matched["position"].isin(cohort_rows)]
        mature = mature[mature["delay"] <= horizon]
    else:
        cohort_rows, mature = np.array([], dtype=int), matched.iloc[:0]
    delays = np.sort(mature["delay"].to_numpy(dtype="timedelta64[ns]"))
    quantiles = {f"p{round(q * 100)}": _quantile(delays, q) for q in _QUANTILES}
    quantiles["max"] = _quantile(delays, 1.0)
    coverage = {
        c: float((delays <= np.timedelta64(as_duration(c, name="window"))).mean())
        for c in _CANDIDATES
        if len(delays)
    }
    return LabelDelayReport(
        predictions=len(predictions),
        labels=len(labels),
        cohort=len(cohort_rows),
        horizon=horizon,
        quantiles=quantiles,
        coverage=coverage,
        status=status,
        late_labels=counts.get("late_labels", 0),
        labels_before_prediction=counts["labels_before_prediction"],
        unmatched_labels=counts["unmatched_labels"],
        delays=delays,
    )


def _quantile(delays: np.ndarray, q: float) -> timedelta | None:
    if len(delays) == 0:
        return None
    value = np.quantile(delays.astype("int64"), q, method="inverted_cdf")
    return timedelta(microseconds=int(value) // 1000)

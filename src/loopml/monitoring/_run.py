"""``run_monitor``: windows over the prediction log, every check, alerts, a saved report.

The prediction log (written by serving) has ``request_id``, ``time`` (UTC),
``model_version``, ``arm``, ``prediction`` (a score), ``latency_ms``, ``fallback`` and one
column per feature named ``f_<feature>``; the feedback log has ``request_id``, ``time``
and ``label``. Optional columns are used when present (see ``operational_metrics`` and
``MonitorConfig.item_column``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml.core import (
    DataError,
    NotFoundError,
    StateStore,
    Workspace,
    atomic_dir,
    ensure_utc,
    format_duration,
    get_logger,
    new_id,
    utcnow,
)
from loopml.monitoring._alerts import AlertEvent, AlertManager, AlertRule
from loopml.monitoring._drift import DriftReport, drift_report
from loopml.monitoring._feedback import feedback_loop_over_windows
from loopml.monitoring._multivariate import (
    MultivariateResult,
    domain_classifier_test,
    pca_reconstruction_test,
)
from loopml.monitoring._operational import operational_over_windows
from loopml.monitoring._quality import CBPE, quality_over_windows
from loopml.monitoring._reference import (
    ColumnReference,
    reference_from_frame,
    reference_from_profile,
)
from loopml.monitoring._report import render_html
from loopml.monitoring._results import clean_float
from loopml.monitoring._windows import Window, split_by_windows, time_windows

__all__ = [
    "FEATURE_PREFIX",
    "MonitorRun",
    "WindowResult",
    "alert_status",
    "list_runs",
    "load_run",
    "run_monitor",
]

FEATURE_PREFIX = "f_"
_RUN_KIND = "monitor.run"
_log = get_logger("monitoring")


@dataclass
class WindowResult:
    """Everything measured on one window."""

    window: Window
    n: int
    metrics: dict[str, float] = field(default_factory=dict)
    drift: DriftReport | None = None
    prediction_drift: dict[str, Any] | None = None
    multivariate: list[MultivariateResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "index": self.window.index,
            "label": self.window.label,
            "start": str(self.window.start),
            "end": str(self.window.end),
            "n": self.n,
            "metrics": {k: clean_float(v) for k, v in self.metrics.items()},
            "drift": self.drift.to_dict() if self.drift else None,
            "prediction_drift": self.prediction_drift,
            "multivariate": [m.to_dict() for m in self.multivariate],
            "notes": self.notes,
        }


@dataclass
class MonitorRun:
    """The result of ``run_monitor``: per-window results, alert transitions, where it was saved."""

    run_id: str
    project: str
    created_at: datetime
    start: datetime
    end: datetime
    window: timedelta
    reference: str
    alpha: float
    correction: str
    min_effect: float
    windows: list[WindowResult]
    alert_events: list[AlertEvent]
    alert_states: list[dict[str, Any]]
    report_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready run."""
        return {
            "run_id": self.run_id,
            "project": self.project,
            "created_at": self.created_at.isoformat(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "window": format_duration(self.window),
            "reference": self.reference,
            "alpha": self.alpha,
            "correction": self.correction,
            "min_effect": self.min_effect,
            "windows": [w.to_dict() for w in self.windows],
            "alert_events": [e.to_dict() for e in self.alert_events],
            "alert_states": self.alert_states,
        }

    def metrics_frame(self) -> pd.DataFrame:
        """One row per window, one column per metric."""
        return pd.DataFrame([{"window": w.window.label, **w.metrics} for w in self.windows])


def _floor(value: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=value.tzinfo)
    return epoch + ((value - epoch) // step) * step


def _read(directory: Path, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    from loopml.data import EventLog

    return EventLog(directory).read(start, end)


def _period(text: str) -> tuple[datetime, datetime] | None:
    """``START/END`` in ISO times, or ``None`` when ``text`` is not a period."""
    if "/" not in text or text.count("/") != 1:
        return None
    try:
        start, end = (
            datetime.fromisoformat(part.strip().replace("Z", "+00:00")) for part in text.split("/")
        )
    except ValueError:
        return None
    return ensure_utc(start, where="reference period"), ensure_utc(end, where="reference period")


def _reference_rows(workspace: Workspace, reference: Any) -> tuple[str, pd.DataFrame] | None:
    """A fixed reference: a DataFrame, or a period ``START/END`` of the prediction log."""
    if isinstance(reference, pd.DataFrame):
        return "rows", reference
    period = _period(reference) if isinstance(reference, str) else None
    if period is None:
        return None
    rows = _read(workspace.predictions_log_dir, *period)
    if rows.empty:
        raise DataError(
            f"the reference period {reference} holds no predictions",
            hint="pick a period the prediction log covers",
        )
    return f"period {reference}", rows


def _resolve_reference(
    workspace: Workspace, reference: Any, features: list[str]
) -> tuple[str, dict[str, ColumnReference] | None]:
    """``first_window`` / ``previous_window`` (rows) or a profile (path, object or dict)."""
    if isinstance(reference, str) and reference in ("first_window", "previous_window"):
        return reference, None
    if isinstance(reference, str) and "/" in reference and _period(reference) is not None:
        return "period", None
    label = "profile"
    if isinstance(reference, str | os.PathLike):
        path = workspace.resolve(reference, must_be_inside=False)
        if not path.is_file():
            raise NotFoundError(
                f"the monitor reference {str(reference)!r} is neither 'first_window', "
                f"'previous_window' nor a profile file ({path} does not exist)",
                hint="profile the training data with loopml.data.profile(...).save(path)",
            )
        reference = json.loads(path.read_text(encoding="utf-8"))
        label = f"profile {path.name}"
    summaries = reference_from_profile(reference)
    mapped: dict[str, ColumnReference] = {}
    for name in features:
        bare = name[len(FEATURE_PREFIX) :]
        if name in summaries or bare in summaries:
            mapped[name] = summaries[name] if name in summaries else summaries[bare]
    if not mapped:
        raise DataError(
            f"the reference profile shares no column with the logged features {features[:10]}",
            hint="profile the same features the model is served with",
        )
    return label, mapped


def run_monitor(
    workspace: Workspace,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
    reference: Any = None,
    calibration: tuple[Any, Any] | None = None,
    store: StateStore | None = None,
    save: bool = True,
    seed: int = 0,
) -> MonitorRun:
    """Monitor the prediction log over windows of ``monitor.window`` and save the report.

    ``reference`` overrides ``monitor.reference``: ``"first_window"``, ``"previous_window"``,
    a fixed period of the log ``"START/END"`` (ISO times), reference rows (a DataFrame),
    a profile file, a ``loopml.data.Profile`` or its dict. ``calibration`` = (scores,
    labels) of the validation set fits the CBPE estimator; without it CBPE is fitted on
    the first window once its labels are in. ``now`` (default: the current time) decides
    which windows' labels are due.
    """
    config = workspace.config
    monitor = config.monitor
    now = ensure_utc(now, where="now") if now is not None else utcnow()
    predictions = _read(workspace.predictions_log_dir, start, end)
    if predictions.empty:
        raise DataError(
            f"no predictions in the log at {workspace.predictions_log_dir}"
            + (f" between {start} and {end}" if start or end else ""),
            hint="serve the model (every prediction is logged) or widen --start/--end",
        )
    times = pd.to_datetime(predictions["time"], utc=True)
    first = _floor(start or times.min().to_pydatetime(), monitor.window)
    last = end or (_floor(times.max().to_pydatetime(), monitor.window) + monitor.window)
    windows = time_windows(first, last, monitor.window)
    features = [c for c in predictions.columns if c.startswith(FEATURE_PREFIX)]
    chosen = reference if reference is not None else monitor.reference
    fixed = _reference_rows(workspace, chosen)
    ref_label, summaries = (
        (fixed[0], None) if fixed else _resolve_reference(workspace, chosen, features)
    )
    parts = list(split_by_windows(predictions, windows))
    results = [WindowResult(window, len(part)) for window, part in parts]
    fixed_rows = fixed[1] if fixed else None
    _drift_windows(parts, results, features, summaries, ref_label, monitor, seed, fixed_rows)
    _quality(workspace, config, predictions, windows, results, now, calibration)
    _operations(predictions, windows, results)
    if calibration is not None and config.task in (None, "binary_classification"):
        _label_shift(parts, results, calibration, monitor.drift.alpha)
    if monitor.item_column:
        _feedback(predictions, windows, results, monitor.item_column)
    manager = AlertManager(
        [AlertRule.from_config(r) for r in monitor.alerts],
        store or StateStore(workspace.state_url),
        default_file=workspace.reports_dir / "alerts.jsonl",
    )
    events: list[AlertEvent] = []
    for result in results:
        end_time = result.window.end
        assert isinstance(end_time, datetime)
        events += manager.evaluate(result.metrics, end_time)
    run = MonitorRun(
        run_id=f"{utcnow().strftime('%Y%m%dT%H%M%S')}-{new_id()[:6]}",
        project=config.project,
        created_at=utcnow(),
        start=first,
        end=last,
        window=monitor.window,
        reference=ref_label,
        alpha=monitor.drift.alpha,
        correction=monitor.drift.correction,
        min_effect=monitor.drift.min_effect,
        windows=results,
        alert_events=events,
        alert_states=[s.to_dict() for s in manager.states()],
    )
    if save:
        run.report_dir = _save(workspace, run, manager.store)
    return run


def _drift_windows(
    parts: list[tuple[Window, pd.DataFrame]],
    results: list[WindowResult],
    features: list[str],
    summaries: dict[str, ColumnReference] | None,
    ref_label: str,
    monitor: Any,
    seed: int,
    fixed_rows: pd.DataFrame | None = None,
) -> None:
    drift = monitor.drift
    previous: pd.DataFrame | None = None
    fixed_summary = reference_from_frame(fixed_rows[features]) if fixed_rows is not None else None
    for (window, part), result in zip(parts, results, strict=True):
        rows = fixed_rows
        if ref_label == "first_window":
            rows = parts[0][1] if window.index > 0 else None
        elif ref_label == "previous_window":
            rows = previous
        previous = part if len(part) else previous
        if not len(part):
            result.notes.append(f"{window.label}: no predictions")
            continue
        if summaries is None and (rows is None or not len(rows)):
            result.notes.append(f"{window.label}: this window is the reference")
            continue
        columns = list(summaries) if summaries is not None else features
        if summaries is not None:
            ref_source: Any = summaries
        elif fixed_summary is not None:
            ref_source = fixed_summary
        else:
            assert rows is not None
            ref_source = reference_from_frame(rows[columns])
        if columns:
            report = drift_report(
                ref_source,
                part[columns],
                alpha=drift.alpha,
                correction=drift.correction,
                min_effect=drift.min_effect,
            )
            result.drift = report
            result.metrics["drift.share_drifted"] = report.share_drifted
            result.metrics["drift.n_drifted"] = float(len(report.drifted_columns))
            for column in report.columns:
                result.metrics[f"drift.{column.column}.effect"] = column.effect
                result.metrics[f"drift.{column.column}.p_adjusted"] = column.p_adjusted
            result.metrics["data.null_rate_max"] = max(c.null_rate_current for c in report.columns)
            result.metrics["data.out_of_range_max"] = max(
                c.out_of_range_share for c in report.columns
            )
        if rows is not None and "prediction" in part.columns:
            prediction = drift_report(
                rows[["prediction"]],
                part[["prediction"]],
                alpha=drift.alpha,
                min_effect=drift.min_effect,
                method="profile",
            )
            result.prediction_drift = prediction.columns[0].to_dict()
            result.metrics["prediction.effect"] = prediction.columns[0].effect
        if "prediction" in part.columns:
            result.metrics["prediction.mean"] = float(pd.to_numeric(part["prediction"]).mean())
        if (
            drift.multivariate
            and rows is not None
            and len(columns) >= 2
            and min(len(rows), len(part)) >= 100
        ):
            result.multivariate = [
                domain_classifier_test(
                    rows[columns],
                    part[columns],
                    n_permutations=200,
                    n_splits=3,
                    max_rows=3000,
                    alpha=drift.alpha,
                    seed=seed,
                ),
                pca_reconstruction_test(rows[columns], part[columns], alpha=drift.alpha, seed=seed),
            ]
            result.metrics["multivariate.domain_auc"] = result.multivariate[0].score
            result.metrics["multivariate.pca_ratio"] = result.multivariate[1].score
        elif drift.multivariate and summaries is not None:
            result.notes.append(
                "multivariate tests need reference rows; a profile reference has none"
            )


def _quality(
    workspace: Workspace,
    config: Any,
    predictions: pd.DataFrame,
    windows: list[Window],
    results: list[WindowResult],
    now: datetime,
    calibration: tuple[Any, Any] | None,
) -> None:
    first = windows[0].start if windows else None
    assert first is None or isinstance(first, datetime)
    feedback = _read(workspace.feedback_log_dir, first, None)  # labels come after predictions
    if config.task in ("multiclass_classification", "ranking"):
        for result in results:
            result.notes.append(f"quality metrics for {config.task} are not computed yet")
        return
    if feedback.empty or "label" not in feedback.columns:
        for result in results:
            result.notes.append("no labels in the feedback log yet: quality not measured")
        return
    delay = config.monitor.label_delay
    if delay is None and config.labels is not None and config.labels.feedback_window is not None:
        delay = config.labels.feedback_window
    delay = delay or timedelta(0)
    task: Literal["binary_classification", "regression"] = (
        "regression" if config.task == "regression" else "binary_classification"
    )
    estimator = None
    if task == "binary_classification":
        estimator = _fit_cbpe(predictions, feedback, windows, now, delay, calibration)
    table = quality_over_windows(
        predictions, feedback, windows, now=now, label_delay=delay, task=task, estimator=estimator
    )
    for result, (_, row) in zip(results, table.iterrows(), strict=True):
        for key, value in row.items():
            name = str(key)
            if name in ("window", "start", "end", "status", "n_predictions", "n_labelled"):
                continue
            if pd.notna(value):
                prefix = "estimated." if name.startswith("estimated_") else "quality."
                short = name.removeprefix("estimated_")
                result.metrics[prefix + short] = float(value)
        if row["status"] != "scored":
            result.notes.append(
                f"{result.window.label}: labels are due {format_duration(delay)} after "
                "the window ends; quality shown as a CBPE estimate only"
            )


def _fit_cbpe(
    predictions: pd.DataFrame,
    feedback: pd.DataFrame,
    windows: list[Window],
    now: datetime,
    delay: timedelta,
    calibration: tuple[Any, Any] | None,
) -> CBPE | None:
    if calibration is not None:
        return CBPE().fit(*calibration)
    first = windows[0]
    assert isinstance(first.end, datetime)
    if first.end + delay > now:
        return None
    joined = next(split_by_windows(predictions, [first]))[1].merge(
        feedback.drop_duplicates("request_id", keep="last")[["request_id", "label"]],
        on="request_id",
        how="inner",
    )
    labels = pd.to_numeric(joined["label"], errors="coerce")
    if len(joined) < 50 or labels.nunique() < 2:
        return None
    return CBPE().fit(joined["prediction"].to_numpy(np.float64), labels.to_numpy())


def _label_shift(
    parts: list[tuple[Window, pd.DataFrame]],
    results: list[WindowResult],
    calibration: tuple[Any, Any],
    alpha: float,
) -> None:
    """BBSE per window: the positive-class prior, from validation (scores, labels)."""
    from loopml.monitoring._label_shift import estimate_label_shift

    scores, labels = (np.asarray(v) for v in calibration)
    validation = (scores >= 0.5).astype(int)
    for (_, part), result in zip(parts, results, strict=True):
        if len(part) < 50:
            continue
        predicted = (pd.to_numeric(part["prediction"]).to_numpy() >= 0.5).astype(int)
        shift = estimate_label_shift(
            labels.astype(int), validation, predicted, classes=[0, 1], alpha=alpha
        )
        result.metrics["label_shift.positive_prior"] = float(shift.target_priors[1])
        result.metrics["label_shift.p_value"] = shift.p_value


def _operations(
    predictions: pd.DataFrame, windows: list[Window], results: list[WindowResult]
) -> None:
    table = operational_over_windows(predictions, windows)
    for result, (_, row) in zip(results, table.iterrows(), strict=True):
        for key, value in row.items():
            if key not in ("window", "start", "anomalies") and pd.notna(value):
                result.metrics[f"ops.{key}"] = float(value)
        if row["anomalies"]:
            result.notes.append(
                f"{result.window.label}: worse than its history: {row['anomalies']}"
            )


def _feedback(
    predictions: pd.DataFrame, windows: list[Window], results: list[WindowResult], item_column: str
) -> None:
    table = feedback_loop_over_windows(predictions, windows, item_column=item_column)
    for result, (_, row) in zip(results, table.iterrows(), strict=True):
        for key in ("gini", "aggregate_diversity", "tail_exposure_share", "tail_coverage"):
            if pd.notna(row[key]):
                result.metrics[f"feedback.{key}"] = float(row[key])


# -- persistence ---------------------------------------------------------------------------
def _runs_dir(workspace: Workspace) -> Path:
    return workspace.reports_dir / "monitoring"


def _save(workspace: Workspace, run: MonitorRun, store: StateStore) -> Path:
    data = run.to_dict()
    target = _runs_dir(workspace) / run.run_id
    with atomic_dir(target) as folder:
        (folder / "report.json").write_text(
            json.dumps(data, indent=1, default=str), encoding="utf-8"
        )
        (folder / "report.html").write_text(render_html(data), encoding="utf-8")
    store.put(
        _RUN_KIND,
        run.run_id,
        {
            "path": str(target),
            "created_at": data["created_at"],
            "windows": len(run.windows),
            "alerts": len(run.alert_events),
        },
    )
    _log.info("monitor run %s saved to %s", run.run_id, target)
    return target


def list_runs(workspace: Workspace) -> list[str]:
    """The saved monitor runs, oldest first."""
    folder = _runs_dir(workspace)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "report.json").is_file())


def load_run(workspace: Workspace, run_id: str = "latest") -> dict[str, Any]:
    """A saved run's JSON (``"latest"`` for the most recent), with its folder in ``"path"``."""
    runs = list_runs(workspace)
    if not runs:
        raise NotFoundError("no monitor run saved yet", hint="run `loopml monitor run` first")
    chosen = runs[-1] if run_id == "latest" else run_id
    if chosen not in runs:
        raise NotFoundError(f"no monitor run {run_id!r}", hint=f"known runs: {runs[-5:]}")
    folder = _runs_dir(workspace) / chosen
    data: dict[str, Any] = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    data["path"] = str(folder)
    return data


def alert_status(workspace: Workspace, *, limit: int = 20) -> dict[str, Any]:
    """The state of every configured alert rule and the latest ``limit`` transitions."""
    rules = [AlertRule.from_config(r) for r in workspace.config.monitor.alerts]
    manager = AlertManager(rules, StateStore(workspace.state_url))
    events = manager.events()
    return {
        "rules": [
            s.to_dict() | {"metric": r.metric, "threshold": r.threshold, "above": r.above}
            for s, r in zip(manager.states(), rules, strict=True)
        ],
        "events": events[-limit:] if limit else events,
    }

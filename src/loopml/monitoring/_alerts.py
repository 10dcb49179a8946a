"""Alerts: rules over window metrics, a state machine that does not re-fire, and sinks.

Each rule is ``inactive``, ``pending`` (the condition holds, not yet long enough),
``firing`` or ``resolved``. Sinks are told only on the transitions to ``firing`` and to
``resolved``: a condition that stays true for ten windows notifies once. Evaluating the
same window twice (a re-run over the same period) changes nothing. States and the history
of transitions live in the state store (``loopml.core.StateStore``: SQLite or PostgreSQL).

Sinks: ``log`` (the ``loopml.monitoring.alerts`` logger), ``file`` or ``file:PATH`` (JSON
lines appended), ``webhook:URL`` (an HTTP POST of the event as JSON; a failed delivery is
logged and recorded, it never stops the monitor).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from loopml.core import ConfigError, StateStore, ensure_utc, get_logger, redact
from loopml.core._config import AlertRuleConfig

__all__ = [
    "METRIC_PATTERNS",
    "AlertEvent",
    "AlertManager",
    "AlertRule",
    "AlertState",
    "check_metric_name",
]

_KIND = "monitor.alert"
_log = get_logger("monitoring.alerts")

METRIC_PATTERNS: dict[str, str] = {
    "drift.share_drifted": "share of feature columns flagged as drifted",
    "drift.n_drifted": "number of feature columns flagged as drifted",
    "drift.<column>.effect": "effect size of one column (Wasserstein in sd, or JS distance)",
    "drift.<column>.p_adjusted": "multiplicity-adjusted p-value of one column",
    "prediction.effect": "drift effect of the prediction distribution",
    "prediction.mean": "mean prediction",
    "multivariate.domain_auc": "out-of-fold AUC of the domain classifier",
    "multivariate.pca_ratio": "PCA reconstruction error relative to the reference",
    "label_shift.positive_prior": "BBSE estimate of the positive-class share (needs calibration)",
    "label_shift.p_value": "p-value that the predicted-class distribution moved",
    "data.null_rate_max": "largest null rate of a feature column",
    "data.out_of_range_max": "largest share of values outside the reference range / new categories",
    "quality.<metric>": "accuracy, precision, recall, f1, roc_auc, log_loss, brier, mae, rmse",
    "quality.label_coverage": "share of predictions with a label",
    "estimated.<metric>": "CBPE estimate: accuracy, precision, recall, f1, roc_auc",
    "ops.<metric>": "requests, latency_p50_ms, latency_p90_ms, latency_p99_ms, latency_max_ms, "
    "fallback_rate, error_rate, model_staleness_h, feature_staleness_p50_s",
    "feedback.<metric>": "gini, aggregate_diversity, tail_exposure_share, tail_coverage",
}
_FIXED = {name for name in METRIC_PATTERNS if "<" not in name}
_PREFIXES = ("drift.", "quality.", "estimated.", "ops.", "feedback.")


def check_metric_name(metric: str) -> None:
    """Raise ``ConfigError`` (with the closest valid name) for a metric no window produces.

    >>> check_metric_name("ops.latency_p99_ms")
    >>> check_metric_name("drift.shared_drifted")
    Traceback (most recent call last):
    ...
    loopml.core._exceptions.ConfigError: The 'metric' ... did you mean 'drift.share_drifted'? ...
    """
    if metric in _FIXED:
        return
    if re.fullmatch(r"drift\.[^.].*\.(effect|p_adjusted)", metric):
        return
    if metric.startswith(_PREFIXES) and metric.count(".") == 1 and not metric.startswith("drift."):
        return
    close = difflib.get_close_matches(metric, sorted(_FIXED), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"The 'metric' of an alert rule must be a monitor metric. Got {metric!r} instead{hint}",
        hint="valid metrics: " + ", ".join(METRIC_PATTERNS),
    )


def _check_sink(sink: str, rule: str) -> None:
    if sink == "log" or sink == "file" or sink.startswith("file:"):
        return
    if sink.startswith("webhook:") and re.match(r"webhook:https?://", sink):
        return
    close = difflib.get_close_matches(sink.split(":")[0], ["log", "file", "webhook"], n=1)
    raise ConfigError(
        f"The sink {sink!r} of alert rule '{rule}' is not one of log, file, file:PATH, webhook:URL"
        + (f"; did you mean '{close[0]}'?" if close else "")
    )


@dataclass(frozen=True)
class AlertRule:
    """``metric`` above (or below) ``threshold`` for ``for_windows`` windows and ``for_duration``.

    >>> AlertRule("drift", "drift.share_drifted", 0.3).breached(0.5)
    True
    """

    name: str
    metric: str
    threshold: float
    above: bool = True
    for_windows: int = 1
    for_duration: timedelta | None = None
    sinks: tuple[str, ...] = ("log",)

    def __post_init__(self) -> None:
        check_metric_name(self.metric)
        if self.for_windows < 1:
            raise ConfigError(
                f"The 'for_windows' parameter of alert rule '{self.name}' must be >= 1. "
                f"Got {self.for_windows!r} instead."
            )
        for sink in self.sinks:
            _check_sink(sink, self.name)

    @classmethod
    def from_config(cls, config: AlertRuleConfig) -> AlertRule:
        """Build a rule from its ``loopml.yaml`` entry."""
        return cls(
            config.name,
            config.metric,
            config.threshold,
            config.above,
            config.for_windows,
            config.for_duration,
            tuple(config.sinks),
        )

    def breached(self, value: float) -> bool:
        """Whether ``value`` breaks the rule."""
        return value > self.threshold if self.above else value < self.threshold

    def describe(self, value: float) -> str:
        """The condition in words, with the observed value."""
        side = ">" if self.above else "<"
        return f"{self.metric} = {value:.4g} {side} {self.threshold:g}"


@dataclass(frozen=True)
class AlertState:
    """Where one rule stands."""

    rule: str
    status: str = "inactive"
    since: str | None = None
    consecutive: int = 0
    value: float | None = None
    fired_at: str | None = None
    resolved_at: str | None = None
    last_evaluated: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class AlertEvent:
    """A transition to ``firing`` or ``resolved`` (what sinks receive)."""

    rule: str
    status: str
    metric: str
    value: float
    threshold: float
    at: str
    message: str
    deliveries: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


class AlertManager:
    """Evaluates rules on each window's metrics, keeps their state, notifies the sinks.

    >>> import tempfile, pathlib
    >>> from datetime import UTC
    >>> store = StateStore(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 's.sqlite'}")
    >>> manager = AlertManager([AlertRule("slow", "ops.latency_p99_ms", 100.0, sinks=())], store)
    >>> t = datetime(2024, 1, 1, tzinfo=UTC)
    >>> [e.status for e in manager.evaluate({"ops.latency_p99_ms": 250.0}, t)]
    ['firing']
    >>> manager.evaluate({"ops.latency_p99_ms": 300.0}, t + timedelta(hours=1))  # no re-fire
    []
    >>> [e.status for e in manager.evaluate({"ops.latency_p99_ms": 20.0}, t + timedelta(hours=2))]
    ['resolved']
    """

    def __init__(
        self,
        rules: Iterable[AlertRule],
        store: StateStore,
        *,
        default_file: str | os.PathLike[str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.rules = list(rules)
        names = [rule.name for rule in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(
                f"alert rule names must be unique; {duplicates} appear more than once"
            )
        self.store = store
        self.default_file = Path(default_file) if default_file is not None else None
        self.timeout = timeout

    def state(self, rule: str) -> AlertState:
        """The stored state of a rule (``inactive`` if never evaluated)."""
        stored = self.store.get(_KIND, rule)
        return AlertState(**stored) if stored else AlertState(rule)

    def states(self) -> list[AlertState]:
        """The state of every rule."""
        return [self.state(rule.name) for rule in self.rules]

    def evaluate(self, metrics: dict[str, float], at: datetime) -> list[AlertEvent]:
        """Advance every rule with the metrics of the window that ended at ``at``."""
        stamp = ensure_utc(at, where="alert evaluation time")
        events = []
        for rule in self.rules:
            event = self._advance(rule, metrics.get(rule.metric), stamp)
            if event is not None:
                events.append(self._deliver(rule, event))
        return events

    def _advance(self, rule: AlertRule, value: float | None, at: datetime) -> AlertEvent | None:
        state = self.state(rule.name)
        if state.last_evaluated is not None and datetime.fromisoformat(state.last_evaluated) >= at:
            return None  # this window was evaluated already
        if value is None or not math.isfinite(value):
            self.store.put(
                _KIND, rule.name, replace(state, last_evaluated=at.isoformat()).to_dict()
            )
            return None
        new, event = _transition(rule, state, float(value), at)
        self.store.put(_KIND, rule.name, new.to_dict())
        if event is not None:
            self.store.append_event(_KIND, event.to_dict(), time=at)
        return event

    def _deliver(self, rule: AlertRule, event: AlertEvent) -> AlertEvent:
        deliveries = {sink: self._send(sink, event) for sink in rule.sinks}
        return replace(event, deliveries=deliveries)

    def _send(self, sink: str, event: AlertEvent) -> str:
        try:
            if sink == "log":
                _log.warning("alert %s %s: %s", event.rule, event.status, event.message)
            elif sink.startswith("file"):
                path = Path(sink[5:]) if sink.startswith("file:") else self.default_file
                if path is None:
                    raise ConfigError("the 'file' sink needs a path: write 'file:PATH'")
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as handle:  # one line per write (O_APPEND)
                    handle.write(json.dumps(event.to_dict(), sort_keys=True) + "\n")
            else:
                import httpx

                response = httpx.post(
                    sink[len("webhook:") :], json=event.to_dict(), timeout=self.timeout
                )
                response.raise_for_status()
            return "ok"
        except Exception as error:  # a sink failure never stops the monitor
            message = redact(f"{type(error).__name__}: {error}")
            _log.error("alert %s: delivery to %s failed: %s", event.rule, redact(sink), message)
            return f"failed: {message}"

    def events(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The history of transitions, oldest first."""
        return [event.payload | {"id": event.id} for event in self.store.events(_KIND, limit=limit)]


def _transition(
    rule: AlertRule, state: AlertState, value: float, at: datetime
) -> tuple[AlertState, AlertEvent | None]:
    stamp = at.isoformat()
    base = replace(state, value=value, last_evaluated=stamp)
    if not rule.breached(value):
        if state.status == "firing":
            event = AlertEvent(
                rule.name,
                "resolved",
                rule.metric,
                value,
                rule.threshold,
                stamp,
                f"resolved: {rule.describe(value)} no longer holds",
            )
            return replace(
                base, status="resolved", consecutive=0, since=None, resolved_at=stamp
            ), event
        status = "resolved" if state.status == "resolved" else "inactive"
        return replace(base, status=status, consecutive=0, since=None), None
    if state.status == "firing":
        return replace(base, consecutive=state.consecutive + 1), None
    since = state.since if state.status == "pending" and state.since else stamp
    consecutive = state.consecutive + 1 if state.status == "pending" else 1
    held = at - datetime.fromisoformat(since)
    long_enough = rule.for_duration is None or held >= rule.for_duration
    if consecutive >= rule.for_windows and long_enough:
        message = f"{rule.describe(value)} for {consecutive} window(s)" + (
            f" since {since}" if consecutive > 1 else ""
        )
        event = AlertEvent(rule.name, "firing", rule.metric, value, rule.threshold, stamp, message)
        return replace(
            base, status="firing", since=since, consecutive=consecutive, fired_at=stamp
        ), event
    return replace(base, status="pending", since=since, consecutive=consecutive), None

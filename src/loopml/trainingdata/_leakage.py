"""Leakage checks between a training split and the split it is evaluated on.

Every check has a name, and each finding carries a severity, the columns and rows concerned,
how bad it is, and what to do. ``LeakageReport.raise_for_severe`` stops training with a
``LeakageError`` for severe findings that the user has not acknowledged by name in
``loopml.yaml`` (``acknowledge: [temporal_overlap, single_feature_predicts_label:amount]``).
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml.core import ConfigError, LeakageError, format_duration

__all__ = ["LeakageFinding", "LeakageReport", "check_leakage"]

Severity = Literal["info", "warning", "severe"]
_RANK = {"info": 0, "warning": 1, "severe": 2}


@dataclass(frozen=True)
class LeakageFinding:
    """One problem a check found.

    ``rows`` are positions (``iloc``) in the split named by ``split`` (at most 10 shown);
    ``value`` is the measure of how bad it is, described by ``metric``.
    """

    check: str
    severity: Severity
    message: str
    hint: str
    columns: tuple[str, ...] = ()
    rows: tuple[int, ...] = ()
    split: str = "test"
    value: float | None = None
    metric: str = ""
    acknowledged: bool = False

    @property
    def key(self) -> str:
        """``check`` or ``check:column`` — the names ``acknowledge`` accepts."""
        return f"{self.check}:{self.columns[0]}" if len(self.columns) == 1 else self.check

    def __str__(self) -> str:
        ack = " (acknowledged)" if self.acknowledged else ""
        return f"[{self.severity}] {self.check}{ack}: {self.message} -> {self.hint}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "check": self.check,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
            "columns": list(self.columns),
            "rows": list(self.rows),
            "split": self.split,
            "value": self.value,
            "metric": self.metric,
            "acknowledged": self.acknowledged,
        }


@dataclass(frozen=True)
class LeakageReport:
    """All findings of one :func:`check_leakage` run, with the wall (``timings``) and CPU
    (``cpu_timings``, this process) seconds each check took."""

    findings: tuple[LeakageFinding, ...]
    timings: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)

    @property
    def severe(self) -> list[LeakageFinding]:
        """Severe findings nobody acknowledged: these stop training."""
        return [f for f in self.findings if f.severity == "severe" and not f.acknowledged]

    @property
    def ok(self) -> bool:
        """True when nothing stops training."""
        return not self.severe

    def by_check(self, name: str) -> list[LeakageFinding]:
        """The findings of one check."""
        return [f for f in self.findings if f.check == name]

    def raise_for_severe(self) -> None:
        """Raise ``LeakageError`` listing every unacknowledged severe finding."""
        severe = self.severe
        if not severe:
            return
        lines = "\n".join(f"  - {f}" for f in severe)
        keys = ", ".join(sorted({f.key for f in severe}))
        raise LeakageError(
            f"{len(severe)} severe leakage finding(s) stop training:\n{lines}",
            findings=severe,
            hint=f"fix the data, or if a finding is expected, list it under `acknowledge:` "
            f"in loopml.yaml ({keys})",
        )

    def summary(self) -> str:
        """A short text table: one line a finding, most severe first, then the slowest checks."""
        if not self.findings:
            lines = ["no leakage found"]
        else:
            ordered = sorted(self.findings, key=lambda f: -_RANK[f.severity])
            lines = [str(f) for f in ordered]
        slow = sorted(self.timings.items(), key=lambda kv: -kv[1])[:3]
        lines.append("slowest checks: " + ", ".join(f"{k} {v:.2f}s" for k, v in slow))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "ok": self.ok,
            "rows": dict(self.rows),
            "findings": [f.to_dict() for f in self.findings],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "cpu_timings": {k: round(v, 4) for k, v in self.cpu_timings.items()},
            "skipped": dict(self.skipped),
        }


@dataclass
class Context:
    """What every check sees; expensive intermediate results are cached in ``cache``."""

    train: pd.DataFrame
    test: pd.DataFrame
    target: str
    features: list[str]
    timestamp: str | None
    prediction_time: str | None
    feature_times: dict[str, str]
    group: str | None
    id_columns: list[str]
    label_horizon: timedelta | None
    transformers: dict[str, Any]
    seed: int
    sample_rows: int
    cache: dict[str, Any] = field(default_factory=dict)

    def rng(self, salt: int = 0) -> np.random.Generator:
        """A generator seeded from ``seed`` and a per-check salt."""
        return np.random.default_rng([self.seed, salt])

    def sample(self, frame: pd.DataFrame, salt: int, limit: int | None = None) -> pd.DataFrame:
        """At most ``limit`` (default ``sample_rows``) rows of ``frame``, uniformly."""
        limit = self.sample_rows if limit is None else limit
        if len(frame) <= limit:
            return frame
        rows = np.sort(self.rng(salt).choice(len(frame), limit, replace=False))
        return frame.iloc[rows]


CheckFunction = Callable[[Context], list[LeakageFinding]]


def _registry() -> tuple[dict[str, CheckFunction], dict[CheckFunction, str]]:
    """Every check by name and each function's primary name; the registry lives in
    ``_leakage_checks`` beside the checks it holds."""
    from loopml.trainingdata._leakage_checks import LEAKAGE_CHECKS, PRIMARY_NAMES

    return LEAKAGE_CHECKS, PRIMARY_NAMES


def check_leakage(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    target: str,
    timestamp: str | None = None,
    prediction_time: str | None = None,
    feature_times: Mapping[str, str] | None = None,
    group: str | None = None,
    id_columns: Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    label_horizon: str | timedelta | None = None,
    transformers: Mapping[str, Any] | Sequence[Any] | None = None,
    acknowledge: Iterable[str] = (),
    checks: Iterable[str] | None = None,
    sample_rows: int = 100_000,
    seed: int = 0,
) -> LeakageReport:
    """Run every leakage check of ``train`` against ``test`` (or validation).

    ``feature_times`` maps a feature column to the column holding the time its value was
    known; ``prediction_time`` (default ``timestamp``) is when the prediction is made.
    ``label_horizon`` is how far ahead the label looks; the time gap must be at least that.
    ``transformers`` are fitted transformers whose statistics must come from ``train`` only.
    Checks that model the label subsample to ``sample_rows`` rows per side (said in the finding).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"x": rng.normal(size=400), "y": rng.integers(0, 2, 400)})
    >>> frame["leak"] = frame["y"] * 2.0 + rng.normal(scale=0.01, size=400)
    >>> report = check_leakage(frame.iloc[:300], frame.iloc[300:], target="y")
    >>> [f.key for f in report.severe]
    ['single_feature_predicts_label:leak']
    >>> check_leakage(frame.iloc[:300], frame.iloc[300:], target="y",
    ...               acknowledge=["single_feature_predicts_label"]).ok
    True
    """

    context = _context(
        train,
        test,
        target,
        timestamp,
        prediction_time,
        feature_times,
        group,
        id_columns,
        features,
        label_horizon,
        transformers,
        sample_rows,
        seed,
    )
    from loopml.trainingdata._leakage_checks import SkipCheck

    acknowledged = _acknowledgements(acknowledge)
    findings: list[LeakageFinding] = []
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    skipped: dict[str, str] = {}
    wanted = set(checks) if checks is not None else None
    for function in _selected(checks):
        name = _registry()[1][function]
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            findings.extend(function(context))
        except SkipCheck as reason:
            skipped[name] = str(reason)
        timings[name] = time.perf_counter() - started
        cpu[name] = time.process_time() - cpu_started
    findings = [
        _acknowledged(f, acknowledged) for f in findings if wanted is None or f.check in wanted
    ]
    rows = {"train": len(train), "test": len(test)}
    return LeakageReport(tuple(findings), timings, skipped, rows, cpu)


def _acknowledged(finding: LeakageFinding, names: set[str]) -> LeakageFinding:
    if finding.check in names or finding.key in names:
        return replace(finding, acknowledged=True)
    return finding


def _acknowledgements(acknowledge: Iterable[str]) -> set[str]:

    checks_by_name = _registry()[0]
    names = set()
    for item in acknowledge:
        check = str(item).split(":", 1)[0]
        if check not in checks_by_name:
            close = difflib.get_close_matches(check, list(checks_by_name), n=1)
            raise ConfigError(
                f"acknowledge names unknown leakage check '{check}'"
                + (f"; did you mean '{close[0]}'?" if close else ""),
                hint="valid checks: " + ", ".join(checks_by_name),
            )
        names.add(str(item))
    return names


def _selected(checks: Iterable[str] | None) -> list[CheckFunction]:
    checks_by_name = _registry()[0]
    if checks is None:
        wanted = list(checks_by_name)
    else:
        wanted = list(checks)
        unknown = [c for c in wanted if c not in checks_by_name]
        if unknown:
            raise ConfigError(
                f"The 'checks' parameter of check_leakage names unknown check(s) {unknown}",
                hint="valid checks: " + ", ".join(checks_by_name),
            )
    functions: list[CheckFunction] = []
    for name in wanted:
        function = checks_by_name[name]
        if function not in functions:
            functions.append(function)
    return functions


def _context(
    train: pd.DataFrame,
    test: pd.DataFrame,
    target: str,
    timestamp: str | None,
    prediction_time: str | None,
    feature_times: Mapping[str, str] | None,
    group: str | None,
    id_columns: Sequence[str] | None,
    features: Sequence[str] | None,
    label_horizon: str | timedelta | None,
    transformers: Mapping[str, Any] | Sequence[Any] | None,
    sample_rows: int,
    seed: int,
) -> Context:
    from loopml.trainingdata._timecols import as_duration, require_columns

    for name, frame in (("train", train), ("test", test)):
        if not isinstance(frame, pd.DataFrame):
            raise ConfigError(
                f"check_leakage: '{name}' must be a pandas DataFrame. Got {type(frame).__name__}."
            )
        if len(frame) == 0:
            raise ConfigError(f"check_leakage: the {name} frame has no rows")
    times = dict(feature_times or {})
    ids = list(id_columns or [])
    named = [target, timestamp, prediction_time, group, *ids, *times, *times.values()]
    for name, frame in (("train", train), ("test", test)):
        require_columns(frame, named, what=f"check_leakage ({name})")
    reserved = {c for c in (target, timestamp, prediction_time, group) if c} | set(ids)
    reserved |= set(times.values())
    chosen = (
        list(features)
        if features is not None
        else [c for c in train.columns if c not in reserved and c in test.columns]
    )
    require_columns(train, chosen, what="check_leakage (features)")
    return Context(
        train=train,
        test=test,
        target=target,
        features=chosen,
        timestamp=timestamp,
        prediction_time=prediction_time or timestamp,
        feature_times=times,
        group=group,
        id_columns=ids,
        label_horizon=as_duration(label_horizon, name="label_horizon"),
        transformers=_named_transformers(transformers),
        seed=seed,
        sample_rows=sample_rows,
    )


def _named_transformers(
    transformers: Mapping[str, Any] | Sequence[Any] | None,
) -> dict[str, Any]:
    if transformers is None:
        return {}
    if isinstance(transformers, Mapping):
        return dict(transformers)
    return {f"{type(t).__name__}[{i}]": t for i, t in enumerate(transformers)}


def describe_rows(rows: np.ndarray, split: str) -> str:
    """``"test rows 3, 17, 40 (+12 more)"`` from positions."""
    shown = ", ".join(str(int(r)) for r in rows[:5])
    more = f" (+{len(rows) - 5} more)" if len(rows) > 5 else ""
    return f"{split} rows {shown}{more}"


def fmt_td(value: timedelta) -> str:
    """A duration as loopml writes it, or a plain string for sub-millisecond values."""
    if value.total_seconds() >= 0.001:
        return format_duration(value)
    return str(value)

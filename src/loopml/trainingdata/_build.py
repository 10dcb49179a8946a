"""Build a training set: split by the configuration, then run every leakage check.

This is the one door to a training set, so the checks run every time: a severe finding
stops the build with ``LeakageError`` unless ``loopml.yaml`` acknowledges it by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pandas as pd

from loopml.core import Config, ConfigError, get_logger
from loopml.trainingdata._leakage import LeakageReport, check_leakage
from loopml.trainingdata._splits import Split, split_from_config

__all__ = ["TrainingSet", "build_training_set"]

_log = get_logger("trainingdata")


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """The three parts of a split and the leakage reports of train against each other part."""

    split: Split
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    reports: dict[str, LeakageReport] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: the split's boundaries and every finding."""
        return {
            "split": self.split.to_dict(),
            "leakage": {name: r.to_dict() for name, r in self.reports.items()},
        }


def build_training_set(
    frame: pd.DataFrame,
    config: Config,
    *,
    target: str | None = None,
    timestamp: str | None = None,
    group: str | None = None,
    id_columns: Sequence[str] = (),
    feature_times: Mapping[str, str] | None = None,
    prediction_time: str | None = None,
    label_horizon: str | timedelta | None = None,
    transformers: Mapping[str, Any] | None = None,
    raise_on_severe: bool = True,
) -> TrainingSet:
    """Split ``frame`` as ``config.split`` says and check train against validation and test.

    ``target`` defaults to ``config.labels.target`` and ``label_horizon`` to
    ``config.labels.feedback_window`` (a label decided within that window needs a gap at
    least as long). Severe findings raise ``LeakageError`` unless listed in
    ``config.acknowledge``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from loopml.core import Config
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({
    ...     "t": pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC"),
    ...     "x": rng.normal(size=300), "y": rng.integers(0, 2, 300)})
    >>> config = Config.model_validate({"project": "demo", "split": {"gap": "2h"}})
    >>> built = build_training_set(frame, config, target="y", timestamp="t")
    >>> len(built.train), len(built.validation), len(built.test), built.reports["test"].ok
    (206, 45, 45, True)
    """
    target = target or (config.labels.target if config.labels else None)
    if target is None:
        raise ConfigError(
            "build_training_set needs the label column",
            hint="pass target=... or set `labels: {target: ...}` in loopml.yaml",
        )
    if label_horizon is None and config.labels is not None:
        label_horizon = config.labels.feedback_window
    split = split_from_config(frame, config.split, timestamp=timestamp, target=target, group=group)
    train, validation, test = split.frames(frame)
    common = dict(
        target=target,
        timestamp=timestamp,
        group=split.boundaries.get("group", group),
        id_columns=list(id_columns),
        feature_times=feature_times,
        prediction_time=prediction_time,
        label_horizon=label_horizon,
        transformers=transformers,
        acknowledge=config.acknowledge,
        seed=config.split.seed,
    )
    reports = {}
    for name, other in (("validation", validation), ("test", test)):
        if len(other):
            reports[name] = check_leakage(train, other, **common)  # type: ignore[arg-type]
    for name, report in reports.items():
        for finding in report.findings:
            _log.info("leakage (train vs %s): %s", name, finding)
    built = TrainingSet(split, train, validation, test, reports)
    if raise_on_severe:
        for report in reports.values():
            report.raise_for_severe()
    return built

"""Retraining policies: when to retrain, on which rows, and why (or why not yet).

The book's four stages of continual learning are configurations of one policy:

======================================  ============================================
manual, stateless                       ``RetrainConfig()`` and ``manual=True`` passes
automated (scheduled), stateless        ``every: 1d``
automated (scheduled), stateful         ``every: 1d, mode: stateful``
continual (event-triggered)             ``on_drift: true`` and/or ``on_quality_drop: 0.05``
======================================  ============================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.core import RetrainConfig

__all__ = ["RetrainDecision", "decide_retrain", "stage_of", "window_weights"]


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain now, why, and what the policy waits for otherwise."""

    retrain: bool
    reasons: tuple[str, ...]
    waiting: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"retrain": self.retrain, "reasons": list(self.reasons), "waiting": self.waiting}


def decide_retrain(
    config: RetrainConfig,
    *,
    now: datetime,
    last_trained: datetime | None,
    new_labels: int,
    drift_alert: bool = False,
    quality_drop: float | None = None,
    manual: bool = False,
) -> RetrainDecision:
    """Apply the policy. Triggers: manual, schedule, drift alert, quality drop.

    A trigger is honoured only with at least ``min_new_labels`` labeled rows since the last
    training (a manual request overrides the minimum); otherwise the decision says what it
    waits for.

    >>> from datetime import datetime, UTC
    >>> cfg = RetrainConfig(every="7d", min_new_labels=100)
    >>> now = datetime(2024, 1, 8, tzinfo=UTC)
    >>> last = datetime(2024, 1, 1, tzinfo=UTC)
    >>> decision = decide_retrain(cfg, now=now, last_trained=last, new_labels=50)
    >>> decision.retrain, decision.reasons, decision.waiting
    (False, ('schedule: 7d since the last training',), '50 new labeled rows of the 100 required')
    """
    reasons = []
    if manual:
        reasons.append("manual request")
    if config.every is not None and (last_trained is None or now - last_trained >= config.every):
        since = (
            "no model yet"
            if last_trained is None
            else f"{_days(now - last_trained)} since the last training"
        )
        reasons.append(f"schedule: {since}")
    if config.on_drift and drift_alert:
        reasons.append("drift alert")
    if (
        config.on_quality_drop is not None
        and quality_drop is not None
        and quality_drop >= config.on_quality_drop
    ):
        reasons.append(
            f"quality dropped by {quality_drop:.3g} (threshold {config.on_quality_drop:g})"
        )
    if not reasons:
        return RetrainDecision(False, (), None)
    if new_labels < config.min_new_labels and not manual:
        return RetrainDecision(
            False,
            tuple(reasons),
            f"{new_labels} new labeled rows of the {config.min_new_labels} required",
        )
    return RetrainDecision(True, tuple(reasons))


def _days(delta: timedelta) -> str:
    from loopml.core import format_duration

    return format_duration(delta)


def stage_of(config: RetrainConfig) -> str:
    """The book's name for the stage a configuration reaches.

    >>> stage_of(RetrainConfig(every="1d", mode="stateful"))
    'automated stateful retraining'
    """
    if config.on_drift or config.on_quality_drop is not None:
        return "continual learning (event-triggered)"
    if config.every is None:
        return "manual, stateless retraining"
    return f"automated {config.mode} retraining"


def window_weights(
    times: npt.NDArray[np.int64], now: int, *, half_life_us: int | None
) -> npt.NDArray[np.float64] | None:
    """Sample weights that halve every ``half_life_us`` microseconds of age (None: equal)."""
    if half_life_us is None:
        return None
    age = np.maximum(now - times, 0).astype(np.float64)
    return np.asarray(0.5 ** (age / half_life_us), dtype=np.float64)

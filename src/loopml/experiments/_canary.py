"""The canary controller: a pure state machine over traffic steps (the Argo Rollouts model).

At each step the challenger serves ``weight`` percent of units. Once the step has a
minimum sample, ``analyze_step`` compares the challenger's window with the champion's:

- **error rate**: pass when the one-sided upper bound of (challenger - champion) is within
  ``max_error_increase``; fail when the challenger is significantly worse and the point
  estimate exceeds the tolerance; inconclusive otherwise;
- **latency p99**: fail when ``p99_challenger > max_latency_ratio * p99_champion + slack``;
- **prediction drift**: PSI of the challenger's predictions against the champion's (same
  traffic split, so the inputs match); fail above ``max_drift``;
- **quality** (only where labels exist, at least ``min_labels``): like the error rate, on
  per-example quality scores where higher is better.

``advance`` turns an analysis into the next state: a pass moves to the next step (reaching
100% promotes), a fail counts towards ``failure_limit`` and then rolls back to 0% with the
reason, an inconclusive result keeps collecting and pauses after ``inconclusive_limit``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from loopml.core import ConfigError, DataError, ensure_utc

__all__ = [
    "ArmWindow",
    "CanarySpec",
    "CanaryState",
    "Check",
    "StepAnalysis",
    "abort",
    "advance",
    "analyze_step",
    "resume",
    "start_canary",
]

Status = Literal["progressing", "paused", "promoted", "rolled_back"]
Outcome = Literal["pass", "fail", "inconclusive", "waiting"]


@dataclass(frozen=True)
class CanarySpec:
    """The plan: steps (percent), minimum sample, tolerances and limits."""

    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    min_samples: int = 200
    confidence: float = 0.95
    max_error_increase: float = 0.01
    max_latency_ratio: float = 1.2
    latency_slack_ms: float = 1.0
    max_drift: float | None = 0.25
    max_quality_drop: float = 0.01
    min_labels: int = 200
    failure_limit: int = 1
    inconclusive_limit: int = 3

    def __post_init__(self) -> None:
        steps = tuple(float(s) for s in self.steps)
        if not steps or any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(set(steps)):
            raise ConfigError(
                "The 'steps' parameter of CanarySpec must be increasing percentages in (0, 100]. "
                f"Got {list(self.steps)!r} instead."
            )
        object.__setattr__(self, "steps", steps)
        for name in ("min_samples", "failure_limit", "inconclusive_limit", "min_labels"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"The '{name}' parameter of CanarySpec must be >= 1. Got "
                    f"{getattr(self, name)!r} instead."
                )
        if not 0.5 < self.confidence < 1:
            raise ConfigError(
                "The 'confidence' parameter of CanarySpec must be in (0.5, 1). Got "
                f"{self.confidence!r} instead."
            )


@dataclass(frozen=True)
class ArmWindow:
    """What one version did during the current step (since the step started)."""

    requests: int
    errors: int = 0
    latencies_ms: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    predictions: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    quality: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def of(
        cls,
        requests: int,
        errors: int = 0,
        latencies_ms: ArrayLike = (),
        predictions: ArrayLike = (),
        quality: ArrayLike = (),
    ) -> ArmWindow:
        """Build a window from plain sequences (``quality`` = per-labelled-example scores)."""
        if requests < 0 or not 0 <= errors <= requests:
            raise DataError(
                f"An ArmWindow needs 0 <= errors <= requests. Got errors={errors}, "
                f"requests={requests}."
            )
        arrays = [
            np.asarray(x, dtype=np.float64).ravel() for x in (latencies_ms, predictions, quality)
        ]
        for name, array in zip(("latencies_ms", "predictions", "quality"), arrays, strict=True):
            if not np.all(np.isfinite(array)):
                raise DataError(f"The '{name}' of an ArmWindow holds a missing or infinite value.")
        return cls(requests, errors, *arrays)

    def merged(self, other: ArmWindow) -> ArmWindow:
        """Both windows together (the controller analyses everything since the step began).

        >>> ArmWindow.of(10, 1).merged(ArmWindow.of(30, 2)).requests
        40
        """
        return ArmWindow(
            self.requests + other.requests,
            self.errors + other.errors,
            np.concatenate([self.latencies_ms, other.latencies_ms]),
            np.concatenate([self.predictions, other.predictions]),
            np.concatenate([self.quality, other.quality]),
        )


@dataclass(frozen=True)
class Check:
    """One metric's verdict at one analysis."""

    metric: str
    outcome: Outcome
    value: float
    threshold: float
    detail: str


@dataclass(frozen=True)
class StepAnalysis:
    """All checks at one analysis and the combined outcome."""

    outcome: Outcome
    checks: tuple[Check, ...]
    weight: float

    @property
    def reason(self) -> str:
        """The failed (or inconclusive) checks, in words."""
        bad = [c for c in self.checks if c.outcome == self.outcome and c.outcome != "pass"]
        return "; ".join(c.detail for c in bad) or self.outcome


@dataclass(frozen=True)
class CanaryState:
    """Where a rollout stands. JSON-friendly through ``to_dict`` / ``from_dict``."""

    name: str
    champion: str
    challenger: str
    spec: CanarySpec
    status: Status = "progressing"
    step: int = 0
    weight: float = 0.0
    failures: int = 0
    inconclusive: int = 0
    step_started_at: str = ""
    reason: str = ""
    history: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        out = asdict(self)
        out["spec"]["steps"] = list(self.spec.steps)
        out["history"] = list(self.history)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CanaryState:
        """Rebuild a state written by ``to_dict``."""
        spec = CanarySpec(**{**data["spec"], "steps": tuple(data["spec"]["steps"])})
        return cls(**{**data, "spec": spec, "history": tuple(data.get("history", ()))})

    @property
    def done(self) -> bool:
        """``True`` once promoted or rolled back."""
        return self.status in ("promoted", "rolled_back")


def start_canary(
    name: str, champion: str, challenger: str, spec: CanarySpec | None = None, *, now: datetime
) -> CanaryState:
    """A new rollout at the first step.

    >>> from datetime import UTC, datetime
    >>> state = start_canary("fraud", "v1", "v2", now=datetime(2026, 1, 1, tzinfo=UTC))
    >>> state.status, state.weight
    ('progressing', 5.0)
    """
    if champion == challenger:
        raise ConfigError(f"A canary needs two different versions. Got {champion!r} twice.")
    spec = spec or CanarySpec()
    stamp = ensure_utc(now).isoformat()
    return CanaryState(
        name, champion, challenger, spec, weight=spec.steps[0], step_started_at=stamp
    )


def _proportion_check(
    metric: str,
    worse_champion: float,
    worse_challenger: float,
    n_champion: int,
    n_challenger: int,
    tolerance: float,
    z: float,
) -> Check:
    """Non-inferiority of a 'worse is higher' rate (error rate, or quality loss)."""
    diff = worse_challenger - worse_champion
    var = max(worse_champion * (1 - worse_champion), 1e-12) / max(n_champion, 1) + max(
        worse_challenger * (1 - worse_challenger), 1e-12
    ) / max(n_challenger, 1)
    se = math.sqrt(var)
    detail = (
        f"{metric} challenger {worse_challenger:.4g} vs champion {worse_champion:.4g} "
        f"(+{diff:.4g}, tolerance {tolerance:g})"
    )
    if diff - z * se > 0 and diff > tolerance:
        return Check(metric, "fail", diff, tolerance, detail)
    if diff + z * se <= tolerance:
        return Check(metric, "pass", diff, tolerance, detail)
    return Check(metric, "inconclusive", diff, tolerance, detail + " not yet conclusive")


def _mean_check(
    metric: str,
    champion: NDArray[np.float64],
    challenger: NDArray[np.float64],
    tolerance: float,
    z: float,
) -> Check:
    """Non-inferiority of a mean quality score (higher is better)."""
    drop = float(champion.mean() - challenger.mean())
    se = math.sqrt(champion.var(ddof=1) / champion.size + challenger.var(ddof=1) / challenger.size)
    detail = (
        f"{metric} challenger {challenger.mean():.4g} vs champion {champion.mean():.4g} (drop "
        f"{drop:.4g}, tolerance {tolerance:g})"
    )
    if drop - z * se > 0 and drop > tolerance:
        return Check(metric, "fail", drop, tolerance, detail)
    if drop + z * se <= tolerance:
        return Check(metric, "pass", drop, tolerance, detail)
    return Check(metric, "inconclusive", drop, tolerance, detail + " not yet conclusive")


def _psi(reference: NDArray[np.float64], current: NDArray[np.float64], bins: int = 10) -> float:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, reference), minlength=edges.size + 1) / reference.size
    cur = np.bincount(np.searchsorted(edges, current), minlength=edges.size + 1) / current.size
    ref, cur = np.clip(ref, 1e-4, None), np.clip(cur, 1e-4, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def analyze_step(
    spec: CanarySpec, champion: ArmWindow, challenger: ArmWindow, *, weight: float = 0.0
) -> StepAnalysis:
    """Compare the challenger with the champion over the current step's windows.

    >>> rng = np.random.default_rng(0)
    >>> good = ArmWindow.of(5000, 50, rng.gamma(5, 2, 5000), rng.random(5000))
    >>> bad = ArmWindow.of(1000, 80, rng.gamma(5, 2, 1000), rng.random(1000))
    >>> analyze_step(CanarySpec(), good, bad).outcome
    'fail'
    """
    if challenger.requests < spec.min_samples or champion.requests < spec.min_samples:
        return StepAnalysis("waiting", (), weight)
    z = NormalDist().inv_cdf(spec.confidence)
    checks = [
        _proportion_check(
            "error rate",
            champion.errors / champion.requests,
            challenger.errors / challenger.requests,
            champion.requests,
            challenger.requests,
            spec.max_error_increase,
            z,
        )
    ]
    if champion.latencies_ms.size and challenger.latencies_ms.size:
        p99_c = float(np.quantile(champion.latencies_ms, 0.99))
        p99_t = float(np.quantile(challenger.latencies_ms, 0.99))
        limit = spec.max_latency_ratio * p99_c + spec.latency_slack_ms
        outcome: Outcome = "fail" if p99_t > limit else "pass"
        detail = (
            f"latency p99 challenger {p99_t:.3g} ms vs limit {limit:.3g} ms (champion {p99_c:.3g} "
            "ms)"
        )
        checks.append(Check("latency p99", outcome, p99_t, limit, detail))
    if spec.max_drift is not None and champion.predictions.size and challenger.predictions.size:
        psi = _psi(champion.predictions, challenger.predictions)
        outcome = "fail" if psi > spec.max_drift else "pass"
        checks.append(
            Check(
                "prediction drift",
                outcome,
                psi,
                spec.max_drift,
                f"prediction drift PSI {psi:.3g} (limit {spec.max_drift:g})",
            )
        )
    if champion.quality.size >= spec.min_labels and challenger.quality.size >= spec.min_labels:
        checks.append(
            _mean_check("quality", champion.quality, challenger.quality, spec.max_quality_drop, z)
        )
    outcomes = {c.outcome for c in checks}
    combined: Outcome = (
        "fail" if "fail" in outcomes else "inconclusive" if "inconclusive" in outcomes else "pass"
    )
    return StepAnalysis(combined, tuple(checks), weight)


def _record(analysis: StepAnalysis, now: datetime) -> dict[str, Any]:
    return {
        "time": ensure_utc(now).isoformat(),
        "weight": analysis.weight,
        "outcome": analysis.outcome,
        "checks": [asdict(c) for c in analysis.checks],
    }


def advance(state: CanaryState, analysis: StepAnalysis, *, now: datetime) -> CanaryState:
    """The state after an analysis (a no-op once the rollout is done, paused or waiting).

    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> state = start_canary("fraud", "v1", "v2", now=now)
    >>> advance(state, StepAnalysis("pass", (), 5.0), now=now).weight
    25.0
    >>> failed = advance(state, StepAnalysis("fail", (), 5.0), now=now)
    >>> failed.status, failed.weight
    ('rolled_back', 0.0)
    """
    if state.status != "progressing" or analysis.outcome == "waiting":
        return state
    stamp = ensure_utc(now).isoformat()
    history = (*state.history, _record(analysis, now))
    spec = state.spec
    if analysis.outcome == "pass":
        nxt = state.step + 1
        if nxt >= len(spec.steps) or spec.steps[nxt] >= 100.0:
            return replace(
                state,
                status="promoted",
                step=len(spec.steps) - 1,
                weight=100.0,
                history=history,
                reason="every step passed",
                step_started_at=stamp,
            )
        return replace(
            state,
            step=nxt,
            weight=spec.steps[nxt],
            inconclusive=0,
            history=history,
            step_started_at=stamp,
        )
    if analysis.outcome == "fail":
        failures = state.failures + 1
        if failures >= spec.failure_limit:
            return replace(
                state,
                status="rolled_back",
                weight=0.0,
                failures=failures,
                history=history,
                reason=f"failed at {state.weight:g}%: {analysis.reason}",
                step_started_at=stamp,
            )
        return replace(state, failures=failures, history=history, step_started_at=stamp)
    inconclusive = state.inconclusive + 1
    if inconclusive >= spec.inconclusive_limit:
        return replace(
            state,
            status="paused",
            inconclusive=inconclusive,
            history=history,
            reason=f"inconclusive {inconclusive} times at {state.weight:g}%: {analysis.reason}",
        )
    return replace(state, inconclusive=inconclusive, history=history)


def abort(state: CanaryState, reason: str, *, now: datetime) -> CanaryState:
    """Roll back to 0% now, with the reason (a no-op on a finished rollout)."""
    if state.done:
        return state
    event = {
        "time": ensure_utc(now).isoformat(),
        "weight": state.weight,
        "outcome": "aborted",
        "checks": [],
    }
    return replace(
        state,
        status="rolled_back",
        weight=0.0,
        reason=f"aborted: {reason}",
        history=(*state.history, event),
        step_started_at=ensure_utc(now).isoformat(),
    )


def resume(state: CanaryState, *, now: datetime) -> CanaryState:
    """Continue a paused rollout at its current step with a fresh window."""
    if state.status != "paused":
        raise ConfigError(
            f"Rollout {state.name!r} is {state.status}, not paused; only a paused one resumes."
        )
    return replace(
        state,
        status="progressing",
        inconclusive=0,
        reason="",
        step_started_at=ensure_utc(now).isoformat(),
    )

"""The canary controller: regressions roll back, healthy challengers reach 100%, state persists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from loopml.core import ConfigError, NotFoundError, StateStore
from loopml.experiments import (
    ArmWindow,
    CanaryPolicy,
    CanarySpec,
    CanaryState,
    abort_rollout,
    advance,
    analyze_step,
    get_rollout,
    observe_rollout,
    resume_rollout,
    start_canary,
    start_rollout,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Model:
    """A simulated model version: error rate, latency distribution, prediction shift, accuracy."""

    error_rate: float = 0.01
    latency_scale: float = 2.0
    shift: float = 0.0
    accuracy: float = 0.9


def _window(model: Model, n: int, rng: np.random.Generator) -> ArmWindow:
    errors = int(rng.binomial(n, model.error_rate))
    latencies = rng.gamma(4.0, model.latency_scale, n)
    predictions = rng.beta(2, 5, n) + model.shift
    quality = (rng.random(n) < model.accuracy).astype(float)
    return ArmWindow.of(n, errors, latencies, predictions, quality)


def _run(
    champion: Model, challenger: Model, spec: CanarySpec, seed: int, traffic: int = 20_000
) -> CanaryState:
    """Drive the state machine hourly: route ``traffic`` requests by the current weight and
    analyse everything collected since the current step began."""
    rng = np.random.default_rng(seed)
    policy = CanaryPolicy("v1", "v2")
    state = start_canary("fraud", "v1", "v2", spec, now=T0)
    windows = (ArmWindow.of(0), ArmWindow.of(0))
    for period in range(60):
        if state.status != "progressing":
            break
        policy.set_weight(state.weight)
        units = [f"u{seed}-{period}-{i}" for i in range(traffic)]
        to_challenger = sum(policy.route(u, "r").version == "v2" for u in units)
        windows = (
            windows[0].merged(_window(champion, traffic - to_challenger, rng)),
            windows[1].merged(_window(challenger, to_challenger, rng)),
        )
        analysis = analyze_step(spec, *windows, weight=state.weight)
        before = state.step_started_at
        state = advance(state, analysis, now=T0 + timedelta(hours=period + 1))
        if state.step_started_at != before:  # a new step (or a retry) starts a fresh window
            windows = (ArmWindow.of(0), ArmWindow.of(0))
    return state


def test_a_healthy_challenger_is_promoted_to_100_percent_through_every_step() -> None:
    spec = CanarySpec(min_samples=500, max_quality_drop=0.02, inconclusive_limit=6)
    for seed in range(5):
        state = _run(Model(), Model(), spec, seed)
        assert state.status == "promoted" and state.weight == 100.0, state.reason
        weights = [h["weight"] for h in state.history if h["outcome"] == "pass"]
        assert weights[:3] == [5.0, 25.0, 50.0]


@pytest.mark.parametrize(
    ("bad", "metric"),
    [
        (Model(error_rate=0.05), "error rate"),
        (Model(latency_scale=3.5), "latency p99"),
        (Model(shift=0.3), "prediction drift"),
        (Model(accuracy=0.8), "quality"),
    ],
    ids=["errors", "latency", "drift", "quality"],
)
def test_a_planted_regression_is_rolled_back_to_zero_with_the_reason(
    bad: Model, metric: str
) -> None:
    spec = CanarySpec(min_samples=500, min_labels=500)
    for seed in range(3):
        state = _run(Model(), bad, spec, seed)
        assert state.status == "rolled_back" and state.weight == 0.0
        assert metric in state.reason and state.reason.startswith("failed at 5%")


def test_failure_limit_allows_retries_and_inconclusive_pauses() -> None:
    spec = CanarySpec(failure_limit=2, inconclusive_limit=2, min_samples=10)
    state = start_canary("m", "v1", "v2", spec, now=T0)
    failing = analyze_step(spec, ArmWindow.of(2000, 20), ArmWindow.of(2000, 200), weight=5.0)
    assert failing.outcome == "fail" and "error rate" in failing.reason
    once = advance(state, failing, now=T0)
    assert once.status == "progressing" and once.failures == 1 and once.weight == 5.0
    assert advance(once, failing, now=T0).status == "rolled_back"
    # 1% vs 2% on 100 requests each: neither shown safe nor shown worse
    unsure = analyze_step(spec, ArmWindow.of(100, 1), ArmWindow.of(100, 2), weight=5.0)
    assert unsure.outcome == "inconclusive"
    paused = advance(advance(state, unsure, now=T0), unsure, now=T0)
    assert paused.status == "paused" and "inconclusive 2 times" in paused.reason
    waiting = analyze_step(spec, ArmWindow.of(5), ArmWindow.of(5))
    assert waiting.outcome == "waiting" and advance(state, waiting, now=T0) is state


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    """The real state store on SQLite and on PostgreSQL (names in the test are unique)."""
    if request.param == "sqlite":
        return StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    return StateStore(request.getfixturevalue("postgres_url"))


def test_rollout_state_persists_through_the_store(store: StateStore) -> None:
    name = f"fraud-{datetime.now(UTC).timestamp()}"
    spec = CanarySpec(min_samples=100)
    state = start_rollout(store, name, "v1", "v2", spec, now=T0)
    assert get_rollout(store, name) == state
    with pytest.raises(ConfigError, match="still progressing"):
        start_rollout(store, name, "v1", "v3", spec)
    healthy = ArmWindow.of(5000, 50), ArmWindow.of(1000, 10)
    after, analysis = observe_rollout(store, name, *healthy, now=T0 + timedelta(hours=1))
    assert analysis.outcome == "pass" and get_rollout(store, name).weight == 25.0
    rolled = abort_rollout(store, name, "pager went off", now=T0 + timedelta(hours=2))
    assert rolled.status == "rolled_back" and rolled.weight == 0.0
    assert get_rollout(store, name).reason == "aborted: pager went off"
    actions = [e.payload["action"] for e in store.events("rollout") if e.payload["rollout"] == name]
    assert actions == ["start", "analysis:pass", "abort"]
    with pytest.raises(ConfigError, match="already finished"):
        abort_rollout(store, name, "again")
    with pytest.raises(ConfigError, match="not paused"):
        resume_rollout(store, name)
    with pytest.raises(NotFoundError, match="No rollout named 'nope'"):
        get_rollout(store, "nope")
    # a finished rollout can be started again under the same name
    assert start_rollout(store, name, "v1", "v3", spec).challenger == "v3"


def test_spec_rejects_bad_steps() -> None:
    with pytest.raises(ConfigError, match="increasing percentages"):
        CanarySpec(steps=(50.0, 25.0))
    with pytest.raises(ConfigError, match="increasing percentages"):
        CanarySpec(steps=(5.0, 150.0))
    with pytest.raises(ConfigError, match="two different versions"):
        start_canary("m", "v1", "v1", now=T0)
    state = start_canary("m", "v1", "v2", CanarySpec(steps=(10.0, 60.0)), now=T0)
    assert CanaryState.from_dict(state.to_dict()) == state

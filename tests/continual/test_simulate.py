"""The replay simulator: point-in-time features, policies, stateful training, rollouts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml import continual
from loopml.core import AggregationConfig, CanaryConfig, DataError, RetrainConfig, RolloutConfig


def drifting_stream(
    n_days: int = 40, per_day: int = 200, flip_day: int = 20, seed: int = 0
) -> pd.DataFrame:
    """y = [x0 > 0] before ``flip_day`` and [x0 < 0] after: an abrupt concept change."""
    rng = np.random.default_rng(seed)
    n = n_days * per_day
    frame = pd.DataFrame(
        {
            "time": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(np.arange(n) * (86400 / per_day), unit="s"),
            "x0": rng.normal(size=n),
            "x1": rng.normal(size=n),
        }
    )
    day = np.arange(n) // per_day
    frame["y"] = np.where(day < flip_day, frame["x0"] > 0, frame["x0"] < 0).astype(int)
    noise = rng.random(n) < 0.05
    frame.loc[noise, "y"] = 1 - frame.loc[noise, "y"]
    return frame


def test_stream_checks_name_the_rows() -> None:
    frame = drifting_stream(3)
    shuffled = frame.iloc[[0, 2, 1, 3]]
    with pytest.raises(
        DataError, match=r"not time-ordered: 1 rows go back in time, first at rows \[2\]"
    ):
        continual.check_stream(shuffled, timestamp="time")
    early = frame.assign(label_at=frame["time"] - pd.Timedelta("1h"))
    with pytest.raises(DataError, match="labels arrive before their predictions"):
        continual.simulate(early, timestamp="time", target="y", label_time="label_at")


def test_stream_features_never_see_the_future() -> None:
    rng = np.random.default_rng(1)
    n = 300
    times = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.integers(0, 5000, n)), unit="min"
    )
    frame = pd.DataFrame(
        {
            "time": times,
            "v": rng.normal(size=n),
            "y": rng.integers(0, 2, n).astype(float),
            "card": rng.integers(0, 5, n),
        }
    )
    delay = pd.to_timedelta(rng.integers(0, 600, n), unit="min")
    label_times = frame["time"] + delay
    aggs = [
        AggregationConfig(column="y", functions=["mean", "count"], windows=["1d"]),
        AggregationConfig(column="v", functions=["sum"], windows=["6h"]),
    ]
    features = continual.build_stream_features(
        frame, timestamp="time", target="y", label_times=label_times, streaming=aggs, entity="card"
    )
    for i in range(n):
        t, card = frame["time"].iloc[i], frame["card"].iloc[i]
        same = frame["card"] == card
        labels = (
            same & (label_times < t) & (label_times > t - pd.Timedelta("1D") - pd.Timedelta("1us"))
        )
        values = (
            same
            & (frame["time"] < t)
            & (frame["time"] > t - pd.Timedelta("6h") - pd.Timedelta("1us"))
        )
        assert features["y_count_1d"].iloc[i] == labels.sum()
        if labels.any():
            assert features["y_mean_1d"].iloc[i] == pytest.approx(frame.loc[labels, "y"].mean())
        assert features["v_sum_6h"].iloc[i] == pytest.approx(
            frame.loc[values, "v"].sum() if values.any() else np.nan, nan_ok=True
        )


def test_retraining_recovers_from_a_concept_change() -> None:
    frame = drifting_stream()
    result = continual.simulate(
        frame,
        timestamp="time",
        target="y",
        warmup="5d",
        retrain=RetrainConfig(every="1d", window="3d"),
        monitor=False,
    )
    assert result.prequential["loopml"] > result.prequential["never_retrained"] + 0.3
    after = result.timeline[result.timeline["start"] >= pd.Timestamp("2024-01-25", tz="UTC")]
    assert after["quality"].mean() > 0.9  # retrained on the new concept within days
    assert result.retrains > 30 and all(
        e["mode"] == "stateless" for e in result.events if e["kind"] == "retrained"
    )


def test_policy_waits_for_enough_labels_and_says_so() -> None:
    frame = drifting_stream(12)
    result = continual.simulate(
        frame,
        timestamp="time",
        target="y",
        warmup="3d",
        label_delay="2d",
        retrain=RetrainConfig(every="1d", min_new_labels=1000),
        monitor=False,
    )
    waiting = [e for e in result.events if e["kind"] == "waiting"]
    assert waiting and "of the 1000 required" in waiting[0]["why"]
    assert result.retrains < 12


def test_stateful_lightgbm_continues_and_records_it() -> None:
    frame = drifting_stream(16, flip_day=100)
    learner = continual.LightGBMLearner(rounds=40, extra_rounds=5, rebuild_every=50)
    result = continual.simulate(
        frame,
        timestamp="time",
        target="y",
        warmup="3d",
        learner=learner,
        retrain=RetrainConfig(every="1d", mode="stateful"),
        monitor=False,
    )
    modes = [e["mode"] for e in result.events if e["kind"] == "retrained"]
    assert set(modes) == {"stateful"}
    assert result.prequential["loopml"] > 0.85
    stateless = continual.simulate(
        frame,
        timestamp="time",
        target="y",
        warmup="3d",
        learner=continual.LightGBMLearner(rounds=40),
        retrain=RetrainConfig(every="1d"),
        monitor=False,
    )
    assert result.compute < stateless.compute / 3  # rows x trees: a third of the work or less


class _Saboteur(continual.LightGBMLearner):
    """Fits normally, but the challenger it fits after the first is inverted (a planted regression)."""

    def __init__(self, bad: bool) -> None:
        super().__init__(rounds=30)
        self.bad = bad
        self.fits = 0

    def fit(self, x: Any, y: Any, **kwargs: Any) -> continual.Fitted:
        self.fits += 1
        fitted = super().fit(x, y, **kwargs)
        fitted.extra["inverted"] = self.bad and self.fits > 1
        return fitted

    def predict(self, fitted: continual.Fitted, x: Any) -> Any:
        scores = super().predict(fitted, x)
        return 1 - scores if fitted.extra.get("inverted") else scores


@pytest.mark.parametrize("bad", [False, True], ids=["healthy", "regression"])
def test_canary_promotes_a_healthy_challenger_and_rolls_back_a_bad_one(bad: bool) -> None:
    frame = drifting_stream(14, per_day=400, flip_day=100)
    canary = CanaryConfig(steps=[25, 50, 100], every="1d", min_samples=50, max_quality_drop=0.05)
    rollout = RolloutConfig(shadow=None, canary=canary)
    result = continual.simulate(
        frame,
        timestamp="time",
        target="y",
        warmup="3d",
        learner=_Saboteur(bad),
        retrain=RetrainConfig(every="5d"),
        rollout=rollout,
        gate_tolerance=1.0,
        monitor=False,
    )
    kinds = [e["kind"] for e in result.events]
    assert "rollout_started" in kinds
    if bad:
        assert "rolled_back" in kinds and "deployed" not in kinds
        rolled = next(e for e in result.events if e["kind"] == "rolled_back")
        assert rolled["version"] == "1" and "canary" in rolled["reason"]
        assert result.prequential["loopml"] > 0.8  # the champion kept serving
    else:
        deployed = next(e for e in result.events if e["kind"] == "deployed")
        assert deployed["version"] == "2" and deployed["how"] == "canary"
        # 25% -> 50% -> promoted (the controller promotes instead of moving to 100%)
        assert [e["weight"] for e in result.events if e["kind"] == "canary_step"] == [50]


def test_gate_rejects_a_worse_challenger_and_keeps_the_champion() -> None:
    frame = drifting_stream(10, flip_day=100)
    result = continual.simulate(
        frame,
        timestamp="time",
        target="y",
        warmup="3d",
        learner=_Saboteur(True),
        retrain=RetrainConfig(every="2d"),
        monitor=False,
    )
    rejected = [e for e in result.events if e["kind"] == "retrained" and not e["accepted"]]
    assert rejected and "below the champion" in rejected[0]["why_rejected"]
    assert set(result.timeline["champion"]) == {"1"}


def test_freshness_experiment_measures_the_cost_of_staleness() -> None:
    """Under gradual drift, older training windows score worse on the same evaluation week."""
    rng = np.random.default_rng(3)
    n = 24 * 120
    frame = pd.DataFrame({
        "time": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="h"),
        "x": rng.normal(size=n),
    })
    frame["y"] = (frame["x"] > np.linspace(-1.5, 1.5, n)).astype(int)  # the boundary moves daily
    result = continual.freshness_experiment(frame, timestamp="time", target="y", features=["x"],
                                            evaluation="7d", train_window="14d", staleness=(0, 7, 30, 60))
    quality = result.table["quality"].to_numpy()
    assert list(result.table["staleness_days"]) == [0, 7, 30, 60]
    assert quality[0] > quality[2] > quality[3] and quality[0] > 0.9
    assert "<svg" in result.svg()
    with pytest.raises(DataError, match="staleness 200d leaves 0 labeled training rows"):
        continual.freshness_experiment(frame, timestamp="time", target="y", features=["x"], staleness=(200,))


class _Counting(continual.LightGBMLearner):
    """LightGBM that counts its fits (to see which retrains trained twice)."""

    def __init__(self) -> None:
        super().__init__(rounds=20)
        self.fits = 0

    def fit(self, x: Any, y: Any, **kwargs: Any) -> continual.Fitted:
        self.fits += 1
        return super().fit(x, y, **kwargs)


@pytest.mark.parametrize("every", ["1d", "2d"])
def test_gate_is_skipped_only_when_the_challenger_would_be_the_champion(every: str) -> None:
    """Daily retraining on all history: yesterday's refit already learned every row before
    today's fresh labels, so a gated challenger would be the champion; one fit a day."""
    frame = drifting_stream(12, flip_day=100)
    learner = _Counting()
    result = continual.simulate(
        frame,
        timestamp="time",
        target="y",
        warmup="3d",
        learner=learner,
        retrain=RetrainConfig(every=every),
        monitor=False,
    )
    retrained = [e for e in result.events if e["kind"] == "retrained"]
    skipped = [e for e in retrained if "skipped" in e["gate"]]
    if every == "1d":
        assert len(skipped) == len(retrained) > 5 and all(not e["gate"]["judged"] for e in skipped)
        assert learner.fits == 1 + len(retrained)  # the first model, then one fit a day
    else:
        assert not skipped and all(e["gate"]["judged"] for e in retrained)
        assert learner.fits == 1 + 2 * len(retrained)  # challenger, then its refit
    # a skipped gate is sound only because a fit on the same rows is the same model
    x, y = np.random.default_rng(0).normal(size=(300, 2)), np.arange(300) % 2
    a, b = learner.fit(x, y.astype(float)), learner.fit(x, y.astype(float))
    assert np.array_equal(learner.predict(a, x), learner.predict(b, x))


class _BinsWatcher(continual.LightGBMLearner):
    """Records the newest row (column ``i``, the row number) binned and trained at each fit."""

    def __init__(self) -> None:
        super().__init__(rounds=20)
        self.binned: dict[int, float] = {}
        self.fits: list[tuple[float, float]] = []  # (newest row trained, newest row binned)

    def bins(self, x: Any, y: Any) -> Any:
        reference = super().bins(x, y)
        self.binned[id(reference)] = float(x[:, 0].max())
        return reference

    def fit(self, x: Any, y: Any, **kwargs: Any) -> continual.Fitted:
        self.fits.append((float(x[:, 0].max()), self.binned[id(kwargs["reference"])]))
        return super().fit(x, y, **kwargs)


@pytest.mark.parametrize("window", [None, "3d"])
def test_reused_bins_come_from_rows_already_trained_on(window: str | None) -> None:
    frame = drifting_stream(20, flip_day=10)
    frame.insert(1, "i", np.arange(len(frame), dtype=float))
    learner = _BinsWatcher()
    result = continual.simulate(
        frame,
        timestamp="time",
        target="y",
        features=["i", "x0", "x1"],
        warmup="3d",
        learner=learner,
        retrain=RetrainConfig(every="1d", window=window),
        monitor=False,
    )
    assert all(binned <= trained for trained, binned in learner.fits)  # never a future row
    if window is None:  # reused, and learned again as the history grows
        assert 3 <= len(learner.binned) < len(learner.fits) / 2
    assert result.prequential["loopml"] > result.prequential["never_retrained"] + 0.3


def test_stateful_continue_window_fits_new_trees_on_recent_rows_only() -> None:
    """With ``continue_window`` the new trees see the last stretch; a rebuild sees everything."""
    frame = drifting_stream(16, per_day=200, flip_day=100)
    common: dict[str, Any] = dict(
        timestamp="time",
        target="y",
        warmup="3d",
        monitor=False,
        learner=continual.LightGBMLearner(rounds=40, extra_rounds=5, rebuild_every=5),
    )
    whole = continual.simulate(frame, retrain=RetrainConfig(every="1d", mode="stateful"), **common)
    recent = continual.simulate(
        frame,
        retrain=RetrainConfig(every="1d", mode="stateful", continue_window="2d"),
        **common,
    )
    rows = [(e["rows"], e["mode"]) for e in recent.events if e["kind"] == "retrained"]
    whole_rows = [e["rows"] for e in whole.events if e["kind"] == "retrained"]
    assert len(rows) == len(whole_rows) > 8
    # continued fits: at most two days of labels; every 5th update rebuilds on all history
    # the first retrain rebuilds (the warm-up model is not an L2 one), then 4 continued fits
    # on at most two days of labels, then a rebuild on all history, and so on
    sizes = [n for n, _ in rows]
    assert all(n <= 2 * 200 for i, n in enumerate(sizes) if i % 5), sizes
    assert all(n > 2 * 200 for i, n in enumerate(sizes) if i % 5 == 0), sizes
    assert sum(n for n, _ in rows) < sum(whole_rows) / 2
    assert recent.compute < 0.8 * whole.compute  # the rebuilds (40 trees on all rows) dominate
    assert recent.prequential["loopml"] > 0.85

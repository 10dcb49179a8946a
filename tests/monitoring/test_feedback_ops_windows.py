"""Feedback-loop metrics (known Gini values, real bandit logs), operational metrics, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError, SchemaError
from loopml.monitoring import (
    aggregate_diversity,
    compare_with_history,
    count_windows,
    exposure_gini,
    feedback_loop_over_windows,
    long_tail,
    operational_metrics,
    operational_over_windows,
    split_by_windows,
    time_windows,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_gini_has_its_textbook_values() -> None:
    assert exposure_gini(list(range(100))) == pytest.approx(0.0)
    # exposures 1, 2, ..., n: Gini = (n - 1) / (3 n)
    items = [i for i in range(1, 51) for _ in range(i)]
    assert exposure_gini(items) == pytest.approx(49 / 150)
    # one item out of n shown: Gini = 1 - 1/n
    assert exposure_gini(["a"] * 10, catalog=list("abcdefghij")) == pytest.approx(0.9)


def test_a_degenerate_feedback_loop_shows_up_over_windows() -> None:
    # exposure follows popularity ** k, with k growing: the rich get richer
    rng = np.random.default_rng(0)
    catalog = np.arange(200)
    frames = []
    for day, power in enumerate([0.0, 0.5, 1.0, 1.5, 2.0]):
        weights = (1.0 / (catalog + 1)) ** power
        items = rng.choice(catalog, p=weights / weights.sum(), size=3000)
        times = T0 + timedelta(days=day) + pd.to_timedelta(rng.uniform(0, 86_000, 3000), unit="s")
        frames.append(pd.DataFrame({"time": times, "item": items}))
    log = pd.concat(frames)
    windows = time_windows(T0, T0 + timedelta(days=5), "1d")
    table = feedback_loop_over_windows(log, windows, item_column="item", catalog=catalog,
                                       popularity={i: 200 - i for i in catalog})
    assert table["gini"].is_monotonic_increasing
    assert table["aggregate_diversity"].is_monotonic_decreasing
    assert table["tail_exposure_share"].iloc[-1] < table["tail_exposure_share"].iloc[0]
    assert table["tail_coverage"].iloc[-1] < table["tail_coverage"].iloc[0]


def test_thompson_sampling_logs_concentrate_exposure_more_than_random_ones(datasets_dir: Path) -> None:
    folder = datasets_dir / "open_bandit"
    random = pd.read_csv(folder / "random" / "all.csv", usecols=["item_id"])["item_id"]
    bts = pd.read_csv(folder / "bts" / "all.csv", usecols=["item_id"])["item_id"]
    catalog = range(80)
    gini_random, gini_bts = exposure_gini(random, catalog=catalog), exposure_gini(bts, catalog=catalog)
    print(f"\nOpen Bandit exposure Gini: random {gini_random:.3f}, bts {gini_bts:.3f}")
    assert gini_random < 0.1 < gini_bts
    assert aggregate_diversity(random, 80) == 1.0


def test_long_tail_and_bad_parameters() -> None:
    assert long_tail(["a"] * 8 + ["b", "c"], head_mass=0.8) == {"b", "c"}
    with pytest.raises(ConfigError, match="head_mass"):
        long_tail(["a"], head_mass=1.0)
    with pytest.raises(ConfigError, match="catalog_size"):
        aggregate_diversity(["a"], 0)
    with pytest.raises(SchemaError, match="item"):
        feedback_loop_over_windows(pd.DataFrame({"time": [T0]}), [], item_column="item")


def test_operational_metrics_and_history() -> None:
    rng = np.random.default_rng(1)
    n = 24 * 500
    times = T0 + pd.to_timedelta(np.sort(rng.uniform(0, 24 * 3600, n)), unit="s")
    latency = rng.lognormal(1.0, 0.3, n)
    hour = (times - T0).total_seconds() // 3600
    latency[hour >= 20] *= 4  # a regression in the last four hours
    log = pd.DataFrame({
        "time": times, "latency_ms": latency, "fallback": rng.random(n) < 0.01,
        "error": np.where(rng.random(n) < 0.002, "timeout", None),
        "model_created_at": T0 - timedelta(days=3),
        "features_time": times - pd.to_timedelta(rng.uniform(0, 60, n), unit="s"),
    })
    metrics = operational_metrics(log)
    assert metrics["latency_p50_ms"] == pytest.approx(np.percentile(latency, 50))
    assert metrics["error_rate"] == pytest.approx((log["error"].notna()).mean())
    assert metrics["model_staleness_h"] == pytest.approx(72 + 24, abs=0.1)
    assert 25 < metrics["feature_staleness_p50_s"] < 35
    table = operational_over_windows(log, time_windows(T0, T0 + timedelta(days=1), "1h"))
    flagged = table.loc[table["anomalies"].str.contains("latency_p50_ms"), "window"].tolist()
    assert flagged[:1] == [20]
    assert compare_with_history({"latency_p99_ms": 5.0}, [{"latency_p99_ms": 5.0}]) == []  # too little history


def test_windows() -> None:
    windows = time_windows(T0, T0 + timedelta(hours=6), "2h", step="1h")
    assert [(w.start.hour, w.end.hour) for w in windows] == [(0, 2), (1, 3), (2, 4), (3, 5), (4, 6)]
    frame = pd.DataFrame({"time": [T0 + timedelta(minutes=m) for m in (0, 59, 60, 119, 120, 300)],
                          "v": range(6)})
    counts = [len(rows) for _, rows in split_by_windows(frame, windows)]
    assert counts == [4, 3, 1, 0, 1]  # half-open windows: 02:00 belongs to the next one
    assert len(count_windows(100, 30)) == 3
    with pytest.raises(ConfigError, match="duration"):
        time_windows(T0, T0, "two hours")
    with pytest.raises(ConfigError, match="size"):
        count_windows(10, 0)
    with pytest.raises(SchemaError, match="'time'"):
        list(split_by_windows(frame.drop(columns="time"), windows))

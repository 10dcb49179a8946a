"""Splits: time order with gaps, groups on one side, class mix kept, boundaries recorded."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.core import ConfigError, DataError, SplitConfig
from loopml.trainingdata import make_split, rolling_origin_folds, split_from_config


def _frame(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    # hourly-ish with many repeated timestamps, shuffled row order
    t = start + pd.to_timedelta(np.sort(rng.integers(0, 24 * 60, n)), unit="h")
    frame = pd.DataFrame(
        {
            "t": t,
            "user": rng.integers(0, 80, n),
            "y": (rng.random(n) < 0.2).astype(int),
            "x": rng.normal(size=n),
        }
    )
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_time_split_orders_parts_and_keeps_ties_together() -> None:
    frame = _frame()
    split = make_split(frame, timestamp="t", validation=0.2, test=0.2)
    train, valid, test = split.frames(frame)
    assert train["t"].max() < valid["t"].min()
    assert valid["t"].max() < test["t"].min()
    assert len(train) + len(valid) + len(test) == len(frame)
    assert abs(len(test) / len(frame) - 0.2) < 0.03
    assert abs(len(valid) / len(frame) - 0.2) < 0.03
    assert split.boundaries["test"]["start"] == test["t"].min()


def test_time_split_gap_drops_and_counts_rows() -> None:
    frame = _frame()
    split = make_split(frame, timestamp="t", validation="10d", test="10d", gap="2d")
    train, valid, test = split.frames(frame)
    assert valid["t"].min() - train["t"].max() > pd.Timedelta("2D")
    assert test["t"].min() - valid["t"].max() > pd.Timedelta("2D")
    last = frame["t"].max()
    assert (test["t"] > last - pd.Timedelta("10D")).all()
    assert ((frame["t"] > last - pd.Timedelta("10D")).sum()) == len(test)
    dropped = split.boundaries["dropped_in_gap"]
    assert dropped > 0
    assert dropped == len(frame) - sum(split.counts.values())
    assert split.boundaries["gap"] == pd.Timedelta("2D")


def test_time_is_the_default_and_random_needs_its_name() -> None:
    frame = _frame()
    with pytest.raises(ConfigError, match="timestamp"):
        make_split(frame)
    first = make_split(frame, by="random", seed=1)
    again = make_split(frame, by="random", seed=1)
    other = make_split(frame, by="random", seed=2)
    assert np.array_equal(first.test, again.test)
    assert not np.array_equal(first.test, other.test)


def test_group_split_keeps_each_group_on_one_side() -> None:
    frame = _frame(3000)
    split = make_split(frame, by="group", group="user", validation=0.2, test=0.2, seed=3)
    parts = [set(p["user"]) for p in split.frames(frame)]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    assert abs(len(split.test) / len(frame) - 0.2) < 0.05
    assert split.boundaries["groups"]["test"] == len(parts[2])


def test_stratified_keeps_class_mix() -> None:
    frame = _frame(5000)
    frame["y"] = (np.arange(5000) % 20 == 0).astype(int)  # 5% positives
    split = make_split(frame, by="stratified", target="y", validation=0.1, test=0.1)
    for part in split.frames(frame):
        assert abs(part["y"].mean() - 0.05) < 0.002


def test_stratified_group_keeps_groups_apart_and_mix_close() -> None:
    rng = np.random.default_rng(4)
    n = 6000
    user = rng.integers(0, 400, n)
    y = (rng.random(n) < np.where(user % 4 == 0, 0.5, 0.05)).astype(int)
    frame = pd.DataFrame({"user": user, "y": y})
    split = make_split(
        frame, by="stratified_group", group="user", target="y", validation=0.2, test=0.2, seed=0
    )
    parts = [set(p["user"]) for p in split.frames(frame)]
    assert not parts[0] & parts[2] and not parts[1] & parts[2] and not parts[0] & parts[1]
    overall = y.mean()
    for part in split.frames(frame):
        assert abs(part["y"].mean() - overall) < 0.02


def test_regression_target_is_binned_for_stratification() -> None:
    frame = pd.DataFrame({"y": np.random.default_rng(0).exponential(size=2000)})
    split = make_split(frame, by="stratified", target="y", test=0.25, validation=0.0)
    assert abs(frame["y"].iloc[split.test].median() - frame["y"].median()) < 0.1


def test_bad_input_is_named() -> None:
    frame = _frame(50)
    with pytest.raises(ConfigError, match="'tt'"):
        make_split(frame, timestamp="tt")
    with pytest.raises(ConfigError, match="'by' parameter"):
        make_split(frame, by="shuffle", timestamp="t")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="fraction like 0.15"):
        make_split(frame, by="random", test="7d")
    with pytest.raises(ConfigError, match="gap"):
        make_split(frame, by="random", gap="1d")
    with pytest.raises(ConfigError, match="duration like '7d'"):
        make_split(frame, timestamp="t", test="a week")
    with pytest.raises(ConfigError, match="group"):
        make_split(frame, by="group")
    naive = frame.assign(t=frame["t"].dt.tz_localize(None))
    with pytest.raises(DataError, match="time zone"):
        make_split(naive, timestamp="t")
    holes = frame.assign(t=frame["t"].where(frame.index != 7))
    with pytest.raises(DataError, match="row 7"):
        make_split(holes, timestamp="t")
    with pytest.raises(DataError, match="no train"):
        make_split(frame, timestamp="t", test="1000d")
    with pytest.raises(DataError, match="no rows"):
        make_split(frame.iloc[:0], timestamp="t")


def test_to_dict_is_json_and_config_route_matches() -> None:
    frame = _frame()
    config = SplitConfig.model_validate({"validation": "7d", "test": "7d", "gap": "1d"})
    split = split_from_config(frame, config, timestamp="t")
    direct = make_split(frame, timestamp="t", validation="7d", test="7d", gap="1d")
    assert np.array_equal(split.train, direct.train)
    record = json.loads(json.dumps(split.to_dict()))
    assert record["boundaries"]["gap"] == "1d"
    assert record["counts"] == split.counts


def test_rolling_origin_folds_expand_and_respect_gap() -> None:
    frame = _frame(2000)
    folds = rolling_origin_folds(frame, timestamp="t", n_folds=4, gap="1d")
    times = frame["t"]
    seen: set[int] = set()
    for previous, fold in zip([None, *folds[:-1]], folds, strict=True):
        assert times.iloc[fold.validation].min() - times.iloc[fold.train].max() > pd.Timedelta("1D")
        assert not seen & set(fold.validation.tolist())
        seen |= set(fold.validation.tolist())
        if previous is not None:
            assert len(fold.train) > len(previous.train)
    assert max(seen) >= 0 and len(seen) > 0.7 * len(frame)
    assert json.dumps(folds[0].to_dict())
    with pytest.raises(ConfigError, match="n_folds"):
        rolling_origin_folds(frame, timestamp="t", n_folds=0)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(5, 200),
    valid=st.floats(0.0, 0.4),
    test=st.floats(0.05, 0.4),
    gap_h=st.integers(0, 30),
    seed=st.integers(0, 10),
)
def test_time_split_is_a_partition_in_order(
    n: int, valid: float, test: float, gap_h: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "t": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 100, n), unit="h")
        }
    )
    try:
        split = make_split(frame, timestamp="t", validation=valid, test=test, gap=f"{gap_h}h")
    except DataError:
        return  # too little data for the parts asked for: refused, never silently wrong
    all_rows = np.concatenate([split.train, split.validation, split.test])
    assert len(np.unique(all_rows)) == len(all_rows)
    assert len(all_rows) + split.boundaries["dropped_in_gap"] == n
    t = frame["t"]
    if len(split.validation):
        assert (
            t.iloc[split.validation].min() - t.iloc[split.train].max() > pd.Timedelta(f"{gap_h}h")
            or gap_h == 0
            and t.iloc[split.validation].min() > t.iloc[split.train].max()
        )
        assert t.iloc[split.test].min() > t.iloc[split.validation].max()
    assert t.iloc[split.test].min() > t.iloc[split.train].max()


def test_fractions_written_in_loopml_yaml_stay_fractions() -> None:
    from loopml.core import parse_config

    config = parse_config("project: x\nsplit: {validation: 0.1, test: 0.2}\n")
    assert config.split.validation == 0.1
    split = split_from_config(_frame(), config.split, timestamp="t")
    assert abs(split.counts["test"] / 1000 - 0.2) < 0.03


def test_splits_compare_by_content() -> None:
    frame = _frame()
    assert make_split(frame, by="random", seed=4) == make_split(frame, by="random", seed=4)
    assert make_split(frame, by="random", seed=4) != make_split(frame, by="random", seed=5)
    folds = rolling_origin_folds(frame, timestamp="t", n_folds=3)
    assert folds == rolling_origin_folds(frame, timestamp="t", n_folds=3)

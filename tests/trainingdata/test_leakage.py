"""Every leakage check catches the leak planted for it, and none fires on clean data."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError, LeakageError
from loopml.trainingdata import LEAKAGE_CHECKS, check_leakage, make_split

Frames = tuple[pd.DataFrame, pd.DataFrame]


def clean_data(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = np.sort(rng.uniform(0, 100, n))
    t = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(days, unit="D")
    x = rng.normal(size=(n, 6))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x[:, 0] + 0.5 * x[:, 1] - 1)))).astype(int)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])
    frame["cat"] = rng.choice(list("abcde"), n)
    frame["t"] = t
    frame["x0_time"] = t - pd.to_timedelta(rng.uniform(0, 5, n), unit="h")
    frame["event_id"] = [f"e{i}" for i in rng.permutation(n)]
    frame["user"] = np.floor(days).astype(int) * 10 + rng.integers(0, 10, n)
    frame["y"] = y
    return frame


def split(frame: pd.DataFrame, gap: str = "2d") -> Frames:
    parts = make_split(frame, timestamp="t", validation=0.0, test=0.25, gap=gap)
    train, _, test = parts.frames(frame)
    return train.reset_index(drop=True), test.reset_index(drop=True)


KWARGS = dict(
    target="y",
    timestamp="t",
    feature_times={"x0": "x0_time"},
    group="user",
    id_columns=["event_id"],
    label_horizon="1d",
)


def run(train: pd.DataFrame, test: pd.DataFrame, **extra: object):  # type: ignore[no-untyped-def]
    return check_leakage(train, test, **{**KWARGS, **extra})  # type: ignore[arg-type]


def test_clean_data_raises_nothing() -> None:
    from sklearn.preprocessing import StandardScaler

    train, test = split(clean_data())
    scaler = StandardScaler().fit(train[["x0", "x1", "x2"]])
    report = run(train, test, transformers={"scaler": scaler})
    assert report.findings == (), report.summary()
    assert not report.skipped, report.skipped
    assert set(report.timings) >= {"exact_duplicates", "domain_classifier"}
    report.raise_for_severe()


def _copy_rows(train: pd.DataFrame, test: pd.DataFrame, noise: float) -> Frames:
    test = test.copy()
    rows = np.arange(0, len(test), 20)  # 5% of test rows
    cols = [f"x{i}" for i in range(6)] + ["cat"]
    source = train.iloc[rows][cols].reset_index(drop=True)
    for i in range(6):
        source[f"x{i}"] = source[f"x{i}"] + noise * (i % 2 * 2 - 1)
    test.loc[rows, cols] = source.to_numpy()
    test["y"] = test["y"].astype(int)
    test.loc[rows, "y"] = train["y"].iloc[rows].to_numpy()
    for i in range(6):
        test[f"x{i}"] = test[f"x{i}"].astype(float)
    return train, test


def _plant_exact(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    return _copy_rows(train, test, 0.0)


def _plant_near(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    return _copy_rows(train, test, 1e-4)


def _plant_ids(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    test = test.copy()
    test.loc[:9, "event_id"] = train["event_id"].iloc[:10].to_numpy()
    return train, test


def _plant_groups(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    test = test.copy()
    test.loc[:49, "user"] = train["user"].iloc[:50].to_numpy()
    return train, test


def _plant_temporal(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    train = train.copy()
    train.loc[:4, "t"] = test["t"].max()
    train.loc[:4, "x0_time"] = test["t"].max()
    return train, test


def _plant_gap(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    return split(pd.concat([train, test], ignore_index=True), gap="0s")


def _plant_future_feature(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    test = test.copy()
    test.loc[:19, "x0_time"] = test["t"].iloc[:20] + pd.Timedelta("3h")
    return train, test


def _plant_label_column(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    rng = np.random.default_rng(1)
    return tuple(  # type: ignore[return-value]
        f.assign(chargeback_amount=f["y"] * 50.0 + rng.normal(0, 1, len(f))) for f in (train, test)
    )


def _plant_power_shift(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    rng = np.random.default_rng(2)
    train = train.assign(review_score=train["y"] + rng.normal(0, 0.7, len(train)))
    test = test.assign(review_score=rng.normal(0.3, 0.7, len(test)))
    return train, test


def _plant_identifier(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    def ids(frame: pd.DataFrame) -> pd.Series:
        return pd.Series(np.arange(len(frame)) + frame["y"].to_numpy() * 100_000)

    return train.assign(record_id=ids(train)), test.assign(record_id=ids(test))


def _plant_conflicts(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    twins = train.iloc[:60].copy()
    twins["y"] = 1 - twins["y"]
    twins["event_id"] = [f"twin{i}" for i in range(60)]
    return pd.concat([train, twins], ignore_index=True), test


def _plant_unseen_label(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    test = test.copy()
    test.loc[:4, "y"] = 2
    return train, test


def _plant_unseen_category(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    test = test.copy()
    test.loc[:49, "cat"] = "zz"
    return train, test


def _plant_shift(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    return train, test.assign(x2=test["x2"] + 1.0)


PLANTED: dict[str, tuple[Callable[[pd.DataFrame, pd.DataFrame], Frames], str]] = {
    "exact_duplicates": (_plant_exact, "severe"),
    "near_duplicates": (_plant_near, "severe"),
    "id_overlap": (_plant_ids, "severe"),
    "group_overlap": (_plant_groups, "severe"),
    "temporal_overlap": (_plant_temporal, "severe"),
    "gap_shorter_than_horizon": (_plant_gap, "severe"),
    "feature_after_prediction_time": (_plant_future_feature, "severe"),
    "single_feature_predicts_label": (_plant_label_column, "severe"),
    "feature_power_shift": (_plant_power_shift, "warning"),
    "identifier_predicts_label": (_plant_identifier, "severe"),
    "conflicting_labels": (_plant_conflicts, "warning"),
    "label_only_in_test": (_plant_unseen_label, "severe"),
    "category_only_in_test": (_plant_unseen_category, "warning"),
    "domain_classifier": (_plant_shift, "warning"),
}


@pytest.fixture(scope="module")
def clean_frames() -> Frames:
    return split(clean_data())


@pytest.mark.parametrize("check", sorted(PLANTED))
def test_planted_leak_is_caught(check: str, clean_frames: Frames) -> None:
    plant, severity = PLANTED[check]
    train, test = plant(*clean_frames)
    report = run(train, test)
    found = report.by_check(check)
    assert found, f"{check} missed its planted leak:\n{report.summary()}"
    assert found[0].severity == severity
    assert found[0].message and found[0].hint
    if severity == "severe":
        with pytest.raises(LeakageError, match=check):
            report.raise_for_severe()


def test_every_check_has_a_planted_leak() -> None:
    assert set(LEAKAGE_CHECKS) == set(PLANTED) | {"fitted_before_split"}


def test_fitted_before_split_is_caught(clean_frames: Frames) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    train, test = clean_frames
    both = pd.concat([train, test])[["x0", "x1"]]
    report = run(
        train,
        test,
        transformers={"scaler": StandardScaler().fit(both), "imputer": SimpleImputer().fit(both)},
        checks=["fitted_before_split"],
    )
    messages = {f.columns[0]: f.message for f in report.by_check("fitted_before_split")}
    assert "saw" in messages["scaler"]  # n_samples_seen_ gives it away
    assert "train and test together" in messages["imputer"]  # refit comparison


def test_findings_name_rows_and_columns(clean_frames: Frames) -> None:
    train, test = _plant_future_feature(*clean_frames)
    finding = run(train, test, checks=["feature_after_prediction_time"]).findings[0]
    assert finding.columns == ("x0",)
    assert finding.rows[:3] == (0, 1, 2)
    assert "x0_time" in finding.message and "20 test rows" in finding.message


def test_acknowledgement_by_name_and_by_column(clean_frames: Frames) -> None:
    train, test = _plant_label_column(*clean_frames)
    report = run(train, test, acknowledge=["single_feature_predicts_label:chargeback_amount"])
    assert report.ok and report.by_check("single_feature_predicts_label")[0].acknowledged
    assert not run(train, test, acknowledge=["single_feature_predicts_label:x1"]).ok
    with pytest.raises(ConfigError, match="did you mean 'temporal_overlap'"):
        run(train, test, acknowledge=["temporal_overlapp"])
    with pytest.raises(ConfigError, match="unknown check"):
        run(train, test, checks=["nope"])


def test_missing_columns_and_empty_frames_are_named(clean_frames: Frames) -> None:
    train, test = clean_frames
    with pytest.raises(ConfigError, match="'label'"):
        check_leakage(train, test, target="label")
    with pytest.raises(ConfigError, match="no rows"):
        check_leakage(train, test.iloc[:0], target="y")


def test_report_to_dict_is_json(clean_frames: Frames) -> None:
    import json

    train, test = _plant_ids(*clean_frames)
    record = json.loads(json.dumps(run(train, test).to_dict()))
    assert record["ok"] is False
    assert record["findings"][0]["check"] == "id_overlap"


@pytest.mark.slow
def test_no_check_fires_on_ten_more_clean_datasets() -> None:
    fired = []
    for seed in range(1, 11):
        train, test = split(clean_data(seed=seed))
        fired += [(seed, str(f)) for f in run(train, test).findings]
    assert fired == []


def test_near_duplicates_allow_for_chance_in_dense_low_dimensional_data() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(40_000, 3)), columns=["a", "b", "c"])
    frame["y"] = rng.integers(0, 2, len(frame))
    frame.loc[::9, "a"] = np.nan  # missing values must not pile rows onto the mean
    parts = make_split(frame, by="random", validation=0.0, test=0.3)
    train, _, test = parts.frames(frame)
    clean = check_leakage(train, test, target="y", checks=["near_duplicates"])
    assert clean.findings == (), clean.summary()
    planted = test.copy()
    complete = train.dropna().iloc[:600]
    planted.iloc[:600, :3] = complete[["a", "b", "c"]].to_numpy() + 1e-5
    report = check_leakage(train, planted, target="y", checks=["near_duplicates"])
    assert report.severe and "chance alone would give" in report.severe[0].message

"""Natural labels: window joins, implicit labels, waiting rows, an unbiased delay distribution."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError, DataError, LabelsConfig
from loopml.trainingdata import join_labels, join_labels_from_config, label_delay

T0 = pd.Timestamp("2024-01-01", tz="UTC")
NOW = T0 + pd.Timedelta(days=200)


def _world(n: int = 40_000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    at = T0 + pd.to_timedelta(rng.uniform(0, 200, n), unit="D")
    fraud = rng.random(n) < 0.1
    delay = pd.to_timedelta(rng.exponential(5.0, n), unit="D")  # mean 5 days
    predictions = pd.DataFrame({"txn": np.arange(n), "at": at})
    reported = at + delay
    labels = pd.DataFrame(
        {"txn": np.flatnonzero(fraud), "is_fraud": 1, "reported": reported[fraud]}
    )
    return predictions, labels, fraud


def test_join_matches_a_direct_computation() -> None:
    predictions, labels, fraud = _world()
    out = join_labels(
        predictions,
        labels,
        key="txn",
        target="is_fraud",
        prediction_time="at",
        label_time="reported",
        window="30d",
        implicit_label=0,
        now=NOW,
    )
    frame = out.frame.set_index("txn")
    reported = pd.Series(pd.NaT, index=predictions["txn"], dtype="datetime64[ns, UTC]")
    reported.iloc[labels["txn"].to_numpy()] = labels["reported"].to_numpy()
    at = predictions.set_index("txn")["at"]
    arrived = reported.notna() & (reported <= NOW)
    in_window = arrived & (reported - at <= pd.Timedelta("30D"))
    closed = at + pd.Timedelta("30D") <= NOW
    expected = np.where(in_window, "labeled", np.where(closed, "implicit", "waiting"))
    assert (frame["label_status"].to_numpy() == expected).all()
    assert (frame.loc[in_window, "label"] == 1).all()
    assert (frame.loc[expected == "implicit", "label"] == 0).all()
    assert frame.loc[expected == "waiting", "label"].isna().all()
    assert out.report.waiting == int((expected == "waiting").sum())
    assert out.report.late_labels == int((arrived & ~in_window).sum())
    assert out.report.status["labeled"] == int(in_window.sum())
    assert len(out.trainable()) == int((expected != "waiting").sum())
    delays = frame.loc[in_window, "label_delay"]
    assert (delays >= pd.Timedelta(0)).all() and (delays <= pd.Timedelta("30D")).all()


def test_without_implicit_label_closed_windows_stay_unlabeled() -> None:
    predictions, labels, _ = _world(2000)
    out = join_labels(
        predictions,
        labels,
        key="txn",
        target="is_fraud",
        prediction_time="at",
        label_time="reported",
        window="7d",
        now=NOW,
    )
    assert out.report.status["implicit"] == 0
    assert out.report.status["unlabeled"] > 0
    assert out.frame.loc[out.frame["label_status"] == "unlabeled", "label"].isna().all()


def test_delay_distribution_is_recovered_and_not_biased_by_censoring() -> None:
    predictions, labels, _ = _world()
    report = label_delay(
        predictions,
        labels,
        key="txn",
        prediction_time="at",
        label_time="reported",
        now=NOW,
        horizon="40d",
    )
    truncation = 1 - math.exp(-40 / 5)
    true_7d = (1 - math.exp(-7 / 5)) / truncation
    assert abs(report.coverage["7d"] - true_7d) < 0.02
    median_days = report.quantiles["p50"].total_seconds() / 86400  # type: ignore[union-attr]
    assert abs(median_days - 5 * math.log(2)) < 0.3
    suggested = report.suggest_window(0.95).total_seconds() / 86400  # type: ignore[union-attr]
    assert abs(suggested - (-5 * math.log(0.05 * truncation + (1 - truncation)))) < 1.5
    # the naive distribution over every label that has arrived is biased towards short delays,
    # because recent predictions have only had time for their quick labels
    arrived = labels[labels["reported"] <= NOW].merge(predictions, on="txn")
    naive_7d = float(((arrived["reported"] - arrived["at"]) <= pd.Timedelta("7D")).mean())
    assert naive_7d > report.coverage["7d"] + 0.005
    assert report.cohort < len(predictions)


def test_odd_labels_are_counted() -> None:
    predictions = pd.DataFrame({"id": [1, 2], "at": [T0, T0]})
    labels = pd.DataFrame(
        {
            "id": [1, 2, 9],
            "y": [1, 0, 1],
            "seen": [T0 - pd.Timedelta("1D"), T0 + pd.Timedelta("1D"), T0 + pd.Timedelta("1D")],
        }
    )
    out = join_labels(
        predictions,
        labels,
        key="id",
        target="y",
        prediction_time="at",
        label_time="seen",
        window="2d",
        now=T0 + pd.Timedelta("10D"),
    )
    assert out.report.labels_before_prediction == 1
    assert out.report.unmatched_labels == 1
    assert out.frame["label_status"].tolist() == ["unlabeled", "labeled"]
    assert out.report.to_dict()["status"]["labeled"] == 1


def test_bad_input_is_named() -> None:
    predictions = pd.DataFrame({"id": [1, 1], "at": [T0, T0]})
    labels = pd.DataFrame({"id": [1], "y": [1], "seen": [T0]})
    with pytest.raises(DataError, match="repeated 'id'.*row 1"):
        join_labels(
            predictions,
            labels,
            key="id",
            target="y",
            prediction_time="at",
            label_time="seen",
            window="1d",
            now=T0,
        )
    with pytest.raises(ConfigError, match="'label'"):
        join_labels(
            predictions.iloc[:1],
            labels,
            key="id",
            target="label",
            prediction_time="at",
            label_time="seen",
            window="1d",
            now=T0,
        )
    with pytest.raises(ConfigError, match="duration like '7d'"):
        join_labels(
            predictions.iloc[:1],
            labels,
            key="id",
            target="y",
            prediction_time="at",
            label_time="seen",
            window="a month",
            now=T0,
        )
    with pytest.raises(DataError, match="time zone"):
        join_labels(
            predictions.iloc[:1],
            labels,
            key="id",
            target="y",
            prediction_time="at",
            label_time="seen",
            window="1d",
            now=pd.Timestamp("2024-01-01"),
        )


def test_config_route() -> None:
    predictions, labels, _ = _world(1000)
    config = LabelsConfig(
        source="chargebacks",
        target="is_fraud",
        timestamp="reported",
        feedback_window="30d",
        implicit_label=0,
    )  # type: ignore[arg-type]
    out = join_labels_from_config(
        predictions, labels, config, key="txn", prediction_time="at", now=NOW
    )
    assert out.report.status["implicit"] > 0
    with pytest.raises(ConfigError, match="feedback_window"):
        join_labels_from_config(
            predictions,
            labels,
            LabelsConfig(source="x", target="y"),
            key="txn",
            prediction_time="at",
        )

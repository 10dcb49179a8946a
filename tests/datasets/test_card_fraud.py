"""The card-fraud scenario: determinism, and every planted fact recovered from the data."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError
from loopml.datasets import CardFraud, card_fraud

FRAMES = ("transactions", "chargebacks", "cards", "merchants", "labels")


@pytest.fixture(scope="module")
def world() -> CardFraud:
    return card_fraud(seed=7)


@pytest.fixture(scope="module")
def joined(world: CardFraud) -> pd.DataFrame:
    labels = world.labels[["transaction_id", "is_fraud", "fraud_pattern"]]
    frame = world.transactions.merge(labels, on="transaction_id", validate="one_to_one")
    return frame.merge(world.cards[["card_id", "home_country"]], on="card_id")


def test_same_seed_gives_identical_frames_and_another_seed_differs() -> None:
    first, again = card_fraud(n_days=20, seed=3), card_fraud(n_days=20, seed=3)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert first.ground_truth == again.ground_truth
    other = card_fraud(n_days=20, seed=4)
    assert not first.transactions.equals(other.transactions)
    assert not first.chargebacks.equals(other.chargebacks)


def test_tables_are_consistent(world: CardFraud) -> None:
    tx = world.transactions
    assert tx["transaction_id"].is_unique and tx["event_time"].is_monotonic_increasing
    assert set(tx["card_id"]) <= set(world.cards["card_id"])
    assert set(tx["merchant_id"]) <= set(world.merchants["merchant_id"])
    assert world.labels["transaction_id"].equals(tx["transaction_id"])
    assert (tx["amount"] > 0).all()
    truth = world.ground_truth
    assert tx["event_time"].min() >= truth.start and tx["event_time"].max() < truth.end
    # Every chargeback is for a truly fraudulent transaction, at most once.
    cb = world.chargebacks.merge(world.labels, on="transaction_id", suffixes=("", "_true"))
    assert len(cb) == len(world.chargebacks) and (cb["is_fraud_true"] == 1).all()
    assert world.chargebacks["transaction_id"].is_unique
    assert (cb["card_id"] == cb["card_id_true"]).all()


def test_all_timestamps_are_utc(world: CardFraud) -> None:
    columns = [
        (world.transactions, "event_time"), (world.chargebacks, "reported_at"),
        (world.cards, "issued_at"), (world.labels, "event_time"),
    ]
    for frame, column in columns:
        assert isinstance(frame[column].dtype, pd.DatetimeTZDtype), column
        assert str(frame[column].dt.tz) == "UTC", column
    truth = world.ground_truth
    for stamp in (truth.start, truth.end, truth.new_fraud_pattern_at, truth.spending_shift_at):
        assert str(stamp.tz) == "UTC"


def test_fraud_rate_is_about_one_percent() -> None:
    rates = np.array([card_fraud(n_days=60, seed=seed).labels["is_fraud"].mean()
                      for seed in range(4)])
    # Fraud comes in episodes of ~3 transactions: a run of 180k rows has ~600 episodes,
    # so one run's rate has a standard deviation of about 0.0007.
    assert np.all(np.abs(rates - 0.01) < 0.0025), rates
    assert abs(rates.mean() - 0.01) < 0.0012, rates
    world = card_fraud(n_days=30, seed=1, fraud_rate=0.03)
    assert abs(world.labels["is_fraud"].mean() - 0.03) < 0.006
    assert world.ground_truth.fraud_rate == world.labels["is_fraud"].mean()


def test_label_delays_are_positive_bounded_and_as_documented(
    world: CardFraud, joined: pd.DataFrame
) -> None:
    delay_spec = world.ground_truth.label_delay
    cb = world.chargebacks.merge(joined[["transaction_id", "event_time"]], on="transaction_id")
    days = (cb["reported_at"] - cb["event_time"]).dt.total_seconds() / 86_400
    assert days.min() >= delay_spec.min_days
    assert days.max() <= delay_spec.max_days + delay_spec.episode_max_hours / 24
    # One episode's chargebacks arrive together: the delay after its last transaction is
    # the drawn one, log-normal with the documented median and sigma.
    episodes = cb.groupby(["card_id", "reported_at"])["event_time"].max().reset_index()
    drawn = (episodes["reported_at"] - episodes["event_time"]).dt.total_seconds() / 86_400
    assert len(drawn) > 400
    assert abs(drawn.median() - delay_spec.median_days) < 1.2
    assert abs(np.log(drawn).std() - delay_spec.sigma) < 0.08
    # Some labels arrive after the generated period: they are unknown at its end.
    known = world.chargebacks_as_of(world.ground_truth.end)
    assert 0 < len(known) < len(world.chargebacks)
    assert (known["reported_at"] <= world.ground_truth.end).all()


def test_unreported_fraud_fraction_is_as_documented(
    world: CardFraud, joined: pd.DataFrame
) -> None:
    fraud = joined.loc[joined["is_fraud"] == 1, "transaction_id"]
    unreported = 1.0 - fraud.isin(world.chargebacks["transaction_id"]).mean()
    # Reporting is decided per episode (~900 here), so the tolerance is ~3 standard errors.
    assert abs(unreported - world.ground_truth.unreported_fraction) < 0.05


def test_spending_shift_happens_at_the_recorded_date(
    world: CardFraud, joined: pd.DataFrame
) -> None:
    truth = world.ground_truth
    shifted = joined["merchant_category"].isin(truth.shifted_categories)
    after = joined["event_time"] >= truth.spending_shift_at
    legit = joined["is_fraud"] == 0

    def ratio(mask: pd.Series) -> float:
        amounts = joined["amount"]
        return float(amounts[mask & after & legit].mean() / amounts[mask & ~after & legit].mean())

    assert abs(ratio(shifted) - truth.spending_shift_factor) < 0.05
    assert abs(ratio(~shifted) - 1.0) < 0.05
    # Observable without labels: the median amount of all transactions moves the same way.
    median = joined["amount"].where(shifted)
    observed = median[after].median() / median[~after].median()
    assert abs(observed - truth.spending_shift_factor) < 0.06
    # No shift a week before the recorded date (a placebo date).
    week = pd.Timedelta(days=7)
    early = joined["event_time"] < truth.spending_shift_at
    before_placebo = early & (joined["event_time"] < truth.spending_shift_at - week)
    placebo = median[early & ~before_placebo].median() / median[before_placebo].median()
    assert abs(placebo - 1.0) < 0.05


def test_new_fraud_pattern_appears_at_the_recorded_date(
    world: CardFraud, joined: pd.DataFrame
) -> None:
    truth = world.ground_truth
    after = joined["event_time"] >= truth.new_fraud_pattern_at
    testing = joined["fraud_pattern"] == truth.new_fraud_pattern
    assert not (testing & ~after).any()
    assert testing[after].sum() > 200
    # What a model sees: tiny online amounts become a large share of fraud after the date.
    fraud = joined["is_fraud"] == 1
    tiny_online = (joined["amount"] < 5) & (joined["channel"] == "online")
    assert tiny_online[fraud & ~after].mean() < 0.03
    assert tiny_online[fraud & after].mean() > 0.3
    # ...while the fraud rate stays about the same.
    rate_before, rate_after = joined["is_fraud"][~after].mean(), joined["is_fraud"][after].mean()
    assert abs(rate_after - rate_before) < 0.004


def test_device_is_missing_not_at_random(world: CardFraud, joined: pd.DataFrame) -> None:
    truth = world.ground_truth
    missing = joined["device"].isna()
    assert (joined["device_age_days"].isna() == missing).all()
    legit = joined["is_fraud"] == 0
    for channel, rate in truth.device_missing_by_channel.items():
        in_channel = joined["channel"] == channel
        assert abs(missing[in_channel & legit].mean() - rate) < 0.01, channel
        # Within a channel, missingness depends on the hidden label: MNAR.
        assert missing[in_channel & ~legit].mean() > rate + 0.2, channel
    # A chi-square-sized difference, not noise: the fraud rate among missing-device rows is
    # several times the overall rate.
    assert joined["is_fraud"][missing].mean() > 3 * joined["is_fraud"].mean()


def test_rule_like_fraud_is_findable_and_subtle_fraud_is_not(joined: pd.DataFrame) -> None:
    legit = joined["is_fraud"] == 0
    usual = joined[legit].groupby("card_id")["amount"].median()
    ratio = joined["amount"] / joined["card_id"].map(usual)
    foreign = joined["country"] != joined["home_country"]
    new_device = joined["device_age_days"] < 1
    rule = (ratio > 5) & foreign & new_device
    assert joined["is_fraud"][rule].mean() > 0.8
    big = joined["fraud_pattern"] == "big_spend"
    assert (joined["event_time"].dt.hour[big] < 6).mean() > 0.4
    assert (joined["event_time"].dt.hour[legit] < 6).mean() < 0.05
    subtle = joined["fraud_pattern"] == "subtle"
    assert rule[subtle].mean() < 0.05


def test_entity_tables(world: CardFraud) -> None:
    cards, merchants = world.cards, world.merchants
    assert len(cards) == 5000 and cards["card_id"].is_unique
    assert (cards["issued_at"] < world.ground_truth.start).all()
    assert len(merchants) == 500 and merchants["risk_score"].between(0, 1).all()
    risky = merchants.groupby("merchant_category")["risk_score"].mean()
    assert risky["jewelry"] > risky["grocery"]


def test_ground_truth_is_json_ready(world: CardFraud) -> None:
    import json

    data = json.loads(json.dumps(world.ground_truth.to_dict()))
    assert data["new_fraud_pattern_at"] == world.ground_truth.new_fraud_pattern_at.isoformat()
    assert data["label_delay"]["median_days"] == 10.0


def test_a_million_transactions_take_seconds() -> None:
    began = time.perf_counter()
    big = card_fraud(n_days=90, n_cards=19_000)
    elapsed = time.perf_counter() - began
    assert len(big.transactions) > 1_000_000
    # ~1 s alone on 2 cores; the bound leaves room for a loaded CI machine, while a
    # per-row Python loop would take minutes.
    assert elapsed < 15.0, f"{elapsed:.1f} s for {len(big.transactions)} transactions"


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"n_days": 1}, "'n_days'"),
        ({"n_cards": 0}, "'n_cards'"),
        ({"n_merchants": "many"}, "'n_merchants'"),
        ({"fraud_rate": 0.0}, "'fraud_rate'"),
        ({"start": "yesterday-ish"}, "'start'"),
        ({"seed": -1}, "'seed'"),
    ],
)
def test_bad_parameters_name_themselves(kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        card_fraud(**kwargs)  # type: ignore[arg-type]


def test_small_worlds_still_work() -> None:
    tiny = card_fraud(n_days=2, n_cards=3, n_merchants=10, seed=0)
    assert len(tiny.labels) == len(tiny.transactions)
    assert tiny.ground_truth.new_fraud_pattern_at > tiny.ground_truth.start

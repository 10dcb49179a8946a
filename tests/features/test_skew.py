"""Feature logging and the training-serving skew check."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from loopml.core import SchemaError, Workspace
from loopml.features import (
    OnlineRecord,
    check_skew,
    feature_log_entries,
    get_online_features,
    log_features,
    materialize,
    read_feature_log,
)

from .conftest import T0


def _serve(cards: Workspace, cards_ids: list[int], at: pd.Timestamp) -> None:
    entries = []
    for i, card in enumerate(cards_ids):
        records = get_online_features(cards, {"card_id": card}, ["card_profile", "card_spend"],
                                      now=at.to_pydatetime())
        entries += feature_log_entries(request_id=f"r{i}", model_version="7",
                                       entity={"card_id": card}, records=records,
                                       requested_at=at.to_pydatetime())
    log_features(cards, entries)


def test_values_served_fresh_show_no_skew(cards: Workspace) -> None:
    at = T0 + pd.Timedelta(days=8)
    materialize(cards, end=at.to_pydatetime())
    _serve(cards, list(range(1, 21)), at)
    report = check_skew(cards, views=["card_profile", "card_spend"])
    assert report.requests == 20
    assert report.ok, str(report)
    assert set(report.features["feature"]) >= {"limit", "country", "amount_sum_1d"}
    assert (report.features["compared"] == 20).all()


def test_stale_online_values_are_reported_with_their_size(cards: Workspace) -> None:
    materialize(cards, end=(T0 + pd.Timedelta(days=2)).to_pydatetime())
    _serve(cards, list(range(1, 21)), T0 + pd.Timedelta(days=8))  # served 6 days stale
    report = check_skew(cards, views=["card_profile", "card_spend"])
    assert not report.ok
    limit = report.features.set_index("feature").loc["limit"]
    assert limit["mismatches"] == 20 and limit["max_abs_diff"] == 100.0  # 5-day update missed
    spend = report.features.set_index("feature").loc["amount_count_1d"]
    assert spend["mismatches"] + spend["missing_online"] + spend["missing_offline"] > 0
    assert "SKEW FOUND" in str(report)


def test_missing_on_either_side_is_counted(cards: Workspace, tmp_path: Path) -> None:
    at = T0 + pd.Timedelta(days=8)
    entries = feature_log_entries(
        request_id="a", model_version="1", entity={"card_id": 5}, requested_at=at,
        records={"card_profile": OnlineRecord("missing", {"limit": None, "country": None})})
    entries += feature_log_entries(
        request_id="b", model_version="1", entity={"card_id": 99}, requested_at=at,
        records={"card_profile": OnlineRecord("present", {"limit": 1, "country": "FR"},
                                              at.to_pydatetime())})
    log_features(cards, entries)
    report = check_skew(cards, views=["card_profile"]).features.set_index("feature")
    assert report.loc["limit", "missing_online"] == 1  # card 5 has a profile offline
    assert report.loc["limit", "missing_offline"] == 1  # card 99 has none


def test_the_log_is_partitioned_by_day_and_filtered_by_time(cards: Workspace) -> None:
    for day in (1, 2):
        at = T0 + pd.Timedelta(days=day)
        log_features(cards, feature_log_entries(
            request_id=f"d{day}", model_version="1", entity={"card_id": 1}, requested_at=at,
            records={"card_profile": OnlineRecord("missing", {"limit": None})}))
    days = sorted(p.name for p in cards.features_log_dir.iterdir())
    assert days == ["date=2024-03-02", "date=2024-03-03"]
    later = read_feature_log(cards, since=(T0 + pd.Timedelta(days=2)).to_pydatetime())
    assert later["request_id"].tolist() == ["d2"]
    assert log_features(cards, []) is None
    with pytest.raises(SchemaError, match="has no 'time'"):
        log_features(cards, [{"request_id": "x"}])

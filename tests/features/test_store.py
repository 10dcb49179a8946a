"""Training sets, materialisation and online reads over a real workspace."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError, SchemaError, Workspace
from loopml.data import list_snapshots
from loopml.features import (
    Aggregation,
    Entity,
    FeatureView,
    SQLiteOnlineStore,
    aggregate_as_of,
    build_training_set,
    build_workspace_training_set,
    get_online_features,
    load_views,
    materialize,
    point_in_time_join,
)

from .conftest import T0, make_data


def test_training_set_joins_every_view_as_of_each_label(cards: Workspace) -> None:
    result, path = build_workspace_training_set(cards)
    data = make_data()
    labels = data["chargebacks"]
    frame = result.frame
    assert len(frame) == len(labels)
    assert list(frame.columns[:3]) == ["card_id", "reported_at", "is_fraud"]
    profile = point_in_time_join(
        labels[["card_id", "reported_at"]], data["profiles"], keys="card_id",
        entity_timestamp="reported_at", feature_timestamp="updated_at",
        created_timestamp="loaded_at", ttl="30d")
    assert frame["limit"].tolist() == profile["limit"].tolist()
    spend = aggregate_as_of(
        data["transactions"], labels, keys="card_id", event_timestamp="event_time",
        query_timestamp="reported_at",
        aggregations=load_views(cards)["card_spend"].aggregations)
    pd.testing.assert_frame_equal(frame[spend.columns].reset_index(drop=True),
                                  spend.reset_index(drop=True))
    assert frame["big_purchase"].dropna().isin([True, False]).all()
    assert path is not None and (path / "data.parquet").is_file()


def test_no_feature_value_comes_from_after_the_label(cards: Workspace) -> None:
    result, _ = build_workspace_training_set(cards, ["card_spend"], save=False)
    tx = make_data()["transactions"]
    for _, row in result.frame.iterrows():
        mine = tx[(tx.card_id == row.card_id) & (tx.event_time <= row.reported_at)
                  & (tx.event_time > row.reported_at - timedelta(days=1))]
        assert row["amount_count_1d"] == len(mine)
    # a future event changes nothing
    later = tx.assign(event_time=tx.event_time + pd.Timedelta(days=400))
    view = load_views(cards)["card_spend"]
    far = build_training_set(result.frame[["card_id", "reported_at"]], [view],
                             timestamp="reported_at", sources={"transactions": later})
    assert (far.frame["amount_count_1d"] == 0).all()


def test_the_record_names_view_and_snapshot_versions(cards: Workspace) -> None:
    result, path = build_workspace_training_set(cards)
    assert path is not None
    record = json.loads((path / "record.json").read_text())
    snapshots = {s.table: s.version for s in list_snapshots(cards)}
    assert record["sources"] == {k: snapshots[k] for k in ("profiles", "transactions")}
    assert record["labels"]["source_version"] == snapshots["chargebacks"]
    views = load_views(cards)
    assert {n: v["version"] for n, v in record["views"].items()} == {
        n: v.version for n, v in views.items()}
    again, _ = build_workspace_training_set(cards, save=False)
    assert again.record["sources"] == record["sources"]  # same data, same versions
    pd.testing.assert_frame_equal(again.frame, result.frame)


def test_feature_name_clashes_and_missing_columns_are_clear(cards: Workspace) -> None:
    card = Entity("card", keys="card_id")
    data = make_data()
    a = FeatureView("a", entity=card, source="tx", timestamp="event_time", columns=["amount"])
    b = FeatureView("b", entity=card, source="tx", timestamp="event_time", columns=["amount"])
    labels = data["chargebacks"]
    with pytest.raises(SchemaError, match="'amount' of view 'b' clashes with a column of view"):
        build_training_set(labels, [a, b], timestamp="reported_at",
                           sources={"tx": data["transactions"]})
    bad = FeatureView("c", entity=card, source="tx", timestamp="when", columns=["amount"])
    with pytest.raises(SchemaError, match="source 'tx' has no timestamp column 'when'"):
        build_training_set(labels, [bad], timestamp="reported_at",
                           sources={"tx": data["transactions"]})
    with pytest.raises(SchemaError, match="labels have no key column 'card_id'"):
        build_training_set(labels.drop(columns="card_id"), [a], timestamp="reported_at",
                           sources={"tx": data["transactions"]})
    with pytest.raises(ConfigError, match="'ttl' parameter must be a duration"):
        FeatureView("d", entity=card, source="tx", timestamp="t", ttl="soon")
    sql = FeatureView("e", entity=card, source="tx", timestamp="event_time",
                      sql="SELECT nonsense FROM source")
    with pytest.raises(ConfigError, match="The SQL of feature view 'e' failed"):
        build_training_set(labels, [sql], timestamp="reported_at",
                           sources={"tx": data["transactions"]})


def test_materialize_is_incremental_and_reads_apply_ttl(cards: Workspace) -> None:
    first = materialize(cards, ["card_profile"], end=(T0 + pd.Timedelta(days=2)).to_pydatetime())
    assert first.views["card_profile"] == {**first.views["card_profile"], "rows": 20,
                                           "mode": "full"}
    now = T0 + pd.Timedelta(days=3)
    record = get_online_features(cards, {"card_id": 3}, ["card_profile"],
                                 now=now.to_pydatetime())["card_profile"]
    assert record.status == "present" and record.values == {"limit": 400, "country": "FR"}
    second = materialize(cards, ["card_profile"], end=(T0 + pd.Timedelta(days=9)).to_pydatetime())
    assert second.views["card_profile"]["rows"] == 20
    assert second.views["card_profile"]["mode"] == "incremental"
    third = materialize(cards, ["card_profile"], end=(T0 + pd.Timedelta(days=9)).to_pydatetime())
    assert third.views["card_profile"]["rows"] == 0  # nothing new since the last mark
    fresh = get_online_features(cards, {"card_id": "3"}, ["card_profile"],
                                now=(T0 + pd.Timedelta(days=6)).to_pydatetime())
    assert fresh["card_profile"].values == {"limit": 500, "country": "DE"}
    stale = get_online_features(cards, {"card_id": 3}, ["card_profile"],
                                now=(T0 + pd.Timedelta(days=36)).to_pydatetime())
    assert stale["card_profile"].status == "outside_ttl"


def test_materialized_aggregates_equal_the_batch_sql_and_expire(cards: Workspace) -> None:
    tx = make_data()["transactions"]
    view = load_views(cards)["card_spend"]
    store = SQLiteOnlineStore(cards.online_store_path)
    for day in (4, 4.5, 9):
        end = T0 + pd.Timedelta(days=day)
        materialize(cards, ["card_spend"], end=end.to_pydatetime(), store=store)
        queries = pd.DataFrame({"card_id": np.arange(1, 21), "ts": end})
        want = aggregate_as_of(tx, queries, keys="card_id", event_timestamp="event_time",
                               query_timestamp="ts", aggregations=view.aggregations)
        records = store.read("card_spend", queries[["card_id"]])
        seen = [r for r in records if r.status == "present"]
        for record, (_, expected) in zip(records, want.iterrows(), strict=True):
            if record.status != "present":  # never had an event in any window: never written
                assert expected["amount_count_1d"] == 0
                continue
            assert record.event_time == end.to_pydatetime()
            assert record.values["amount_count_1d"] == expected["amount_count_1d"]
            assert record.values["amount_count_1h"] == expected["amount_count_1h"]
        assert seen


def test_a_changed_definition_materializes_in_full(cards: Workspace) -> None:
    end = (T0 + pd.Timedelta(days=9)).to_pydatetime()
    materialize(cards, ["card_profile"], end=end)
    config = cards.config
    config.features["card_profile"].columns = ["limit"]
    cards.save_config(config)
    again = materialize(cards, ["card_profile"], end=end)
    assert again.views["card_profile"]["mode"] == "full"


def test_online_reads_need_known_views_and_keys(cards: Workspace) -> None:
    from loopml.core import NotFoundError

    with pytest.raises(NotFoundError, match="no feature view 'nope'"):
        get_online_features(cards, {"card_id": 1}, ["nope"])
    with pytest.raises(ConfigError, match="gives no view's keys"):
        get_online_features(cards, {"user": 1})
    missing = get_online_features(cards, {"card_id": 1})
    assert {r.status for r in missing.values()} == {"missing"}


def test_python_views_work_without_a_workspace() -> None:
    card = Entity("card", keys=["card_id"])
    tx = make_data()["transactions"]
    view = FeatureView("spend", entity=card, source="tx", timestamp="event_time",
                       aggregations=[Aggregation("amount", ["mean", "stddev"], ["1d"])])
    labels = pd.DataFrame({"card_id": [1, 2], "ts": [T0 + pd.Timedelta(days=5)] * 2})
    out = build_training_set(labels, [view], timestamp="ts", sources={"tx": tx})
    assert out.record["sources"]["tx"].startswith("frame-")
    assert list(out.frame.columns) == ["card_id", "ts", "amount_mean_1d", "amount_stddev_1d"]

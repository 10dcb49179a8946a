"""Event streams (embedded log and Redis Streams) and the stream processor end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.core import DataError, Workspace
from loopml.features import (
    EventStream,
    LogEventStream,
    RedisEventStream,
    SQLiteOnlineStore,
    StreamProcessor,
    aggregate_as_of,
    load_views,
)

from .conftest import make_data


def _round_trip(stream: EventStream) -> None:
    tx = make_data()["transactions"]
    first, second = tx.iloc[:150], tx.iloc[150:]
    stream.append(first)
    end = stream.append(second)
    events, offset = stream.read(None, limit=100)
    assert len(events) == 100
    rest, last = stream.read(offset, limit=10_000)
    assert last == end
    back = pd.concat([events, rest], ignore_index=True)
    pd.testing.assert_frame_equal(back, tx.reset_index(drop=True), check_dtype=False)
    assert str(back["event_time"].dt.tz) == "UTC"
    nothing, same = stream.read(last)
    assert len(nothing) == 0 and same == last
    upto, at = stream.read(None, limit=10_000, until=offset)
    assert len(upto) == 100 and at == offset


def test_log_stream_round_trips_in_order(tmp_path: Path) -> None:
    _round_trip(LogEventStream(tmp_path / "stream"))


def test_redis_stream_round_trips_in_order(redis_url: str) -> None:
    stream = RedisEventStream(redis_url, "loopml:test:tx")
    _round_trip(stream)
    stream.close()


def _process(cards: Workspace, stream: EventStream, state: Path) -> None:
    view = load_views(cards)["card_spend"]
    tx = make_data()["transactions"]
    store = SQLiteOnlineStore(cards.online_store_path)
    for start in range(0, len(tx), 90):
        stream.append(tx.iloc[start:start + 90])
    processor = StreamProcessor(view, stream, store, state_path=state, lateness=None)
    assert processor.run_once(max_events=250) == 250
    restarted = StreamProcessor(view, stream, store, state_path=state, lateness=None)
    assert restarted.run(max_events=60) == len(tx) - 250  # replays to the offset, goes on
    records = store.read("card_spend", [{"card_id": i} for i in range(1, 21)])
    assert {r.status for r in records} == {"present"}
    # each entity holds its windows as of the newest event of the last batch that touched it
    assert max(r.event_time for r in records) == tx["event_time"].max().to_pydatetime()
    queries = pd.DataFrame({"card_id": np.arange(1, 21),
                            "ts": pd.to_datetime([r.event_time for r in records], utc=True)})
    want = aggregate_as_of(tx, queries, keys="card_id", event_timestamp="event_time",
                           query_timestamp="ts", aggregations=view.aggregations)
    for record, (_, row) in zip(records, want.iterrows(), strict=True):
        for name, value in record.values.items():
            expected = row[name]
            assert (value is None and pd.isna(expected)) or value == pytest.approx(expected)


def test_stream_processor_on_the_log_matches_the_batch_sql(cards: Workspace) -> None:
    _process(cards, LogEventStream(cards.features_dir / "streams" / "tx"),
             cards.features_dir / "streams" / "card_spend.json")


def test_stream_processor_on_redis_matches_the_batch_sql(cards: Workspace, redis_url: str
                                                         ) -> None:
    _process(cards, RedisEventStream(redis_url, "loopml:test:proc"),
             cards.features_dir / "card_spend.json")


def test_processor_needs_an_aggregation_view(cards: Workspace, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has no aggregations to stream"):
        StreamProcessor(load_views(cards)["card_profile"], LogEventStream(tmp_path),
                        SQLiteOnlineStore(tmp_path / "o.sqlite"))

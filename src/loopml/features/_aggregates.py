"""Windowed aggregates as of given times, in one DuckDB query (the batch definition).

For a query row with time ``t`` and a window ``w``, the aggregate covers the events of the
same entity with ``t - w < event time <= t``: never an event after ``t``. The streaming
kernel (``_kernel.py``) is tested against this query for any event sequence and query time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from loopml.core import SchemaError
from loopml.features._definitions import Aggregation
from loopml.features._duck import cursor
from loopml.features._pit import _NAT, _quote, epoch_us, harmonise_keys

__all__ = ["aggregate_as_of"]

_SQL_FUNCTION = {
    "count": "count({v}) {f}",
    "sum": "(sum({v}) {f})::DOUBLE",
    "mean": "(avg({v}) {f})::DOUBLE",
    "min": "(min({v}) {f})::DOUBLE",
    "max": "(max({v}) {f})::DOUBLE",
    "stddev": "(stddev_samp({v}) {f})::DOUBLE",
    "distinct_count": "count(DISTINCT {v}) {f}",
}


def aggregate_as_of(
    events: pd.DataFrame,
    queries: pd.DataFrame,
    *,
    keys: str | Sequence[str],
    event_timestamp: str,
    query_timestamp: str,
    aggregations: Sequence[Aggregation],
) -> pd.DataFrame:
    """Each aggregation's features for every query row, as of that row's time.

    Returns one row per query row (same order and index) and one column per feature name.

    >>> import pandas as pd
    >>> t = pd.to_datetime(["2024-01-01 10:00", "2024-01-01 11:30", "2024-01-01 12:00"],
    ...                    utc=True)
    >>> events = pd.DataFrame({"card": [1, 1, 1], "at": t, "amount": [5.0, 7.0, 100.0]})
    >>> queries = pd.DataFrame({"card": [1], "ts": [pd.Timestamp("2024-01-01 11:59", tz="UTC")]})
    >>> aggregate_as_of(events, queries, keys="card", event_timestamp="at",
    ...     query_timestamp="ts", aggregations=[Aggregation("amount", ["sum", "count"], ["1h"])])
       amount_sum_1h  amount_count_1h
    0            7.0                1
    """
    key_list = [keys] if isinstance(keys, str) else list(keys)
    left, right = _frames(events, queries, key_list, event_timestamp, query_timestamp, aggregations)
    sql = _query(key_list, aggregations)
    connection = cursor()
    try:
        connection.register("q", left)
        connection.register("e", right)
        result = connection.sql(sql).to_arrow_table().to_pandas()
    finally:
        connection.close()
    names = [n for a in aggregations for n in a.feature_names]
    result = result.sort_values("__row").reset_index(drop=True)[names]
    for name in names:
        if "_count_" in name:
            result[name] = result[name].astype("int64")
    result.index = queries.index
    out: pd.DataFrame = result
    return out


def _frames(
    events: pd.DataFrame,
    queries: pd.DataFrame,
    keys: list[str],
    event_timestamp: str,
    query_timestamp: str,
    aggregations: Sequence[Aggregation],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns = list(dict.fromkeys(a.column for a in aggregations))
    for frame, name, needed in (
        (events, "events", [*keys, event_timestamp, *columns]),
        (queries, "queries", [*keys, query_timestamp]),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise SchemaError(f"The {name} frame has no column {missing[0]!r}")
    left: dict[str, object] = {}
    right: dict[str, object] = {}
    for key in keys:
        q_key, e_key = harmonise_keys(queries[key], events[key], key)
        left[key], right[key] = q_key.to_numpy(), e_key.to_numpy()
    left["__t"] = epoch_us(queries[query_timestamp], where=f"queries column {query_timestamp!r}")
    left["__row"] = np.arange(len(queries))
    right["__t"] = epoch_us(events[event_timestamp], where=f"events column {event_timestamp!r}")
    for index, column in enumerate(columns):
        right[f"__v{index}"] = events[column].to_numpy()
    return pd.DataFrame(left), pd.DataFrame(right)


def _query(keys: list[str], aggregations: Sequence[Aggregation]) -> str:
    columns = list(dict.fromkeys(a.column for a in aggregations))
    longest = max(w for a in aggregations for w in a.durations)
    selects = []
    for aggregation in aggregations:
        value = f"e.__v{columns.index(aggregation.column)}"
        names = iter(aggregation.feature_names)
        for function in aggregation.functions:
            for window in aggregation.durations:
                within = f"FILTER (WHERE e.__t > q.__t - {_micros(window)})"
                expression = _SQL_FUNCTION[function].format(v=value, f=within)
                selects.append(f"{expression} AS {_quote(next(names))}")
    on = " AND ".join(f"q.{_quote(k)} = e.{_quote(k)}" for k in keys)
    return f"""
        SELECT q.__row, {", ".join(selects)}
        FROM q LEFT JOIN e ON {on} AND e.__t <> {_NAT} AND e.__t <= q.__t
            AND e.__t > q.__t - {_micros(longest)}
        GROUP BY q.__row
    """


def _micros(window: timedelta) -> int:
    return int(window / timedelta(microseconds=1))

"""``check_online_store``: the contract every online store backend must pass.

Like River's estimator checks, one function runs every rule against a store instance; the
test suite runs it over SQLite and Redis. It writes to views named ``__check_<random>``
and deletes them afterwards.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from loopml.core import LoopmlError, new_id
from loopml.features._online import OnlineStore

__all__ = ["check_online_store"]

T0 = pd.Timestamp("2024-05-01 12:00", tz="UTC")


def check_online_store(store: OnlineStore) -> list[str]:
    """Run the online store contract against ``store``; return the names of the checks.

    Raises ``AssertionError`` naming the first rule the store breaks.

    >>> import tempfile
    >>> from loopml.features import SQLiteOnlineStore
    >>> len(check_online_store(SQLiteOnlineStore(tempfile.mkdtemp() + "/o.sqlite"))) >= 8
    True
    """
    passed = []
    for check in _CHECKS:
        view = f"__check_{new_id()}"
        try:
            check(store, view)
        finally:
            store.delete_view(view)
        passed.append(check.__name__.removeprefix("_check_"))
    return passed


def _frame(**columns: object) -> pd.DataFrame:
    return pd.DataFrame(columns)


def _at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def _check_unknown_view_and_entity_are_missing(store: OnlineStore, view: str) -> None:
    records = store.read(view, [{"id": 1}])
    assert [r.status for r in records] == ["missing"], "an unknown view must read as missing"
    store.write(view, _frame(id=[1], at=[_at(0)], x=[1.0]), keys="id", event_timestamp="at")
    record = store.read(view, [{"id": 2}])[0]
    assert record.status == "missing" and record.values == {"x": None}, (
        "an unknown entity must read as missing, with every feature None"
    )
    assert record.event_time is None


def _check_values_round_trip_with_their_types(store: OnlineStore, view: str) -> None:
    frame = _frame(
        id=[7],
        at=[_at(0)],
        i=[2**40 + 3],
        f=[0.1],
        s=["café"],
        b=[True],
        n=[float("nan")],
        ts=[pd.Timestamp("2024-01-02 03:04:05.123456", tz="UTC")],
    )
    assert store.write(view, frame, keys="id", event_timestamp="at") == 1
    record = store.read(view, [{"id": 7}])[0]
    assert record.status == "present", f"a written entity must be present, got {record.status}"
    assert record.values == {
        "i": 2**40 + 3,
        "f": 0.1,
        "s": "café",
        "b": True,
        "n": None,
        "ts": "2024-01-02T03:04:05.123456Z",
    }, record.values
    assert record.event_time == _at(0).to_pydatetime(), record.event_time


def _check_an_older_row_never_replaces_a_newer_one(store: OnlineStore, view: str) -> None:
    store.write(view, _frame(id=[1], at=[_at(10)], x=[10.0]), keys="id", event_timestamp="at")
    applied = store.write(
        view, _frame(id=[1], at=[_at(5)], x=[5.0]), keys="id", event_timestamp="at"
    )
    record = store.read(view, [{"id": 1}])[0]
    assert applied == 0 and record.values == {"x": 10.0}, "an older write replaced a newer one"
    store.write(view, _frame(id=[1], at=[_at(11)], x=[11.0]), keys="id", event_timestamp="at")
    assert store.read(view, [{"id": 1}])[0].values == {"x": 11.0}, "a newer write was lost"


def _check_ties_go_to_the_latest_created_time(store: OnlineStore, view: str) -> None:
    def write(created: float, value: float) -> int:
        return store.write(
            view,
            _frame(id=[1], at=[_at(0)], made=[_at(created)], x=[value]),
            keys="id",
            event_timestamp="at",
            created_timestamp="made",
        )

    write(5, 1.0)
    assert write(3, 2.0) == 0, "an earlier created time won a tie on event time"
    assert write(5, 3.0) == 0, "a full tie must keep the stored row"
    assert write(9, 4.0) == 1, "a later created time must win a tie on event time"
    assert store.read(view, [{"id": 1}])[0].values == {"x": 4.0}


def _check_a_batch_keeps_each_entitys_newest_row(store: OnlineStore, view: str) -> None:
    frame = _frame(
        id=[1, 2, 1, 1, 2], at=[_at(m) for m in (3, 1, 9, 2, 0)], x=[3.0, 21.0, 9.0, 2.0, 20.0]
    )
    assert store.write(view, frame, keys="id", event_timestamp="at") == 2
    records = store.read(view, [{"id": 2}, {"id": 1}, {"id": 3}])
    assert [r.values["x"] for r in records] == [21.0, 9.0, None], [r.values for r in records]


def _check_ttl_is_applied_on_read(store: OnlineStore, view: str) -> None:
    store.write(view, _frame(id=[1], at=[_at(0)], x=[1.0]), keys="id", event_timestamp="at")
    now = _at(0).to_pydatetime()
    within = store.read(view, [{"id": 1}], ttl="1h", now=now + timedelta(hours=1))[0]
    outside = store.read(view, [{"id": 1}], ttl="1h", now=now + timedelta(hours=1, microseconds=1))[
        0
    ]
    assert within.status == "present", "a value exactly ttl old must still be present"
    assert outside.status == "outside_ttl" and outside.values == {"x": None}, outside
    assert outside.event_time == now, "outside_ttl must still report the event time"


def _check_keys_composite_and_given_as_text(store: OnlineStore, view: str) -> None:
    frame = _frame(card=[42, 42], shop=["a", "b"], at=[_at(0), _at(0)], x=[1.0, 2.0])
    store.write(view, frame, keys=["card", "shop"], event_timestamp="at")
    records = store.read(view, [{"card": "42", "shop": "b"}, {"card": 42, "shop": "a"}])
    assert [r.values["x"] for r in records] == [2.0, 1.0], "keys given as text must match ints"
    try:
        store.read(view, [{"card": 42}])
    except LoopmlError as error:
        assert "'shop'" in str(error), str(error)
    else:
        raise AssertionError("a read without every key must be an error naming the key")


def _check_a_bad_batch_writes_nothing(store: OnlineStore, view: str) -> None:
    store.write(view, _frame(id=[1], at=[_at(0)], x=[1.0]), keys="id", event_timestamp="at")
    bad = _frame(id=[1, 2], at=[_at(5), "not a time"], x=[5.0, 6.0])
    try:
        store.write(view, bad, keys="id", event_timestamp="at")
    except LoopmlError:
        pass
    else:
        raise AssertionError("a batch with a bad timestamp must be refused")
    records = store.read(view, [{"id": 1}, {"id": 2}])
    assert [r.status for r in records] == ["present", "missing"], "a refused batch left rows"
    assert records[0].values == {"x": 1.0}, "a refused batch changed a row"


def _check_views_are_isolated_and_deletable(store: OnlineStore, view: str) -> None:
    other = view + "_other"
    try:
        store.write(view, _frame(id=[1], at=[_at(0)], x=[1.0]), keys="id", event_timestamp="at")
        store.write(other, _frame(id=[1], at=[_at(0)], y=[2.0]), keys="id", event_timestamp="at")
        assert store.read(view, [{"id": 1}])[0].values == {"x": 1.0}, "views leaked"
        store.delete_view(other)
        assert store.read(other, [{"id": 1}])[0].status == "missing", "delete_view left rows"
    finally:
        store.delete_view(other)


def _check_many_entities_read_back_in_order(store: OnlineStore, view: str) -> None:
    n = 1200
    frame = _frame(id=list(range(n)), at=[_at(0)] * n, x=[float(i) for i in range(n)])
    assert store.write(view, frame, keys="id", event_timestamp="at") == n
    wanted = [{"id": i} for i in range(n + 5)][::-1]
    values = [r.values["x"] for r in store.read(view, wanted)]
    assert values == [None] * 5 + [float(i) for i in range(n)][::-1], "reads out of order"


_CHECKS = [
    _check_unknown_view_and_entity_are_missing,
    _check_values_round_trip_with_their_types,
    _check_an_older_row_never_replaces_a_newer_one,
    _check_ties_go_to_the_latest_created_time,
    _check_a_batch_keeps_each_entitys_newest_row,
    _check_ttl_is_applied_on_read,
    _check_keys_composite_and_given_as_text,
    _check_a_bad_batch_writes_nothing,
    _check_views_are_isolated_and_deletable,
    _check_many_entities_read_back_in_order,
]

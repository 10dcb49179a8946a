"""The state store against real SQLite and PostgreSQL, through one contract."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loopml.core import StateConflict, StateStore, Workspace


def check_state_store(store: StateStore) -> None:
    kind = f"k{uuid.uuid4().hex[:8]}"
    assert store.get(kind, "a") is None
    assert store.put(kind, "a", {"x": 1}) == 1
    assert store.put(kind, "a", {"x": 2}) == 2
    assert store.get_with_revision(kind, "a") == ({"x": 2}, 2)
    with pytest.raises(StateConflict):
        store.compare_and_set(kind, "a", {"x": 3}, expected_revision=1)
    with pytest.raises(StateConflict):
        store.compare_and_set(kind, "a", {"x": 3}, expected_revision=None)
    assert store.compare_and_set(kind, "a", {"x": 3}, expected_revision=2) == 3
    store.put(kind, "b", {"y": [1, 2]})
    assert store.list(kind) == [("a", {"x": 3}), ("b", {"y": [1, 2]})]
    assert store.delete(kind, "b") and not store.delete(kind, "b")

    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    ids = [store.append_event(kind, {"i": i}, time=t0 + timedelta(hours=i)) for i in range(5)]
    assert ids == sorted(ids)
    assert [e.payload["i"] for e in store.events(kind)] == [0, 1, 2, 3, 4]
    later = store.events(kind, since=t0 + timedelta(hours=3))
    assert [e.payload["i"] for e in later] == [3, 4]
    assert all(e.time.tzinfo is not None for e in later)
    assert [e.payload["i"] for e in store.events(kind, after_id=ids[3])] == [4]
    assert len(store.events(kind, limit=2)) == 2


def test_sqlite_contract(tmp_path: Path) -> None:
    check_state_store(StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}"))


@pytest.fixture
def postgres_state(postgres_url: str) -> Iterator[StateStore]:
    yield StateStore(postgres_url)


def test_postgres_contract(postgres_state: StateStore) -> None:
    check_state_store(postgres_state)


def test_concurrent_puts_lose_no_increment(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    store.put("counter", "c", {"n": 0})

    def bump() -> None:
        for _ in range(20):
            while True:
                value, revision = store.get_with_revision("counter", "c") or ({}, 0)
                try:
                    store.compare_and_set("counter", "c", {"n": value["n"] + 1}, revision)
                    break
                except StateConflict:
                    continue

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("counter", "c") == {"n": 80}


def test_workspace_state_store_is_in_the_workspace(workspace: Workspace) -> None:
    store = workspace.state_store()
    store.put("deployment", "m", {"champion": "1"})
    assert workspace.state_db_path.is_file()
    assert workspace.state_store().get("deployment", "m") == {"champion": "1"}

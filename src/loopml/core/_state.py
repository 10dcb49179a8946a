"""The state store: deployments, monitors, alerts, experiments and decisions.

One small SQLAlchemy schema, two tables, the same on SQLite (WAL, the embedded default in
``.loopml/state.sqlite``) and PostgreSQL (by URL):

- ``loopml_records``: the current value of a (kind, key), a JSON document with a revision
  number for compare-and-set;
- ``loopml_events``: an append-only journal of what happened, ordered by id.

>>> import tempfile, pathlib
>>> store = StateStore(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'state.sqlite'}")
>>> store.put("deployment", "fraud", {"champion": "3"})
1
>>> store.get("deployment", "fraud")
{'champion': '3'}
>>> _ = store.append_event("decision", {"action": "retrain", "why": "drift"})
>>> [event.payload["action"] for event in store.events("decision")]
['retrain']
"""

from __future__ import annotations

import builtins
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopml.core._exceptions import BackendError, ConfigError
from loopml.core._logging import redact
from loopml.core._time import ensure_utc, utcnow

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["StateConflict", "StateEvent", "StateStore"]


class StateConflict(ConfigError):
    """A compare-and-set found another revision than the one expected."""

    exit_code = 1


@dataclass(frozen=True)
class StateEvent:
    """One entry of the journal."""

    id: int
    kind: str
    time: datetime
    payload: dict[str, Any]


class StateStore:
    """Records and events in SQLite or PostgreSQL, behind one small interface."""

    _engines: dict[str, Any] = {}
    _lock = threading.Lock()

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine, self._records, self._events = _open(url)

    # -- records -----------------------------------------------------------------------
    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The current value of ``(kind, key)``, or ``None``."""
        found = self.get_with_revision(kind, key)
        return None if found is None else found[0]

    def get_with_revision(self, kind: str, key: str) -> tuple[dict[str, Any], int] | None:
        """The current value and its revision, or ``None``."""
        import sqlalchemy as sa

        table = self._records
        query = sa.select(table.c.value, table.c.revision).where(
            table.c.kind == kind, table.c.key == key
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else (json.loads(row.value), int(row.revision))

    def put(self, kind: str, key: str, value: dict[str, Any]) -> int:
        """Set ``(kind, key)`` to ``value`` whatever was there; returns the new revision."""
        while True:
            found = self.get_with_revision(kind, key)
            try:
                return self.compare_and_set(kind, key, value, None if found is None else found[1])
            except StateConflict:
                continue

    def compare_and_set(
        self, kind: str, key: str, value: dict[str, Any], expected_revision: int | None
    ) -> int:
        """Write ``value`` only if the stored revision is ``expected_revision``.

        ``None`` means "must not exist yet". Raises ``StateConflict`` otherwise.
        """
        import sqlalchemy as sa

        table = self._records
        text = json.dumps(value, sort_keys=True, default=str)
        now = utcnow()
        with self._engine.begin() as connection:
            if expected_revision is None:
                try:
                    connection.execute(
                        table.insert().values(
                            kind=kind, key=key, revision=1, value=text, updated_at=now
                        )
                    )
                except sa.exc.IntegrityError:
                    raise StateConflict(f"state {kind}/{key} already exists") from None
                return 1
            result = connection.execute(
                table.update()
                .where(
                    table.c.kind == kind,
                    table.c.key == key,
                    table.c.revision == expected_revision,
                )
                .values(revision=expected_revision + 1, value=text, updated_at=now)
            )
            if result.rowcount != 1:
                raise StateConflict(
                    f"state {kind}/{key} changed since revision {expected_revision}",
                    hint="read it again and retry",
                )
        return expected_revision + 1

    def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """Every ``(key, value)`` of a kind, ordered by key."""
        import sqlalchemy as sa

        table = self._records
        query = sa.select(table.c.key, table.c.value).where(table.c.kind == kind)
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(table.c.key)).all()
        return [(row.key, json.loads(row.value)) for row in rows]

    def delete(self, kind: str, key: str) -> bool:
        """Remove ``(kind, key)``; ``True`` if it existed."""
        table = self._records
        with self._engine.begin() as connection:
            result = connection.execute(
                table.delete().where(table.c.kind == kind, table.c.key == key)
            )
        return bool(result.rowcount)

    # -- events ------------------------------------------------------------------------
    def append_event(
        self, kind: str, payload: dict[str, Any], *, time: datetime | None = None
    ) -> int:
        """Append to the journal; returns the event id."""
        stamp = utcnow() if time is None else ensure_utc(time)
        text = json.dumps(payload, sort_keys=True, default=str)
        with self._engine.begin() as connection:
            result = connection.execute(
                self._events.insert().values(kind=kind, time=stamp, payload=text)
            )
            primary_key = result.inserted_primary_key
        assert primary_key is not None
        return int(primary_key[0])

    def events(
        self,
        kind: str | None = None,
        *,
        since: datetime | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[StateEvent]:
        """Journal entries in order, optionally of one kind, after a time or an id."""
        import sqlalchemy as sa

        table = self._events
        query = sa.select(table).order_by(table.c.id)
        if kind is not None:
            query = query.where(table.c.kind == kind)
        if since is not None:
            query = query.where(table.c.time >= ensure_utc(since))
        if after_id is not None:
            query = query.where(table.c.id > after_id)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            StateEvent(
                int(r.id), r.kind, ensure_utc(r.time, assume_utc=True), json.loads(r.payload)
            )
            for r in rows
        ]


def _open(url: str) -> tuple[Any, sa.Table, sa.Table]:
    import sqlalchemy as sa

    with StateStore._lock:
        cached = StateStore._engines.get(url)
        if cached is not None:
            return tuple(cached)
        try:
            engine = sa.create_engine(url, future=True, pool_pre_ping=True)
        except (sa.exc.ArgumentError, ModuleNotFoundError) as error:
            raise ConfigError(f"state store URL {redact(url)!r} is not usable: {error}") from None
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        metadata = sa.MetaData()
        records = sa.Table(
            "loopml_records",
            metadata,
            sa.Column("kind", sa.String(100), primary_key=True),
            sa.Column("key", sa.String(300), primary_key=True),
            sa.Column("revision", sa.Integer, nullable=False),
            sa.Column("value", sa.Text, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )
        events = sa.Table(
            "loopml_events",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("kind", sa.String(100), nullable=False, index=True),
            sa.Column("time", sa.DateTime(timezone=True), nullable=False),
            sa.Column("payload", sa.Text, nullable=False),
        )
        try:
            metadata.create_all(engine)
        except sa.exc.OperationalError as error:
            raise BackendError(
                f"cannot reach the state store at {redact(url)}: {error.orig}",
                hint="check that the server runs and the URL is right",
            ) from None
        StateStore._engines[url] = (engine, records, events)
        return engine, records, events


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()

"""The online store: the latest feature values per entity, for serving.

Two backends behind one small interface: SQLite (embedded, the default, one file in the
workspace) and Redis. Both keep, per view and entity, the values of the newest row with
its event time, and a write never replaces a value with an older one: a row replaces the
stored one only when its (event time, created time) is strictly newer. A batch is
applied whole or not at all (SQLite: one transaction; Redis: one Lua script). Reads
return each value with its event time and a status: ``present``, ``missing`` or
``outside_ttl`` (the TTL is applied on every read, against ``now``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import (
    BackendError,
    ConfigError,
    SchemaError,
    Workspace,
    ensure_utc,
    parse_duration,
    redact,
    utcnow,
)
from loopml.features._pit import _NAT, epoch_us

__all__ = [
    "STATUSES",
    "OnlineRecord",
    "OnlineStore",
    "RedisOnlineStore",
    "SQLiteOnlineStore",
    "open_online_store",
]

STATUSES = ("present", "missing", "outside_ttl")
"""What a read can say about one entity's values."""

_NO_CREATED = -(2**53)  # "no created timestamp": older than any real one, exact in Lua doubles
_EPOCH_DT = datetime(1970, 1, 1, tzinfo=UTC)
_MMAP_BYTES = 256 * 2**20


@dataclass(frozen=True)
class OnlineRecord:
    """One entity's values from one view, with their event time and a status.

    ``values`` maps every feature to its value (``None`` when ``missing`` or
    ``outside_ttl``); ``event_time`` is the stored row's event time (``None`` when missing).
    """

    status: str
    values: dict[str, Any] = field(default_factory=dict)
    event_time: datetime | None = None

    @property
    def present(self) -> bool:
        """True when the values are there and inside the TTL."""
        return self.status == "present"


class OnlineStore(ABC):
    """The online store interface; ``check_online_store`` is its contract suite."""

    # -- the two backend seams --------------------------------------------------------
    @abstractmethod
    def _apply(self, view: str, rows: list[tuple[str, int, int, str]], meta: str) -> int:
        """Apply (entity, event us, created us, payload) rows newer-wins, atomically."""

    @abstractmethod
    def _fetch(self, view: str, entities: list[str]) -> list[tuple[int, str] | None]:
        """The stored (event us, payload) of each entity, or ``None``."""

    @abstractmethod
    def _meta(self, view: str) -> dict[str, Any] | None:
        """What the last write recorded about the view (keys, their kinds, features)."""

    @abstractmethod
    def delete_view(self, view: str) -> None:
        """Remove every stored row of ``view``."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------
    def write(
        self,
        view: str,
        frame: pd.DataFrame,
        *,
        keys: str | Sequence[str],
        event_timestamp: str,
        created_timestamp: str | None = None,
    ) -> int:
        """Store each entity's newest row of ``frame``; return how many rows were applied.

        Every other column is a feature value. Rows older than what is stored are ignored;
        the batch is applied whole or not at all.
        """
        key_list = [keys] if isinstance(keys, str) else list(keys)
        rows, meta = _encode_rows(frame, key_list, event_timestamp, created_timestamp)
        if not rows:
            return 0
        return self._apply(view, rows, json.dumps(meta))

    # -- reading ----------------------------------------------------------------------
    def read(
        self,
        view: str,
        entities: Sequence[Mapping[str, Any]] | pd.DataFrame,
        *,
        ttl: str | timedelta | None = None,
        now: datetime | None = None,
    ) -> list[OnlineRecord]:
        """The stored values of each entity (a mapping of key column to value), in order."""
        meta = self._meta(view)
        wanted = _entity_list(entities)
        if meta is None:
            return [OnlineRecord("missing") for _ in wanted]
        encoded = [_encode_entity(entity, meta, view) for entity in wanted]
        ttl_us = None if ttl is None else _ttl_micros(ttl)
        now_us = _to_us(ensure_utc(now, where="now") if now else utcnow())
        found = self._fetch(view, encoded)
        return [_record(item, meta["features"], ttl_us, now_us) for item in found]


# -- encoding ---------------------------------------------------------------------------
def _encode_rows(
    frame: pd.DataFrame, keys: list[str], event_timestamp: str, created: str | None
) -> tuple[list[tuple[str, int, int, str]], dict[str, Any]]:
    needed = [*keys, event_timestamp] + ([created] if created else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise SchemaError(f"The frame to write has no column {missing[0]!r}")
    features = [c for c in frame.columns if c not in needed]
    event = epoch_us(frame[event_timestamp], where=f"column {event_timestamp!r}")
    made = (
        epoch_us(frame[created], where=f"column {created!r}")
        if created
        else np.full(len(frame), _NO_CREATED, dtype=np.int64)
    )
    made = np.where(made == _NAT, _NO_CREATED, made)
    usable = (event != _NAT) & frame[keys].notna().all(axis=1).to_numpy()
    kinds = [_kind(frame[k]) for k in keys]
    entity = _entity_strings(frame[keys], kinds)
    order = np.lexsort((np.arange(len(frame)), made, event, entity))  # newest last per entity
    order = order[usable[order]]
    last = np.ones(len(order), dtype=bool)
    if len(order):
        last[:-1] = entity[order][1:] != entity[order][:-1]
    chosen = order[last]
    payloads = _payloads(frame.iloc[chosen][features]) if len(chosen) else []
    rows = [
        (str(entity[i]), int(event[i]), int(made[i]), p)
        for i, p in zip(chosen, payloads, strict=True)
    ]
    return rows, {"keys": keys, "kinds": kinds, "features": features}


def _kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series.dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(series.dtype):
        return "int"
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.dropna().to_numpy()
        return "int" if np.all(np.floor(values) == values) else "float"
    return "str"


def _entity_strings(frame: pd.DataFrame, kinds: list[str]) -> np.ndarray:
    parts = []
    for column, kind in zip(frame.columns, kinds, strict=True):
        series = frame[column]
        if kind == "int" and pd.api.types.is_float_dtype(series.dtype):
            series = series.astype("Int64")
        parts.append(series.astype("str").to_numpy(dtype=object))
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=object)
    return np.asarray(["\x1f".join(row) for row in zip(*parts, strict=True)], dtype=object)


def _payloads(values: pd.DataFrame) -> list[str]:
    if values.shape[1] == 0:
        return ["{}"] * len(values)
    text = values.to_json(orient="records", lines=True, date_format="iso", date_unit="us")
    lines = text.split("\n")
    return lines[: len(values)]


def _entity_list(entities: Sequence[Mapping[str, Any]] | pd.DataFrame) -> list[Mapping[str, Any]]:
    if isinstance(entities, pd.DataFrame):
        return [{str(k): v for k, v in row.items()} for row in entities.to_dict("records")]
    if isinstance(entities, Mapping):
        return [entities]
    return list(entities)


def _encode_entity(entity: Mapping[str, Any], meta: dict[str, Any], view: str) -> str:
    parts = []
    for key, kind in zip(meta["keys"], meta["kinds"], strict=True):
        if key not in entity:
            raise ConfigError(
                f"The entity {dict(entity)!r} has no key {key!r}, which view {view!r} needs",
                hint=f"give every key of the view: {', '.join(meta['keys'])}",
            )
        parts.append(_key_text(entity[key], kind, key))
    return "\x1f".join(parts)


def _key_text(value: Any, kind: str, key: str) -> str:
    if kind == "int":
        try:
            number = int(str(value)) if not isinstance(value, int | np.integer) else int(value)
        except ValueError:
            raise ConfigError(f"The key {key!r} holds integers. Got {value!r} instead.") from None
        return str(number)
    if kind == "bool" and isinstance(value, str):
        return "True" if value.lower() in {"true", "1"} else "False"
    return str(value)


def _record(
    item: tuple[int, str] | None, features: list[str], ttl_us: int | None, now_us: int
) -> OnlineRecord:
    if item is None:
        return OnlineRecord("missing", dict.fromkeys(features))
    event_us, payload = item
    when = _EPOCH_DT + timedelta(microseconds=event_us)
    if ttl_us is not None and now_us - event_us > ttl_us:
        return OnlineRecord("outside_ttl", dict.fromkeys(features), when)
    return OnlineRecord("present", json.loads(payload), when)


def _to_us(value: datetime) -> int:
    return (value - _EPOCH_DT) // timedelta(microseconds=1)


def _micros(value: timedelta) -> int:
    return int(value / timedelta(microseconds=1))


@functools.lru_cache(maxsize=64)
def _ttl_micros(ttl: str | timedelta) -> int:
    """A read's TTL in microseconds (parsed once per distinct value: reads are hot)."""
    return _micros(parse_duration(ttl, name="ttl"))


# -- SQLite -----------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_features (
    view TEXT NOT NULL, entity TEXT NOT NULL, event_time INTEGER NOT NULL,
    created_time INTEGER NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (view, entity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS online_views (view TEXT PRIMARY KEY, meta TEXT NOT NULL);
"""
_UPSERT = """
INSERT INTO online_features (view, entity, event_time, created_time, payload)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (view, entity) DO UPDATE SET
    event_time = excluded.event_time, created_time = excluded.created_time,
    payload = excluded.payload
WHERE excluded.event_time > online_features.event_time
   OR (excluded.event_time = online_features.event_time
       AND excluded.created_time > online_features.created_time)
"""


class SQLiteOnlineStore(OnlineStore):
    """The embedded online store: one SQLite file (WAL), newer-wins upserts.

    >>> import tempfile, pandas as pd
    >>> store = SQLiteOnlineStore(tempfile.mkdtemp() + "/online.sqlite")
    >>> t = pd.to_datetime(["2024-01-02", "2024-01-01"], utc=True)
    >>> store.write("spend", pd.DataFrame({"card": [1, 1], "at": t, "total": [20.0, 10.0]}),
    ...             keys="card", event_timestamp="at")
    1
    >>> record = store.read("spend", [{"card": 1}])[0]
    >>> record.status, record.values, str(record.event_time)
    ('present', {'total': 20.0}, '2024-01-02 00:00:00+00:00')
    >>> store.read("spend", [{"card": 2}])[0].status
    'missing'
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connection() as connection:
            connection.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")  # reads without read()
            self._local.connection = connection
            self._local.meta = (None, {})
        return connection

    def _apply(self, view: str, rows: list[tuple[str, int, int, str]], meta: str) -> int:
        connection = self._connection()
        self._local.meta = (None, {})
        before = connection.total_changes
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(_UPSERT, [(view, *row) for row in rows])
            connection.execute(
                "INSERT INTO online_views VALUES (?, ?) ON CONFLICT (view) DO UPDATE SET "
                "meta = excluded.meta",
                (view, meta),
            )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return connection.total_changes - before - 1

    def _fetch(self, view: str, entities: list[str]) -> list[tuple[int, str] | None]:
        connection = self._connection()
        if len(entities) == 1:
            row = connection.execute(
                "SELECT event_time, payload FROM online_features WHERE view = ? AND entity = ?",
                (view, entities[0]),
            ).fetchone()
            return [None if row is None else (int(row[0]), str(row[1]))]
        found: dict[str, tuple[int, str]] = {}
        for start in range(0, len(entities), 500):
            chunk = entities[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for entity, event, payload in connection.execute(
                f"SELECT entity, event_time, payload FROM online_features "
                f"WHERE view = ? AND entity IN ({marks})",
                (view, *chunk),
            ):
                found[entity] = (int(event), str(payload))
        return [found.get(entity) for entity in entities]

    def _meta(self, view: str) -> dict[str, Any] | None:
        """The view's meta, cached per connection until another connection commits.

        ``PRAGMA data_version`` changes when any other connection (thread or process) has
        committed; this connection's own writes clear the cache in ``_apply``.
        """
        connection = self._connection()
        version = connection.execute("PRAGMA data_version").fetchone()[0]
        seen, cache = self._local.meta
        if seen != version:
            cache = {}
            self._local.meta = (version, cache)
        if view not in cache:
            row = connection.execute(
                "SELECT meta FROM online_views WHERE view = ?", (view,)
            ).fetchone()
            cache[view] = None if row is None else dict(json.loads(row[0]))
        meta: dict[str, Any] | None = cache[view]
        return meta

    def delete_view(self, view: str) -> None:
        connection = self._connection()
        self._local.meta = (None, {})
        with connection:
            connection.execute("DELETE FROM online_features WHERE view = ?", (view,))
            connection.execute("DELETE FROM online_views WHERE view = ?", (view,))

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


# -- Redis ------------------------------------------------------------------------------
_LUA_WRITE = """
local applied = 0
for i = 1, #KEYS - 1 do
  local base = (i - 1) * 3
  local t = tonumber(ARGV[base + 1])
  local c = tonumber(ARGV[base + 2])
  local current = redis.call('HMGET', KEYS[i], 't', 'c')
  local ct = tonumber(current[1])
  if ct == nil or t > ct or (t == ct and c > tonumber(current[2])) then
    redis.call('HSET', KEYS[i], 't', ARGV[base + 1], 'c', ARGV[base + 2], 'v', ARGV[base + 3])
    applied = applied + 1
  end
end
redis.call('HSET', KEYS[#KEYS], 'meta', ARGV[#ARGV])
return applied
"""


class RedisOnlineStore(OnlineStore):
    """The online store on a Redis server: one hash per entity, a Lua compare-and-set.

    Keys are ``<namespace>:<view>:<entity>``; each write batch is one script, so Redis
    applies it whole (or, if the server dies first, not at all).
    """

    def __init__(self, url: str, *, namespace: str = "loopml", timeout: float = 5.0) -> None:
        import redis

        self.url = url
        self.namespace = namespace
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._script = self._client.register_script(_LUA_WRITE)

    def _key(self, view: str, entity: str) -> str:
        return f"{self.namespace}:{view}:{entity}"

    def _meta_key(self, view: str) -> str:
        return f"{self.namespace}:__views__:{view}"

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        import redis

        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            raise BackendError(
                f"Redis at {redact(self.url)} failed while {action}: {error}",
                hint="check that redis-server is running; a failed write batch is not applied",
            ) from None

    def _apply(self, view: str, rows: list[tuple[str, int, int, str]], meta: str) -> int:
        keys = [self._key(view, row[0]) for row in rows] + [self._meta_key(view)]
        args: list[Any] = [v for row in rows for v in row[1:]] + [meta]
        with self._guard(f"writing {len(rows)} rows of view {view!r}"):
            return int(self._script(keys=keys, args=args))

    def _fetch(self, view: str, entities: list[str]) -> list[tuple[int, str] | None]:
        with self._guard(f"reading view {view!r}"):
            pipe = self._client.pipeline(transaction=False)
            for entity in entities:
                pipe.hmget(self._key(view, entity), "t", "v")
            replies = pipe.execute()
        return [
            None if reply[0] is None else (int(reply[0]), reply[1].decode()) for reply in replies
        ]

    def _meta(self, view: str) -> dict[str, Any] | None:
        with self._guard(f"reading view {view!r}"):
            raw = self._client.hget(self._meta_key(view), "meta")
        return None if raw is None else dict(json.loads(raw))

    def delete_view(self, view: str) -> None:
        with self._guard(f"deleting view {view!r}"):
            keys = list(self._client.scan_iter(match=f"{self.namespace}:{view}:*", count=1000))
            for start in range(0, len(keys), 1000):
                self._client.delete(*keys[start : start + 1000])
            self._client.delete(self._meta_key(view))

    def close(self) -> None:
        self._client.close()


def open_online_store(workspace: Workspace) -> OnlineStore:
    """The workspace's online store: SQLite in ``.loopml/online.sqlite``, or Redis if set."""
    backends = workspace.config.backends
    if backends.online_store == "redis":
        return RedisOnlineStore(backends.redis_url, namespace=f"loopml:{workspace.config.project}")
    return SQLiteOnlineStore(workspace.online_store_path)

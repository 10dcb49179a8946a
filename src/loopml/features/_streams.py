"""Event streams for streaming features, and the processor that turns them into features.

Two streams behind one interface: an append-only log of Parquet segments in the workspace
(embedded, the default) and Redis Streams (``XADD`` / ``XRANGE``). An offset is an opaque
string; reading after an offset returns the next events in append order and the offset
to continue from. ``StreamProcessor`` reads a stream, feeds the one aggregation kernel and
writes each touched entity's windows, as of the newest event, to the online store.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.core import BackendError, DataError, atomic_path, atomic_write_text, redact
from loopml.features._definitions import FeatureView
from loopml.features._kernel import StreamingAggregator
from loopml.features._online import OnlineStore

__all__ = ["EventStream", "LogEventStream", "RedisEventStream", "StreamProcessor"]


class EventStream(ABC):
    """Append events; read them back in order after an offset."""

    @abstractmethod
    def append(self, events: pd.DataFrame) -> str:
        """Append a batch atomically; return the offset after it."""

    @abstractmethod
    def read(
        self, after: str | None = None, limit: int = 100_000, until: str | None = None
    ) -> tuple[pd.DataFrame, str]:
        """Up to ``limit`` events after ``after`` (the start when ``None``) and up to the
        offset ``until`` (inclusive), and the offset to continue from."""


class LogEventStream(EventStream):
    """The embedded stream: Parquet segments named by their first offset, never rewritten.

    >>> import tempfile, pandas as pd
    >>> stream = LogEventStream(tempfile.mkdtemp())
    >>> stream.append(pd.DataFrame({"card": [1, 2]})), stream.append(pd.DataFrame({"card": [3]}))
    ('2', '3')
    >>> events, offset = stream.read("1")
    >>> events["card"].tolist(), offset
    ([2, 3], '3')
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _segments(self) -> list[tuple[int, int, Path]]:
        found = []
        for path in self.directory.glob("*.parquet"):
            first, _, count = path.stem.partition("-")
            if first.isdigit() and count.isdigit():
                found.append((int(first), int(count), path))
        return sorted(found)

    def append(self, events: pd.DataFrame) -> str:
        segments = self._segments()
        first = segments[-1][0] + segments[-1][1] if segments else 0
        if len(events) == 0:
            return str(first)
        target = self.directory / f"{first:020d}-{len(events):010d}.parquet"
        if target.exists():
            raise DataError(
                f"another writer appended to {self.directory} at offset {first}",
                hint="use one writer per log stream",
            )
        with atomic_path(target) as tmp:
            events.to_parquet(tmp, index=False)
        return str(first + len(events))

    def read(
        self, after: str | None = None, limit: int = 100_000, until: str | None = None
    ) -> tuple[pd.DataFrame, str]:
        offset = int(after or 0)
        if until is not None:
            limit = max(0, min(limit, int(until) - offset))
        parts, taken = [], 0
        for first, count, path in self._segments():
            if first + count <= offset or taken >= limit:
                continue
            frame = pd.read_parquet(path)
            skip = max(offset - first, 0)
            part = frame.iloc[skip : skip + limit - taken]
            parts.append(part)
            taken += len(part)
        if not parts:
            return pd.DataFrame(), str(offset)
        return pd.concat(parts, ignore_index=True), str(offset + taken)


class RedisEventStream(EventStream):
    """A Redis Stream: one entry per event (``XADD``), read with ``XRANGE`` after an id.

    Column types are kept in a companion hash so timestamps come back as timestamps.
    """

    def __init__(self, url: str, name: str, *, maxlen: int | None = None) -> None:
        import redis

        self.url, self.name, self.maxlen = url, name, maxlen
        self._client = redis.Redis.from_url(url, socket_timeout=10)

    def _call(self, action: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return function(*args, **kwargs)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            raise BackendError(
                f"Redis at {redact(self.url)} failed while {action}: {error}",
                hint="check that redis-server is running",
            ) from None

    def append(self, events: pd.DataFrame) -> str:
        if len(events) == 0:
            return self._last_id()
        times = [c for c in events.columns if pd.api.types.is_datetime64_any_dtype(events[c])]
        lines = events.to_json(
            orient="records", lines=True, date_format="iso", date_unit="us"
        ).split("\n")[: len(events)]
        pipe = self._client.pipeline(transaction=True)  # MULTI/EXEC: the batch or nothing
        pipe.hset(f"{self.name}:schema", mapping={"timestamps": json.dumps(times)})
        for line in lines:
            pipe.xadd(self.name, {"e": line}, maxlen=self.maxlen, approximate=True)
        replies = self._call(f"appending to stream {self.name!r}", pipe.execute)
        return str(replies[-1].decode())

    def _last_id(self) -> str:
        info = self._call("reading", self._client.xrevrange, self.name, count=1)
        return info[0][0].decode() if info else "0-0"

    def read(
        self, after: str | None = None, limit: int = 100_000, until: str | None = None
    ) -> tuple[pd.DataFrame, str]:
        start = "-" if not after or after == "0-0" else f"({after}"
        entries = self._call(
            f"reading stream {self.name!r}",
            self._client.xrange,
            self.name,
            min=start,
            max=until or "+",
            count=limit,
        )
        if not entries:
            return pd.DataFrame(), after or "0-0"
        raw = self._call("reading", self._client.hget, f"{self.name}:schema", "timestamps")
        times = json.loads(raw) if raw else []
        frame = pd.DataFrame([json.loads(fields[b"e"]) for _, fields in entries])
        for column in times:
            if column in frame.columns:
                frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame, entries[-1][0].decode()

    def close(self) -> None:
        """Release the connection."""
        self._client.close()


class StreamProcessor:
    """Feed a stream into the aggregation kernel and the online store, batch by batch.

    Each ``run_once`` reads up to ``max_events`` after the saved offset, updates the kernel
    and writes the windows of every entity it touched, as of the newest event seen, with
    that time as their event time. The offset is saved (atomically) to ``state_path``
    after the store write, so a crash replays a batch rather than skipping it (replays are
    harmless: the store keeps the newest value). The kernel lives in memory: a processor
    started on a saved offset first replays the stream up to it to rebuild its windows.
    """

    def __init__(
        self,
        view: FeatureView,
        stream: EventStream,
        store: OnlineStore,
        *,
        state_path: str | os.PathLike[str] | None = None,
        lateness: str | None = "1d",
    ) -> None:
        if not view.aggregations:
            raise DataError(f"Feature view {view.name!r} has no aggregations to stream")
        self.view, self.stream, self.store = view, stream, store
        self.state_path = Path(state_path) if state_path else None
        self.kernel = StreamingAggregator(
            view.aggregations, keys=list(view.keys), timestamp=view.timestamp, lateness=lateness
        )
        self.offset_: str | None = None
        if self.state_path is not None and self.state_path.is_file():
            self._warm_up(json.loads(self.state_path.read_text())["offset"])

    def _warm_up(self, saved: str) -> None:
        """Rebuild the kernel's windows by replaying the stream up to the saved offset."""
        offset: str | None = None
        while offset != saved:
            events, after = self.stream.read(offset, 100_000, until=saved)
            if len(events) == 0:
                break
            self.kernel.update(self.view.rows(events))
            offset = after
        self.offset_ = saved

    def run_once(self, max_events: int = 100_000) -> int:
        """Process one batch; return how many events it read (0 when caught up)."""
        events, offset = self.stream.read(self.offset_, max_events)
        if len(events):
            rows = self.view.rows(events)
            self.kernel.update(rows)
            if self.kernel.newest_ is not None:
                touched = rows[list(self.view.keys)].drop_duplicates().reset_index(drop=True)
                as_of = pd.Timestamp(self.kernel.newest_, unit="us", tz="UTC")
                touched["__as_of"] = as_of
                values = self.kernel.query(touched, timestamp="__as_of")
                self.store.write(
                    self.view.name,
                    pd.concat([touched, values], axis=1),
                    keys=list(self.view.keys),
                    event_timestamp="__as_of",
                )
        self.offset_ = offset
        if self.state_path is not None:
            atomic_write_text(self.state_path, json.dumps({"offset": offset}))
        return len(events)

    def run(self, max_batches: int | None = None, max_events: int = 100_000) -> int:
        """Process batches until caught up (or ``max_batches``); return the events read."""
        total, batches = 0, 0
        while max_batches is None or batches < max_batches:
            read = self.run_once(max_events)
            total, batches = total + read, batches + 1
            if read == 0:
                break
        return total

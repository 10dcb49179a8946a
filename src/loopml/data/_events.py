"""Append-only event tables: the prediction log, the feedback log and the feature log.

Each append writes one new Parquet segment (atomically: temp file, fsync, rename) into
``<directory>/date=YYYY-MM-DD/``, partitioned by the UTC date of the ``time`` column. A
segment is never rewritten. ``read`` queries the segments with DuckDB, skipping the
partitions outside the asked time range.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.core import (
    ConfigError,
    DataError,
    SchemaError,
    Workspace,
    atomic_path,
    ensure_utc,
    ensure_utc_series,
    new_id,
    utcnow,
)
from loopml.data._sources import connect, literal, quote

__all__ = ["EventLog", "feature_log", "feedback_log", "prediction_log"]


class EventLog:
    """An append-only table of events in Parquet segments, partitioned by date.

    >>> import tempfile
    >>> log = EventLog(tempfile.mkdtemp())
    >>> _ = log.append([{"time": "2024-05-01T10:00:00Z", "request_id": "a", "score": 0.9},
    ...                 {"time": "2024-05-02T09:00:00+02:00", "request_id": "b", "score": 0.1}])
    >>> [p.parent.name for p in log.segments()]
    ['date=2024-05-01', 'date=2024-05-02']
    >>> log.read(start="2024-05-02T00:00:00Z")["request_id"].tolist()
    ['b']
    """

    def __init__(self, directory: str | os.PathLike[str], *, time_column: str = "time") -> None:
        self.directory = Path(directory)
        self.time_column = time_column

    def __repr__(self) -> str:
        return f"EventLog({str(self.directory)!r})"

    def append(self, rows: pd.DataFrame | list[dict[str, Any]]) -> Path:
        """Write ``rows`` as a new segment and return its path.

        Rows that fall on several UTC dates are written as one segment per date; the
        path of the first is returned (``write`` returns them all).
        """
        return self.write(rows)[0]

    def write(self, rows: pd.DataFrame | list[dict[str, Any]]) -> list[Path]:
        """Write ``rows`` as one new segment per UTC date; return the segment paths."""
        frame = self._frame(rows)
        days = frame[self.time_column].dt.strftime("%Y-%m-%d")
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        written = []
        for day, part in frame.groupby(days, sort=True):
            target = self.directory / f"date={day}" / f"part-{stamp}-{new_id()}.parquet"
            table = pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False)
            with atomic_path(target) as tmp:
                pq.write_table(table, tmp)
            written.append(target)
        return written

    def _frame(self, rows: pd.DataFrame | list[dict[str, Any]]) -> pd.DataFrame:
        frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        if frame.empty:
            raise DataError(f"{self.directory}: nothing to append (no rows)")
        if self.time_column not in frame.columns:
            raise SchemaError(
                f"{self.directory}: the rows have no {self.time_column!r} column "
                f"(columns: {list(frame.columns)})",
                hint=f"add a timezone-aware {self.time_column!r} to every row",
            )
        where = f"{self.directory}: column {self.time_column!r}"
        times = ensure_utc_series(frame[self.time_column], where=where)
        if times.isna().any():
            row = int(times.isna().to_numpy().nonzero()[0][0])
            raise DataError(
                f"{where}, row {row}: the time is missing", hint="give every row a time"
            )
        frame[self.time_column] = times.astype("datetime64[us, UTC]")
        return frame

    def segments(self) -> list[Path]:
        """Every segment, oldest partition first, then in write order."""
        if not self.directory.is_dir():
            return []
        return sorted(
            path
            for folder in self.directory.glob("date=*")
            for path in folder.glob("*.parquet")
            if not path.name.startswith(".")
        )

    def read(
        self,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """Events with ``start <= time < end`` (either bound optional), ordered by time."""
        low, high = _bound(start, "start"), _bound(end, "end")
        files = [p for p in self.segments() if _in_range(p.parent.name, low, high)]
        if not files:
            return pd.DataFrame(columns=columns or [self.time_column])
        time = quote(self.time_column)
        picked = ", ".join(quote(c) for c in columns) if columns else "*"
        listed = "[" + ", ".join(literal(str(p)) for p in files) + "]"
        clauses = []
        if low is not None:
            clauses.append(f"{time} >= {literal(low.isoformat())}::TIMESTAMPTZ")
        if high is not None:
            clauses.append(f"{time} < {literal(high.isoformat())}::TIMESTAMPTZ")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = (
            f"SELECT {picked} FROM read_parquet({listed}, union_by_name = true, "
            f"hive_partitioning = false) {where} ORDER BY {time}"
        )
        con = connect()
        try:
            frame: pd.DataFrame = con.sql(query).to_arrow_table().to_pandas()
            return frame
        except duckdb.Error as error:
            raise SchemaError(
                f"{self.directory}: cannot read the log: {str(error).splitlines()[0]}",
                hint="ask for columns the log has",
            ) from None
        finally:
            con.close()


def _bound(value: datetime | str | None, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"The '{name}' parameter of EventLog.read must be an ISO timestamp. "
                f"Got {value!r} instead."
            ) from None
    return ensure_utc(value, where=f"the '{name}' parameter of EventLog.read")


def _in_range(folder: str, low: datetime | None, high: datetime | None) -> bool:
    try:
        day = date.fromisoformat(folder.removeprefix("date="))
    except ValueError:
        return False
    if low is not None and day < low.date():
        return False
    return not (high is not None and day > high.date())


def prediction_log(workspace: Workspace) -> EventLog:
    """The workspace's prediction log (``.loopml/logs/predictions``).

    >>> import tempfile
    >>> from loopml.core import Config, Workspace
    >>> ws = Workspace.create(tempfile.mkdtemp(), Config(project="demo"))
    >>> prediction_log(ws).directory.relative_to(ws.root).as_posix()
    '.loopml/logs/predictions'
    """
    return EventLog(workspace.predictions_log_dir)


def feedback_log(workspace: Workspace) -> EventLog:
    """The workspace's feedback log: labels that arrived (``.loopml/logs/feedback``).

    >>> import tempfile
    >>> from loopml.core import Config, Workspace
    >>> ws = Workspace.create(tempfile.mkdtemp(), Config(project="demo"))
    >>> feedback_log(ws).directory.name
    'feedback'
    """
    return EventLog(workspace.feedback_log_dir)


def feature_log(workspace: Workspace) -> EventLog:
    """The workspace's feature log: feature values served (``.loopml/logs/features``).

    >>> import tempfile
    >>> from loopml.core import Config, Workspace
    >>> ws = Workspace.create(tempfile.mkdtemp(), Config(project="demo"))
    >>> feature_log(ws).directory.name
    'features'
    """
    return EventLog(workspace.features_log_dir)

"""Immutable, content-addressed Parquet snapshots in the workspace lake.

``ingest`` copies a source into ``.loopml/lake/<table>/<version>/data.parquet`` with a
``_snapshot.json`` manifest. The version is the SHA-256 of the written Parquet file, so
ingesting identical data twice yields the same version and keeps one copy. The copy is
staged under ``.loopml/tmp/`` and moved into the lake with one rename: a failed ingest
leaves nothing in the lake.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.core import (
    ConfigError,
    NotFoundError,
    SourceConfig,
    SourceError,
    Workspace,
    atomic_dir,
    get_logger,
    sha256_file,
    utcnow,
)
from loopml.data._arrowcsv import LeaveArrowLane, open_arrow_csv
from loopml.data._sources import (
    OpenSource,
    connect,
    literal,
    open_source,
    quote,
    to_source_config,
)

__all__ = ["Snapshot", "get_snapshot", "ingest", "list_snapshots", "load_snapshot"]

MANIFEST = "_snapshot.json"
DATA_FILE = "data.parquet"
_TABLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_LOG = get_logger("data.snapshots")
_BATCH_ROWS = 65_536
_ROW_GROUP_BYTES = 64 * 2**20  # (128 MiB: 25% more page faults, no faster)
_MIN_GROUP_ROWS = 16_384
_MAX_GROUP_ROWS = 1_048_576
_GROUPS_IN_FLIGHT = 2
_DICTIONARY_SAMPLE = 65_536
_WRITE_BATCH_ROWS = 1024  # the Parquet writer's step (its default, set explicitly)
_DATA_PAGE_BYTES = 2**20
_WRITEBACK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Snapshot:
    """One immutable version of a table in the lake.

    ``schema`` maps each column to its Arrow type (``'int64'``, ``'timestamp[us, tz=UTC]'``);
    ``time_range`` is the (min, max) of the source's timestamp column, in UTC.

    >>> import tempfile
    >>> from loopml.core import Config, SourceConfig, Workspace
    >>> ws = Workspace.create(tempfile.mkdtemp(), Config(project="demo"))
    >>> _ = (ws.root / "t.csv").write_text("id,at\\n1,2024-01-01T09:00:00+01:00\\n")
    >>> snap = ingest(ws, "t", SourceConfig(path="t.csv", timestamp="at"))
    >>> snap.schema, snap.time_range[0].isoformat()
    ({'id': 'int64', 'at': 'timestamp[us, tz=UTC]'}, '2024-01-01T08:00:00+00:00')
    """

    table: str
    version: str
    path: Path
    rows: int
    schema: dict[str, str]
    source: str
    time_range: tuple[datetime, datetime] | None
    created_at: datetime
    timestamp: str | None = None
    sha256: str = ""
    bytes: int = 0

    @property
    def data_path(self) -> Path:
        """The Parquet file holding the rows."""
        return self.path / DATA_FILE

    def to_json(self) -> dict[str, Any]:
        """The manifest written beside the data."""
        return {
            "format": 1,
            "table": self.table,
            "version": self.version,
            "rows": self.rows,
            "schema": self.schema,
            "source": self.source,
            "timestamp": self.timestamp,
            "time_range": [t.isoformat() for t in self.time_range] if self.time_range else None,
            "created_at": self.created_at.isoformat(),
            "sha256": self.sha256,
            "bytes": self.bytes,
            "files": [DATA_FILE],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> Snapshot:
        """Read a manifest back."""
        span = data.get("time_range")
        return cls(
            table=data["table"],
            version=data["version"],
            path=path,
            rows=int(data["rows"]),
            schema=dict(data["schema"]),
            source=data["source"],
            time_range=(
                (datetime.fromisoformat(span[0]), datetime.fromisoformat(span[1])) if span else None
            ),
            created_at=datetime.fromisoformat(data["created_at"]),
            timestamp=data.get("timestamp"),
            sha256=data.get("sha256", ""),
            bytes=int(data.get("bytes", 0)),
        )


def check_table_name(table: str) -> str:
    """Raise unless ``table`` is a safe folder name."""
    if not isinstance(table, str) or not _TABLE_NAME.match(table):
        raise ConfigError(
            "The 'table' parameter of ingest must be a name of letters, digits, '_', '.' "
            f"or '-' that starts with a letter or digit. Got {table!r} instead."
        )
    return table


def ingest(workspace: Workspace, table: str, source: SourceConfig | str | None = None) -> Snapshot:
    """Copy a source into an immutable Parquet snapshot of ``table`` and return it.

    ``source`` defaults to ``workspace.config.sources[table]``. The data streams from the
    source to Parquet through DuckDB; it is never held in memory whole.

    >>> import tempfile, pathlib
    >>> from loopml.core import Config, Workspace
    >>> ws = Workspace.create(tempfile.mkdtemp(), Config(project="demo"))
    >>> _ = (ws.root / "t.csv").write_text("id,time\\n1,2024-01-01T00:00:00Z\\n")
    >>> first = ingest(ws, "t", "t.csv")
    >>> again = ingest(ws, "t", "t.csv")
    >>> first.rows, first.version == again.version, len(list_snapshots(ws, "t"))
    (1, True, 1)
    """
    check_table_name(table)
    config = _source_for(workspace, table, source)
    staging_root = workspace.state_dir / "tmp"
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"ingest-{table}-", dir=staging_root))
    try:
        return _ingest_staged(workspace, table, config, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _source_for(
    workspace: Workspace, table: str, source: SourceConfig | str | None
) -> SourceConfig:
    if source is not None:
        return to_source_config(source)
    sources = workspace.config.sources
    if table not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise ConfigError(
            f"{workspace.config_path}: no source named {table!r} (sources: {known})",
            hint="add it under `sources:` or pass the source explicitly",
        )
    return sources[table]


def _ingest_staged(
    workspace: Workspace, table: str, config: SourceConfig, staging: Path
) -> Snapshot:
    data_file = staging / DATA_FILE
    with open_source(config, base_dir=workspace.root) as opened:
        written = _write_parquet(opened, data_file)
        label = opened.label
    if written.rows == 0:
        raise SourceError(f"{label} has no rows", hint="point the source at data with rows")
    version = written.sha256[:16]
    final = workspace.lake_dir / table / version
    if (final / MANIFEST).is_file():
        _LOG.info("table %s: identical data already at version %s", table, version)
        return _read_manifest(final)
    metadata = pq.read_metadata(data_file)
    snapshot = Snapshot(
        table=table,
        version=version,
        path=final,
        rows=written.rows,
        schema=_arrow_schema(data_file),
        source=label,
        time_range=_time_range(data_file, metadata, config.timestamp),
        created_at=utcnow(),
        timestamp=config.timestamp,
        sha256=written.sha256,
        bytes=written.size,
    )
    with atomic_dir(final) as tmp:
        os.replace(data_file, tmp / DATA_FILE)
        (tmp / MANIFEST).write_text(json.dumps(snapshot.to_json(), indent=2), encoding="utf-8")
    _LOG.info("table %s: wrote version %s (%d rows)", table, version, written.rows)
    return _read_manifest(final)


@dataclass(frozen=True)
class _Written:
    rows: int
    sha256: str
    size: int


def _write_parquet(opened: OpenSource, path: Path) -> _Written:
    """Stream the source's rows into one Parquet file, hashing the bytes as they are written.

    A plain CSV file is parsed by pyarrow (``_arrowcsv``); every other source, and a CSV
    file that lane gives up on, by DuckDB. Either way this thread turns the rows into
    row groups of a fixed row count while a second one encodes them with pyarrow's Parquet
    writer (about half the CPU of DuckDB's ``COPY`` here). Fixed row groups and one writer
    make the bytes, hence the version, depend on the data alone, not on the reader or on
    how rows arrived in batches. A schema pyarrow cannot write (intervals, unions) goes
    through DuckDB's own ``COPY``.
    """
    lane = open_arrow_csv(opened)
    if lane is not None:
        try:
            written = _write_batches(path, lane.schema, lane.batches)
        except LeaveArrowLane as why:
            _LOG.debug("%s: reading it through DuckDB (%s)", opened.label, why)
        else:
            if written is not None:
                return written
        path.unlink(missing_ok=True)
    try:
        reader = opened.relation().to_arrow_reader(_BATCH_ROWS)
    except duckdb.Error as error:
        raise opened.explain(error) from None
    try:
        schema = reader.schema.remove_metadata()
        written = _write_batches(path, schema, _duckdb_batches(opened, reader))
    finally:
        reader.close()
    if written is not None:
        return written
    path.unlink(missing_ok=True)
    return _copy_with_duckdb(opened, path)


def _write_batches(
    path: Path,
    schema: pa.Schema,
    batches: Iterator[pa.RecordBatch],
    *,
    group_rows: int | None = None,
) -> _Written | None:
    """Write ``batches`` to ``path``; ``None`` when pyarrow cannot write ``schema``.

    ``group_rows`` overrides the row-group size that ``_row_group_rows`` picks. The writer
    opens once the first row group is ready: its values choose which columns get a
    dictionary (``_parquet_options``).
    """
    group = group_rows or _row_group_rows(schema)
    groups = _row_groups(batches, schema, group)
    first = next(groups, None)
    with _HashingFile(path) as sink:
        try:
            writer = pq.ParquetWriter(sink, schema, **_parquet_options(schema, first))
        except pa.ArrowNotImplementedError:
            return None
        ready = groups if first is None else itertools.chain([first], groups)
        rows = _write_row_groups(writer, ready, group)
        return _Written(rows, sink.hexdigest(), sink.size)


def _write_row_groups(writer: pq.ParquetWriter, groups: Iterator[pa.Table], group: int) -> int:
    """Encode row groups on a second thread while this one reads the next rows."""

    def encode(table: pa.Table) -> None:
        writer.write_table(table, row_group_size=group)

    rows = 0
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="loopml-ingest") as encoder:
            queued: deque[Future[None]] = deque()
            for table in groups:
                queued.append(encoder.submit(encode, table))
                rows += table.num_rows
                if len(queued) > _GROUPS_IN_FLIGHT:
                    queued.popleft().result()
            for done in queued:
                done.result()
    finally:
        writer.close()
    return rows


def _row_groups(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema, group: int
) -> Iterator[pa.Table]:
    """Tables of exactly ``group`` rows (the last one shorter), whatever the batches' sizes.

    The Parquet writer encodes a chunk ``_WRITE_BATCH_ROWS`` rows at a time and may cut a
    page after each of those steps, so where chunks end decides where pages end. Each table
    is therefore made of chunks that start and end on a grid of ``_WRITE_BATCH_ROWS`` rows
    from its first row: whole grid cells are zero-copy slices of the batches, and only a
    cell that straddles two batches is copied. The bytes, hence the version, then depend on
    the data alone, not on how the reader batched the rows (copying every row group into
    one chunk instead cost a tenth of the ingest's CPU).
    """
    step = _WRITE_BATCH_ROWS
    cells: list[pa.RecordBatch] = []  # grid-aligned pieces of the group being built
    seam: list[pa.RecordBatch] = []  # the pieces of a cell that straddles batches
    held = 0  # rows of the group being built, ``seam`` included

    def close_seam() -> None:
        if seam:
            joined = pa.Table.from_batches(seam, schema).combine_chunks()
            cells.extend(joined.to_batches())
            seam.clear()

    for batch in batches:
        offset, size = 0, batch.num_rows
        while offset < size:
            take = min(group - held, size - offset)
            if held % step:  # finish the straddling cell first
                take = min(take, step - held % step)
                seam.append(batch.slice(offset, take))
                if (held + take) % step == 0 or held + take == group:
                    close_seam()
            else:
                whole = take - take % step if take < group - held else take
                if whole:
                    cells.append(batch.slice(offset, whole))
                else:
                    seam.append(batch.slice(offset, take))
                take = whole or take
            offset += take
            held += take
            if held == group:
                close_seam()
                yield pa.Table.from_batches(cells, schema)
                cells, held = [], 0
    if held:
        close_seam()
        yield pa.Table.from_batches(cells, schema)


def _duckdb_batches(opened: OpenSource, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    try:
        for batch in reader:
            yield batch.replace_schema_metadata(None)
    except (duckdb.Error, pa.ArrowException, OSError) as error:  # DuckDB errors cross Arrow
        raise opened.explain(error) from None


def _copy_with_duckdb(opened: OpenSource, path: Path) -> _Written:
    try:
        opened.con.execute(f"COPY ({opened.sql}) TO {literal(str(path))} (FORMAT parquet)")
    except duckdb.Error as error:
        raise opened.explain(error) from None
    rows = pq.read_metadata(path).num_rows
    return _Written(rows, sha256_file(path), path.stat().st_size)


def _parquet_options(schema: pa.Schema, sample: pa.Table | None = None) -> dict[str, Any]:
    """Snappy pages, with an encoding chosen by type and by ``sample`` (the first row group).

    Floats are byte-stream-split (their bytes compress, and snappy runs about twice as
    fast over them), timestamps and dates delta-encoded (events arrive about in time
    order), and everything else dictionary-encoded where values repeat (the writer falls
    back to plain pages when they do not). Against dictionaries on every column, this
    costs about 40% less CPU for a file within 10% of the size. A column whose first
    ``_DICTIONARY_SAMPLE`` values are mostly distinct (an id) is written plain from the
    start: building a dictionary only to drop it cost a tenth of the encoding here.
    """
    import pyarrow.compute as pc

    encodings: dict[str, str] = {}
    for field in schema:
        if pa.types.is_floating(field.type) and not pa.types.is_float16(field.type):
            encodings[field.name] = "BYTE_STREAM_SPLIT"
        elif pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
            encodings[field.name] = "DELTA_BINARY_PACKED"
    plain = set(encodings)
    if sample is not None and sample.num_rows >= _DICTIONARY_SAMPLE:
        head = sample.slice(0, _DICTIONARY_SAMPLE)
        for field in schema:
            kind = field.type
            if field.name in plain or not (
                pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_binary(kind)
            ):
                continue
            distinct = pc.count_distinct(head.column(field.name)).as_py()
            if distinct > _DICTIONARY_SAMPLE // 2:
                plain.add(field.name)
    return {
        "write_batch_size": _WRITE_BATCH_ROWS,
        "data_page_size": _DATA_PAGE_BYTES,
        "compression": "snappy",
        "use_dictionary": [field.name for field in schema if field.name not in plain],
        "column_encoding": encodings or None,
        # min/max of text cost a tenth of the encoding and prune nothing in unsorted text
        "write_statistics": [
            field.name
            for field in schema
            if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))
        ],
    }


def _row_group_rows(schema: pa.Schema) -> int:
    """Rows a row group holds: about ``_ROW_GROUP_BYTES`` of Arrow data, from the schema alone."""
    width = sum(_field_bytes(field.type) for field in schema) or 1
    return max(_MIN_GROUP_ROWS, min(_MAX_GROUP_ROWS, _ROW_GROUP_BYTES // width))


def _field_bytes(kind: pa.DataType) -> int:
    try:
        return max(1, int(kind.bit_width) // 8)
    except ValueError:
        return 32  # text, binary, nested: an estimate; it only sizes row groups


class _HashingFile(io.RawIOBase):
    """A write-only file that feeds every byte written to SHA-256 on its way to disk."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = path.open("xb")
        self._digest = hashlib.sha256()
        self.size = 0
        self._flushed = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._digest.update(view)
        self._file.write(view)
        self.size += view.nbytes
        if self.size - self._flushed >= _WRITEBACK_BYTES:
            self._start_writeback()
        return view.nbytes

    def _start_writeback(self) -> None:
        """Have the OS start writing what this file holds so far to disk, without waiting:
        the fsync before the snapshot's rename then has little left to wait for (it was a
        third of a second at the end of a 700 MB ingest). POSIX_FADV_DONTNEED starts
        writeback of dirty pages and drops only pages that are already clean."""
        self._file.flush()
        with contextlib.suppress(AttributeError, OSError):
            os.posix_fadvise(
                self._file.fileno(),
                self._flushed,
                self.size - self._flushed,
                os.POSIX_FADV_DONTNEED,
            )
        self._flushed = self.size

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _arrow_schema(path: Path) -> dict[str, str]:
    schema = pq.read_schema(path)
    return {field.name: str(field.type) for field in schema}


def _time_range(
    path: Path, metadata: pq.FileMetaData, column: str | None
) -> tuple[datetime, datetime] | None:
    """(min, max) of ``column``, from the row groups' statistics (the footer), else a scan."""
    if column is None:
        return None
    index = metadata.schema.names.index(column)
    lows, highs = [], []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            if stats is not None and stats.null_count == metadata.row_group(group).num_rows:
                continue
            return _scanned_time_range(path, column)
        lows.append(stats.min)
        highs.append(stats.max)
    if not lows:
        return None
    return _utc(min(lows)), _utc(max(highs))


def _utc(value: Any) -> datetime:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def _scanned_time_range(path: Path, column: str) -> tuple[datetime, datetime] | None:
    con = connect()
    try:
        found = con.sql(
            f"SELECT min({quote(column)}), max({quote(column)}) "
            f"FROM read_parquet({literal(str(path))})"
        ).to_arrow_table()
    finally:
        con.close()
    low, high = found.column(0)[0].as_py(), found.column(1)[0].as_py()
    if low is None or high is None:
        return None
    return _utc(low), _utc(high)


def _read_manifest(folder: Path) -> Snapshot:
    data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    return Snapshot.from_json(data, folder)


def list_snapshots(workspace: Workspace, table: str | None = None) -> list[Snapshot]:
    """Every snapshot in the lake (of one table, if given), oldest first.

    >>> import tempfile
    >>> from loopml.core import Config, Workspace
    >>> list_snapshots(Workspace.create(tempfile.mkdtemp(), Config(project="demo")))
    []
    """
    lake = workspace.lake_dir
    if table is not None:
        check_table_name(table)
        tables = [lake / table]
    else:
        tables = sorted(p for p in lake.iterdir() if p.is_dir() and not p.name.startswith("."))
    found = [
        _read_manifest(folder)
        for table_dir in tables
        if table_dir.is_dir()
        for folder in table_dir.iterdir()
        if not folder.name.startswith(".") and (folder / MANIFEST).is_file()
    ]
    return sorted(found, key=lambda snap: (snap.table, snap.created_at, snap.version))


def get_snapshot(workspace: Workspace, table: str, version: str | None = None) -> Snapshot:
    """One snapshot of ``table``: ``version`` (a prefix is enough), else the newest.

    >>> import tempfile
    >>> from loopml.core import Config, Workspace
    >>> ws = Workspace.create(tempfile.mkdtemp(), Config(project="demo"))
    >>> _ = (ws.root / "t.csv").write_text("id\\n1\\n")
    >>> version = ingest(ws, "t", "t.csv").version
    >>> get_snapshot(ws, "t", version[:4]).version == version
    True
    """
    snapshots = list_snapshots(workspace, table)
    if not snapshots:
        tables = sorted({snap.table for snap in list_snapshots(workspace)})
        raise NotFoundError(
            f"no snapshot of table {table!r} in {workspace.lake_dir} "
            f"(tables with snapshots: {', '.join(tables) or 'none'})",
            hint=f"run `loopml ingest {table}` first",
        )
    if version is None:
        return snapshots[-1]
    matches = [snap for snap in snapshots if snap.version.startswith(version)]
    if len(matches) != 1:
        versions = ", ".join(snap.version for snap in snapshots)
        problem = "no" if not matches else "more than one"
        raise NotFoundError(
            f"{problem} snapshot of table {table!r} matches version {version!r} "
            f"(versions: {versions})",
            hint="give one of the listed versions",
        )
    return matches[0]


def load_snapshot(
    workspace: Workspace,
    table: str,
    version: str | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """A snapshot's rows as a DataFrame (timestamps tz-aware UTC).

    >>> import tempfile
    >>> from loopml.core import Config, Workspace
    >>> ws = Workspace.create(tempfile.mkdtemp(), Config(project="demo"))
    >>> _ = (ws.root / "t.csv").write_text("id,x\\n1,0.5\\n2,1.5\\n")
    >>> _ = ingest(ws, "t", "t.csv")
    >>> load_snapshot(ws, "t", columns=["x"])["x"].tolist()
    [0.5, 1.5]
    """
    snapshot = get_snapshot(workspace, table, version)
    if columns is not None:
        missing = [name for name in columns if name not in snapshot.schema]
        if missing:
            raise NotFoundError(
                f"snapshot {table}@{snapshot.version} has no column {missing[0]!r} "
                f"(columns: {', '.join(snapshot.schema)})"
            )
    return pd.read_parquet(snapshot.data_path, columns=columns)

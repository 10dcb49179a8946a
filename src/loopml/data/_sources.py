"""Reading sources: CSV, Parquet, JSON/JSONL, a DuckDB SQL query over files, a SQLAlchemy URL.

Every source becomes one DuckDB relation whose timestamp columns are normalised to
timezone-aware UTC. That relation is streamed (``iter_batches``), materialised
(``read_source``) or copied straight to Parquet by ``ingest`` without passing through pandas.

Rules for timestamps: a column typed ``TIMESTAMP WITH TIME ZONE`` is kept (values in any
offset become the same instant in UTC); a naive timestamp column is an error unless the
source declares ``timezone``; a text column named as the source's ``timestamp`` (or that
DuckDB's sniffer takes for timestamps) is parsed value by value, and a value without an
offset or that is not a timestamp is an error naming the column and the row.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from loopml.core import (
    ConfigError,
    SchemaError,
    SourceConfig,
    SourceError,
    redact,
)

__all__ = ["iter_batches", "read_source", "to_source_config"]

_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_NAIVE_TYPES = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "TIMESTAMP_US")
_TZ_TYPE = "TIMESTAMP WITH TIME ZONE"
_OFFSET_RE = r"(Z|z|UTC|[+-]\d\d(:?\d\d)?)\s*$"
_ERROR_RE = re.compile(r"loopml:(naive|bad):(\d+)")
DEFAULT_BATCH_SIZE = 65_536


def to_source_config(source: SourceConfig | str | os.PathLike[str]) -> SourceConfig:
    """A ``SourceConfig`` for a source given as a config or a file path.

    >>> to_source_config("data/events.parquet").format
    'parquet'
    """
    if isinstance(source, SourceConfig):
        return source
    path = str(source)
    return SourceConfig(path=path, format=_format_of(Path(path)))


def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose session time zone is UTC."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


def quote(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class OpenSource:
    """A source opened on a DuckDB connection: ``sql`` selects its normalised rows."""

    con: duckdb.DuckDBPyConnection
    config: SourceConfig
    label: str
    raw_sql: str
    sql: str
    columns: list[str]
    types: list[str]
    is_csv: bool = False
    csv_options: str = ""
    keep: list[Any] = field(default_factory=list)
    text_timestamps: set[str] = field(default_factory=set)

    def relation(self, columns: list[str] | None = None) -> duckdb.DuckDBPyRelation:
        if columns is None:
            return self.con.sql(self.sql)
        missing = [name for name in columns if name not in self.columns]
        if missing:
            raise SchemaError(
                f"{self.label}: no column {missing[0]!r}; the columns are {self.columns}",
                hint="ask for columns the source has",
            )
        picked = ", ".join(quote(name) for name in columns)
        return self.con.sql(f"SELECT {picked} FROM ({self.sql})")

    def explain(self, error: Exception) -> Exception:
        """Turn a DuckDB error raised while reading into a loopml error naming the place."""
        return _explain(self, error)


def _format_of(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".zst")]
    fmt = _FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise ConfigError(
            f"cannot tell the format of {path} from its extension",
            hint="name it .csv, .parquet, .json or .jsonl, or set `format:` in the source",
        )
    return fmt


def _resolve_path(config: SourceConfig, base_dir: Path | None) -> Path:
    assert config.path is not None
    path = Path(config.path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not any(ch in str(path) for ch in "*?[") and not path.exists():
        raise SourceError(
            f"source file {path} does not exist",
            hint="fix `path:` in loopml.yaml (relative paths start at the workspace root)",
        )
    return path


@contextlib.contextmanager
def open_source(
    source: SourceConfig | str | os.PathLike[str], *, base_dir: str | os.PathLike[str] | None
) -> Iterator[OpenSource]:
    """Open ``source`` on a fresh DuckDB connection (closed on exit)."""
    config = to_source_config(source)
    base = Path(base_dir).resolve() if base_dir is not None else None
    con = connect()
    try:
        if config.path is not None:
            opened = _open_file(con, config, base)
        elif config.url is not None:
            opened = _open_url(con, config)
        else:
            opened = _open_query(con, config, base)
        yield opened
    finally:
        con.close()


# -- files -------------------------------------------------------------------------------
def _open_file(
    con: duckdb.DuckDBPyConnection, config: SourceConfig, base: Path | None
) -> OpenSource:
    path = _resolve_path(config, base)
    fmt = config.format or _format_of(path)
    label = str(path)
    if path.is_file() and path.stat().st_size == 0:
        raise SourceError(
            f"{label} is empty (0 bytes)", hint="point the source at a file with data"
        )
    as_text: set[str] = set()
    known: list[tuple[str, str]] | None = None
    csv_options = ""
    if fmt == "csv":
        raw, as_text, known, csv_options = _csv_sql(con, config, path)
    elif fmt == "parquet":
        _check_parquet_names(path, label)
        raw = f"SELECT * FROM read_parquet({literal(str(path))})"
    else:
        raw, as_text, known = _json_sql(con, config, path, fmt)
    opened = _finish(con, config, label, raw, as_text, known)
    opened.is_csv = fmt == "csv"
    opened.csv_options = csv_options
    return opened


def _csv_sql(
    con: duckdb.DuckDBPyConnection, config: SourceConfig, path: Path
) -> tuple[str, set[str], list[tuple[str, str]], str]:
    encoding = _duckdb_encoding(config.encoding, str(path))
    header, delimiter = _csv_header(path, config)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise SchemaError(
            f"{path}, line 1: the header repeats the column name(s) {duplicates}",
            hint="give every column a distinct name in the file's first line",
        )
    # skip=0: DuckDB's sniffer may otherwise take a later, wider row for the header and
    # silently drop the rows above it
    options = (
        f"delim={literal(delimiter)}, header=true, skip=0, strict_mode=true, "
        f"encoding={literal(encoding)}"
    )
    base_sql = f"read_csv({literal(str(path))}, {options}"
    try:
        described = con.sql(f"DESCRIBE SELECT * FROM {base_sql})").fetchall()
    except duckdb.Error as error:
        raise _csv_error(path, config, error) from None
    if len(described) != len(header):
        raise _csv_error(path, config, SourceError(f"{len(described)} columns read"))
    as_text = [
        name
        for name, kind, *_ in described
        if name in (config.timestamp, config.created_timestamp)
        or kind == _TZ_TYPE
        or (kind in _NAIVE_TYPES and config.timezone is not None)
    ]
    if as_text:
        types = ", ".join(f"{literal(name)}: 'VARCHAR'" for name in as_text)
        base_sql += f", types={{{types}}}"
    known = [(name, str(kind)) for name, kind, *_ in described]
    return f"SELECT * FROM {base_sql})", set(as_text), known, options


def _duckdb_encoding(encoding: str, label: str) -> str:
    normal = encoding.lower().replace("_", "-")
    aliases = {"utf8": "utf-8", "latin1": "latin-1", "iso-8859-1": "latin-1", "utf16": "utf-16"}
    normal = aliases.get(normal, normal)
    if normal not in ("utf-8", "latin-1", "utf-16"):
        raise ConfigError(
            f"{label}: the encoding {encoding!r} is not supported",
            hint="use utf-8, latin-1 or utf-16, or convert the file to UTF-8",
        )
    return normal


def _csv_header(path: Path, config: SourceConfig) -> tuple[list[str], str]:
    with path.open("rb") as handle:
        sample = handle.read(65_536)
    first = sample.split(b"\n", 1)[0].rstrip(b"\r")
    text = _decode(first, config.encoding, path, line=1)
    delimiter = config.delimiter or _sniff_delimiter(sample, config.encoding)
    header = next(csv.reader([text], delimiter=delimiter), [])
    return [name.strip() for name in header], delimiter


def _sniff_delimiter(sample: bytes, encoding: str) -> str:
    text = sample.decode(encoding, errors="replace")
    lines = text.splitlines()[:50]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _decode(data: bytes, encoding: str, path: Path, *, line: int) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise _encoding_error(path, encoding, line, error) from None


def _encoding_error(path: Path, encoding: str, line: int, error: UnicodeDecodeError) -> SourceError:
    bad = error.object[error.start : error.start + 4]
    return SourceError(
        f"{path}, line {line}, byte {error.start + 1} of the line: {bad!r} is not valid "
        f"{encoding} text",
        hint="declare the file's real encoding in the source (e.g. `encoding: latin-1`) "
        "or convert the file to UTF-8",
    )


def _csv_error(path: Path, config: SourceConfig, error: Exception) -> SourceError:
    """Find the first bad line of a CSV file that DuckDB refused, in one streamed pass."""
    encoding = config.encoding
    delimiter = config.delimiter or ","
    width: int | None = None
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = _decode_or_none(raw, encoding)
            if text is None:
                try:
                    raw.decode(encoding)
                except UnicodeDecodeError as decode_error:
                    return _encoding_error(path, encoding, number, decode_error)
            fields = next(csv.reader([text or ""], delimiter=delimiter), [])
            if width is None:
                width = len(fields)
            elif fields and len(fields) != width and '"' not in (text or ""):
                return SourceError(
                    f"{path}, line {number}: {len(fields)} fields where the header has {width}",
                    hint="fix that line (a missing or extra delimiter, or an unquoted "
                    f"{delimiter!r} inside a value)",
                )
    message = str(error).split("\n\n")[0].strip()
    return SourceError(f"{path}: cannot read it as CSV: {message}", hint=_csv_hint(str(error)))


def _decode_or_none(raw: bytes, encoding: str) -> str | None:
    try:
        return raw.decode(encoding).rstrip("\r\n")
    except UnicodeDecodeError:
        return None


def _csv_hint(message: str) -> str:
    if "Could not convert" in message or "convert string" in message:
        return "fix the value, or make the column text by quoting it consistently"
    return "check the delimiter, quoting and encoding declared for the source"


def _check_parquet_names(path: Path, label: str) -> None:
    if not path.is_file():
        return
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(f"{label} is not a readable Parquet file: {error}") from None
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SchemaError(
            f"{label}: the columns {duplicates} appear more than once",
            hint="rewrite the file with distinct column names",
        )


def _json_sql(
    con: duckdb.DuckDBPyConnection, config: SourceConfig, path: Path, fmt: str
) -> tuple[str, set[str], list[tuple[str, str]]]:
    layout = "newline_delimited" if fmt == "jsonl" else "auto"
    base = f"read_json({literal(str(path))}, format={literal(layout)}"
    try:
        described = con.sql(f"DESCRIBE SELECT * FROM {base})").fetchall()
    except duckdb.Error as error:
        raise SourceError(
            f"{path}: cannot read it as {fmt.upper()}: {str(error).splitlines()[0]}",
            hint="check that every line (JSONL) or the whole file (JSON) is valid JSON",
        ) from None
    declared = {config.timestamp, config.created_timestamp}
    as_text = {
        name
        for name, kind, *_ in described
        if name in declared
        or kind == _TZ_TYPE
        or (kind in _NAIVE_TYPES and config.timezone is not None)
    }
    columns = ", ".join(
        f"{literal(name)}: " + literal("VARCHAR" if name in as_text else kind)
        for name, kind, *_ in described
    )
    known = [(name, str(kind)) for name, kind, *_ in described]
    return f"SELECT * FROM {base}, columns={{{columns}}})", as_text, known


# -- SQL queries and SQLAlchemy URLs ---------------------------------------------------------
def _open_query(
    con: duckdb.DuckDBPyConnection, config: SourceConfig, base: Path | None
) -> OpenSource:
    assert config.query is not None
    if base is not None:
        con.execute(f"SET file_search_path = {literal(str(base))}")
    query = config.query.strip().rstrip(";")
    return _finish(con, config, f"query {query[:80]!r}", f"SELECT * FROM ({query})")


def _open_url(con: duckdb.DuckDBPyConnection, config: SourceConfig) -> OpenSource:
    reader, label = _sqlalchemy_reader(config)
    con.register("loopml_url_source", reader)
    opened = _finish(con, config, label, "SELECT * FROM loopml_url_source", set())
    opened.keep.append(reader)
    return opened


def _sqlalchemy_reader(config: SourceConfig) -> tuple[pa.RecordBatchReader, str]:
    import sqlalchemy as sa

    assert config.url is not None
    what = f"table {config.table}" if config.table and not config.query else "query"
    label = f"{redact(config.url)} ({what})"
    try:
        engine = sa.create_engine(config.url)
    except (sa.exc.ArgumentError, ImportError) as error:
        raise ConfigError(f"{label}: not a usable SQLAlchemy URL: {error}") from None
    if config.query:
        statement: Any = sa.text(config.query)
    else:
        assert config.table is not None
        try:
            table = sa.Table(config.table, sa.MetaData(), autoload_with=engine)
        except sa.exc.NoSuchTableError:
            raise SourceError(f"{label}: no table {config.table!r}", hint="fix `table:`") from None
        except sa.exc.OperationalError as error:
            raise SourceError(f"{label}: cannot connect: {redact(str(error.orig))}") from None
        statement = sa.select(table)
    chunks = _sql_chunks(engine, statement, label)
    try:
        first = next(chunks)
    except StopIteration:
        raise SourceError(f"{label} returned no rows", hint="check the table or query") from None
    schema = first.schema

    def batches() -> Iterator[pa.RecordBatch]:
        yield first
        for chunk in chunks:
            yield chunk.cast(schema) if chunk.schema != schema else chunk

    return pa.RecordBatchReader.from_batches(schema, batches()), label


def _sql_chunks(engine: Any, statement: Any, label: str) -> Iterator[pa.RecordBatch]:
    import sqlalchemy as sa

    try:
        with engine.connect() as connection:
            result = connection.execution_options(
                stream_results=True, yield_per=DEFAULT_BATCH_SIZE
            ).execute(statement)
            names = list(result.keys())
            for rows in result.partitions(DEFAULT_BATCH_SIZE):
                yield _rows_to_batch(rows, names)
    except sa.exc.SQLAlchemyError as error:
        raise SourceError(
            f"{label}: the query failed: {redact(str(error).splitlines()[0])}"
        ) from None
    finally:
        engine.dispose()


def _rows_to_batch(rows: list[Any], names: list[str]) -> pa.RecordBatch:
    """Rows from a DB-API cursor as one Arrow batch (decimals become float64)."""
    arrays = []
    for values in zip(*rows, strict=True):
        array = pa.array(values, from_pandas=True)
        if pa.types.is_decimal(array.type):
            array = array.cast(pa.float64())
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=names)


# -- normalisation -----------------------------------------------------------------------------
def _finish(
    con: duckdb.DuckDBPyConnection,
    config: SourceConfig,
    label: str,
    raw: str,
    as_text: set[str] | None = None,
    known: list[tuple[str, str]] | None = None,
) -> OpenSource:
    """Wrap ``raw`` in the timestamp normalisation; ``known`` (names, types) saves a sniff."""
    as_text = as_text or set()
    if known is None:
        try:
            known = [(row[0], str(row[1])) for row in con.sql(f"DESCRIBE {raw}").fetchall()]
        except duckdb.Error as error:
            message = str(error).splitlines()[0]
            raise SourceError(f"{label}: cannot read it: {message}") from None
    names = [name for name, _ in known]
    kinds = ["VARCHAR" if name in as_text else kind for name, kind in known]
    _check_columns(config, label, names)
    expressions = [
        _normalise(index, name, kind, config, label, name in as_text)
        for index, (name, kind) in enumerate(zip(names, kinds, strict=True))
    ]
    sql = f"SELECT {', '.join(expressions)} FROM ({raw})"
    types = [
        kind if expr == quote(name) else _TZ_TYPE
        for expr, name, kind in zip(expressions, names, kinds, strict=True)
    ]
    return OpenSource(con, config, label, raw, sql, names, types, text_timestamps=as_text)


def _check_columns(config: SourceConfig, label: str, names: list[str]) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SchemaError(f"{label}: the columns {duplicates} appear more than once")
    for key in ("timestamp", "created_timestamp"):
        wanted = getattr(config, key)
        if wanted is not None and wanted not in names:
            raise SchemaError(
                f"{label} has no column {wanted!r} (the source's `{key}:`); "
                f"its columns are {names}",
                hint=f"fix `{key}:` for this source in loopml.yaml",
            )


def _normalise(
    index: int, name: str, kind: str, config: SourceConfig, label: str, as_text: bool
) -> str:
    column = quote(name)
    declared = name in (config.timestamp, config.created_timestamp)
    zone = config.timezone
    if kind in _NAIVE_TYPES or (kind == "DATE" and declared):
        if zone is None:
            raise SchemaError(
                f"{label}, column {name!r}: timestamps without a time zone",
                hint="write the values with an offset (e.g. '+00:00'), or declare the zone "
                "they are in with `timezone: UTC` (or e.g. 'Europe/Paris') in the source",
                reason="naive_timestamp",
                column=name,
            )
        return f"timezone({literal(zone)}, {column}::TIMESTAMP) AS {column}"
    if kind != _TZ_TYPE and (kind.startswith("TIMESTAMPTZ") or kind.endswith("TIME ZONE")):
        # another precision (nanoseconds): microseconds, like every other timestamp
        return f"CAST({column} AS TIMESTAMPTZ) AS {column}"
    if kind == "VARCHAR" and (declared or as_text):
        return f"{_parse_text_timestamp(index, column, zone)} AS {column}"
    if declared and kind != _TZ_TYPE:
        raise SchemaError(
            f"{label}, column {name!r} is {kind}, not a timestamp",
            hint="point `timestamp:` at a column of dates and times",
        )
    return column


def _parse_text_timestamp(index: int, column: str, zone: str | None) -> str:
    has_offset = f"regexp_matches({column}, {literal(_OFFSET_RE)})"
    parsed = f"try_cast({column} AS TIMESTAMPTZ)"
    bad = f"error('loopml:bad:{index}')"
    if zone is None:
        naive_value = f"error('loopml:naive:{index}')"
    else:
        naive_value = f"timezone({literal(zone)}, try_cast({column} AS TIMESTAMP))"
    return (
        f"CASE WHEN {column} IS NULL OR {column} = '' THEN NULL::TIMESTAMPTZ "
        f"WHEN {has_offset} THEN coalesce({parsed}, {bad}) "
        f"WHEN try_cast({column} AS TIMESTAMP) IS NULL THEN {bad} "
        f"ELSE {naive_value} END"
    )


def _explain(opened: OpenSource, error: Exception) -> Exception:
    message = str(error)
    found = _ERROR_RE.search(message)
    if found is None:
        if opened.is_csv and opened.config.path is not None:
            path = Path(opened.label)
            return _csv_error(path, opened.config, error)
        first = message.split("\n\n")[0].strip()
        return SourceError(f"{opened.label}: cannot read it: {first}")
    kind, index = found.group(1), int(found.group(2))
    name = opened.columns[index]
    row, value = _first_bad_row(opened, name, kind)
    where = f"{opened.label}, column {name!r}, row {row}"
    if opened.is_csv:
        where += f" (line {row + 2} if no value spans lines)"
    if kind == "naive":
        return SourceError(
            f"{where}: {value!r} has no time zone",
            hint="write every value with an offset (e.g. '+00:00'), or declare the zone of "
            "the values without one with `timezone: UTC` in the source",
            reason="naive_timestamp",
            column=name,
        )
    return SourceError(
        f"{where}: {value!r} is not a timestamp",
        hint="fix the value, or point `timestamp:` at another column",
    )


def _first_bad_row(opened: OpenSource, name: str, kind: str) -> tuple[int, Any]:
    column = quote(name)
    if kind == "naive":
        bad = (
            f"NOT regexp_matches({column}, {literal(_OFFSET_RE)}) "
            f"AND try_cast({column} AS TIMESTAMP) IS NOT NULL"
        )
    else:
        bad = (
            f"try_cast({column} AS TIMESTAMPTZ) IS NULL AND try_cast({column} AS TIMESTAMP) IS NULL"
        )
    query = (
        f"SELECT loopml_row - 1, value FROM (SELECT row_number() OVER () AS loopml_row, "
        f"{column} AS value FROM ({opened.raw_sql}) AS raw) AS numbered "
        f"WHERE value IS NOT NULL AND value <> '' AND {bad.replace(column, 'value')} "
        "ORDER BY loopml_row LIMIT 1"
    )
    found = opened.con.sql(query).fetchall()
    return (int(found[0][0]), found[0][1]) if found else (-1, None)


# -- public API -------------------------------------------------------------------------------
def iter_batches(
    source: SourceConfig | str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    columns: list[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream a source as Arrow record batches; the file is never loaded whole.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("id,time\\n1,2024-01-01T10:00:00+02:00\\n2,2024-01-02T00:00:00Z\\n")
    >>> batches = list(iter_batches(path, batch_size=1000))
    >>> sum(batch.num_rows for batch in batches), str(batches[0].schema.field("time").type)
    (2, 'timestamp[us, tz=UTC]')
    """
    if batch_size < 1:
        raise ConfigError(
            f"The 'batch_size' parameter of iter_batches must be a positive integer. "
            f"Got {batch_size!r} instead."
        )
    with open_source(source, base_dir=base_dir) as opened:
        try:
            reader = opened.relation(columns).to_arrow_reader(batch_size)
            yield from reader
        except duckdb.Error as error:
            raise opened.explain(error) from None


def read_source(
    source: SourceConfig | str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Read a whole source into a DataFrame (timestamps tz-aware UTC).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("id,time\\n1,2024-01-01T10:00:00+02:00\\n")
    >>> read_source(str(path))["time"].iloc[0]
    Timestamp('2024-01-01 08:00:00+0000', tz='UTC')
    """
    with open_source(source, base_dir=base_dir) as opened:
        try:
            table = opened.relation(columns).to_arrow_table()
        except duckdb.Error as error:
            raise opened.explain(error) from None
    frame: pd.DataFrame = table.to_pandas()
    return frame

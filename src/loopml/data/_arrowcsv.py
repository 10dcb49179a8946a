"""The fast lane of ``ingest`` for plain CSV files: pyarrow's streaming CSV reader.

DuckDB stays the reference: it sniffs the file (dialect, column types) and owns every
error message. This lane only converts what DuckDB already described, with the same
rules (``''`` is NULL; text timestamps need an offset and become UTC microseconds), and
gives up (``None`` from ``open_arrow_csv``, ``LeaveArrowLane`` while reading) on anything
it does not read exactly as DuckDB would. ``ingest`` then starts over through DuckDB,
which reads the file or raises the error that names the place. Parsing here costs about
half the CPU of DuckDB's read plus its export to Arrow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from loopml.data._sources import OpenSource, literal

__all__ = ["ArrowRows", "LeaveArrowLane", "open_arrow_csv"]

_ARROW_TYPES = {
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "VARCHAR": pa.string(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
}
_UTC_MICROS = pa.timestamp("us", tz="UTC")
_BLOCK_BYTES = 4 * 2**20
_UTF8 = re.compile(r"^utf-?8$", re.IGNORECASE)


class LeaveArrowLane(Exception):
    """The Arrow reader met something it does not read as DuckDB would; use DuckDB."""


class ArrowRows(NamedTuple):
    """Batches as read (``batch_schema``: timestamps still text) and ``finish``, which turns
    a table of them into ``schema`` (run on the encoding thread, off the reading one)."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    batch_schema: pa.Schema
    finish: Callable[[pa.Table], pa.Table]


def open_arrow_csv(opened: OpenSource) -> ArrowRows | None:
    """The rows of a CSV source read by pyarrow, or ``None`` where only DuckDB will do."""
    path = _plain_path(opened)
    if path is None:
        return None
    dialect = _dialect(opened, path)
    if dialect is None:
        return None
    types: dict[str, pa.DataType] = {}
    for name, kind in zip(opened.columns, opened.types, strict=True):
        if name in opened.text_timestamps:
            types[name] = pa.string()
        elif kind in _ARROW_TYPES:
            types[name] = _ARROW_TYPES[kind]
        else:
            return None
    text = sorted(opened.text_timestamps)
    schema = pa.schema(
        [pa.field(name, _UTC_MICROS if name in text else kind) for name, kind in types.items()]
    )

    def finish(table: pa.Table) -> pa.Table:
        return _finish(table, text, schema)

    return ArrowRows(schema, _batches(path, dialect, types), pa.schema(types.items()), finish)


def _plain_path(opened: OpenSource) -> Path | None:
    config = opened.config
    if not opened.is_csv or config.path is None or config.timezone is not None:
        return None
    if not _UTF8.match(config.encoding.strip()):
        return None
    path = Path(opened.label)
    plain = path.suffix.lower() in (".csv", ".tsv", ".txt") and path.is_file()
    return path if plain and not any(ch in str(path) for ch in "*?[") else None


def _dialect(opened: OpenSource, path: Path) -> dict[str, str] | None:
    """DuckDB's sniffed dialect when pyarrow can follow it exactly, else ``None``."""
    found = opened.con.execute(
        "SELECT Delimiter, Quote, Escape, Comment, SkipRows, HasHeader, DateFormat "
        f"FROM sniff_csv({literal(str(path))}, {opened.csv_options})"
    ).fetchall()
    delimiter, quote, escape, comment, skip, header, date_format = found[0]
    quote = "" if quote == "(empty)" else quote
    escape = "" if escape == "(empty)" else escape
    if len(delimiter) != 1 or quote not in ("", '"', "'") or escape not in ("", quote):
        return None
    if comment != "(empty)" or skip != 0 or not header or len(opened.columns) < 2:
        return None  # (one column: DuckDB and pyarrow disagree on what a blank line is)
    if date_format not in (None, "", "%Y-%m-%d"):
        return None
    return {"delimiter": delimiter, "quote": quote}


def _batches(
    path: Path, dialect: dict[str, str], types: dict[str, pa.DataType]
) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pacsv

    quote = dialect["quote"]
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                block_size=_BLOCK_BYTES, skip_rows=1, column_names=list(types)
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=dialect["delimiter"],
                quote_char=quote or False,
                double_quote=bool(quote),
                escape_char=False,
                newlines_in_values=bool(quote),
                ignore_empty_lines=True,  # as DuckDB skips them (one-column files excluded)
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=[""],
                true_values=["true", "True", "TRUE"],
                false_values=["false", "False", "FALSE"],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowException, OSError) as error:
        raise LeaveArrowLane(str(error)) from None
    try:
        yield from reader
    except (pa.ArrowException, OSError) as error:
        raise LeaveArrowLane(str(error)) from None
    finally:
        reader.close()


def _finish(table: pa.Table, text: list[str], schema: pa.Schema) -> pa.Table:
    """Text timestamps as UTC microseconds.

    pyarrow's cast to a zoned timestamp refuses a value without an offset (and DuckDB's
    extras: a 'UTC' suffix, nanoseconds, hour 24), so every value it accepts reads the same
    instant DuckDB would; a refusal sends the file to DuckDB, which names the value.
    """
    import pyarrow.compute as pc

    columns = table.columns
    for name in text:
        index = table.schema.get_field_index(name)
        try:
            columns[index] = pc.cast(columns[index], _UTC_MICROS)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise LeaveArrowLane(f"column {name!r}: {error}") from None
    return pa.Table.from_arrays(columns, schema=schema)

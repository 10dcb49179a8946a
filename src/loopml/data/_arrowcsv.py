"""The fast lane of ``ingest`` for plain CSV files: pyarrow's CSV parser on pieces of the
file cut at record boundaries, two pieces at a time.

DuckDB stays the reference: it sniffs the file (dialect, column types) and owns every
error message. This lane only converts what DuckDB already described, with the same
rules (``''`` is NULL; text timestamps need an offset and become UTC microseconds), and
gives up (``None`` from ``open_arrow_csv``, ``LeaveArrowLane`` while reading) on anything
it does not read exactly as DuckDB would. ``ingest`` then starts over through DuckDB,
which reads the file or raises the error that names the place. Parsing here costs about
half the CPU of DuckDB's read plus its export to Arrow.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
_CHUNK_BYTES = 2 * 2**20  # of CSV text per parse task (larger ones parse slower here)
_MAX_RECORD_BYTES = 64 * 2**20  # a record longer than this goes to DuckDB
_PARSERS = 2  # threads parsing chunks (the encoder is one more)
_UTF8 = re.compile(r"^utf-?8$", re.IGNORECASE)


class LeaveArrowLane(Exception):
    """The Arrow reader met something it does not read as DuckDB would; use DuckDB."""


class ArrowRows(NamedTuple):
    """The rows of ``schema`` (timestamps already UTC microseconds), in file order."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]


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
            # pyarrow's parser for a zoned timestamp refuses a value without an offset (and
            # DuckDB's extras: a 'UTC' suffix, nanoseconds, hour 24), so every value it
            # accepts reads the same instant DuckDB would; a refusal sends the file to
            # DuckDB, which names the value
            types[name] = _UTC_MICROS
        elif kind in _ARROW_TYPES:
            types[name] = _ARROW_TYPES[kind]
        else:
            return None
    schema = pa.schema(list(types.items()))
    return ArrowRows(schema, _batches(path, dialect, types, schema))


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
    path: Path,
    dialect: dict[str, str],
    types: dict[str, pa.DataType],
    schema: pa.Schema,
) -> Iterator[pa.RecordBatch]:
    """The file's rows, parsed in chunks of whole records on ``_PARSERS`` threads, in order.

    pyarrow's own streaming reader parses on one thread; cutting the file at record
    boundaries here lets two threads parse while a third encodes Parquet, and keeps
    memory bounded (a few chunks in flight) however large the file is.
    """
    import pyarrow.csv as pacsv

    quote = dialect["quote"]
    read_options = pacsv.ReadOptions(
        column_names=list(types), use_threads=False, block_size=2 * _CHUNK_BYTES
    )
    parse_options = pacsv.ParseOptions(
        delimiter=dialect["delimiter"],
        quote_char=quote or False,
        double_quote=bool(quote),
        escape_char=False,
        newlines_in_values=bool(quote),
        ignore_empty_lines=True,  # as DuckDB skips them (one-column files excluded)
    )
    convert_options = pacsv.ConvertOptions(
        column_types=types,
        null_values=[""],
        true_values=["true", "True", "TRUE"],
        false_values=["false", "False", "FALSE"],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )

    def parse(chunk: memoryview) -> pa.Table:
        try:
            table = pacsv.read_csv(
                pa.py_buffer(chunk),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
        except (pa.ArrowException, OSError) as error:
            raise LeaveArrowLane(str(error)) from None
        return pa.Table.from_arrays(table.columns, schema=schema)

    workers = max(1, min(_PARSERS, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="loopml-csv") as pool:
        queued: deque[Future[pa.Table]] = deque()
        try:
            for chunk in _record_chunks(path, quote, dialect["delimiter"], workers + 2):
                queued.append(pool.submit(parse, chunk))
                if len(queued) > workers:
                    yield from queued.popleft().result().to_batches()
            while queued:
                yield from queued.popleft().result().to_batches()
        finally:
            for future in queued:
                future.cancel()


def _record_chunks(path: Path, quote: str, delimiter: str, buffers: int) -> Iterator[memoryview]:
    """The file after its header line, in pieces of about ``_CHUNK_BYTES`` that each end
    at a record boundary (a newline outside quotes).

    The pieces are views into ``buffers`` reused buffers (fresh memory for every piece cost
    a page fault per 4 KiB here, a third of a second of system time per GB): a view stays
    valid until ``buffers - 1`` more pieces have been taken.
    """
    quote_byte, delim = quote.encode(), delimiter.encode()
    ring = [bytearray(2 * _CHUNK_BYTES) for _ in range(buffers)]
    rest = memoryview(b"")
    header = True
    try:
        with path.open("rb") as file:
            for slot in itertools.cycle(range(buffers)):
                held = len(rest)
                if held + _CHUNK_BYTES > len(ring[slot]):
                    if held > _MAX_RECORD_BYTES:  # no newline for this long: '\r' alone?
                        raise LeaveArrowLane(f"no record boundary in {held:,} bytes")
                    ring[slot] = bytearray(held + _CHUNK_BYTES)
                data = ring[slot]
                data[:held] = rest
                got = file.readinto(memoryview(data)[held : held + _CHUNK_BYTES])
                if not got:
                    break
                size, begin = held + got, 0
                if header:
                    begin = _header_end(data, size, quote_byte)
                    header = begin == 0
                if header:
                    cut = begin
                elif got < _CHUNK_BYTES:  # the end of the file: nothing to cut
                    cut = size
                else:
                    cut = _record_cut(data, begin, size, quote_byte, delim)
                if cut > begin:
                    yield memoryview(data)[begin:cut]
                rest = memoryview(data)[cut:size] if not header else memoryview(data)[:size]
            if len(rest) and not header:
                yield rest
    except OSError as error:
        raise LeaveArrowLane(str(error)) from None


def _header_end(data: bytearray, size: int, quote: bytes) -> int:
    """Where the first record (the header) ends: after its newline, 0 if not in ``data``."""
    start = 0
    while (newline := data.find(b"\n", start, size)) >= 0:
        if not quote or data.count(quote, 0, newline) % 2 == 0:
            return newline + 1
        start = newline + 1
    return 0


def _record_cut(data: bytearray, begin: int, size: int, quote: bytes, delimiter: bytes) -> int:
    """Where the last whole record in ``data[begin:size]`` ends: just after a newline
    outside quotes (``begin`` when there is none); ``begin`` is a record boundary.

    Quotes are paired by parity (RFC 4180: a quoted field doubles its quotes), which holds
    only when every opening quote starts a field and every closing one ends it; a quote
    anywhere else (``5" screen``) makes the cut uncertain, and the file goes to DuckDB.
    """
    cut = data.rfind(b"\n", begin, size) + 1
    if cut == 0 or not quote or data.find(quote, begin, cut) < 0:
        return max(cut, begin)
    import numpy as np

    raw = np.frombuffer(data, dtype=np.uint8, count=size)
    quotes = np.flatnonzero(raw[begin:cut] == quote[0]) + begin
    bounds = np.array([delimiter[0], 10, 13, quote[0]], dtype=np.uint8)
    while cut > begin and int(np.searchsorted(quotes, cut)) % 2:
        opened = int(quotes[int(np.searchsorted(quotes, cut)) - 1])  # the cut is in its field
        if opened > begin and raw[opened - 1] not in bounds:
            raise LeaveArrowLane("a quote inside an unquoted value: records cannot be cut safely")
        cut = max(data.rfind(b"\n", begin, opened) + 1, begin)
    inside = quotes[: int(np.searchsorted(quotes, cut))]
    opening, closing = inside[0::2], inside[1::2]
    starts = np.isin(raw[np.maximum(opening - 1, 0)], bounds) | (opening == begin)
    ends = np.isin(raw[closing + 1], bounds)  # a closing quote is before the cut's newline
    if not (starts.all() and ends.all()):
        raise LeaveArrowLane("a quote inside an unquoted value: records cannot be cut safely")
    return cut

"""Open a DataFrame, a snapshot, a Parquet file or a source file as a DuckDB relation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from loopml.core import ConfigError, SourceConfig
from loopml.data._snapshots import DATA_FILE, Snapshot
from loopml.data._sources import connect, literal, open_source

__all__ = ["DataLike", "Table", "open_table"]

DataLike = pd.DataFrame | Snapshot | str | os.PathLike[str]

_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
)


@dataclass
class Table:
    """A relation with its column names and DuckDB types; ``from_sql`` reads its rows."""

    con: duckdb.DuckDBPyConnection
    from_sql: str
    columns: list[str]
    types: list[str]
    label: str
    parquet: Path | None = None
    frame: pd.DataFrame | None = None  # the DataFrame itself, when the rows came from one

    def kind(self, name: str) -> str:
        """'int', 'float', 'bool', 'timestamp' or 'string' for a column."""
        return duck_kind(self.types[self.columns.index(name)])


def duck_kind(duck_type: str) -> str:
    """Map a DuckDB type to 'int', 'float', 'bool', 'timestamp' or 'string'."""
    if duck_type in ("FLOAT", "DOUBLE") or duck_type.startswith("DECIMAL"):
        return "float"
    if duck_type in _NUMERIC:
        return "int"
    if duck_type == "BOOLEAN":
        return "bool"
    if duck_type.startswith("TIMESTAMP") or duck_type == "DATE":
        return "timestamp"
    return "string"


@contextmanager
def open_table(data: Any) -> Iterator[Table]:
    """Open ``data`` for a query; the connection closes on exit."""
    if isinstance(data, pd.DataFrame):
        con = connect()
        con.register("loopml_frame", data)
        try:
            table = _describe(con, "loopml_frame", "DataFrame", None)
            table.frame = data
            yield table
        finally:
            con.close()
        return
    if isinstance(data, SourceConfig):
        with open_source(data, base_dir=None) as opened:
            yield Table(opened.con, f"({opened.sql})", opened.columns, opened.types, opened.label)
        return
    if not isinstance(data, Snapshot | str | os.PathLike):
        raise ConfigError(
            "The 'data' parameter must be a DataFrame, a Snapshot or a path to a Parquet "
            f"file. Got {type(data).__name__} instead."
        )
    path = data.data_path if isinstance(data, Snapshot) else Path(data)
    if path.is_dir() and (path / DATA_FILE).is_file():
        path = path / DATA_FILE
    if path.suffix.lower() not in (".parquet", ".pq"):
        with open_source(str(path), base_dir=None) as opened:
            yield Table(opened.con, f"({opened.sql})", opened.columns, opened.types, opened.label)
        return
    if not path.is_file():
        raise ConfigError(f"{path} does not exist", hint="give a Parquet file or a snapshot")
    con = connect()
    try:
        yield _describe(con, f"read_parquet({literal(str(path))})", str(path), path)
    finally:
        con.close()


def _describe(
    con: duckdb.DuckDBPyConnection, from_sql: str, label: str, parquet: Path | None
) -> Table:
    rows = con.sql(f"DESCRIBE SELECT * FROM {from_sql}").fetchall()
    return Table(con, from_sql, [r[0] for r in rows], [str(r[1]) for r in rows], label, parquet)

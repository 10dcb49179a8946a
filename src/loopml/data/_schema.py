"""Schemas inferred from data: type, nullability, range, category domain and role per column."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from loopml.core import SchemaError, atomic_write_text
from loopml.data._frames import Table, open_table
from loopml.data._sources import quote

__all__ = ["ColumnSchema", "Schema", "infer_schema"]

Dtype = Literal["int", "float", "bool", "string", "category", "timestamp"]
Role = Literal["feature", "timestamp", "target", "id"]
DTYPES = ("int", "float", "bool", "string", "category", "timestamp")
ROLES = ("feature", "timestamp", "target", "id")
MAX_CATEGORIES = 1000
_ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|_key$|^key$)", re.IGNORECASE)


@dataclass(frozen=True)
class ColumnSchema:
    """What one column holds. ``min``/``max`` are numbers, or ISO strings for timestamps.

    >>> ColumnSchema("amount", "float", nullable=False, min=0.0).role
    'feature'
    """

    name: str
    dtype: Dtype
    nullable: bool = True
    min: float | str | None = None
    max: float | str | None = None
    categories: tuple[Any, ...] | None = None
    role: Role = "feature"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise SchemaError(
                f"The 'dtype' of column {self.name!r} must be one of {', '.join(DTYPES)}. "
                f"Got {self.dtype!r} instead."
            )
        if self.role not in ROLES:
            raise SchemaError(
                f"The 'role' of column {self.name!r} must be one of {', '.join(ROLES)}. "
                f"Got {self.role!r} instead."
            )


@dataclass(frozen=True)
class Schema:
    """The expected columns of a table, JSON-serialisable.

    >>> schema = Schema.from_json({"columns": {"amount": {"dtype": "float", "min": 0.0}}})
    >>> schema["amount"].dtype, Schema.from_json(schema.to_json()) == schema
    ('float', True)
    """

    columns: dict[str, ColumnSchema] = field(default_factory=dict)

    def __getitem__(self, name: str) -> ColumnSchema:
        return self.columns[name]

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    @property
    def target(self) -> str | None:
        """The column whose role is 'target', if any."""
        return next((c.name for c in self.columns.values() if c.role == "target"), None)

    @property
    def timestamp(self) -> str | None:
        """The column whose role is 'timestamp', if any."""
        return next((c.name for c in self.columns.values() if c.role == "timestamp"), None)

    @property
    def features(self) -> list[str]:
        """Columns whose role is 'feature'."""
        return [c.name for c in self.columns.values() if c.role == "feature"]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        columns = {}
        for name, column in self.columns.items():
            data = asdict(column)
            data.pop("name")
            if column.categories is not None:
                data["categories"] = list(column.categories)
            columns[name] = data
        return {"format": 1, "columns": columns}

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Schema:
        """Read what ``to_json`` wrote (a dict or its JSON text)."""
        raw = json.loads(data) if isinstance(data, str) else data
        if not isinstance(raw, dict) or not isinstance(raw.get("columns"), dict):
            raise SchemaError("a schema must be a JSON object with a 'columns' object")
        columns = {}
        for name, spec in raw["columns"].items():
            spec = dict(spec)
            if spec.get("categories") is not None:
                spec["categories"] = tuple(spec["categories"])
            try:
                columns[name] = ColumnSchema(name=name, **spec)
            except TypeError as error:
                raise SchemaError(f"schema column {name!r}: {error}") from None
        return cls(columns)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the schema as JSON, atomically."""
        target = Path(path)
        atomic_write_text(target, json.dumps(self.to_json(), indent=2, default=str))
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schema:
        """Read a schema written by ``save``."""
        target = Path(path)
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SchemaError(f"schema file {target} does not exist") from None
        try:
            return cls.from_json(text)
        except json.JSONDecodeError as error:
            raise SchemaError(f"{target}, line {error.lineno}: not valid JSON") from None


def infer_schema(data: Any, *, target: str | None = None, timestamp: str | None = None) -> Schema:
    """Infer a schema from a DataFrame, a ``Snapshot`` or a Parquet path, in one DuckDB scan.

    A text column with at most 1,000 distinct values that repeat (fewer distinct values
    than half the rows) is a 'category'; other text is 'string'. Columns named like
    ``id``, ``*_id`` or ``*_key`` get the role 'id'.

    >>> frame = pd.DataFrame({"user_id": [1, 2, 3, 4], "country": ["fr", "fr", "de", "fr"],
    ...                       "amount": [1.0, 2.5, None, 4.0], "label": [0, 1, 0, 0]})
    >>> schema = infer_schema(frame, target="label")
    >>> [(c.name, c.dtype, c.role) for c in schema.columns.values()]
    [('user_id', 'int', 'id'), ('country', 'category', 'feature'),
     ('amount', 'float', 'feature'), ('label', 'int', 'target')]
    >>> schema["amount"].nullable, schema["amount"].max, schema["country"].categories
    (True, 4.0, ('de', 'fr'))
    """
    with open_table(data) as table:
        for wanted, what in ((target, "target"), (timestamp, "timestamp")):
            if wanted is not None and wanted not in table.columns:
                raise SchemaError(
                    f"{table.label} has no {what} column {wanted!r}; columns: {table.columns}",
                    hint=f"pass an existing column as {what}=",
                )
        stats = _column_stats(table)
        categories = _categories(table, stats)
    if timestamp is None:
        stamps = [name for name in table.columns if table.kind(name) == "timestamp"]
        timestamp = stamps[0] if len(stamps) == 1 else None
    columns = {
        name: _column(name, table.kind(name), stats, categories.get(name), target, timestamp)
        for name in table.columns
    }
    return Schema(columns)


def _column_stats(table: Table) -> dict[str, Any]:
    parts = ["count(*)"]
    for name in table.columns:
        column, kind = quote(name), table.kind(name)
        parts.append(f"count({column})")
        if kind in ("int", "float"):
            parts += [f"min({column})", f"max({column})"]
        elif kind == "timestamp":
            parts += [
                f"epoch_us(CAST(min({column}) AS TIMESTAMPTZ))",
                f"epoch_us(CAST(max({column}) AS TIMESTAMPTZ))",
            ]
        if kind == "string":
            parts.append(f"approx_count_distinct({column})")
    values = table.con.sql(f"SELECT {', '.join(parts)} FROM {table.from_sql}").fetchall()[0]
    stats: dict[str, Any] = {"__rows__": values[0]}
    position = 1
    for name in table.columns:
        kind = table.kind(name)
        width = 1 + (2 if kind in ("int", "float", "timestamp") else 0) + (kind == "string")
        stats[name] = values[position : position + width]
        position += width
    return stats


def _categories(table: Table, stats: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    rows = stats["__rows__"]
    wanted = [
        name
        for name in table.columns
        if table.kind(name) == "string"
        and stats[name][1] <= MAX_CATEGORIES
        and stats[name][1] * 2 <= max(stats[name][0], 2)
    ]
    found: dict[str, tuple[Any, ...]] = {}
    for name in wanted:
        column = quote(name)
        values = table.con.sql(
            f"SELECT DISTINCT {column} FROM {table.from_sql} WHERE {column} IS NOT NULL "
            f"ORDER BY 1 LIMIT {MAX_CATEGORIES + 1}"
        ).fetchall()
        if len(values) <= MAX_CATEGORIES and rows > 0:
            found[name] = tuple(str(v[0]) for v in values)
    return found


def _column(
    name: str,
    kind: str,
    stats: dict[str, Any],
    categories: tuple[Any, ...] | None,
    target: str | None,
    timestamp: str | None,
) -> ColumnSchema:
    count, *rest = stats[name]
    nullable = bool(count < stats["__rows__"])
    role: Role = "feature"
    if name == target:
        role = "target"
    elif name == timestamp:
        role = "timestamp"
    elif _ID_NAME.search(name) and kind in ("int", "string"):
        role = "id"
    dtype: Dtype = "category" if categories is not None else kind  # type: ignore[assignment]
    low: float | str | None = None
    high: float | str | None = None
    if kind in ("int", "float") and rest and rest[0] is not None:
        low, high = float(rest[0]), float(rest[1])
    elif kind == "timestamp" and rest and rest[0] is not None:
        low, high = _iso(rest[0]), _iso(rest[1])
    return ColumnSchema(name, dtype, nullable, low, high, categories, role)


def _iso(epoch_us: int) -> str:
    return str(pd.Timestamp(int(epoch_us), unit="us", tz="UTC").isoformat())

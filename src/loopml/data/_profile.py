"""Profiles: the persisted, mergeable statistics of a table, computed by DuckDB.

Per numeric column: ``count`` (non-null values), ``nulls``, ``min``, ``max``, ``mean``,
``std`` (sample), ``sum``, ``m2`` (sum of squared deviations, for merging), ``quantiles``
(101 values at 0%, 1%, ..., 100%) and ``histogram`` = ``{"edges": [...], "counts": [...]}``
with equal-width bins (the first bin also holds values below ``edges[0]``, the last one
values above ``edges[-1]``). Per categorical column (text, booleans): ``count``, ``nulls``
and ``categories`` = ``{value: count}`` for the 1,000 most frequent values plus an
``"__other__"`` count. Timestamp columns carry ``count``, ``nulls``, ``min`` and ``max``.

How it is computed: one DuckDB scan gives every count, null count, min, max, mean, std and
sum; one ``GROUPING SETS`` query counts the values of every categorical column; then each
numeric column in turn is fetched (without its nulls), sorted once in NumPy, and its exact
quantiles and histogram read off the sorted values (a binary search per edge). Sorting is
what exact quantiles cost; DuckDB's ``quantile_cont`` over 101 levels measured 3-4x slower.
Only one numeric column is in memory at a time.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml.core import SchemaError, atomic_write_text, utcnow
from loopml.data._frames import Table, open_table
from loopml.data._sources import quote

__all__ = ["ColumnProfile", "Profile", "profile"]

Kind = Literal["numeric", "categorical", "timestamp"]
QUANTILE_LEVELS = tuple(round(i / 100, 2) for i in range(101))
TOP_CATEGORIES = 1000
OTHER = "__other__"
DEFAULT_BINS = 30


@dataclass(frozen=True)
class ColumnProfile:
    """The statistics of one column (see the module docstring for the keys).

    >>> column = profile(pd.DataFrame({"x": [1.0, 2.0, None]}))["x"]
    >>> column.count, column.nulls, column.mean
    (2, 1, 1.5)
    """

    name: str
    kind: Kind
    count: int
    nulls: int
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    std: float | None = None
    sum: float | None = None
    m2: float | None = None
    quantiles: list[float] | None = None
    histogram: dict[str, list[Any]] | None = None
    categories: dict[str, int] | None = None
    quantiles_exact: bool = True

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "count": self.count, "nulls": self.nulls}
        if self.kind != "categorical":
            data.update(min=self.min, max=self.max)
        if self.kind == "numeric":
            data.update(
                mean=self.mean,
                std=self.std,
                sum=self.sum,
                m2=self.m2,
                quantiles=self.quantiles,
                histogram=self.histogram,
                quantiles_exact=self.quantiles_exact,
            )
        if self.kind == "categorical":
            data["categories"] = self.categories
        return data


@dataclass(frozen=True)
class Profile:
    """A table's profile: ``rows`` and one ``ColumnProfile`` per column.

    >>> frame = pd.DataFrame({"amount": np.arange(100.0), "country": ["fr", "de"] * 50})
    >>> p = profile(frame)
    >>> p["amount"].quantiles[50], p["amount"].histogram["counts"][:3], p["country"].categories
    (49.5, [4, 3, 3], {'de': 50, 'fr': 50})
    >>> both = p.merge(p)
    >>> both.rows, both["amount"].count, round(both["amount"].std, 3)
    (200, 200, 28.939)
    """

    rows: int
    columns: dict[str, ColumnProfile]
    source: str = ""
    created_at: datetime = field(default_factory=utcnow)

    def __getitem__(self, name: str) -> ColumnProfile:
        return self.columns[name]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "format": 1,
            "rows": self.rows,
            "source": self.source,
            "created_at": self.created_at.isoformat(),
            "columns": {name: column.to_json() for name, column in self.columns.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Profile:
        """Read what ``to_json`` wrote (a dict or its JSON text)."""
        raw = json.loads(data) if isinstance(data, str) else data
        columns = {name: ColumnProfile(name=name, **spec) for name, spec in raw["columns"].items()}
        return cls(
            rows=int(raw["rows"]),
            columns=columns,
            source=raw.get("source", ""),
            created_at=datetime.fromisoformat(raw["created_at"]),
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the profile as JSON, atomically."""
        target = Path(path)
        atomic_write_text(target, json.dumps(self.to_json(), indent=1))
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Profile:
        """Read a profile written by ``save``."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def merge(self, other: Profile) -> Profile:
        """The profile of both tables together.

        Counts, nulls, sums, min, max, category counts and histograms (on the same edges)
        add exactly; mean and std are combined exactly from ``sum`` and ``m2``; quantiles
        are interpolated from the merged histogram (``quantiles_exact`` becomes False).
        """
        if set(self.columns) != set(other.columns):
            raise SchemaError(
                "cannot merge profiles of different columns: "
                f"{sorted(set(self.columns) ^ set(other.columns))} are in only one",
                hint="profile the same columns on both sides",
            )
        merged = {
            name: _merge_column(column, other.columns[name])
            for name, column in self.columns.items()
        }
        return Profile(self.rows + other.rows, merged, self.source, utcnow())


def profile(data: Any, *, bins: int = DEFAULT_BINS, reference: Profile | None = None) -> Profile:
    """Profile a DataFrame, a ``Snapshot`` or a Parquet path with DuckDB.

    With ``reference``, numeric histograms use the reference's edges, so the two profiles
    can be compared bin by bin (drift) or merged.

    >>> train = profile(pd.DataFrame({"x": np.arange(30.0)}))
    >>> live = profile(pd.DataFrame({"x": np.arange(30.0) + 100}), reference=train)
    >>> live["x"].histogram["counts"][-1], train.merge(live).rows
    (30, 60)
    """
    if not 20 <= bins <= 50:
        raise SchemaError(
            f"The 'bins' parameter of profile must be 20 to 50. Got {bins!r} instead."
        )
    with open_table(data) as table:
        kinds = {name: _profile_kind(table.kind(name)) for name in table.columns}
        rows, stats = _main_pass(table, kinds)
        shapes = {
            name: _distribution(table, name, stats[name], bins, reference)
            for name, kind in kinds.items()
            if kind == "numeric"
        }
        categories = _category_pass(table, [n for n, k in kinds.items() if k == "categorical"])
    columns = {
        name: _build(name, kind, stats[name], shapes.get(name), categories.get(name))
        for name, kind in kinds.items()
    }
    return Profile(rows, columns, table.label, utcnow())


def _profile_kind(kind: str) -> Kind:
    if kind in ("int", "float"):
        return "numeric"
    if kind == "timestamp":
        return "timestamp"
    return "categorical"


# -- quantiles and histograms ------------------------------------------------------------
def _distribution(
    table: Table, name: str, stats: list[Any], bins: int, reference: Profile | None
) -> tuple[list[float], dict[str, list[Any]]] | None:
    """Exact quantiles and the histogram of one numeric column, from its sorted values."""
    values = _numeric_values(table, name)
    values.sort()
    known = reference.columns.get(name) if reference is not None else None
    if known is not None and known.histogram is not None:
        edges = [float(e) for e in known.histogram["edges"]]
    else:
        edges = _edges(values, bins)
    inner = np.searchsorted(values, np.asarray(edges[1:-1]), side="left")
    counts = np.diff(np.concatenate([[0], inner, [len(values)]])).tolist()
    if len(values) == 0:
        return None if not counts else ([], {"edges": edges, "counts": counts})
    return _sorted_quantiles(values), {"edges": edges, "counts": counts}


def _numeric_values(table: Table, name: str) -> np.ndarray:
    """The column's values as float64, without nulls and NaNs (a copy, free to sort).

    From a DataFrame's NumPy column directly (the same values DuckDB's cast gives, without
    a query per column: a third of the profile's time on a 1M-row frame), else by DuckDB.
    """
    series = table.frame[name] if table.frame is not None else None
    if series is not None and isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf":
        values = series.to_numpy(dtype=np.float64)
        kept: np.ndarray = values[~np.isnan(values)]  # a boolean mask always copies
        return kept
    column = quote(name)
    fetched = table.con.sql(
        f"SELECT {column}::DOUBLE AS v FROM {table.from_sql} "
        f"WHERE {column} IS NOT NULL AND NOT isnan({column}::DOUBLE)"
    ).to_arrow_table()
    return np.array(fetched.column(0).to_numpy(), dtype=np.float64)


def _edges(values: np.ndarray, bins: int) -> list[float]:
    low, high = (float(values[0]), float(values[-1])) if len(values) else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return [float(e) for e in np.linspace(low, high, bins + 1)]


def _sorted_quantiles(values: np.ndarray) -> list[float]:
    """NumPy's default ('linear') quantiles of already sorted values."""
    positions = np.asarray(QUANTILE_LEVELS) * (len(values) - 1)
    below = np.floor(positions).astype(np.int64)
    above = np.minimum(below + 1, len(values) - 1)
    fraction = positions - below
    low, high = values[below], values[above]
    return [float(v) for v in low + (high - low) * fraction]


# -- the scans -------------------------------------------------------------------------------
def _main_pass(table: Table, kinds: dict[str, Kind]) -> tuple[int, dict[str, list[Any]]]:
    parts: list[str] = ["count(*)"]
    widths: dict[str, int] = {}
    for name, kind in kinds.items():
        column = quote(name)
        exprs = [f"count({column})"]
        if kind == "numeric":
            value = f"{column}::DOUBLE"
            exprs += [
                f"min({value})",
                f"max({value})",
                f"avg({value})",
                f"stddev_samp({value})",
                f"sum({value})",
            ]
        elif kind == "timestamp":
            exprs += [
                f"epoch_us(CAST(min({column}) AS TIMESTAMPTZ))",
                f"epoch_us(CAST(max({column}) AS TIMESTAMPTZ))",
            ]
        widths[name] = len(exprs)
        parts += exprs
    values = table.con.sql(f"SELECT {', '.join(parts)} FROM {table.from_sql}").fetchall()[0]
    rows = int(values[0])
    stats: dict[str, list[Any]] = {}
    position = 1
    for name in kinds:
        stats[name] = [rows, *values[position : position + widths[name]]]
        position += widths[name]
    return rows, stats


def _category_pass(table: Table, names: list[str]) -> dict[str, dict[str, int]]:
    if not names:
        return {}
    sets = ", ".join(f"({quote(n)})" for n in names)
    flags = ", ".join(f"grouping({quote(n)}) AS g{i}" for i, n in enumerate(names))
    values = ", ".join(f"{quote(n)}::VARCHAR AS v{i}" for i, n in enumerate(names))
    frame = (
        table.con.sql(
            f"SELECT {flags}, {values}, count(*) AS n FROM {table.from_sql} "
            f"GROUP BY GROUPING SETS ({sets})"
        )
        .to_arrow_table()
        .to_pandas()
    )
    found: dict[str, dict[str, int]] = {}
    for i, name in enumerate(names):
        part = frame.loc[(frame[f"g{i}"] == 0) & frame[f"v{i}"].notna(), [f"v{i}", "n"]]
        part = part.sort_values(["n", f"v{i}"], ascending=[False, True])
        top = part.head(TOP_CATEGORIES)
        counts = {str(v): int(n) for v, n in zip(top[f"v{i}"], top["n"], strict=True)}
        counts = dict(sorted(counts.items()))
        rest = int(part["n"].iloc[TOP_CATEGORIES:].sum())
        if rest:
            counts[OTHER] = rest
        found[name] = counts
    return found


def _build(
    name: str,
    kind: Kind,
    stats: list[Any],
    shape: tuple[list[float], dict[str, list[Any]]] | None,
    categories: dict[str, int] | None,
) -> ColumnProfile:
    rows, count = int(stats[0]), int(stats[1])
    nulls = rows - count
    if kind == "categorical":
        return ColumnProfile(name, kind, count, nulls, categories=categories or {})
    if kind == "timestamp":
        low, high = (_iso(v) if v is not None else None for v in stats[2:4])
        return ColumnProfile(name, kind, count, nulls, min=low, max=high)
    low, high, mean, std, total = stats[2:7]
    quantiles, histogram = shape if shape is not None else (None, None)
    std = float(std) if std is not None else (0.0 if count == 1 else None)
    m2 = std**2 * (count - 1) if std is not None else None
    return ColumnProfile(
        name,
        kind,
        count,
        nulls,
        min=_num(low),
        max=_num(high),
        mean=_num(mean),
        std=std,
        sum=_num(total) or 0.0,
        m2=m2,
        quantiles=quantiles or None,
        histogram=histogram,
    )


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _iso(epoch_us: int) -> str:
    return str(pd.Timestamp(int(epoch_us), unit="us", tz="UTC").isoformat())


# -- merging ----------------------------------------------------------------------------------
def _merge_column(a: ColumnProfile, b: ColumnProfile) -> ColumnProfile:
    if a.kind != b.kind:
        raise SchemaError(f"column {a.name!r} is {a.kind} on one side and {b.kind} on the other")
    count, nulls = a.count + b.count, a.nulls + b.nulls
    if a.kind == "categorical":
        return replace(a, count=count, nulls=nulls, categories=_merge_categories(a, b))
    low = _pick(min, a.min, b.min)
    high = _pick(max, a.max, b.max)
    if a.kind == "timestamp":
        return replace(a, count=count, nulls=nulls, min=low, max=high)
    return _merge_numeric(a, b, count, nulls, low, high)


def _merge_numeric(
    a: ColumnProfile, b: ColumnProfile, count: int, nulls: int, low: Any, high: Any
) -> ColumnProfile:
    if a.histogram is None or b.histogram is None or a.histogram["edges"] != b.histogram["edges"]:
        raise SchemaError(
            f"column {a.name!r}: the histograms have different edges and cannot be added",
            hint="profile the second table with reference=<the first profile>",
        )
    counts = [x + y for x, y in zip(a.histogram["counts"], b.histogram["counts"], strict=True)]
    histogram: dict[str, list[Any]] = {"edges": list(a.histogram["edges"]), "counts": counts}
    if a.count == 0 or b.count == 0:
        kept = a if b.count == 0 else b
        return replace(kept, count=count, nulls=nulls, histogram=histogram)
    total = (a.sum or 0.0) + (b.sum or 0.0)
    mean_a, mean_b = (a.sum or 0.0) / a.count, (b.sum or 0.0) / b.count
    delta = mean_b - mean_a
    m2 = (a.m2 or 0.0) + (b.m2 or 0.0) + delta**2 * a.count * b.count / count
    std = math.sqrt(m2 / (count - 1)) if count > 1 else 0.0
    quantiles = _histogram_quantiles(histogram, float(low), float(high))
    return replace(
        a,
        count=count,
        nulls=nulls,
        min=low,
        max=high,
        mean=total / count,
        std=std,
        sum=total,
        m2=m2,
        quantiles=quantiles,
        histogram=histogram,
        quantiles_exact=False,
    )


def _pick(function: Any, x: Any, y: Any) -> Any:
    present = [v for v in (x, y) if v is not None]
    return function(present) if present else None


def _merge_categories(a: ColumnProfile, b: ColumnProfile) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in (a.categories or {}, b.categories or {}):
        for value, n in counts.items():
            total[value] = total.get(value, 0) + n
    other = total.pop(OTHER, 0)
    ranked = sorted(total.items(), key=lambda item: (-item[1], item[0]))
    other += sum(n for _, n in ranked[TOP_CATEGORIES:])
    merged = dict(sorted(ranked[:TOP_CATEGORIES]))
    if other:
        merged[OTHER] = other
    return merged


def _histogram_quantiles(histogram: dict[str, list[Any]], low: float, high: float) -> list[float]:
    edges = np.asarray(histogram["edges"], dtype=float)
    counts = np.asarray(histogram["counts"], dtype=float)
    edges = edges.copy()
    edges[0], edges[-1] = min(edges[0], low), max(edges[-1], high)
    cumulative = np.concatenate([[0.0], np.cumsum(counts)]) / max(counts.sum(), 1.0)
    values = np.interp(np.asarray(QUANTILE_LEVELS), cumulative, edges)
    values[0], values[-1] = low, high
    return [float(v) for v in values]

"""Entities and feature views, written in ``loopml.yaml`` or in Python.

A feature view reads one source with an event timestamp (and optionally a created
timestamp), optionally transforms it with DuckDB SQL over a relation named ``source``, and
then exposes either plain columns or windowed aggregations per entity. Its ``version`` is a
hash of the definition, so a training set can record exactly what went into it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import reduce
from typing import Any

import duckdb
import pandas as pd

from loopml.core import (
    AggregationConfig,
    Config,
    ConfigError,
    EntityConfig,
    FeatureViewConfig,
    SchemaError,
    format_duration,
    parse_duration,
    sha256_json,
    short_hash,
)
from loopml.features._duck import cursor

__all__ = ["FUNCTIONS", "Aggregation", "Entity", "FeatureView", "views_from_config", "window_label"]

FUNCTIONS = ("count", "sum", "mean", "min", "max", "stddev", "distinct_count")
"""The aggregation functions a windowed feature may use."""


@dataclass(frozen=True)
class Entity:
    """A thing features describe, and the column(s) that identify it.

    >>> Entity("card", keys=["card_id"]).keys
    ('card_id',)
    """

    name: str
    keys: tuple[str, ...] | list[str] | str
    description: str = ""

    def __post_init__(self) -> None:
        keys = (self.keys,) if isinstance(self.keys, str) else tuple(self.keys)
        if not keys or not all(isinstance(k, str) and k for k in keys):
            raise ConfigError(
                f"The 'keys' parameter of Entity must name at least one column. Got {self.keys!r}"
                " instead."
            )
        object.__setattr__(self, "keys", keys)


@dataclass(frozen=True)
class Aggregation:
    """Windowed aggregates of one column, per entity: ``amount_sum_7d`` and friends.

    Counts count the non-null values of the column; ``stddev`` is the sample standard
    deviation (null under two values); a window ``w`` as of time ``t`` holds the events with
    ``t - w < event time <= t``.

    >>> Aggregation("amount", ["sum", "count"], ["1h", "7d"]).feature_names
    ['amount_sum_1h', 'amount_sum_7d', 'amount_count_1h', 'amount_count_7d']
    """

    column: str
    functions: Sequence[str]
    windows: Sequence[str | timedelta]

    def __post_init__(self) -> None:
        functions = tuple(self.functions)
        unknown = [f for f in functions if f not in FUNCTIONS]
        if unknown or not functions:
            raise ConfigError(
                f"The 'functions' parameter of Aggregation must list some of "
                f"{', '.join(FUNCTIONS)}. Got {list(functions)!r} instead."
            )
        windows = tuple(parse_duration(w, name="window") for w in self.windows)
        if not windows or any(w <= timedelta(0) for w in windows):
            raise ConfigError(
                "The 'windows' parameter of Aggregation must list positive durations like "
                f"'7d'. Got {list(self.windows)!r} instead."
            )
        object.__setattr__(self, "functions", functions)
        object.__setattr__(self, "windows", windows)

    @property
    def durations(self) -> tuple[timedelta, ...]:
        """The windows as ``timedelta`` values."""
        return tuple(parse_duration(w, name="window") for w in self.windows)

    @property
    def feature_names(self) -> list[str]:
        """One name per function and window: ``<column>_<function>_<window>``."""
        return [
            f"{self.column}_{function}_{window_label(window)}"
            for function in self.functions
            for window in self.durations
        ]


@dataclass(frozen=True)
class FeatureView:
    """Features of one entity computed from one source.

    Exactly one of three kinds: plain ``columns`` (all non-key columns when empty), a ``sql``
    transformation (DuckDB SQL over the relation ``source``), or ``aggregations`` (windowed,
    per entity; the SQL, when given, runs first).

    >>> card = Entity("card", keys="card_id")
    >>> view = FeatureView("card_spend", entity=card, source="transactions",
    ...     timestamp="event_time",
    ...     aggregations=[Aggregation("amount", ["sum", "count"], ["1d"])])
    >>> view.kind, view.feature_names, len(view.version)
    ('aggregations', ['amount_sum_1d', 'amount_count_1d'], 12)
    """

    name: str
    entity: Entity
    source: str
    timestamp: str
    created_timestamp: str | None = None
    ttl: str | timedelta | None = None
    columns: Sequence[str] = ()
    sql: str | None = None
    aggregations: Sequence[Aggregation] = field(default_factory=tuple)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError(f"A FeatureView needs a name. Got {self.name!r} instead.")
        ttl = None if self.ttl is None else parse_duration(self.ttl, name="ttl")
        object.__setattr__(self, "ttl", ttl)
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "aggregations", tuple(self.aggregations))
        if self.aggregations and self.columns:
            raise ConfigError(
                f"Feature view {self.name!r} lists both 'columns' and 'aggregations'",
                hint="split it into two views",
            )
        names = self.feature_names
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(f"Feature view {self.name!r} defines {duplicated[0]!r} twice")

    # -- description ---------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"aggregations"``, ``"sql"`` or ``"columns"``."""
        if self.aggregations:
            return "aggregations"
        return "sql" if self.sql else "columns"

    @property
    def keys(self) -> tuple[str, ...]:
        """The entity's join keys."""
        return self.entity.keys  # type: ignore[return-value]

    @property
    def ttl_delta(self) -> timedelta | None:
        """The TTL as a ``timedelta`` (``None`` for no TTL)."""
        return self.ttl if isinstance(self.ttl, timedelta) else None

    @property
    def feature_names(self) -> list[str]:
        """The output columns (empty for a columns view that takes every column)."""
        if self.aggregations:
            return [n for a in self.aggregations for n in a.feature_names]
        return list(self.columns)

    @property
    def max_window(self) -> timedelta:
        """The longest aggregation window (zero for other views)."""
        windows = [w for a in self.aggregations for w in a.durations]
        return max(windows, default=timedelta(0))

    @property
    def tile(self) -> timedelta:
        """The tile width of the streaming kernel: the largest duration dividing every window."""
        one = timedelta(microseconds=1)
        micros = [int(w / one) for a in self.aggregations for w in a.durations]
        return timedelta(microseconds=reduce(math.gcd, micros)) if micros else timedelta(0)

    def to_json(self) -> dict[str, Any]:
        """The definition as plain JSON (what ``version`` hashes)."""
        return {
            "name": self.name,
            "entity": {"name": self.entity.name, "keys": list(self.keys)},
            "source": self.source,
            "timestamp": self.timestamp,
            "created_timestamp": self.created_timestamp,
            "ttl": format_duration(self.ttl_delta) if self.ttl_delta else None,
            "columns": list(self.columns),
            "sql": self.sql,
            "aggregations": [
                {
                    "column": a.column,
                    "functions": list(a.functions),
                    "windows": [format_duration(w) for w in a.durations],
                }
                for a in self.aggregations
            ],
        }

    @property
    def version(self) -> str:
        """A 12-hex-digit hash of the definition; it changes when anything in it changes."""
        return short_hash(sha256_json(self.to_json()))

    # -- rows ----------------------------------------------------------------------------
    def rows(self, source: pd.DataFrame) -> pd.DataFrame:
        """The view's rows from its source frame: keys, timestamp(s) and the value columns.

        For an aggregations view the value columns are the aggregated columns (raw events).
        """
        frame = self._transform(source)
        stamps = [self.timestamp] + ([self.created_timestamp] if self.created_timestamp else [])
        needed = [*self.keys, *stamps]
        if self.aggregations:
            values = list(dict.fromkeys(a.column for a in self.aggregations))
        elif self.columns:
            values = list(self.columns)
        else:
            values = [c for c in frame.columns if c not in needed]
        self._check_columns(frame, [*needed, *values])
        return frame[[*needed, *values]]

    def _transform(self, source: pd.DataFrame) -> pd.DataFrame:
        if not self.sql:
            return source
        connection = cursor()
        try:
            connection.register("source", source)
            result: pd.DataFrame = connection.sql(self.sql).to_arrow_table().to_pandas()
        except duckdb.Error as error:
            raise ConfigError(
                f"The SQL of feature view {self.name!r} failed: {str(error).splitlines()[0]}",
                hint="the source is the relation named 'source'",
            ) from None
        finally:
            connection.close()
        return result

    def _check_columns(self, frame: pd.DataFrame, needed: list[str]) -> None:
        for column in needed:
            if column not in frame.columns:
                what = "SQL result" if self.sql else f"source {self.source!r}"
                role = "timestamp column" if column == self.timestamp else "column"
                raise SchemaError(
                    f"Feature view {self.name!r}: the {what} has no {role} {column!r} "
                    f"(its columns: {', '.join(map(str, frame.columns))})",
                    hint="fix the view's definition or the source",
                )


def window_label(window: timedelta) -> str:
    """A window written in days, hours, minutes, seconds or milliseconds (never weeks).

    >>> window_label(timedelta(days=7)), window_label(timedelta(minutes=90))
    ('7d', '90m')
    """
    total_ms = round(window.total_seconds() * 1000)
    for unit, step in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if total_ms % step == 0:
            return f"{total_ms // step}{unit}"
    return f"{total_ms}ms"


def views_from_config(config: Config) -> dict[str, FeatureView]:
    """Every feature view of a ``loopml.yaml`` configuration, by name.

    >>> from loopml.core import parse_config
    >>> config = parse_config('''
    ... project: demo
    ... sources: {tx: {path: tx.parquet, timestamp: event_time}}
    ... entities: {card: {key: card_id}}
    ... features:
    ...   spend:
    ...     entity: card
    ...     source: tx
    ...     ttl: 30d
    ...     aggregations: [{column: amount, functions: [sum], windows: [1h, 1d]}]
    ... ''')
    >>> views_from_config(config)["spend"].feature_names
    ['amount_sum_1h', 'amount_sum_1d']
    """
    entities = {name: _entity(name, e) for name, e in config.entities.items()}
    return {
        name: _view(
            name,
            view,
            entities,
            config.sources[view.source].timestamp,
            config.sources[view.source].created_timestamp,
        )
        for name, view in config.features.items()
    }


def _entity(name: str, config: EntityConfig) -> Entity:
    return Entity(name, keys=config.keys, description=config.description)


def _view(
    name: str,
    config: FeatureViewConfig,
    entities: Mapping[str, Entity],
    source_timestamp: str | None,
    source_created: str | None,
) -> FeatureView:
    timestamp = config.timestamp or source_timestamp
    if timestamp is None:
        raise ConfigError(
            f"feature view {name!r} has no timestamp column",
            hint=f"add `timestamp:` to the view or to source {config.source!r}",
        )
    return FeatureView(
        name,
        entity=entities[config.entity],
        source=config.source,
        timestamp=timestamp,
        created_timestamp=config.created_timestamp or source_created,
        ttl=config.ttl,
        columns=config.columns,
        sql=config.sql,
        aggregations=[_aggregation(a) for a in config.aggregations],
        description=config.description,
    )


def _aggregation(config: AggregationConfig) -> Aggregation:
    return Aggregation(config.column, list(config.functions), list(config.windows))

"""Small shared helpers: reading a timestamp column as UTC nanoseconds, checking columns."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError, ensure_utc_series, parse_duration

__all__ = ["as_duration", "nanos", "require_columns", "utc_column"]


def require_columns(frame: pd.DataFrame, columns: Iterable[str | None], *, what: str) -> None:
    """Raise a ``ConfigError`` naming every column of ``columns`` missing from ``frame``."""
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        shown = ", ".join(repr(str(c)) for c in frame.columns[:20])
        raise ConfigError(
            f"{what}: column(s) {', '.join(repr(m) for m in missing)} not in the data. "
            f"Columns are: {shown}{' ...' if len(frame.columns) > 20 else ''}",
            hint="check the spelling or the `timestamp`/`target`/`group` settings",
        )


def utc_column(frame: pd.DataFrame, column: str, *, what: str) -> pd.Series:
    """The column as ``datetime64[ns, UTC]``; missing values are an error naming the row."""
    require_columns(frame, [column], what=what)
    series = ensure_utc_series(frame[column], where=f"{what}: column '{column}'")
    series = pd.Series(series.dt.as_unit("ns"))
    missing = series.isna().to_numpy()
    if missing.any():
        row = int(missing.nonzero()[0][0])
        raise DataError(
            f"{what}: column '{column}' has {int(missing.sum())} missing timestamp(s), "
            f"the first at row {row}",
            hint="drop or fill those rows before splitting",
        )
    return series


def nanos(series: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch of a ``datetime64[ns, UTC]`` series, as ``int64``."""
    return np.asarray(series.array.asi8, dtype=np.int64)


def as_duration(value: str | timedelta | None, *, name: str) -> timedelta | None:
    """Parse an optional duration parameter with loopml's one error wording."""
    if value is None:
        return None
    return parse_duration(value, name=name)


def to_timestamp(ns: int) -> pd.Timestamp:
    """A UTC ``pd.Timestamp`` from nanoseconds since the epoch."""
    return pd.Timestamp(int(ns), unit="ns", tz="UTC")

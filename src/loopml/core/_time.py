"""Time helpers: every timestamp in loopml is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from loopml.core._exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ensure_utc", "ensure_utc_series", "utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def ensure_utc(value: datetime, *, assume_utc: bool = False, where: str = "timestamp") -> datetime:
    """Return ``value`` in UTC; a naive datetime is an error unless ``assume_utc``.

    Examples
    --------
    >>> ensure_utc(datetime(2024, 1, 1), assume_utc=True).isoformat()
    '2024-01-01T00:00:00+00:00'
    """
    if value.tzinfo is None:
        if not assume_utc:
            raise DataError(
                f"{where} {value.isoformat()} has no time zone",
                hint="write it with an offset (e.g. '+00:00') or declare the source's time zone",
            )
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def ensure_utc_series(series: pd.Series, *, where: str, assume_utc: bool = False) -> pd.Series:
    """Convert a column to ``datetime64[us, UTC]``, naming the column and row on failure.

    Naive values are an error unless ``assume_utc``; a column that mixes time zones is
    converted to UTC (every value keeps its instant); strings that are not timestamps
    are an error naming the first bad row.
    """
    import pandas as pd

    if isinstance(series.dtype, pd.DatetimeTZDtype):
        converted: pd.Series = series.dt.tz_convert("UTC")
        return converted
    if pd.api.types.is_datetime64_dtype(series.dtype):
        if not assume_utc:
            raise DataError(
                f"{where} holds timestamps without a time zone",
                hint="add an offset to the values, or declare `timezone: UTC` for the source",
            )
        localized: pd.Series = series.dt.tz_localize("UTC")
        return localized
    parsed = pd.to_datetime(series, utc=True, errors="coerce", format="mixed")
    bad = parsed.isna() & series.notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{where}, row {row}: {series.iloc[row]!r} is not a timestamp",
            hint="fix the value or declare another timestamp column",
        )
    if not assume_utc:
        text = series.dropna().astype(str)
        has_zone = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
        if not has_zone.all():
            row = int((~has_zone).to_numpy().nonzero()[0][0])
            raise DataError(
                f"{where}, row {row}: {text.iloc[row]!r} has no time zone",
                hint="add an offset to the values, or declare `timezone: UTC` for the source",
            )
    return parsed

"""Windows over a log: tumbling or sliding, by time or by count."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from loopml.core import ConfigError, SchemaError, ensure_utc, parse_duration

__all__ = ["Window", "count_windows", "split_by_windows", "time_windows"]


@dataclass(frozen=True)
class Window:
    """A half-open window ``[start, end)`` of time, or of row positions for count windows."""

    index: int
    start: datetime | int
    end: datetime | int

    @property
    def label(self) -> str:
        """A short name: the start time (or row range)."""
        if isinstance(self.start, datetime):
            return self.start.strftime("%Y-%m-%d %H:%M")
        return f"rows {self.start}-{self.end}"


def time_windows(
    start: datetime, end: datetime, size: str | timedelta, *, step: str | timedelta | None = None
) -> list[Window]:
    """Windows of ``size`` from ``start`` to ``end``: tumbling, or sliding by ``step``.

    The last window ends at or before ``end`` (a partial window is left out).

    >>> from datetime import UTC
    >>> w = time_windows(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC), "1d")
    >>> [x.label for x in w]
    ['2024-01-01 00:00', '2024-01-02 00:00']
    >>> len(time_windows(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC),
    ...                  "1d", step="6h"))
    5
    """
    width = parse_duration(size, name="window")
    stride = width if step is None else parse_duration(step, name="step")
    if width <= timedelta(0) or stride <= timedelta(0):
        raise ConfigError(
            f"The 'window' and 'step' parameters must be positive. Got {width} and {stride} "
            "instead."
        )
    first, last = ensure_utc(start, where="window start"), ensure_utc(end, where="window end")
    windows: list[Window] = []
    cursor = first
    while cursor + width <= last:
        windows.append(Window(len(windows), cursor, cursor + width))
        cursor += stride
    return windows


def count_windows(n_rows: int, size: int, *, step: int | None = None) -> list[Window]:
    """Windows of ``size`` rows: tumbling, or sliding by ``step`` rows.

    >>> [(w.start, w.end) for w in count_windows(10, 4)]
    [(0, 4), (4, 8)]
    >>> [(w.start, w.end) for w in count_windows(10, 4, step=3)]
    [(0, 4), (3, 7), (6, 10)]
    """
    stride = size if step is None else step
    if size < 1 or stride < 1:
        raise ConfigError(
            f"The 'size' and 'step' parameters must be >= 1. Got {size} and {stride} instead."
        )
    return [Window(i, s, s + size) for i, s in enumerate(range(0, n_rows - size + 1, stride))]


def split_by_windows(
    frame: pd.DataFrame, windows: list[Window], *, time_column: str = "time"
) -> Iterator[tuple[Window, pd.DataFrame]]:
    """Yield each window with the rows of ``frame`` inside it.

    >>> frame = pd.DataFrame({"v": range(10)})
    >>> [len(rows) for _, rows in split_by_windows(frame, count_windows(10, 5))]
    [5, 5]
    """
    if not windows:
        return
    if isinstance(windows[0].start, int):
        for window in windows:
            assert isinstance(window.start, int) and isinstance(window.end, int)
            yield window, frame.iloc[window.start : window.end]
        return
    if time_column not in frame.columns:
        raise SchemaError(
            f"the log has no '{time_column}' column to window by",
            hint=f"columns: {list(frame.columns)}",
        )
    times = pd.to_datetime(frame[time_column], utc=True).to_numpy("datetime64[us]")
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    for window in windows:
        lo = np.searchsorted(ordered, np.datetime64(_naive(window.start), "us"), side="left")
        hi = np.searchsorted(ordered, np.datetime64(_naive(window.end), "us"), side="left")
        yield window, frame.iloc[order[lo:hi]]


def _naive(value: datetime | int) -> datetime:
    assert isinstance(value, datetime)
    return ensure_utc(value).replace(tzinfo=None)

"""The streaming aggregation kernel: tiles of mergeable partial aggregates plus raw events.

Time is cut into tiles of width ``g`` that divides every window. Each tile holds, per entity
and column, the partial aggregates ``count, sum, sum of squares, min, max`` and the set of
distinct values; partials of the same tile merge by adding counts and sums and taking the
min of mins (so batches can arrive in any order, late events included). A window ``w``
as of time ``t`` covers ``(t - w, t]``: the whole tiles strictly inside it come from the
tile table, and the two partial tiles at its edges from the raw events kept for the
longest window (the raw tail). Answers are exact for any query time whose window starts
after the eviction horizon; ``tests/features/test_kernel.py`` proves them equal to the
batch SQL of ``aggregate_as_of`` with hypothesis.

Updates are vectorised: a batch of events is appended as arrays and folded into the tiles
with one grouped reduction when the kernel is next queried (or its buffer fills up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError, SchemaError
from loopml.features._definitions import Aggregation
from loopml.features._pit import _NAT, epoch_us

__all__ = ["StreamingAggregator"]

_NUMERIC_ONLY = {"sum", "mean", "min", "max", "stddev"}


@dataclass
class _Column:
    """State of one aggregated column: pending batches, raw events, tiles, distinct sets."""

    distinct: bool
    coded: bool = False
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    pending_rows: int = 0
    raw_code: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    raw_t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    raw_v: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    tiles: dict[str, np.ndarray] | None = None
    dtiles: dict[str, np.ndarray] | None = None
    compacted_horizon: int | None = None
    raw_index: _RangeIndex | None = None
    tile_index: _RangeIndex | None = None
    dtile_index: _RangeIndex | None = None
    value_codes: dict[Any, int] = field(default_factory=dict)
    raw_columns: dict[str, np.ndarray] = field(default_factory=dict)
    tile_columns: dict[str, np.ndarray] = field(default_factory=dict)


class _RangeIndex:
    """Rows sorted by (code, value): find the rows of one code with value in [low, high].

    The pair becomes one sortable ``int64``: ``code * width + offset``, where the offset is
    the value minus the smallest one when that fits, else the value's rank.
    """

    def __init__(self, codes: np.ndarray, values: np.ndarray) -> None:
        self.low = int(values.min()) if len(values) else 0
        span = (int(values.max()) - self.low + 2) if len(values) else 2
        top = int(codes.max()) + 2 if len(codes) else 2
        self.unique: np.ndarray | None = None
        if span * top < 2**62:
            self.width = span
            offsets = values - self.low
        else:
            self.unique = np.unique(values)
            self.width = len(self.unique) + 1
            offsets = np.searchsorted(self.unique, values)
        self.composite = codes * self.width + offsets

    def _offsets(self, values: np.ndarray, side: str) -> np.ndarray:
        if self.unique is not None:
            found: np.ndarray = np.searchsorted(self.unique, values, side=side)  # type: ignore[call-overload]
            return found
        shift = 0 if side == "left" else 1
        clipped: np.ndarray = np.clip(values - self.low + shift, 0, self.width - 1)
        return clipped

    def span(self, code: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, ...]:
        base = code * self.width
        lo = np.searchsorted(self.composite, base + self._offsets(low, "left"), side="left")
        hi = np.searchsorted(self.composite, base + self._offsets(high, "right"), side="left")
        unknown = code < 0
        lo[unknown] = 0
        hi = np.where(unknown, 0, np.maximum(hi, lo))
        return lo, hi


class StreamingAggregator:
    """Windowed aggregates per entity, updated by batches of events, queried at any time.

    Parameters
    ----------
    aggregations : the view's ``Aggregation`` list.
    keys : the entity key column(s) of the events.
    timestamp : the event time column.
    tile : the tile width; default the largest duration that divides every window.
    lateness : how far behind the newest event a query or a late event may still be; raw
        events and tiles older than ``newest - lateness - longest window`` are evicted, and
        later events older than that are dropped (counted in ``dropped_late_``).
        ``None`` keeps everything.

    Examples
    --------
    >>> import pandas as pd
    >>> kernel = StreamingAggregator([Aggregation("amount", ["sum", "count"], ["1h"])],
    ...     keys="card", timestamp="at")
    >>> kernel.update(pd.DataFrame({"card": [1, 1, 2], "amount": [5.0, 7.0, 1.0],
    ...     "at": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:30", "2024-01-01 10:45"],
    ...                          utc=True)}))
    >>> kernel.query(pd.DataFrame({"card": [1, 3],
    ...     "ts": pd.to_datetime(["2024-01-01 11:15", "2024-01-01 11:15"], utc=True)}),
    ...     timestamp="ts")
       amount_sum_1h  amount_count_1h
    0            7.0                1
    1            NaN                0
    """

    def __init__(
        self,
        aggregations: Sequence[Aggregation],
        *,
        keys: str | Sequence[str],
        timestamp: str,
        tile: str | timedelta | None = None,
        lateness: str | timedelta | None = "1d",
        buffer_rows: int = 1_000_000,
    ) -> None:
        from loopml.core import parse_duration

        if not aggregations:
            raise ConfigError("The 'aggregations' parameter of StreamingAggregator is empty")
        self.aggregations = list(aggregations)
        self.keys = [keys] if isinstance(keys, str) else list(keys)
        self.timestamp = timestamp
        windows = [
            int(w / timedelta(microseconds=1)) for a in self.aggregations for w in a.durations
        ]
        gcd = int(np.gcd.reduce(np.array(windows, dtype=np.int64)))
        self._tile = (
            gcd
            if tile is None
            else int(parse_duration(tile, name="tile") / timedelta(microseconds=1))
        )
        if self._tile <= 0 or any(w % self._tile for w in windows):
            raise ConfigError(
                f"The 'tile' parameter of StreamingAggregator must divide every window. "
                f"Got {tile!r} instead."
            )
        self._longest = max(windows)
        self._lateness = (
            None
            if lateness is None
            else int(parse_duration(lateness, name="lateness") / timedelta(microseconds=1))
        )
        self._buffer_rows = buffer_rows
        self._known: pd.Index = pd.Index([])
        functions: dict[str, set[str]] = {}
        for aggregation in self.aggregations:
            functions.setdefault(aggregation.column, set()).update(aggregation.functions)
        self._columns = {c: _Column(distinct="distinct_count" in f) for c, f in functions.items()}
        self._numeric_needed = {c: bool(f & _NUMERIC_ONLY) for c, f in functions.items()}
        self.newest_: int | None = None
        self.horizon_: int | None = None
        self.events_seen_ = 0
        self.dropped_late_ = 0
        self._missing_upto: int | None = None  # newest time of any evicted or dropped event

    # -- updates -------------------------------------------------------------------------
    def update(self, events: pd.DataFrame) -> None:
        """Add a batch of events (any order; late events are fine within ``lateness``)."""
        missing = [c for c in [*self.keys, self.timestamp, *self._columns] if c not in events]
        if missing:
            raise SchemaError(f"The events frame has no column {missing[0]!r}")
        if len(events) == 0:
            return
        codes = self._codes(events, create=True)
        times = epoch_us(events[self.timestamp], where=f"events column {self.timestamp!r}")
        keep = (times != _NAT) & (codes >= 0)
        if self.horizon_ is not None:
            late = keep & (times < self.horizon_)
            self.dropped_late_ += int(late.sum())
            if late.any():
                self._forget(int(times[late].max()))
            keep &= ~late
        self.events_seen_ += int(keep.sum())
        for name, state in self._columns.items():
            values, present = self._values(name, state, events[name])
            use = keep & present
            state.pending.append((codes[use], times[use], values[use]))
            state.pending_rows += int(use.sum())
        if keep.any():
            newest = int(times[keep].max())
            self.newest_ = newest if self.newest_ is None else max(self.newest_, newest)
        if any(s.pending_rows >= self._buffer_rows for s in self._columns.values()):
            self.compact()

    def _values(self, name: str, state: _Column, series: pd.Series) -> tuple[np.ndarray, ...]:
        present = series.notna().to_numpy()
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype
        ):
            return series.to_numpy(dtype="float64", na_value=np.nan), present
        if self._numeric_needed[name]:
            raise SchemaError(
                f"Column {name!r} is {series.dtype}; sum, mean, min, max and stddev need numbers",
                hint="aggregate it with count or distinct_count only",
            )
        state.coded = True
        codes = np.fromiter(
            (
                state.value_codes.setdefault(v, len(state.value_codes)) if ok else -1
                for v, ok in zip(series.tolist(), present, strict=True)
            ),
            dtype=np.float64,
            count=len(series),
        )
        return codes, present

    def _codes(self, frame: pd.DataFrame, *, create: bool) -> np.ndarray:
        if len(self.keys) == 1:
            index: pd.Index = pd.Index(frame[self.keys[0]].to_numpy())
        else:
            index = pd.MultiIndex.from_frame(frame[self.keys])
        if len(self._known) == 0 and create:
            self._known = index[~frame[self.keys].isna().any(axis=1).to_numpy()].unique()
        null = frame[self.keys].isna().any(axis=1).to_numpy()
        codes = np.asarray(self._known.get_indexer(index), dtype=np.int64)
        if create and (codes[~null] < 0).any():
            self._known = self._known.append(index[(codes < 0) & ~null].unique())
            codes = np.asarray(self._known.get_indexer(index), dtype=np.int64)
        codes[null] = -1
        return codes

    # -- compaction ----------------------------------------------------------------------
    def compact(self) -> None:
        """Fold pending batches into the tiles and the raw tail, and evict old state."""
        if self.newest_ is not None and self._lateness is not None:
            edge = self.newest_ - self._lateness - self._longest
            self.horizon_ = int(np.floor_divide(edge, self._tile) * self._tile)
        for state in self._columns.values():
            if state.pending or state.compacted_horizon != self.horizon_:
                self._compact_column(state)

    def _compact_column(self, state: _Column) -> None:
        new = _concat(state.pending)
        state.pending, state.pending_rows = [], 0
        state.compacted_horizon = self.horizon_
        code = np.concatenate([state.raw_code, new[0]])
        times = np.concatenate([state.raw_t, new[1]])
        values = np.concatenate([state.raw_v, new[2]])
        if self.horizon_ is not None:
            keep = times >= self.horizon_
            if not keep.all():
                self._forget(int(times[~keep].max()))
            code, times, values = code[keep], times[keep], values[keep]
            new = tuple(a[new[1] >= self.horizon_] for a in new)
        order = _pair_order(code, times)
        state.raw_code, state.raw_t, state.raw_v = code[order], times[order], values[order]
        state.raw_index = _RangeIndex(state.raw_code, state.raw_t)
        raw = state.raw_v
        state.raw_columns = {
            "n": np.ones(len(raw), dtype=np.int64),
            "s": raw,
            "q": raw * raw,
            "lo": raw,
            "hi": raw,
        }
        state.tiles = self._merge_tiles(state.tiles, new)
        state.tile_columns = state.tiles
        state.tile_index = _RangeIndex(state.tiles["code"], state.tiles["tile"])
        if state.distinct:
            state.dtiles = self._merge_distinct(state.dtiles, new)
            state.dtile_index = _RangeIndex(state.dtiles["code"], state.dtiles["tile"])

    def _merge_tiles(
        self, tiles: dict[str, np.ndarray] | None, new: tuple[np.ndarray, ...]
    ) -> dict[str, np.ndarray]:
        """Partials of the new events per (entity, tile), merged into the kept tiles."""
        code, times, values = new
        parts = {
            "code": code,
            "tile": np.floor_divide(times, self._tile),
            "n": np.ones(len(code), dtype=np.int64),
            "s": values,
            "q": values * values,
            "lo": values,
            "hi": values,
        }
        parts = self._with_kept(tiles, parts)
        order = _pair_order(parts["code"], parts["tile"])
        parts = {name: array[order] for name, array in parts.items()}
        starts = _group_starts(parts["code"], parts["tile"])
        merged = {"code": parts["code"][starts], "tile": parts["tile"][starts]}
        for name, ufunc in (
            ("n", np.add),
            ("s", np.add),
            ("q", np.add),
            ("lo", np.minimum),
            ("hi", np.maximum),
        ):
            merged[name] = ufunc.reduceat(parts[name], starts) if len(starts) else parts[name]
        return merged

    def _merge_distinct(
        self, dtiles: dict[str, np.ndarray] | None, new: tuple[np.ndarray, ...]
    ) -> dict[str, np.ndarray]:
        """The distinct values per (entity, tile), sorted, merged into the kept ones."""
        code, times, values = new
        parts = {"code": code, "tile": np.floor_divide(times, self._tile), "v": values}
        parts = self._with_kept(dtiles, parts)
        order = np.lexsort((parts["v"], parts["tile"], parts["code"]))
        parts = {name: array[order] for name, array in parts.items()}
        starts = _group_starts(parts["code"], parts["tile"], parts["v"])
        return {name: array[starts] for name, array in parts.items()}

    def _with_kept(
        self, kept: dict[str, np.ndarray] | None, parts: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        if kept is None:
            return parts
        keep = (
            (kept["tile"] * self._tile >= self.horizon_)
            if self.horizon_ is not None
            else (np.ones(len(kept["tile"]), dtype=bool))
        )
        return {name: np.concatenate([kept[name][keep], parts[name]]) for name in parts}

    # -- queries -------------------------------------------------------------------------
    def query(self, entities: pd.DataFrame, *, timestamp: str) -> pd.DataFrame:
        """Every feature for each entity row as of its time: same rows, order and index."""
        missing = [c for c in [*self.keys, timestamp] if c not in entities]
        if missing:
            raise SchemaError(f"The entities frame has no column {missing[0]!r}")
        self.compact()
        codes = (
            self._codes(entities, create=False)
            if len(self._known)
            else np.full(len(entities), -1, dtype=np.int64)
        )
        at = epoch_us(entities[timestamp], where=f"entities column {timestamp!r}")
        self._check_horizon(at)
        order = np.lexsort((at, codes))  # sorted lookups walk the indexes in order
        codes, at = codes[order], at[order]
        out: dict[str, np.ndarray] = {}
        for aggregation in self.aggregations:
            state = self._columns[aggregation.column]
            for window in aggregation.durations:
                micros = int(window / timedelta(microseconds=1))
                parts = self._window(state, codes, at, micros)
                for function in aggregation.functions:
                    name = f"{aggregation.column}_{function}_{_label(window)}"
                    out[name] = np.empty_like(finished := _finish(function, parts))
                    out[name][order] = finished
        names = [n for a in self.aggregations for n in a.feature_names]
        return pd.DataFrame({n: out[n] for n in names}, index=entities.index)

    def _forget(self, newest_lost: int) -> None:
        if self._missing_upto is None or newest_lost > self._missing_upto:
            self._missing_upto = newest_lost

    def _check_horizon(self, at: np.ndarray) -> None:
        """Refuse a query whose window reaches an event that was evicted or dropped."""
        if self._missing_upto is None or len(at) == 0:
            return
        earliest = int(at[at != _NAT].min()) if (at != _NAT).any() else None
        if earliest is not None and earliest - self._longest < self._missing_upto:
            first = pd.Timestamp(self._missing_upto, unit="us", tz="UTC")
            raise DataError(
                f"a query as of {pd.Timestamp(earliest, unit='us', tz='UTC')} needs events "
                f"up to {first}, which the kernel has evicted",
                hint="query closer to the newest event, or raise 'lateness'",
            )

    def _window(
        self, state: _Column, codes: np.ndarray, at: np.ndarray, window: int
    ) -> dict[str, np.ndarray]:
        n = len(codes)
        codes = np.where(at == _NAT, -1, codes)
        if state.tiles is None or state.raw_index is None or state.tile_index is None:
            empty = np.zeros(n, dtype=np.int64)
            return {
                "n": empty,
                "s": np.zeros(n),
                "q": np.zeros(n),
                "lo": np.full(n, np.inf),
                "hi": np.full(n, -np.inf),
                "distinct": empty,
            }
        k_t = np.floor_divide(at, self._tile)
        k_l = k_t - window // self._tile
        start = at - window  # exclusive
        t_lo, t_hi = state.tile_index.span(codes, k_l + 1, k_t - 1)
        l_lo, l_hi = state.raw_index.span(codes, start + 1, (k_l + 1) * self._tile - 1)
        r_lo, r_hi = state.raw_index.span(codes, k_t * self._tile, at)
        spans = [
            (_Spans(t_lo, t_hi), False),
            (_Spans(l_lo, l_hi), True),
            (_Spans(r_lo, r_hi), True),
        ]
        parts: dict[str, np.ndarray] = {}
        for name, ufunc, identity in (
            ("n", np.add, 0),
            ("s", np.add, 0.0),
            ("q", np.add, 0.0),
            ("lo", np.minimum, np.inf),
            ("hi", np.maximum, -np.inf),
        ):
            total = None
            for span, raw in spans:
                values = state.raw_columns[name] if raw else state.tile_columns[name]
                reduced = (
                    span.count.astype(np.int64)
                    if raw and name == "n"
                    else span.reduce(ufunc, values, identity)
                )
                total = reduced if total is None else ufunc(total, reduced)
            assert total is not None
            parts[name] = total
        if state.distinct and state.dtiles is not None and state.dtile_index is not None:
            d_lo, d_hi = state.dtile_index.span(codes, k_l + 1, k_t - 1)
            parts["distinct"] = _count_distinct(
                n,
                [
                    (state.dtiles["v"], d_lo, d_hi),
                    (state.raw_v, l_lo, l_hi),
                    (state.raw_v, r_lo, r_hi),
                ],
            )
        return parts


def _label(window: timedelta) -> str:
    from loopml.features._definitions import window_label

    return window_label(window)


def _pair_order(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The stable order of rows by (code, value).

    Both are folded into one ``int64`` when that fits, and sorted with a stable sort, which
    merges the already sorted state with the new batch in about linear time.
    """
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    low = int(values.min())
    width = int(values.max()) - low + 1
    if (int(codes.max()) + 1) * width < 2**62 and int(codes.min()) >= 0:
        order: np.ndarray = np.argsort(codes * width + (values - low), kind="stable")
        return order
    return np.lexsort((values, codes))


def _group_starts(*columns: np.ndarray) -> np.ndarray:
    """Where each run of equal rows starts in arrays sorted by ``columns``."""
    if len(columns[0]) == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(len(columns[0]), dtype=bool)
    change[0] = True
    for column in columns:
        change[1:] |= column[1:] != column[:-1]
    return np.flatnonzero(change)


def _concat(pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    if not pending:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    return tuple(np.concatenate([p[i] for p in pending]) for i in range(3))


class _Spans:
    """Row ranges ``[lo[i], hi[i])``, one per query, reduced with any ufunc.

    The rows of all ranges are gathered once into one compact index, so each reduction
    costs the total length of the ranges, not a pass over every stored row.
    """

    def __init__(self, lo: np.ndarray, hi: np.ndarray) -> None:
        lengths = np.maximum(hi - lo, 0)
        self.count = lengths
        self.nonempty = lengths > 0
        total = int(lengths.sum())
        ends = np.cumsum(lengths)
        self.positions = (
            np.arange(total) - np.repeat(ends - lengths, lengths) + np.repeat(lo, lengths)
        )
        self.starts = (ends - lengths)[self.nonempty]

    def reduce(self, ufunc: Any, values: np.ndarray, identity: Any) -> np.ndarray:
        """``ufunc`` reduced over ``values[lo[i]:hi[i]]`` for every i (``identity`` if empty)."""
        dtype = values.dtype if values.dtype.kind == "i" else np.float64
        reduced = np.full(len(self.count), identity, dtype=dtype)
        if len(self.starts):
            reduced[self.nonempty] = ufunc.reduceat(values[self.positions], self.starts)
        return reduced


def _count_distinct(n: int, sources: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    query_ids, values = [], []
    for array, lo, hi in sources:
        lengths = hi - lo
        total = int(lengths.sum())
        if total == 0:
            continue
        ids = np.repeat(np.arange(n), lengths)
        offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        query_ids.append(ids)
        values.append(array[np.repeat(lo, lengths) + offsets])
    if not query_ids:
        return np.zeros(n, dtype=np.int64)
    pairs = pd.DataFrame({"q": np.concatenate(query_ids), "v": np.concatenate(values)})
    unique = pairs.drop_duplicates()["q"].to_numpy()
    return np.bincount(unique, minlength=n).astype(np.int64)


def _finish(function: str, parts: dict[str, np.ndarray]) -> np.ndarray:
    count = parts["n"]
    empty = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        if function == "count":
            return count.astype(np.int64)
        if function == "distinct_count":
            return parts["distinct"]
        if function == "sum":
            return np.where(empty, np.nan, parts["s"])
        if function == "mean":
            return np.where(empty, np.nan, parts["s"] / count)
        if function == "min":
            return np.where(empty, np.nan, parts["lo"])
        if function == "max":
            return np.where(empty, np.nan, parts["hi"])
        variance = (parts["q"] - parts["s"] * parts["s"] / count) / (count - 1)
        return np.where(count < 2, np.nan, np.sqrt(np.maximum(variance, 0.0)))

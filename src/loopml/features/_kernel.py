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
when the kernel is next queried (or its buffer fills up): the new events alone are sorted
and reduced to tiles, then merged into the sorted state (equal tiles combined, others
inserted), so a batch costs its own sort plus one pass over the state. A query whose window
holds few raw events (an entity with sparse events) is reduced straight from the raw tail,
one binary search per window; busy entities go through the tiles.
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
_PARTS = {  # the partial aggregates each function is finished from
    "count": {"n"}, "sum": {"n", "s"}, "mean": {"n", "s"}, "min": {"n", "lo"},
    "max": {"n", "hi"}, "stddev": {"n", "s", "q"}, "distinct_count": {"n"},
}
_REDUCE = (("n", np.add, 0), ("s", np.add, 0.0), ("q", np.add, 0.0),
           ("lo", np.minimum, np.inf), ("hi", np.maximum, -np.inf))


@dataclass
class _Column:
    """State of one aggregated column: pending batches, raw events, tiles, distinct sets."""

    distinct: bool
    parts: frozenset[str] = frozenset({"n", "s", "q", "lo", "hi"})
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

    def upper(self, code: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Where the rows of ``code`` with value above ``high`` start."""
        bound = code * self.width
        bound += self._offsets(high, "right")
        found: np.ndarray = np.searchsorted(self.composite, bound, side="left")
        return found

    def span(
        self, code: np.ndarray, low: np.ndarray, high: np.ndarray,
        upper: np.ndarray | None = None,
    ) -> tuple[np.ndarray, ...]:
        """Row ranges ``[lo, hi)``; ``upper``: ``self.upper(code, high)`` if known."""
        bound = code * self.width
        bound += self._offsets(low, "left")
        lo = np.searchsorted(self.composite, bound, side="left")
        hi = self.upper(code, high) if upper is None else upper
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
        self._direct_events = 64  # see _windows: raw events a window may hold and skip tiles
        self._known: pd.Index = pd.Index([])
        functions: dict[str, set[str]] = {}
        for aggregation in self.aggregations:
            functions.setdefault(aggregation.column, set()).update(aggregation.functions)
        self._columns = {
            c: _Column(distinct="distinct_count" in f,
                       parts=frozenset().union(*(_PARTS[name] for name in f)))
            for c, f in functions.items()
        }
        self._numeric_needed = {c: bool(f & _NUMERIC_ONLY) for c, f in functions.items()}
        self.newest_: int | None = None
        self.horizon_: int | None = None
        self._evicted_to: int | None = None  # state before this time is gone
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
            # evict in steps of 1/8 of the longest window: each eviction is a pass over
            # the whole state, and keeping a little more than needed changes no answer
            step = max(self._tile, self._longest // 8)
            if self._evicted_to is None or self.horizon_ - self._evicted_to >= step:
                self._evicted_to = self.horizon_
        for state in self._columns.values():
            if state.pending or state.compacted_horizon != self._evicted_to:
                self._compact_column(state)

    def _compact_column(self, state: _Column) -> None:
        new = _concat(state.pending)
        state.pending, state.pending_rows = [], 0
        state.compacted_horizon = self._evicted_to
        old: tuple[np.ndarray, ...] = (state.raw_code, state.raw_t, state.raw_v)
        if self._evicted_to is not None:
            kept, fresh = old[1] >= self._evicted_to, new[1] >= self._evicted_to
            if not kept.all() or not fresh.all():
                lost = np.concatenate([old[1][~kept], new[1][~fresh]])
                self._forget(int(lost.max()))
                old = tuple(a[kept] for a in old)
                new = tuple(a[fresh] for a in new)
        code, times, values = (np.concatenate([a, b]) for a, b in zip(old, new, strict=True))
        order = _merge_order(code, times, len(old[0]))  # the kept raw rows are sorted already
        state.raw_code, state.raw_t, state.raw_v = code[order], times[order], values[order]
        state.raw_index = _RangeIndex(state.raw_code, state.raw_t)
        raw = state.raw_v
        state.raw_columns = {"s": raw, "lo": raw, "hi": raw}
        if "q" in state.parts:
            state.raw_columns["q"] = raw * raw
        state.tiles = self._merge_tiles(state.tiles, new, state.parts)
        state.tile_columns = state.tiles
        state.tile_index = _RangeIndex(state.tiles["code"], state.tiles["tile"])
        if state.distinct:
            state.dtiles = self._merge_distinct(state.dtiles, new)
            state.dtile_index = _RangeIndex(state.dtiles["code"], state.dtiles["tile"])

    def _merge_tiles(
        self,
        tiles: dict[str, np.ndarray] | None,
        new: tuple[np.ndarray, ...],
        needed: frozenset[str],
    ) -> dict[str, np.ndarray]:
        """Partials of the new events per (entity, tile), merged into the kept tiles."""
        code, times, values = new
        parts = {"code": code, "tile": np.floor_divide(times, self._tile),
                 "n": np.ones(len(code), dtype=np.int64)}
        for name in ("s", "lo", "hi"):
            if name in needed:
                parts[name] = values
        if "q" in needed:
            parts["q"] = values * values
        order = _merge_order(parts["code"], parts["tile"], 0)
        parts = {name: array[order] for name, array in parts.items()}
        fresh = _reduce_runs(parts, _group_starts(parts["code"], parts["tile"]))
        if tiles is None:
            return fresh
        if self._evicted_to is not None:
            keep = tiles["tile"] * self._tile >= self._evicted_to
            if not keep.all():
                tiles = {name: array[keep] for name, array in tiles.items()}
        return _merge_tiles(tiles, fresh)

    def _merge_distinct(
        self, dtiles: dict[str, np.ndarray] | None, new: tuple[np.ndarray, ...]
    ) -> dict[str, np.ndarray]:
        """The distinct values per (entity, tile), sorted, merged into the kept ones."""
        code, times, values = new
        parts = {"code": code, "tile": np.floor_divide(times, self._tile), "v": values}
        parts, _ = self._with_kept(dtiles, parts)
        order = np.lexsort((parts["v"], parts["tile"], parts["code"]))
        parts = {name: array[order] for name, array in parts.items()}
        starts = _group_starts(parts["code"], parts["tile"], parts["v"])
        return {name: array[starts] for name, array in parts.items()}

    def _with_kept(
        self, kept: dict[str, np.ndarray] | None, parts: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], int]:
        """The kept rows (those after the horizon) then ``parts``; and how many were kept."""
        if kept is None:
            return parts, 0
        if self._evicted_to is not None:
            keep = kept["tile"] * self._tile >= self._evicted_to
            kept = {name: kept[name][keep] for name in parts}
        n_kept = len(kept["tile"])
        return {name: np.concatenate([kept[name], parts[name]]) for name in parts}, n_kept

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
        for column, state in self._columns.items():
            mine = [a for a in self.aggregations if a.column == column]
            windows = {int(w / timedelta(microseconds=1)) for a in mine for w in a.durations}
            parts = self._windows(state, codes, at, sorted(windows))
            for aggregation in mine:
                for window in aggregation.durations:
                    micros = int(window / timedelta(microseconds=1))
                    for function in aggregation.functions:
                        name = f"{aggregation.column}_{function}_{_label(window)}"
                        out[name] = np.empty_like(finished := _finish(function, parts[micros]))
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

    def _windows(
        self, state: _Column, codes: np.ndarray, at: np.ndarray, windows: list[int]
    ) -> dict[int, dict[str, np.ndarray]]:
        """The partial aggregates of each window, for every query (sorted by code, time).

        A query whose window holds few raw events (up to ``_direct_events`` plus one per
        tile in the window) is reduced straight from the raw tail: one binary search for the
        window's start (its end is shared by every window). The others go through the tiles
        (``_tiled``), which bound their cost for busy entities.
        """
        n = len(codes)
        codes = np.where(at == _NAT, -1, codes)
        if state.tiles is None or state.raw_index is None or state.tile_index is None:
            zeros = np.zeros(n, dtype=np.int64)
            empty = {"n": zeros, "s": np.zeros(n), "q": np.zeros(n), "lo": np.full(n, np.inf),
                     "hi": np.full(n, -np.inf), "distinct": zeros}
            return {window: empty for window in windows}
        upper = state.raw_index.upper(codes, at)
        out: dict[int, dict[str, np.ndarray]] = {}
        for window in windows:
            lo, hi = state.raw_index.span(codes, at - window + 1, at, upper=upper)
            busy = np.flatnonzero(hi - lo > self._direct_events + window // self._tile)
            hi[busy] = lo[busy]
            parts = self._reduce(state, _Spans(lo, hi), raw=True)
            if state.distinct:
                parts["distinct"] = _count_distinct(n, [(state.raw_v, lo, hi)])
            if len(busy):
                tiled = self._tiled(state, codes[busy], at[busy], window)
                for name, values in parts.items():
                    values[busy] = tiled[name]
            out[window] = parts
        return out

    def _tiled(
        self, state: _Column, codes: np.ndarray, at: np.ndarray, window: int
    ) -> dict[str, np.ndarray]:
        """One window's partials from whole tiles plus the raw events of its two edge tiles."""
        assert state.tile_index is not None and state.raw_index is not None
        k_t = np.floor_divide(at, self._tile)
        k_l = k_t - window // self._tile
        t_lo, t_hi = state.tile_index.span(codes, k_l + 1, k_t - 1)
        l_lo, l_hi = state.raw_index.span(codes, at - window + 1, (k_l + 1) * self._tile - 1)
        r_lo, r_hi = state.raw_index.span(codes, k_t * self._tile, at)
        pieces = [self._reduce(state, _Spans(t_lo, t_hi), raw=False),
                  self._reduce(state, _Spans(l_lo, l_hi), raw=True),
                  self._reduce(state, _Spans(r_lo, r_hi), raw=True)]
        parts = {name: ufunc.reduce([p[name] for p in pieces])
                 for name, ufunc, _ in _REDUCE if name in pieces[0]}
        if state.distinct and state.dtiles is not None and state.dtile_index is not None:
            d_lo, d_hi = state.dtile_index.span(codes, k_l + 1, k_t - 1)
            parts["distinct"] = _count_distinct(len(codes), [
                (state.dtiles["v"], d_lo, d_hi),
                (state.raw_v, l_lo, l_hi),
                (state.raw_v, r_lo, r_hi),
            ])
        return parts

    def _reduce(self, state: _Column, spans: _Spans, *, raw: bool) -> dict[str, np.ndarray]:
        """Each needed partial aggregate over each query's rows of the raw tail or tiles."""
        columns = state.raw_columns if raw else state.tile_columns
        reduced: dict[str, np.ndarray] = {}
        for name, ufunc, identity in _REDUCE:
            if name not in state.parts:
                continue
            if raw and name == "n":
                reduced[name] = spans.count.astype(np.int64)
            else:
                reduced[name] = spans.reduce(ufunc, columns[name], identity)
        return reduced


def _label(window: timedelta) -> str:
    from loopml.features._definitions import window_label

    return window_label(window)


def _merge_order(codes: np.ndarray, values: np.ndarray, n_sorted: int) -> np.ndarray:
    """The order of rows by (code, value), the first ``n_sorted`` rows being sorted.

    Both are folded into one ``int64`` when that fits; then only the new rows are sorted,
    and merged into the sorted ones by a binary search each (a new row goes after equal
    old ones), which costs the new rows' sort plus one pass, not a sort of the whole state.
    Among new rows equal in (code, value) the order is NumPy's (fast, unstable) sort's: they
    only ever meet in sums, where it can change the last bit.
    """
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    low = int(values.min())
    width = int(values.max()) - low + 1
    if (int(codes.max()) + 1) * width >= 2**62 or int(codes.min()) < 0:
        return np.lexsort((values, codes))
    packed = codes * width
    packed += values
    packed -= low
    fresh = np.argsort(packed[n_sorted:])  # ties are equal in (code, value): any order
    at = np.searchsorted(packed[:n_sorted], packed[n_sorted:][fresh], side="right")
    at += np.arange(len(fresh))  # where each new row lands in the merged order
    order = np.empty(len(codes), dtype=np.int64)
    is_new = np.zeros(len(codes), dtype=bool)
    is_new[at] = True
    order[at] = fresh + n_sorted
    order[~is_new] = np.arange(n_sorted)
    return order


def _reduce_runs(parts: dict[str, np.ndarray], starts: np.ndarray) -> dict[str, np.ndarray]:
    """One row per run of equal (code, tile): the partials merged with their ufuncs."""
    merged = {"code": parts["code"][starts], "tile": parts["tile"][starts]}
    for name, ufunc, _ in _REDUCE:
        if name in parts:
            merged[name] = ufunc.reduceat(parts[name], starts) if len(starts) else parts[name]
    return merged


def _merge_tiles(
    tiles: dict[str, np.ndarray], fresh: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Fold sorted new tiles into the sorted kept ones: combine equal tiles, insert others.

    Only the new tiles are searched for; the kept ones are copied once by the insertion.
    """
    if not len(tiles["code"]) or not len(fresh["code"]):
        return fresh if not len(tiles["code"]) else tiles
    index = _RangeIndex(np.concatenate([tiles["code"], fresh["code"]]),
                        np.concatenate([tiles["tile"], fresh["tile"]]))
    kept_key, new_key = index.composite[: len(tiles["code"])], index.composite[len(tiles["code"]):]
    at = np.searchsorted(kept_key, new_key, side="left")
    same = at < len(kept_key)
    same[same] = kept_key[at[same]] == new_key[same]
    out = {name: array.copy() for name, array in tiles.items()}
    hit = at[same]
    for name, ufunc, _ in _REDUCE:
        if name in out:
            out[name][hit] = ufunc(out[name][hit], fresh[name][same])
    insert = ~same
    lands = at[insert] + np.arange(int(insert.sum()))  # sorted: no need to sort them again
    slots = np.ones(len(kept_key) + len(lands), dtype=bool)
    slots[lands] = False
    merged = {}
    for name, array in out.items():
        merged[name] = np.empty(len(slots), dtype=array.dtype)
        merged[name][slots] = array
        merged[name][lands] = fresh[name][insert]
    return merged


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

"""Splits that cannot leak by construction: time (the default), group, stratified, random.

A time split lays the rows out as ``[train][gap][validation][gap][test]``: every row of a later
part happens at or after every row of an earlier one, rows that share a timestamp never straddle
a boundary, and rows inside a gap (which should be at least the label horizon) are dropped and
counted. Every split records its boundaries so it can be checked and reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError, SplitConfig, format_duration
from loopml.trainingdata._timecols import (
    as_duration,
    nanos,
    require_columns,
    to_timestamp,
    utc_column,
)

__all__ = ["Fold", "Split", "make_split", "rolling_origin_folds", "split_from_config"]

SplitBy = Literal["time", "group", "stratified", "stratified_group", "random"]
_PARTS = ("train", "validation", "test")
_WHAT = "make_split"


@dataclass(frozen=True, eq=False)
class Split:
    """Row positions of train, validation and test, and the boundaries that produced them.

    ``train``, ``validation`` and ``test`` are sorted integer positions (``frame.iloc``).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC")})
    >>> split = make_split(frame, timestamp="t", validation=0.2, test=0.2)
    >>> split.train.tolist(), split.validation.tolist(), split.test.tolist()
    ([0, 1, 2, 3, 4, 5], [6, 7], [8, 9])
    >>> split.to_dict()["boundaries"]["test"]["start"]
    '2024-01-09T00:00:00+00:00'
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    by: str
    boundaries: dict[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Split):
            return NotImplemented
        return (
            self.by == other.by
            and self.boundaries == other.boundaries
            and all(np.array_equal(getattr(self, p), getattr(other, p)) for p in _PARTS)
        )

    def frames(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The three parts of ``frame`` (the frame the split was made on)."""
        return frame.iloc[self.train], frame.iloc[self.validation], frame.iloc[self.test]

    @property
    def counts(self) -> dict[str, int]:
        """Rows in each part."""
        return {name: int(len(getattr(self, name))) for name in _PARTS}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the split (boundaries and counts, not the positions)."""
        return {"by": self.by, "counts": self.counts, "boundaries": _jsonable(self.boundaries)}


@dataclass(frozen=True, eq=False)
class Fold:
    """One rolling-origin fold: train strictly before validation, with the gap between.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=12, freq="D", tz="UTC")})
    >>> folds = rolling_origin_folds(frame, timestamp="t", n_folds=3)
    >>> [(len(f.train), len(f.validation)) for f in folds]
    [(3, 3), (6, 3), (9, 3)]
    """

    index: int
    train: np.ndarray
    validation: np.ndarray
    boundaries: dict[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fold):
            return NotImplemented
        return (
            self.index == other.index
            and self.boundaries == other.boundaries
            and np.array_equal(self.train, other.train)
            and np.array_equal(self.validation, other.validation)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the fold."""
        return {
            "index": self.index,
            "counts": {"train": int(len(self.train)), "validation": int(len(self.validation))},
            "boundaries": _jsonable(self.boundaries),
        }


def make_split(
    frame: pd.DataFrame,
    *,
    by: SplitBy = "time",
    timestamp: str | None = None,
    group: str | None = None,
    target: str | None = None,
    validation: float | str | timedelta = 0.15,
    test: float | str | timedelta = 0.15,
    gap: str | timedelta | None = None,
    seed: int = 0,
) -> Split:
    """Split ``frame`` into train, validation and test; ``by="time"`` is the default.

    ``validation`` and ``test`` are fractions of the rows, or (time splits only) durations
    such as ``"7d"`` measured back from the last timestamp. ``gap`` (time splits) drops the
    rows of that length before validation and before test; make it at least the label horizon.
    ``"group"`` keeps every group on one side, ``"stratified"`` keeps the class mix of
    ``target`` in every part, ``"stratified_group"`` does both, ``"random"`` shuffles.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({
    ...     "t": pd.date_range("2024-01-01", periods=30, freq="D", tz="UTC"),
    ...     "y": [0, 1] * 15})
    >>> split = make_split(frame, timestamp="t", validation="7d", test="7d", gap="2d")
    >>> split.counts, split.boundaries["dropped_in_gap"]
    ({'train': 12, 'validation': 7, 'test': 7}, 4)
    >>> make_split(frame, by="stratified", target="y", test=0.2, validation=0.2).counts
    {'train': 18, 'validation': 6, 'test': 6}
    """
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"make_split needs a pandas DataFrame. Got {type(frame).__name__}.")
    if len(frame) == 0:
        raise DataError("make_split: the frame has no rows", hint="load some data first")
    gap_td = as_duration(gap, name="gap")
    if by == "time":
        return _time_split(frame, timestamp, validation, test, gap_td)
    if by not in ("group", "stratified", "stratified_group", "random"):
        raise ConfigError(
            "The 'by' parameter of make_split must be one of 'time', 'group', 'stratified', "
            f"'stratified_group', 'random'. Got {by!r} instead."
        )
    if gap_td is not None:
        raise ConfigError(
            f"The 'gap' parameter of make_split applies to time splits only. Got {gap!r} "
            f"with by={by!r}.",
            hint="remove 'gap' or split by time",
        )
    fractions = (_fraction(validation, "validation", by), _fraction(test, "test", by))
    return _unordered_split(frame, by, group, target, fractions, seed)


def split_from_config(
    frame: pd.DataFrame,
    config: SplitConfig,
    *,
    timestamp: str | None = None,
    target: str | None = None,
    group: str | None = None,
) -> Split:
    """:func:`make_split` with the settings of ``loopml.yaml``'s ``split:`` section.

    Examples
    --------
    >>> import pandas as pd
    >>> from loopml.core import SplitConfig
    >>> frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=20, freq="D", tz="UTC")})
    >>> config = SplitConfig.model_validate({"validation": "5d", "test": "5d", "gap": "1d"})
    >>> split_from_config(frame, config, timestamp="t").counts
    {'train': 8, 'validation': 5, 'test': 5}
    """
    return make_split(
        frame,
        by=config.by,
        timestamp=timestamp,
        group=group or config.group,
        target=target,
        validation=config.validation,
        test=config.test,
        gap=config.gap,
        seed=config.seed,
    )


def rolling_origin_folds(
    frame: pd.DataFrame,
    *,
    timestamp: str,
    n_folds: int,
    gap: str | timedelta | None = None,
    min_train: int | float | str | timedelta | None = None,
) -> list[Fold]:
    """Expanding-window backtest folds: each validates on the next block of time.

    The rows after the first ``min_train`` (rows as an int, a fraction, or a duration from
    the first timestamp; default one block) are cut into ``n_folds`` consecutive blocks of
    about equal row counts; fold ``i`` trains on everything before block ``i`` minus ``gap``.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC")})
    >>> folds = rolling_origin_folds(frame, timestamp="t", n_folds=2, gap="1d", min_train=4)
    >>> [(f.train.tolist(), f.validation.tolist()) for f in folds]
    [([0, 1, 2], [4, 5, 6]), ([0, 1, 2, 3, 4, 5], [7, 8, 9])]
    """
    if not isinstance(n_folds, int) or isinstance(n_folds, bool) or n_folds < 1:
        raise ConfigError(
            "The 'n_folds' parameter of rolling_origin_folds must be an integer >= 1. "
            f"Got {n_folds!r} instead."
        )
    what = "rolling_origin_folds"
    times = nanos(utc_column(frame, timestamp, what=what))
    gap_ns = _ns(as_duration(gap, name="gap"))
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    start = _min_train_rows(sorted_times, min_train, n_folds)
    edges = np.linspace(start, len(times), n_folds + 1).round().astype(np.int64)
    folds = []
    for index in range(n_folds):
        v_start = int(sorted_times[min(edges[index], len(times) - 1)])
        v_end = int(sorted_times[edges[index + 1]]) if edges[index + 1] < len(times) else None
        valid_mask = (times >= v_start) & (times < v_end if v_end is not None else True)
        train_mask = times < v_start - gap_ns
        fold = _make_fold(index, train_mask, valid_mask, v_start, v_end, gap_ns, times)
        folds.append(fold)
    return folds


def _make_fold(
    index: int,
    train_mask: np.ndarray,
    valid_mask: np.ndarray,
    v_start: int,
    v_end: int | None,
    gap_ns: int,
    times: np.ndarray,
) -> Fold:
    if not train_mask.any() or not valid_mask.any():
        raise DataError(
            f"rolling_origin_folds: fold {index} has {int(train_mask.sum())} training and "
            f"{int(valid_mask.sum())} validation rows",
            hint="use fewer folds, a shorter gap or a smaller min_train",
        )
    gap_rows = int(((times >= v_start - gap_ns) & (times < v_start)).sum())
    boundaries: dict[str, Any] = {
        "train": {
            "start": to_timestamp(times[train_mask].min()),
            "end": to_timestamp(times[train_mask].max()),
        },
        "validation": {
            "start": to_timestamp(v_start),
            "end": to_timestamp(times[valid_mask].max()),
        },
        "validation_end_exclusive": to_timestamp(v_end) if v_end is not None else None,
        "gap": timedelta(microseconds=gap_ns // 1000),
        "dropped_in_gap": gap_rows,
    }
    return Fold(index, np.flatnonzero(train_mask), np.flatnonzero(valid_mask), boundaries)


def _min_train_rows(
    sorted_times: np.ndarray, min_train: int | float | str | timedelta | None, n_folds: int
) -> int:
    n = len(sorted_times)
    if min_train is None:
        return max(1, n // (n_folds + 1))
    if isinstance(min_train, bool):
        raise ConfigError(
            f"The 'min_train' parameter must be rows, a fraction or a duration. "
            f"Got {min_train!r} instead."
        )
    if isinstance(min_train, int):
        rows = min_train
    elif isinstance(min_train, float):
        if not 0.0 < min_train < 1.0:
            raise ConfigError(
                f"The 'min_train' parameter as a fraction must lie in (0, 1). "
                f"Got {min_train!r} instead."
            )
        rows = round(min_train * n)
    else:
        cut = sorted_times[0] + _ns(as_duration(min_train, name="min_train"))
        rows = int(np.searchsorted(sorted_times, cut, side="left"))
    if not 1 <= rows <= n - n_folds:
        raise DataError(
            f"rolling_origin_folds: min_train leaves {rows} training rows of {n}, which does not "
            f"leave room for {n_folds} validation blocks",
            hint="lower min_train or n_folds",
        )
    return rows


# -- time ------------------------------------------------------------------------------------


def _time_split(
    frame: pd.DataFrame,
    timestamp: str | None,
    validation: float | str | timedelta,
    test: float | str | timedelta,
    gap: timedelta | None,
) -> Split:
    if timestamp is None:
        raise ConfigError(
            "make_split splits by time by default, and needs the 'timestamp' column to do so",
            hint="pass timestamp='<column>', or ask for by='group', 'stratified' or 'random' "
            "by name if the rows have no time order",
        )
    times = nanos(utc_column(frame, timestamp, what=_WHAT))
    sorted_times = np.sort(times)
    gap_ns = _ns(gap)
    test_start = _start_of_last(sorted_times, test, "test", int(sorted_times[-1]) + 1)
    valid_end = test_start - gap_ns
    valid_start = _start_of_last(sorted_times, validation, "validation", valid_end)
    train_end = valid_start - gap_ns if valid_start < valid_end else valid_end
    masks = {
        "train": times < train_end,
        "validation": (times >= valid_start) & (times < valid_end),
        "test": times >= test_start,
    }
    _require_nonempty(masks, validation, timestamp)
    dropped = len(times) - sum(int(m.sum()) for m in masks.values())
    boundaries = _time_boundaries(times, masks, timestamp, gap, dropped)
    train, valid, test_rows = (np.flatnonzero(masks[p]) for p in _PARTS)
    return Split(train, valid, test_rows, "time", boundaries)


def _start_of_last(
    sorted_times: np.ndarray, size: float | str | timedelta, name: str, end: int
) -> int:
    """The start time of a part that ends (exclusively) at ``end``: by rows or by duration."""
    if isinstance(size, float | int) and not isinstance(size, bool):
        fraction = _fraction_value(size, name, "time")
        n_before = int(np.searchsorted(sorted_times, end, side="left"))
        rows = round(fraction * len(sorted_times))
        if rows == 0:
            return end
        return int(sorted_times[max(n_before - rows, 0)])
    if isinstance(size, bool):
        raise ConfigError(
            f"The '{name}' parameter of make_split must be a fraction or a "
            f"duration like '7d'. Got {size!r} instead."
        )
    return end - _ns(as_duration(size, name=name))


def _require_nonempty(
    masks: dict[str, np.ndarray], validation: float | str | timedelta, timestamp: str
) -> None:
    wants_validation = not (isinstance(validation, float | int) and validation == 0)
    for part in _PARTS:
        if part == "validation" and not wants_validation:
            continue
        if not masks[part].any():
            raise DataError(
                f"make_split: the time split on '{timestamp}' left no {part} rows",
                hint="shorten the validation/test periods or the gap, or check the timestamps",
            )


def _time_boundaries(
    times: np.ndarray,
    masks: dict[str, np.ndarray],
    timestamp: str,
    gap: timedelta | None,
    dropped: int,
) -> dict[str, Any]:
    boundaries: dict[str, Any] = {"timestamp": timestamp}
    for part, mask in masks.items():
        if mask.any():
            part_times = times[mask]
            boundaries[part] = {
                "start": to_timestamp(part_times.min()),
                "end": to_timestamp(part_times.max()),
            }
        else:
            boundaries[part] = {"start": None, "end": None}
    boundaries["gap"] = gap
    boundaries["dropped_in_gap"] = dropped
    boundaries["counts"] = {part: int(mask.sum()) for part, mask in masks.items()}
    return boundaries


# -- group, stratified, random ---------------------------------------------------------------


def _unordered_split(
    frame: pd.DataFrame,
    by: str,
    group: str | None,
    target: str | None,
    fractions: tuple[float, float],
    seed: int,
) -> Split:
    rng = np.random.default_rng(seed)
    needs_group = by in ("group", "stratified_group")
    needs_target = by in ("stratified", "stratified_group")
    if needs_group and group is None:
        raise ConfigError(
            f"make_split(by={by!r}) needs the 'group' column",
            hint="pass group='<column>' (e.g. the user or patient id)",
        )
    if needs_target and target is None:
        raise ConfigError(
            f"make_split(by={by!r}) needs the 'target' column", hint="pass target='<label column>'"
        )
    require_columns(
        frame, [group if needs_group else None, target if needs_target else None], what=_WHAT
    )
    n = len(frame)
    if by == "random":
        parts = _assign_rows(rng.permutation(n), fractions)
    elif by == "stratified":
        parts = _assign_stratified(_strata(frame[target]), fractions, rng)
    else:
        codes = _group_codes(frame[group], group)
        strata = _strata(frame[target]) if by == "stratified_group" else None
        parts = _assign_groups(codes, strata, fractions, rng)
    return _finish(parts, by, group, frame, seed, fractions)


def _assign_rows(order: np.ndarray, fractions: tuple[float, float]) -> np.ndarray:
    """Part label (0 train, 1 validation, 2 test) per row, taking rows in ``order``."""
    n = len(order)
    n_test, n_valid = round(fractions[1] * n), round(fractions[0] * n)
    parts = np.zeros(n, dtype=np.int8)
    parts[order[:n_test]] = 2
    parts[order[n_test : n_test + n_valid]] = 1
    return parts


def _assign_stratified(
    strata: np.ndarray, fractions: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    parts = np.zeros(len(strata), dtype=np.int8)
    for code in np.unique(strata):
        shuffled = rng.permutation(np.flatnonzero(strata == code))
        parts[shuffled] = _assign_rows(np.arange(len(shuffled)), fractions)
    return parts


def _assign_groups(
    codes: np.ndarray,
    strata: np.ndarray | None,
    fractions: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Greedy: groups (largest first, ties shuffled) go where they most reduce the squared gap
    between each part's per-class row counts and its target counts."""
    n_groups = int(codes.max()) + 1
    strata = np.zeros(len(codes), dtype=np.int64) if strata is None else strata
    n_strata = int(strata.max()) + 1
    table = np.zeros((n_groups, n_strata))
    np.add.at(table, (codes, strata), 1.0)
    share = np.array([1.0 - sum(fractions), fractions[0], fractions[1]])
    target = share[:, None] * table.sum(axis=0)[None, :]
    current = np.zeros_like(target)
    order = rng.permutation(n_groups)
    order = order[np.argsort(-table[order].sum(axis=1), kind="stable")]
    group_part = np.zeros(n_groups, dtype=np.int8)
    for g in order:
        row = table[g]
        cost = ((current + row - target) ** 2 - (current - target) ** 2).sum(axis=1)
        cost[share == 0] = np.inf
        best = int(np.argmin(cost))
        group_part[g] = best
        current[best] += row
    return np.asarray(group_part[codes], dtype=np.int8)


def _finish(
    parts: np.ndarray,
    by: str,
    group: str | None,
    frame: pd.DataFrame,
    seed: int,
    fractions: tuple[float, float],
) -> Split:
    positions = [np.flatnonzero(parts == i) for i in range(3)]
    for name, rows, share in zip(_PARTS, positions, (1.0, *fractions), strict=True):
        if share > 0 and len(rows) == 0:
            raise DataError(
                f"make_split(by={by!r}) left no {name} rows",
                hint="use more data or larger fractions",
            )
    boundaries: dict[str, Any] = {
        "seed": seed,
        "fractions": {"validation": fractions[0], "test": fractions[1]},
        "counts": {p: int(len(r)) for p, r in zip(_PARTS, positions, strict=True)},
    }
    if group is not None and by in ("group", "stratified_group"):
        values = frame[group].to_numpy()
        boundaries["group"] = group
        boundaries["groups"] = {
            p: int(pd.unique(values[r]).size) for p, r in zip(_PARTS, positions, strict=True)
        }
    return Split(positions[0], positions[1], positions[2], by, boundaries)


def _group_codes(values: pd.Series, name: str | None) -> np.ndarray:
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise DataError(
            f"make_split: group column '{name}' is missing at row {row}",
            hint="fill or drop rows without a group",
        )
    codes, _ = pd.factorize(values)
    return np.asarray(codes, dtype=np.int64)


def _strata(values: pd.Series) -> np.ndarray:
    """Class codes; a numeric target with many values is cut into 10 quantile bins."""
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise DataError(
            f"make_split: target column '{values.name}' is missing at row {row}",
            hint="drop unlabeled rows before a stratified split",
        )
    if pd.api.types.is_float_dtype(values.dtype) and values.nunique() > 20:
        values = pd.Series(pd.qcut(values, 10, labels=False, duplicates="drop"))
    codes, _ = pd.factorize(values)
    return np.asarray(codes, dtype=np.int64)


def _fraction(value: float | str | timedelta, name: str, by: str) -> float:
    if not isinstance(value, float | int) or isinstance(value, bool):
        raise ConfigError(
            f"The '{name}' parameter of make_split must be a fraction like 0.15 when "
            f"by={by!r} (durations need a time split). Got {_shown(value)} instead."
        )
    return _fraction_value(value, name, by)


def _shown(value: object) -> str:
    return repr(format_duration(value)) if isinstance(value, timedelta) else repr(value)


def _fraction_value(value: float, name: str, by: str) -> float:
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError(
            f"The '{name}' parameter of make_split must be a fraction in [0, 1) or a duration "
            f"like '7d'. Got {value!r} instead."
        )
    return float(value)


def _ns(value: timedelta | None) -> int:
    if value is None:
        return 0
    return int(value / timedelta(microseconds=1)) * 1000


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value

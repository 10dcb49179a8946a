"""The applier: run labeling functions over a DataFrame into a label matrix ``L``.

Vectorised functions run once over the whole frame. Row functions run over chunks of rows,
in ``n_jobs`` worker processes (forked, so functions defined anywhere, lambdas included,
need no pickling), with a progress bar on a terminal. A function that raises, or returns
something that is not a class index or -1, stops the run with an error naming the function
and the row.
"""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.core import ConfigError, DataError, LoopmlWarning, progress
from loopml.trainingdata.labeling._lf import LabelingFunction, Row
from loopml.trainingdata.labeling._matrix import ABSTAIN, label_dtype

__all__ = ["apply_lfs"]

# Set in the parent just before forking the pool; workers inherit it, nothing is pickled.
_SHARED: tuple[pd.DataFrame, list[LabelingFunction], int | None] | None = None


def apply_lfs(
    data: pd.DataFrame,
    lfs: Sequence[LabelingFunction],
    *,
    cardinality: int | None = None,
    n_jobs: int = 1,
    chunk_size: int = 2_000,
    show_progress: bool = True,
) -> pd.DataFrame:
    """The label matrix: one row per row of ``data``, one int8/int16 column per function.

    >>> from loopml.trainingdata.labeling import keyword_lf, labeling_function
    >>> @labeling_function
    ... def short(row):
    ...     return 0 if len(row.text) < 8 else -1
    >>> frame = pd.DataFrame({"text": ["great song", "subscribe to me", "wow"]})
    >>> L = apply_lfs(frame, [keyword_lf("text", ["subscribe"], 1), short], cardinality=2)
    >>> L.to_numpy().tolist(), list(L.columns), L.dtypes.iloc[0].name
    ([[-1, -1], [1, -1], [-1, 0]], ['keyword_subscribe', 'short'], 'int8')
    """
    _check_lfs(lfs)
    if n_jobs < 1 or chunk_size < 1:
        raise ConfigError(
            f"apply_lfs needs n_jobs >= 1 and chunk_size >= 1. Got n_jobs={n_jobs}, "
            f"chunk_size={chunk_size} instead."
        )
    n = len(data)
    limit = cardinality if cardinality is not None else 32767
    columns: dict[str, npt.NDArray[np.int64]] = {}
    for lf in lfs:
        if lf.vectorized:
            columns[lf.name] = _run_vectorized(lf, data, limit)
    row_lfs = [lf for lf in lfs if not lf.vectorized]
    if row_lfs:
        matrix = _run_rows(data, row_lfs, cardinality, n_jobs, chunk_size, show_progress)
        for j, lf in enumerate(row_lfs):
            columns[lf.name] = matrix[:, j]
    top = max((int(col.max()) for col in columns.values() if n), default=1)
    dtype = label_dtype(cardinality if cardinality is not None else max(top + 1, 2))
    return pd.DataFrame({lf.name: columns[lf.name].astype(dtype) for lf in lfs}, index=data.index)


def _check_lfs(lfs: Sequence[LabelingFunction]) -> None:
    if not lfs:
        raise ConfigError("apply_lfs needs at least one labeling function. Got none.")
    seen: set[str] = set()
    for lf in lfs:
        if not isinstance(lf, LabelingFunction):
            raise ConfigError(
                f"apply_lfs takes LabelingFunction objects (use @labeling_function). "
                f"Got {lf!r} instead."
            )
        if lf.name in seen:
            raise ConfigError(
                f"Two labeling functions are named {lf.name!r}; names must be unique."
            )
        seen.add(lf.name)


def _run_vectorized(lf: LabelingFunction, data: pd.DataFrame, limit: int) -> Any:
    try:
        raw = lf.apply_frame(data)
    except DataError:
        raise
    except Exception as error:
        raise DataError(
            f"Labeling function {lf.name!r} (vectorized) failed: {type(error).__name__}: {error}",
            hint="fix the function; it receives the whole DataFrame",
        ) from error
    if raw.shape != (len(data),):
        raise DataError(
            f"Labeling function {lf.name!r} returned shape {raw.shape}; it must return one "
            f"label per row ({len(data)},)."
        )
    return _validated(raw, lf.name, limit, data.index, offset=0)


def _validated(
    raw: npt.NDArray[Any], name: str, limit: int, index: pd.Index, offset: int
) -> npt.NDArray[np.int64]:
    as_float = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(as_float) | (as_float != np.round(as_float)) | (as_float < ABSTAIN)
    bad |= as_float >= limit
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        _raise_bad_output(name, raw[position], offset + position, index, limit)
    return as_float.astype(np.int64)


def _raise_bad_output(name: str, value: Any, position: int, index: pd.Index, limit: int) -> None:
    allowed = f"in 0..{limit - 1}" if limit < 32767 else "(0, 1, ...)"
    shown = value.item() if isinstance(value, np.generic) else value
    raise DataError(
        f"Labeling function {name!r} returned {shown!r} for row {position} (index "
        f"{index[position]!r}); it must return a class index {allowed} or -1 to abstain",
        hint="return -1 (ABSTAIN) when the function has no opinion",
    )


def _run_rows(
    data: pd.DataFrame,
    lfs: list[LabelingFunction],
    cardinality: int | None,
    n_jobs: int,
    chunk_size: int,
    show_progress: bool,
) -> npt.NDArray[np.int64]:
    global _SHARED
    starts = list(range(0, len(data), chunk_size))
    if n_jobs > 1 and "fork" not in multiprocessing.get_all_start_methods():
        warnings.warn(
            "apply_lfs runs row functions in one process here: this platform cannot fork",
            LoopmlWarning,
            stacklevel=3,
        )
        n_jobs = 1
    _SHARED = (data, lfs, cardinality)
    try:
        if n_jobs == 1 or len(starts) == 1:
            parts = list(
                _progress(
                    map(_apply_chunk, starts, [chunk_size] * len(starts)),
                    len(starts),
                    show_progress,
                )
            )
        else:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(n_jobs, mp_context=context) as pool:
                results = pool.map(_apply_chunk, starts, [chunk_size] * len(starts))
                parts = list(_progress(results, len(starts), show_progress))
    finally:
        _SHARED = None
    for part in parts:
        if isinstance(part, DataError):
            raise part
    if not parts:
        return np.zeros((0, len(lfs)), dtype=np.int64)
    return np.concatenate([p for p in parts if isinstance(p, np.ndarray)])


def _progress(items: Any, total: int, show: bool) -> Any:
    return progress(items, total=total, description="labeling") if show else items


def _apply_chunk(start: int, size: int) -> npt.NDArray[np.int64] | DataError:
    """Run every row function over rows ``start:start+size``; errors come back as values."""
    assert _SHARED is not None
    data, lfs, cardinality = _SHARED
    chunk = data.iloc[start : start + size]
    names = [str(c) for c in chunk.columns]
    out = np.full((len(chunk), len(lfs)), ABSTAIN, dtype=np.int64)
    limit = cardinality if cardinality is not None else 32767
    for i, values in enumerate(chunk.itertuples(index=False, name=None)):
        row = Row(zip(names, values, strict=True))
        for j, lf in enumerate(lfs):
            try:
                out[i, j] = _check_value(lf(row), limit)
            except Exception as error:
                return _row_error(lf, error, start + i, data.index, limit)
    return out


def _check_value(value: Any, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise _BadOutput(value)
    if not ABSTAIN <= int(value) < limit:
        raise _BadOutput(value)
    return int(value)


class _BadOutput(Exception):
    def __init__(self, value: Any) -> None:
        super().__init__(repr(value))
        self.value = value


def _row_error(
    lf: LabelingFunction, error: Exception, position: int, index: pd.Index, limit: int
) -> DataError:
    if isinstance(error, _BadOutput):
        try:
            _raise_bad_output(lf.name, error.value, position, index, limit)
        except DataError as bad:
            return bad
    return DataError(
        f"Labeling function {lf.name!r} raised {type(error).__name__}: {error} on row "
        f"{position} (index {index[position]!r})",
        hint="fix the function, or make it return -1 (abstain) for such rows",
    )

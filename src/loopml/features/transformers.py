"""Feature transformers that follow the scikit-learn contract exactly.

Each one is fitted on the training split only (``fit``), stores its learned state in attributes
ending with ``_`` and passes ``sklearn.utils.estimator_checks.parametrize_with_checks``:

==========================  ================================================================
``MissingIndicatorImputer``  mean / median / most-frequent / constant imputation, plus one
                             0/1 indicator column per feature that had missing values
``FeatureScaler``                   standard, robust (median / IQR) or min-max scaling
``SkewTransformer``          ``log`` (log1p after a shift) or Box-Cox for skewed features
``Discretizer``              quantile or uniform bins, as ordinal codes
``HashingEncoder``           the hashing trick for high-cardinality categoricals; reports the
                             collision rate seen in training
``FeatureCrosser``           pairwise crosses: products of numbers or hashed category pairs
``CyclicalEncoder``          sin / cos of a periodic number (hour 0-23, weekday 0-6)
``TimeEncoder``              sin / cos of hour, weekday, day of year and month of a timestamp
``PositionalEmbedding``      the sinusoidal embedding of a position (Vaswani et al. 2017)
==========================  ================================================================

>>> import numpy as np
>>> X = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 8.0]])
>>> imputer = MissingIndicatorImputer(strategy="median").fit(X)
>>> imputer.transform(X)
array([[1., 6., 0., 1.],
       [3., 4., 0., 0.],
       [2., 8., 1., 0.]])
>>> list(imputer.get_feature_names_out())
['x0', 'x1', 'x0_missing', 'x1_missing']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from loopml.core import ConfigError

__all__ = [
    "CyclicalEncoder",
    "Discretizer",
    "FeatureCrosser",
    "HashingEncoder",
    "MissingIndicatorImputer",
    "PositionalEmbedding",
    "FeatureScaler",
    "SkewTransformer",
    "TimeEncoder",
    "hash_values",
]

Array = NDArray[np.float64]


def _bad_param(owner: str, name: str, expected: str, got: Any) -> ConfigError:
    return ConfigError(
        f"The '{name}' parameter of {owner} must be {expected}. Got {got!r} instead."
    )


def _choice(owner: str, name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        expected = "one of " + ", ".join(repr(a) for a in allowed)
        raise _bad_param(owner, name, expected, value)
    return str(value)


class _Base(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Shared plumbing: feature names in and out."""

    def _names_in(self) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        return [f"x{i}" for i in range(self.n_features_in_)]

    def _out_names(self) -> list[str]:
        return self._names_in()

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """Names of the output columns."""
        check_is_fitted(self, "n_features_in_")
        return np.asarray(self._out_names(), dtype=object)


# -- imputation --------------------------------------------------------------------------


class MissingIndicatorImputer(_Base):
    """Fill missing values and add a 0/1 indicator column for every feature that had some.

    The indicator keeps "was missing" apart from any real value, so the filled value never
    passes for a real observation. With ``strategy="constant"`` and no ``fill_value``, the fill
    is a sentinel below everything seen in training (``min - (max - min) - 1``).

    >>> import numpy as np
    >>> X = np.array([[1.0], [np.nan], [5.0]])
    >>> MissingIndicatorImputer(strategy="constant").fit_transform(X).tolist()
    [[1.0, 0.0], [-4.0, 1.0], [5.0, 0.0]]
    """

    def __init__(self, strategy: str = "median", fill_value: float | None = None) -> None:
        self.strategy = strategy
        self.fill_value = fill_value

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X: Any, y: Any = None) -> MissingIndicatorImputer:
        """Learn one fill value per column and which columns need an indicator."""
        strategy = _choice(
            "MissingIndicatorImputer",
            "strategy",
            self.strategy,
            ("mean", "median", "most_frequent", "constant"),
        )
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64)
        missing = np.isnan(X)
        self.indicator_features_ = np.flatnonzero(missing.any(axis=0))
        self.statistics_ = np.array(
            [_fill_value(column[~np.isnan(column)], strategy, self.fill_value) for column in X.T]
        )
        return self

    def transform(self, X: Any) -> Array:
        """Fill and append the indicator columns."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        missing = np.isnan(X)
        filled = np.where(missing, self.statistics_, X)
        indicators = missing[:, self.indicator_features_].astype(np.float64)
        return np.hstack([filled, indicators])

    def _out_names(self) -> list[str]:
        names = self._names_in()
        return names + [f"{names[i]}_missing" for i in self.indicator_features_]


def _fill_value(seen: Array, strategy: str, fill_value: float | None) -> float:
    if strategy == "constant" and fill_value is not None:
        return float(fill_value)
    if seen.size == 0:
        return 0.0 if fill_value is None else float(fill_value)
    if strategy == "mean":
        return float(seen.mean())
    if strategy == "median":
        return float(np.median(seen))
    if strategy == "most_frequent":
        values, counts = np.unique(seen, return_counts=True)
        return float(values[np.argmax(counts)])
    low, high = float(seen.min()), float(seen.max())
    return low - (high - low) - 1.0


# -- scaling -----------------------------------------------------------------------------


class FeatureScaler(_Base):
    """Centre and scale each column: ``standard``, ``robust`` (median / IQR) or ``minmax``.

    A constant column is centred and left unscaled (scale 1).

    >>> import numpy as np
    >>> X = np.array([[0.0], [5.0], [10.0]])
    >>> FeatureScaler(method="minmax").fit_transform(X).ravel().tolist()
    [0.0, 0.5, 1.0]
    """

    def __init__(self, method: str = "standard") -> None:
        self.method = method

    def fit(self, X: Any, y: Any = None) -> FeatureScaler:
        """Learn the centre and scale of each column."""
        method = _choice("FeatureScaler", "method", self.method, ("standard", "robust", "minmax"))
        X = validate_data(self, X, dtype=np.float64)
        if method == "standard":
            center, scale = X.mean(axis=0), X.std(axis=0)
        elif method == "robust":
            low, center, high = np.percentile(X, [25, 50, 75], axis=0)
            scale = high - low
        else:
            center, scale = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
        self.center_ = center
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, X: Any) -> Array:
        """Apply the learned centre and scale."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return np.asarray((X - self.center_) / self.scale_, dtype=np.float64)


# -- skew --------------------------------------------------------------------------------


class SkewTransformer(_Base):
    """Reduce right skew: ``log`` (``log1p`` of the value above the training minimum) or Box-Cox.

    Values below the training minimum are clipped to it, so the transform is defined for any
    input. Box-Cox learns one ``lambda`` per column on the shifted, positive values.

    >>> import numpy as np
    >>> t = SkewTransformer(method="log").fit(np.array([[0.0], [9.0], [99.0]]))
    >>> np.round(t.transform(np.array([[99.0], [-5.0]])), 3).ravel().tolist()
    [4.605, 0.0]
    """

    def __init__(self, method: str = "log") -> None:
        self.method = method

    def fit(self, X: Any, y: Any = None) -> SkewTransformer:
        """Learn the shift (and Box-Cox lambdas) from the training rows."""
        method = _choice("SkewTransformer", "method", self.method, ("log", "box-cox"))
        X = validate_data(self, X, dtype=np.float64)
        self.shift_ = X.min(axis=0)
        if method == "box-cox":
            from scipy import stats

            shifted = X - self.shift_ + 1.0
            self.lambdas_ = np.array([_boxcox_lambda(stats, column) for column in shifted.T])
        return self

    def transform(self, X: Any) -> Array:
        """Shift, clip at zero, and transform."""
        check_is_fitted(self, "shift_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        above = np.maximum(X - self.shift_, 0.0)
        if self.method == "log":
            return np.asarray(np.log1p(above), dtype=np.float64)
        from scipy import special

        return np.asarray(special.boxcox(above + 1.0, self.lambdas_), dtype=np.float64)


def _boxcox_lambda(stats: Any, column: Array) -> float:
    if np.ptp(column) == 0:
        return 1.0
    return float(stats.boxcox_normmax(column, method="mle"))


# -- discretisation ----------------------------------------------------------------------


class Discretizer(_Base):
    """Bin each column into ``n_bins`` ordinal codes (0 .. n_bins-1), by quantile or uniformly.

    >>> import numpy as np
    >>> X = np.arange(10.0).reshape(-1, 1)
    >>> Discretizer(n_bins=2, strategy="uniform").fit_transform(X).ravel().tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, n_bins: int = 5, strategy: str = "quantile") -> None:
        self.n_bins = n_bins
        self.strategy = strategy

    def fit(self, X: Any, y: Any = None) -> Discretizer:
        """Learn the inner bin edges of each column."""
        strategy = _choice("Discretizer", "strategy", self.strategy, ("quantile", "uniform"))
        if not isinstance(self.n_bins, int | np.integer) or self.n_bins < 2:
            raise _bad_param("Discretizer", "n_bins", "an integer of at least 2", self.n_bins)
        X = validate_data(self, X, dtype=np.float64)
        inner = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        if strategy == "quantile":
            edges = np.quantile(X, inner, axis=0).T
        else:
            low, high = X.min(axis=0), X.max(axis=0)
            edges = (low[:, None] + np.outer(high - low, inner)).reshape(X.shape[1], -1)
        self.bin_edges_ = [np.unique(row) for row in edges]
        return self

    def transform(self, X: Any) -> Array:
        """Replace each value by the index of its bin."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        codes = [np.searchsorted(e, X[:, j], side="right") for j, e in enumerate(self.bin_edges_)]
        return np.column_stack(codes).astype(np.float64)


# -- hashing -----------------------------------------------------------------------------


def hash_values(values: Any, n_features: int, *, salt: str = "", seed: int = 0) -> NDArray[Any]:
    """Stable bucket (0 .. n_features-1) of each value: MurmurHash3 of ``salt + str(value)``.

    Python's own ``hash`` is salted per process, so it is never used.

    >>> hash_values(["a", "b", "a"], 8).tolist() == hash_values(["a", "b", "a"], 8).tolist()
    True
    """
    from sklearn.utils import murmurhash3_32

    array = np.asarray(values, dtype=object)
    uniques, inverse = np.unique(array.astype(str), return_inverse=True)
    buckets = np.array(
        [murmurhash3_32(salt + str(u), seed=seed, positive=True) % n_features for u in uniques],
        dtype=np.int64,
    )
    return buckets[inverse.reshape(-1)]


class HashingEncoder(_Base):
    """The hashing trick: each (column, value) pair lands in one of ``n_features`` buckets.

    Unseen categories need no refit; the price is collisions. ``collision_rate_`` is the share
    of distinct training (column, value) pairs that share their bucket with another pair.
    Missing values hash as the token ``"nan"``. Output is dense unless ``sparse_output``.

    >>> import numpy as np
    >>> X = np.array([["visa"], ["amex"], ["visa"]], dtype=object)
    >>> enc = HashingEncoder(n_features=16).fit(X)
    >>> enc.transform(X).sum(axis=1).tolist(), enc.n_categories_
    ([1.0, 1.0, 1.0], 2)
    """

    def __init__(self, n_features: int = 256, sparse_output: bool = False, seed: int = 0) -> None:
        self.n_features = n_features
        self.sparse_output = sparse_output
        self.seed = seed

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags

    def fit(self, X: Any, y: Any = None) -> HashingEncoder:
        """Measure the collision rate of the training categories."""
        if not isinstance(self.n_features, int | np.integer) or self.n_features < 1:
            raise _bad_param("HashingEncoder", "n_features", "a positive integer", self.n_features)
        X = validate_data(self, X, dtype=None, ensure_all_finite=False)
        pairs = {(j, str(v)) for j in range(X.shape[1]) for v in np.unique(X[:, j].astype(str))}
        buckets = np.array([self._bucket(j, [v])[0] for j, v in sorted(pairs)], dtype=np.int64)
        _, inverse, counts = np.unique(buckets, return_inverse=True, return_counts=True)
        self.n_categories_ = len(pairs)
        self.collision_rate_ = float((counts[inverse] > 1).mean()) if len(pairs) else 0.0
        return self

    def _bucket(self, column: int, values: Any) -> NDArray[Any]:
        return hash_values(values, int(self.n_features), salt=f"{column}=", seed=self.seed)

    def transform(self, X: Any) -> Any:
        """Count matrix of shape (n_rows, n_features)."""
        from scipy import sparse

        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=None, ensure_all_finite=False)
        rows = np.tile(np.arange(X.shape[0]), X.shape[1])
        cols = np.concatenate([self._bucket(j, X[:, j]) for j in range(X.shape[1])])
        shape = (X.shape[0], int(self.n_features))
        matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
        return matrix if self.sparse_output else matrix.toarray()

    def _out_names(self) -> list[str]:
        return [f"hash{i}" for i in range(int(self.n_features))]


# -- crosses -----------------------------------------------------------------------------


class FeatureCrosser(_Base):
    """Cross pairs of columns: products of numbers, or hashed (a, b) category pairs.

    ``pairs`` lists column index pairs (default: every pair). With ``hash_space`` set, each
    pair's joint value is hashed into one of ``hash_space`` buckets per pair, as one-hot
    columns; otherwise the output is the product ``a * b`` of each pair.

    >>> import numpy as np
    >>> FeatureCrosser().fit_transform(np.array([[2.0, 3.0, 4.0]])).tolist()
    [[6.0, 8.0, 12.0]]
    """

    def __init__(
        self, pairs: Sequence[tuple[int, int]] | None = None, hash_space: int | None = None
    ) -> None:
        self.pairs = pairs
        self.hash_space = hash_space

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = self.hash_space is not None
        tags.input_tags.categorical = self.hash_space is not None
        return tags

    def fit(self, X: Any, y: Any = None) -> FeatureCrosser:
        """Fix the list of pairs to cross."""
        X = validate_data(self, X, dtype=None if self.hash_space else np.float64)
        n = X.shape[1]
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        if self.pairs is not None:
            pairs = [(int(i), int(j)) for i, j in self.pairs]
            if any(not (0 <= i < n and 0 <= j < n) for i, j in pairs):
                raise _bad_param("FeatureCrosser", "pairs", f"indices below {n}", self.pairs)
        if self.hash_space is not None and int(self.hash_space) < 1:
            raise _bad_param("FeatureCrosser", "hash_space", "a positive integer", self.hash_space)
        self.pairs_ = pairs
        return self

    def transform(self, X: Any) -> Array:
        """The crossed columns, one per pair (or ``hash_space`` per pair)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=None if self.hash_space else np.float64)
        if self.hash_space is None:
            if not self.pairs_:
                return np.zeros((X.shape[0], 0))
            return np.column_stack([X[:, i] * X[:, j] for i, j in self.pairs_])
        space = int(self.hash_space)
        out = np.zeros((X.shape[0], space * len(self.pairs_)))
        for k, (i, j) in enumerate(self.pairs_):
            joint = np.char.add(np.char.add(X[:, i].astype(str), "|"), X[:, j].astype(str))
            out[np.arange(X.shape[0]), k * space + hash_values(joint, space, salt=f"{i}x{j}=")] = 1
        return out

    def _out_names(self) -> list[str]:
        names = self._names_in()
        if self.hash_space is None:
            return [f"{names[i]}*{names[j]}" for i, j in self.pairs_]
        space = int(self.hash_space)
        return [f"{names[i]}x{names[j]}_{b}" for i, j in self.pairs_ for b in range(space)]


# -- cyclical and positional encodings ---------------------------------------------------


def _sin_cos(values: Array, periods: Array) -> Array:
    angle = 2.0 * np.pi * values / periods
    return np.column_stack([np.sin(angle), np.cos(angle)]).reshape(len(values), -1, order="F")


class CyclicalEncoder(_Base):
    """Encode periodic numbers (hour 0-23, weekday 0-6, month 1-12) as (sin, cos) pairs.

    ``period`` is one number for every column or one per column; left as ``None`` it is learned
    as ``max - min + 1`` of the training values (right for integer codes like hours).
    23h and 0h end up close, as they are.

    >>> import numpy as np
    >>> enc = CyclicalEncoder(period=24).fit(np.array([[0.0], [6.0]]))
    >>> np.round(enc.transform(np.array([[6.0]])), 6).tolist()
    [[1.0, 0.0]]
    """

    def __init__(self, period: float | Sequence[float] | None = None) -> None:
        self.period = period

    def fit(self, X: Any, y: Any = None) -> CyclicalEncoder:
        """Fix the period of each column."""
        X = validate_data(self, X, dtype=np.float64)
        if self.period is None:
            periods = X.max(axis=0) - X.min(axis=0) + 1.0
        else:
            periods = np.broadcast_to(np.asarray(self.period, dtype=np.float64), (X.shape[1],))
        if np.any(periods <= 0):
            raise _bad_param("CyclicalEncoder", "period", "positive", self.period)
        self.periods_ = np.array(periods, dtype=np.float64)
        return self

    def transform(self, X: Any) -> Array:
        """Columns ``sin(2 pi x / period)``, ``cos(2 pi x / period)`` for each input column."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return np.hstack([_sin_cos(X[:, [j]], self.periods_[[j]]) for j in range(X.shape[1])])

    def _out_names(self) -> list[str]:
        return [f"{n}_{f}" for n in self._names_in() for f in ("sin", "cos")]


_TIME_PARTS: dict[str, float] = {
    "hour": 24.0,
    "day_of_week": 7.0,
    "day_of_year": 365.25,
    "month": 12.0,
}


class TimeEncoder(_Base):
    """Cyclical encodings of timestamps: (sin, cos) of hour, weekday, day of year and month.

    Input is datetime64 (timezone-aware pandas columns are converted to UTC) or numbers taken
    as seconds since the Unix epoch, UTC.

    >>> import numpy as np, pandas as pd
    >>> ts = pd.DataFrame({"t": pd.to_datetime(["2024-01-01 06:00"], utc=True)})
    >>> enc = TimeEncoder(components=("hour",)).fit(ts)
    >>> np.round(enc.transform(ts), 6).tolist()
    [[1.0, 0.0]]
    """

    def __init__(self, components: Sequence[str] = ("hour", "day_of_week", "month")) -> None:
        self.components = components

    def _seconds(self, X: Any, *, reset: bool) -> Array:
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            converted = {
                c: (
                    X[c]
                    .dt.tz_convert("UTC")
                    .dt.tz_localize(None)
                    .astype("datetime64[ns]")
                    .astype("int64")
                    / 1e9
                    if isinstance(X[c].dtype, pd.DatetimeTZDtype)
                    else X[c].astype("datetime64[ns]").astype("int64") / 1e9
                    if pd.api.types.is_datetime64_dtype(X[c].dtype)
                    else X[c]
                )
                for c in X.columns
            }
            X = pd.DataFrame(converted, index=X.index)
        elif isinstance(X, np.ndarray) and np.issubdtype(X.dtype, np.datetime64):
            X = X.astype("datetime64[ns]").astype(np.int64) / 1e9
        return np.asarray(validate_data(self, X, reset=reset, dtype=np.float64))

    def fit(self, X: Any, y: Any = None) -> TimeEncoder:
        """Check the components; nothing is learned from the values."""
        for part in self.components:
            _choice("TimeEncoder", "components", part, tuple(_TIME_PARTS))
        self._seconds(X, reset=True)
        self.components_ = tuple(self.components)
        return self

    def transform(self, X: Any) -> Array:
        """The (sin, cos) pair of each component of each column."""
        check_is_fitted(self)
        seconds = self._seconds(X, reset=False)
        stamps = (seconds * 1e9).astype("datetime64[ns]")
        blocks = [
            _sin_cos(_time_part(stamps[:, j], part)[:, None], np.array([_TIME_PARTS[part]]))
            for j in range(seconds.shape[1])
            for part in self.components_
        ]
        return np.hstack(blocks) if blocks else np.zeros((len(seconds), 0))

    def _out_names(self) -> list[str]:
        return [
            f"{n}_{part}_{f}"
            for n in self._names_in()
            for part in self.components_
            for f in ("sin", "cos")
        ]


def _time_part(stamps: NDArray[np.datetime64], part: str) -> Array:
    days = stamps.astype("datetime64[D]")
    if part == "hour":
        return np.asarray((stamps - days) / np.timedelta64(1, "h"), dtype=np.float64)
    if part == "day_of_week":  # 1970-01-01 was a Thursday; Monday = 0
        return np.asarray((days.astype(np.int64) + 3) % 7, dtype=np.float64)
    if part == "day_of_year":
        return np.asarray((days - days.astype("datetime64[Y]")).astype(np.int64), dtype=float)
    months = stamps.astype("datetime64[M]").astype(np.int64) % 12
    return np.asarray(months, dtype=np.float64)


class PositionalEmbedding(_Base):
    """Sinusoidal positional embedding: ``dim`` columns per input position column.

    Column ``2i`` is ``sin(p / max_period ** (2i / dim))`` and ``2i + 1`` the cosine, so nearby
    positions get nearby vectors at every scale.

    >>> import numpy as np
    >>> emb = PositionalEmbedding(dim=4).fit(np.array([[0.0]]))
    >>> emb.transform(np.array([[0.0]])).tolist()
    [[0.0, 1.0, 0.0, 1.0]]
    """

    def __init__(self, dim: int = 8, max_period: float = 10_000.0) -> None:
        self.dim = dim
        self.max_period = max_period

    def fit(self, X: Any, y: Any = None) -> PositionalEmbedding:
        """Fix the frequencies."""
        if not isinstance(self.dim, int | np.integer) or self.dim < 2 or self.dim % 2:
            expected = "an even integer of at least 2"
            raise _bad_param("PositionalEmbedding", "dim", expected, self.dim)
        validate_data(self, X, dtype=np.float64)
        half = np.arange(int(self.dim) // 2, dtype=np.float64)
        self.frequencies_ = 1.0 / float(self.max_period) ** (2.0 * half / int(self.dim))
        return self

    def transform(self, X: Any) -> Array:
        """``dim`` columns per input column."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        blocks = []
        for j in range(X.shape[1]):
            angle = X[:, [j]] * self.frequencies_[None, :]
            pair = np.stack([np.sin(angle), np.cos(angle)], axis=2)
            blocks.append(pair.reshape(X.shape[0], -1))
        return np.hstack(blocks)

    def _out_names(self) -> list[str]:
        return [f"{n}_pe{k}" for n in self._names_in() for k in range(int(self.dim))]

"""Labeling functions: plain Python over one row, or vectorised over a DataFrame.

A labeling function returns a class index, or ``-1`` (``ABSTAIN``) when it has no opinion.
The row form is a decorator over ``f(row) -> int``, where ``row`` reads both as
``row.text`` and ``row["text"]``; the vectorised form takes the whole DataFrame and returns
one label per row. Builders cover the common shapes: keywords, regexes, thresholds, lookups
and another model's prediction.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.core import ConfigError, DataError
from loopml.trainingdata.labeling._matrix import ABSTAIN

__all__ = [
    "ABSTAIN",
    "LabelingFunction",
    "Row",
    "keyword_lf",
    "labeling_function",
    "lookup_lf",
    "model_lf",
    "regex_lf",
    "threshold_lf",
    "vectorized_lf",
]


class Row(dict[str, Any]):
    """One row of a DataFrame, readable as ``row.column`` and ``row["column"]``.

    >>> row = Row(text="hi", stars=5)
    >>> row.text, row["stars"]
    ('hi', 5)
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"the row has no column {name!r}; columns: {', '.join(map(str, self))}"
            ) from None


class LabelingFunction:
    """A named labeling function: ``func(row)`` (row form) or ``func(frame)`` (vectorised).

    ``resources`` are passed to ``func`` as keyword arguments (a lookup table, a model).

    >>> lf = LabelingFunction("short", lambda row: 0 if len(row.text) < 5 else -1)
    >>> lf(Row(text="ok")), lf.name
    (0, 'short')
    """

    def __init__(
        self,
        name: str,
        func: Callable[..., Any],
        *,
        vectorized: bool = False,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ConfigError(f"A labeling function needs a non-empty name. Got {name!r} instead.")
        self.name = name
        self.func = func
        self.vectorized = vectorized
        self.resources = dict(resources or {})

    def __call__(self, row: Any) -> Any:
        return self.func(row, **self.resources)

    def apply_frame(self, frame: pd.DataFrame) -> npt.NDArray[Any]:
        """The vectorised form's raw output for every row of ``frame``."""
        return np.asarray(self.func(frame, **self.resources))

    def __repr__(self) -> str:
        kind = "vectorized" if self.vectorized else "row"
        return f"LabelingFunction({self.name!r}, {kind})"

    def __reduce__(self) -> Any:
        # A decorated module-level function is stored under its own name as this object;
        # pickling it by reference keeps process pools working for the spawn start method.
        module = sys.modules.get(getattr(self.func, "__module__", "") or "")
        qualname = getattr(self.func, "__qualname__", "")
        if module is not None and getattr(module, qualname, None) is self:
            return (_lookup, (module.__name__, qualname))
        return (_rebuild, (self.name, self.func, self.vectorized, self.resources))


def _lookup(module: str, qualname: str) -> Any:
    return getattr(sys.modules[module], qualname)


def _rebuild(
    name: str, func: Callable[..., Any], vectorized: bool, resources: dict[str, Any]
) -> LabelingFunction:
    return LabelingFunction(name, func, vectorized=vectorized, resources=resources)


@overload
def labeling_function(func: Callable[..., Any], /) -> LabelingFunction: ...
@overload
def labeling_function(
    *, name: str | None = None, resources: Mapping[str, Any] | None = None
) -> Callable[[Callable[..., Any]], LabelingFunction]: ...
def labeling_function(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    resources: Mapping[str, Any] | None = None,
) -> Any:
    """Decorate ``f(row) -> class index or -1`` as a :class:`LabelingFunction`.

    >>> @labeling_function
    ... def has_link(row):
    ...     return 1 if "http" in row.text else ABSTAIN
    >>> has_link(Row(text="see http://x")), has_link.name
    (1, 'has_link')
    """
    return _decorate(func, name=name, resources=resources, vectorized=False)


@overload
def vectorized_lf(func: Callable[..., Any], /) -> LabelingFunction: ...
@overload
def vectorized_lf(
    *, name: str | None = None, resources: Mapping[str, Any] | None = None
) -> Callable[[Callable[..., Any]], LabelingFunction]: ...
def vectorized_lf(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    resources: Mapping[str, Any] | None = None,
) -> Any:
    """Decorate ``f(frame) -> one label per row`` (array or Series) as a labeling function.

    >>> @vectorized_lf
    ... def long_text(frame):
    ...     return np.where(frame["text"].str.len() > 3, 1, ABSTAIN)
    >>> long_text.apply_frame(pd.DataFrame({"text": ["a", "abcd"]}))
    array([-1,  1])
    """
    return _decorate(func, name=name, resources=resources, vectorized=True)


def _decorate(
    func: Callable[..., Any] | None,
    *,
    name: str | None,
    resources: Mapping[str, Any] | None,
    vectorized: bool,
) -> Any:
    def wrap(f: Callable[..., Any]) -> LabelingFunction:
        return LabelingFunction(name or f.__name__, f, vectorized=vectorized, resources=resources)

    return wrap if func is None else wrap(func)


def _text(frame: pd.DataFrame, column: str, lf: str) -> pd.Series:
    if column not in frame.columns:
        raise DataError(
            f"Labeling function {lf!r} reads the column {column!r}, which the data lacks; "
            f"columns: {', '.join(map(str, frame.columns))}"
        )
    return frame[column]


def keyword_lf(
    column: str,
    keywords: Iterable[str],
    label: int,
    *,
    name: str | None = None,
    case_sensitive: bool = False,
) -> LabelingFunction:
    """Vote ``label`` when ``column`` contains any of ``keywords`` (whole words), else abstain.

    >>> lf = keyword_lf("text", ["subscribe", "my channel"], 1)
    >>> lf.apply_frame(pd.DataFrame({"text": ["Subscribe now", "nice song", None]}))
    array([ 1, -1, -1])
    """
    words = list(keywords)
    if not words:
        raise ConfigError("keyword_lf needs at least one keyword. Got none.")
    pattern = r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b"
    slug = "_".join(re.sub(r"\W+", "", w.lower()) for w in words[:3])
    lf_name = name or f"keyword_{slug}"
    return regex_lf(column, pattern, label, name=lf_name, ignore_case=not case_sensitive)


def regex_lf(
    column: str, pattern: str, label: int, *, name: str | None = None, ignore_case: bool = True
) -> LabelingFunction:
    """Vote ``label`` where ``column`` matches the regular expression ``pattern``.

    >>> lf = regex_lf("text", r"check (it|this) out", 1, name="check_out")
    >>> lf.apply_frame(pd.DataFrame({"text": ["Check this out!", "meh"]}))
    array([ 1, -1])
    """
    try:
        compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as error:
        raise ConfigError(
            f"The 'pattern' parameter of regex_lf must be a valid regular expression. "
            f"Got {pattern!r} instead ({error})."
        ) from error
    lf_name = name or f"regex_{column}"
    return LabelingFunction(lf_name, _RegexVote(lf_name, column, compiled, label), vectorized=True)


def threshold_lf(
    column: str,
    label: int,
    *,
    above: float | None = None,
    below: float | None = None,
    name: str | None = None,
) -> LabelingFunction:
    """Vote ``label`` where ``column`` is strictly above ``above`` and/or below ``below``.

    >>> lf = threshold_lf("amount", 1, above=1000)
    >>> lf.apply_frame(pd.DataFrame({"amount": [5.0, 5000.0, None]}))
    array([-1,  1, -1])
    """
    if above is None and below is None:
        raise ConfigError("threshold_lf needs 'above', 'below' or both. Got neither.")
    lf_name = name or f"threshold_{column}"
    vote = _ThresholdVote(lf_name, column, label, above, below)
    return LabelingFunction(lf_name, vote, vectorized=True)


def lookup_lf(
    column: str, mapping: Mapping[Any, int], *, name: str | None = None
) -> LabelingFunction:
    """Vote ``mapping[value]`` for values found in ``mapping`` (a list of known spammers…).

    >>> lf = lookup_lf("domain", {"spam.biz": 1, "bbc.co.uk": 0})
    >>> lf.apply_frame(pd.DataFrame({"domain": ["spam.biz", "x.org", "bbc.co.uk"]}))
    array([ 1, -1,  0])
    """
    lf_name = name or f"lookup_{column}"
    vote = _LookupVote(lf_name, column, dict(mapping))
    return LabelingFunction(lf_name, vote, vectorized=True)


def model_lf(
    model: Any,
    columns: Sequence[str],
    *,
    min_confidence: float = 0.0,
    name: str | None = None,
) -> LabelingFunction:
    """Vote another model's predicted class where its top probability >= ``min_confidence``.

    ``model`` needs ``predict_proba`` (scikit-learn style) on ``frame[columns]``; its
    classes must be ``0..k-1``.

    >>> class Fixed:
    ...     def predict_proba(self, X):
    ...         return np.array([[0.9, 0.1], [0.55, 0.45]])
    >>> model_lf(Fixed(), ["x"], min_confidence=0.8).apply_frame(pd.DataFrame({"x": [1, 2]}))
    array([ 0, -1])
    """
    if not 0 <= min_confidence <= 1:
        raise ConfigError(
            f"The 'min_confidence' parameter of model_lf must be in [0, 1]. "
            f"Got {min_confidence!r} instead."
        )
    lf_name = name or f"model_{type(model).__name__}"
    vote = _ModelVote(lf_name, model, list(columns), min_confidence)
    return LabelingFunction(lf_name, vote, vectorized=True)


# The builders' votes are small classes, not closures, so labeling functions pickle.
class _RegexVote:
    def __init__(self, name: str, column: str, pattern: re.Pattern[str], label: int) -> None:
        self.name, self.column, self.pattern, self.label = name, column, pattern, label

    def __call__(self, frame: pd.DataFrame) -> npt.NDArray[np.int64]:
        values = _text(frame, self.column, self.name).astype("string")
        with warnings.catch_warnings():  # "has match groups": groups are fine for a test
            warnings.simplefilter("ignore", UserWarning)
            hits = values.str.contains(self.pattern, regex=True)
        return np.where(hits.fillna(False).to_numpy(dtype=bool), self.label, ABSTAIN)


class _ThresholdVote:
    def __init__(
        self, name: str, column: str, label: int, above: float | None, below: float | None
    ) -> None:
        self.name, self.column, self.label = name, column, label
        self.above, self.below = above, below

    def __call__(self, frame: pd.DataFrame) -> npt.NDArray[np.int64]:
        column = _text(frame, self.column, self.name)
        values = pd.to_numeric(column, errors="coerce").to_numpy(float)
        hit = ~np.isnan(values)
        if self.above is not None:
            hit &= values > self.above
        if self.below is not None:
            hit &= values < self.below
        return np.where(hit, self.label, ABSTAIN)


class _LookupVote:
    def __init__(self, name: str, column: str, table: dict[Any, int]) -> None:
        self.name, self.column, self.table = name, column, table

    def __call__(self, frame: pd.DataFrame) -> npt.NDArray[np.int64]:
        mapped = _text(frame, self.column, self.name).map(self.table)
        return np.asarray(mapped.fillna(ABSTAIN).to_numpy(dtype=np.int64))


class _ModelVote:
    def __init__(self, name: str, model: Any, columns: list[str], min_confidence: float) -> None:
        self.name, self.model, self.columns = name, model, columns
        self.min_confidence = min_confidence

    def __call__(self, frame: pd.DataFrame) -> npt.NDArray[np.int64]:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(f"Labeling function {self.name!r} needs the columns {missing}.")
        proba = np.asarray(self.model.predict_proba(frame[self.columns]))
        confident = proba.max(axis=1) >= self.min_confidence
        return np.where(confident, proba.argmax(axis=1), ABSTAIN)

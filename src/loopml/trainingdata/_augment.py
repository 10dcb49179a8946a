"""Data augmentation that keeps labels, stays traceable, and stays in the training split.

Every augmented row carries ``source_row`` (the row it was made from) and ``augmented=True``;
:func:`augment_split` only ever feeds the training rows of a split to an augmenter and
checks that nothing it returns came from validation or test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError
from loopml.trainingdata._splits import Split
from loopml.trainingdata._timecols import require_columns

__all__ = ["augment_split", "mixup", "perturb", "synthesize_text"]

_SLOT = re.compile(r"\[([A-Za-z_][A-Za-z0-9_]*)\]")


def _numeric_columns(
    frame: pd.DataFrame, columns: Sequence[str] | None, skip: set[str]
) -> list[str]:
    if columns is not None:
        require_columns(frame, columns, what="augmentation")
        return [c for c in columns if c not in skip]
    return [
        c
        for c in frame.columns
        if c not in skip
        and pd.api.types.is_numeric_dtype(frame[c].dtype)
        and not pd.api.types.is_bool_dtype(frame[c].dtype)
    ]


def perturb(
    frame: pd.DataFrame,
    *,
    target: str | None = None,
    columns: Sequence[str] | None = None,
    noise: float = 0.05,
    category_groups: Mapping[str, Sequence[Sequence[Any]]] | None = None,
    swap_probability: float = 0.1,
    copies: int = 1,
    seed: int = 0,
) -> pd.DataFrame:
    """Label-preserving copies of ``frame``'s rows with small changes.

    Numeric features get Gaussian noise with standard deviation ``noise`` times the
    column's own (integer columns are rounded back); a categorical value is swapped, with
    ``swap_probability``, for another member of its declared group in ``category_groups``
    (``{"city": [["NYC", "Boston"], ["LA", "SF"]]}``: never across groups). ``target`` is
    copied unchanged. Returns only the new rows, each with ``source_row`` (the index label
    of its source) and ``augmented=True``.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "city": ["NYC", "LA", "Boston"],
    ...                       "y": [0, 1, 0]})
    >>> out = perturb(frame, target="y", category_groups={"city": [["NYC", "Boston"]]},
    ...               swap_probability=1.0, seed=0)
    >>> out[["city", "y", "source_row"]].values.tolist()
    [['Boston', 0, 0], ['LA', 1, 1], ['NYC', 0, 2]]
    """
    if noise < 0 or not 0.0 <= swap_probability <= 1.0:
        raise ConfigError(
            "perturb: 'noise' must be >= 0 and 'swap_probability' in [0, 1]. "
            f"Got noise={noise!r}, swap_probability={swap_probability!r}."
        )
    if not isinstance(copies, int) or copies < 1:
        raise ConfigError(
            f"The 'copies' parameter of perturb must be an integer >= 1. Got {copies!r} instead."
        )
    groups = _group_lookup(frame, category_groups or {})
    rng = np.random.default_rng(seed)
    skip = {target} if target else set()
    numeric = _numeric_columns(frame, columns, skip | set(groups))
    spread = {c: float(np.nanstd(frame[c].to_numpy(dtype=float, na_value=np.nan))) for c in numeric}
    out = pd.concat([frame] * copies, ignore_index=True)
    for column in numeric:
        out[column] = _jitter(out[column], spread[column] * noise, rng)
    for column, lookup in groups.items():
        out[column] = _swap(out[column], lookup, swap_probability, rng)
    return _traced(out, np.tile(frame.index.to_numpy(), copies))


def _jitter(values: pd.Series, scale: float, rng: np.random.Generator) -> pd.Series:
    if scale == 0:
        return values
    shaken = values.to_numpy(dtype=float, na_value=np.nan) + rng.normal(0, scale, len(values))
    if pd.api.types.is_integer_dtype(values.dtype):
        shaken = np.round(shaken)
        return pd.Series(shaken, index=values.index).astype(values.dtype)
    return pd.Series(shaken, index=values.index)


def _group_lookup(
    frame: pd.DataFrame, category_groups: Mapping[str, Sequence[Sequence[Any]]]
) -> dict[str, dict[Any, list[Any]]]:
    require_columns(frame, list(category_groups), what="perturb (category_groups)")
    lookup: dict[str, dict[Any, list[Any]]] = {}
    for column, groups in category_groups.items():
        members: dict[Any, list[Any]] = {}
        for group in groups:
            for value in group:
                if value in members:
                    raise ConfigError(
                        f"perturb: value {value!r} of '{column}' is declared in two "
                        "category groups",
                        hint="each value may belong to one group only",
                    )
                members[value] = [v for v in group if v != value]
        lookup[column] = members
    return lookup


def _swap(
    values: pd.Series, lookup: dict[Any, list[Any]], probability: float, rng: np.random.Generator
) -> pd.Series:
    draws = rng.random(len(values))
    picks = rng.random(len(values))
    out = values.to_numpy(dtype=object).copy()
    for i, value in enumerate(out):
        others = lookup.get(value)
        if others and draws[i] < probability:
            out[i] = others[int(picks[i] * len(others))]
    return pd.Series(out, index=values.index, dtype=values.dtype)


def _traced(rows: pd.DataFrame, sources: np.ndarray) -> pd.DataFrame:
    rows = rows.reset_index(drop=True)
    rows["source_row"] = sources
    rows["augmented"] = True
    return rows


def mixup(
    frame: pd.DataFrame,
    *,
    target: str,
    columns: Sequence[str] | None = None,
    alpha: float = 0.2,
    n: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Mixup (Zhang et al. 2018): convex mixtures of random pairs of rows and of their labels.

    lambda ~ Beta(alpha, alpha); numeric features and the (numeric or 0/1) target become
    ``lambda * a + (1 - lambda) * b``; other columns come from the row with the larger share.
    Each new row names both sources (``source_row``, ``source_row_2``) and ``mix_lambda``.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"x": [0.0, 10.0], "y": [0, 1]})
    >>> out = mixup(frame, target="y", n=3, seed=0)
    >>> bool(((out["x"] / 10 - out["y"]).abs() < 1e-12).all())
    True
    """
    require_columns(frame, [target], what="mixup")
    if not pd.api.types.is_numeric_dtype(frame[target].dtype):
        raise ConfigError(
            f"mixup: target '{target}' must be numeric (0/1 for a binary label)",
            hint="one-hot encode a multiclass label first",
        )
    if alpha <= 0:
        raise ConfigError(f"The 'alpha' parameter of mixup must be > 0. Got {alpha!r} instead.")
    rng = np.random.default_rng(seed)
    size = len(frame) if n is None else n
    first, second = rng.integers(0, len(frame), size), rng.integers(0, len(frame), size)
    lam = rng.beta(alpha, alpha, size)
    numeric = _numeric_columns(frame, columns, set()) + [target]
    a, b = frame.iloc[first].reset_index(drop=True), frame.iloc[second].reset_index(drop=True)
    keep_first = np.repeat((lam >= 0.5)[:, None], a.shape[1], axis=1)
    out = a.where(keep_first, b)
    for column in dict.fromkeys(numeric):
        out[column] = lam * a[column].to_numpy(dtype=float) + (1 - lam) * b[column].to_numpy(
            dtype=float
        )
    out = _traced(out, frame.index.to_numpy()[first])
    out["source_row_2"] = frame.index.to_numpy()[second]
    out["mix_lambda"] = lam
    return out


def synthesize_text(
    templates: str | Sequence[str] | Mapping[Any, Sequence[str]],
    slots: Mapping[str, Sequence[str]],
    *,
    n: int,
    unique: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Sentences from templates such as ``"Find me a [CUISINE] restaurant within [NUMBER]
    miles of [LOCATION]"``, filling each slot with one of its values.

    ``templates`` may map a label to its templates, so every sentence carries its label.
    Each row records the template it came from (``template_id``) and the value of every slot.

    >>> out = synthesize_text({"find_restaurant": ["Find me a [CUISINE] place near [PLACE]"]},
    ...                       {"CUISINE": ["Thai", "Greek"], "PLACE": ["Oslo"]}, n=2,
    ...                       unique=True, seed=1)
    >>> sorted(out["text"]), out["label"].unique().tolist()
    (['Find me a Greek place near Oslo', 'Find me a Thai place near Oslo'], ['find_restaurant'])
    """
    pool = _template_pool(templates)
    _check_slots(pool, slots)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    attempts = 0
    while len(rows) < n:
        attempts += 1
        if unique and attempts > 50 * n + 1000:
            raise DataError(
                f"synthesize_text: only {len(rows)} distinct sentences found of {n} asked for",
                hint="add slot values or templates, or lower n",
            )
        row = _fill(pool, slots, rng)
        if unique and row["text"] in seen:
            continue
        seen.add(row["text"])
        rows.append(row)
    return pd.DataFrame(rows)


def _template_pool(
    templates: str | Sequence[str] | Mapping[Any, Sequence[str]],
) -> list[tuple[Any, str]]:
    if isinstance(templates, str):
        return [(None, templates)]
    if isinstance(templates, Mapping):
        pool = [(label, t) for label, items in templates.items() for t in items]
    else:
        pool = [(None, t) for t in templates]
    if not pool:
        raise ConfigError("synthesize_text needs at least one template")
    return pool


def _check_slots(pool: list[tuple[Any, str]], slots: Mapping[str, Sequence[str]]) -> None:
    for index, (_, template) in enumerate(pool):
        for name in _SLOT.findall(template):
            if not slots.get(name):
                raise ConfigError(
                    f"synthesize_text: template {index} ({template!r}) uses slot [{name}] "
                    "which has no values",
                    hint=f"pass slots={{'{name}': [...]}}",
                )


def _fill(
    pool: list[tuple[Any, str]], slots: Mapping[str, Sequence[str]], rng: np.random.Generator
) -> dict[str, Any]:
    template_id = int(rng.integers(0, len(pool)))
    label, template = pool[template_id]
    chosen: dict[str, Any] = {}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in chosen:
            options = slots[name]
            chosen[name] = options[int(rng.integers(0, len(options)))]
        return str(chosen[name])

    text = _SLOT.sub(value, template)
    row: dict[str, Any] = {"text": text, "template_id": template_id}
    if label is not None:
        row["label"] = label
    row.update(chosen)
    return row


def augment_split(
    frame: pd.DataFrame,
    split: Split,
    augment: Callable[..., pd.DataFrame],
    **kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Augment the training rows of ``split`` only; return (train + new rows, valid, test).

    ``augment`` is :func:`perturb`, :func:`mixup` or any function with the same contract
    (rows in, new rows with ``source_row`` out). Sources are positions in ``frame``; a new
    row whose source is not a training row is an error, so nothing crosses the split.

    >>> import pandas as pd
    >>> from loopml.trainingdata import make_split
    >>> frame = pd.DataFrame({"x": range(10), "y": [0, 1] * 5})
    >>> split = make_split(frame, by="random", validation=0.2, test=0.2)
    >>> train, valid, test = augment_split(frame, split, perturb, target="y", copies=2)
    >>> len(train), int(train["augmented"].sum()), len(valid), len(test)
    (18, 12, 2, 2)
    """
    train = frame.iloc[split.train].set_axis(split.train)
    new_rows = augment(train, **kwargs)
    for column in ("source_row", "source_row_2"):
        if column in new_rows and not new_rows[column].isin(split.train).all():
            raise DataError(
                f"augment_split: augmented rows name a '{column}' outside the training split",
                hint="an augmenter may only use the rows given",
            )
    if "source_row" not in new_rows:
        raise DataError(
            "augment_split: the augmenter returned rows without 'source_row'",
            hint="every augmented row must name the row it came from",
        )
    original = (
        frame.iloc[split.train]
        .reset_index(drop=True)
        .assign(source_row=split.train, augmented=False)
    )
    combined = pd.concat([original, new_rows], ignore_index=True)
    return combined, frame.iloc[split.validation], frame.iloc[split.test]

"""Loaders for the real public datasets kept beside the project in ``../shared/datasets``.

The folder is found through the ``LOOPML_DATASETS`` environment variable, else as
``shared/datasets`` in the current folder or any folder above it, else beside the folder
that holds the installed package. Each loader returns tidy pandas frames: timestamps are
tz-aware UTC, labels are 0/1 integers, column names are valid SQL identifiers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError, NotFoundError

__all__ = [
    "YOUTUBE_LABELING_FUNCTIONS",
    "OpenBandit",
    "WeakLabels",
    "datasets_dir",
    "load_elec2",
    "load_open_bandit",
    "load_sea",
    "load_youtube_spam",
]

ENV_VAR = "LOOPML_DATASETS"

YOUTUBE_LABELING_FUNCTIONS = (
    "keyword_my",
    "keyword_subscribe",
    "keyword_link",
    "keyword_please",
    "keyword_song",
    "regex_check_out",
    "short_comment",
    "has_person_nlp",
    "textblob_polarity",
    "textblob_subjectivity",
)
"""The 10 labeling functions of the WRENCH YouTube set, in the columns' order."""


class WeakLabels(NamedTuple):
    """A weakly labelled text set: ``frame`` (id, text, label) and the vote matrix.

    ``weak_labels[i, j]`` is labeling function ``j``'s vote on row ``i``: 0 (ham),
    1 (spam) or -1 (abstain).
    """

    frame: pd.DataFrame
    weak_labels: np.ndarray


class OpenBandit(NamedTuple):
    """Logged bandit feedback (one row a recommendation) and the items' context."""

    logs: pd.DataFrame
    item_context: pd.DataFrame


def datasets_dir() -> Path:
    """The shared datasets folder, or :class:`NotFoundError` saying where it looked.

    >>> import os
    >>> saved = os.environ.get("LOOPML_DATASETS")
    >>> os.environ["LOOPML_DATASETS"] = "/nonexistent/datasets"
    >>> datasets_dir()
    Traceback (most recent call last):
    ...
    loopml.core._exceptions.NotFoundError: LOOPML_DATASETS is /nonexistent/datasets, ...
    >>> if saved is None:
    ...     del os.environ["LOOPML_DATASETS"]
    ... else:
    ...     os.environ["LOOPML_DATASETS"] = saved
    """
    configured = os.environ.get(ENV_VAR)
    if configured:
        path = Path(configured).expanduser()
        if path.is_dir():
            return path
        raise NotFoundError(
            f"{ENV_VAR} is {configured}, which is not a folder",
            hint=f"point {ENV_VAR} at the folder that holds elec2/, sea/, ...",
        )
    candidates = _candidates()
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise NotFoundError(
        f"the shared datasets folder was not found; looked in {looked}",
        hint=f"set {ENV_VAR} to the folder that holds elec2/, sea/, youtube_spam_wrench/ ...",
    )


def _candidates() -> list[Path]:
    """``shared/datasets`` in the working folder and above it, then beside the package."""
    seen: list[Path] = []
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            candidate = folder / "shared" / "datasets"
            if candidate not in seen:
                seen.append(candidate)
    return seen


def _file(*parts: str) -> Path:
    path = datasets_dir().joinpath(*parts)
    if not path.is_file():
        raise NotFoundError(
            f"{path} does not exist",
            hint="the shared datasets folder is incomplete; restore it or set LOOPML_DATASETS",
        )
    return path


def load_elec2() -> pd.DataFrame:
    """Elec2 (NSW electricity, 45,312 half-hours): ``label`` is 1 for UP, 0 for DOWN.

    ``timestamp`` (rebuilt from the row order by the packager) is read as UTC.

    >>> frame = load_elec2()  # doctest: +SKIP
    >>> frame["label"].mean().round(3)  # doctest: +SKIP
    0.425
    """
    path = _file("elec2", "elec2.csv")
    frame = pd.read_csv(path)
    _expect_columns(frame, path, ["timestamp", "nswprice", "label"])
    bad = ~frame["label"].isin(["UP", "DOWN"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path}, row {row + 2}, column 'label': {frame['label'].iloc[row]!r} "
            "is neither 'UP' nor 'DOWN'",
            hint="restore the file from the shared datasets",
        )
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.as_unit("us")
    frame["label"] = (frame["label"] == "UP").astype(np.int64)
    return frame


def load_sea() -> pd.DataFrame:
    """SEA concepts (50,000 rows): features f1-f3, ``label`` 0/1, ``concept`` 0-3 (truth).

    >>> frame = load_sea()  # doctest: +SKIP
    >>> frame["concept"].diff().ne(0).sum() - 1  # doctest: +SKIP
    3
    """
    path = _file("sea", "sea.csv")
    frame = pd.read_csv(path)
    _expect_columns(frame, path, ["f1", "f2", "f3", "label", "concept"])
    frame = frame.drop(columns=["index"], errors="ignore")
    frame["label"] = frame["label"].astype(np.int64)
    frame["concept"] = frame["concept"].astype(np.int64)
    return frame


def load_youtube_spam(split: str = "train") -> WeakLabels:
    """The WRENCH YouTube spam set: texts, gold labels (1 spam) and 10 weak labels a row.

    >>> frame, votes = load_youtube_spam("test")  # doctest: +SKIP
    >>> votes.shape  # doctest: +SKIP
    (250, 10)
    """
    splits = ("train", "valid", "test")
    if split not in splits:
        raise ConfigError(
            "The 'split' parameter of load_youtube_spam must be one of 'train', 'valid', "
            f"'test'. Got {split!r} instead."
        )
    path = _file("youtube_spam_wrench", f"{split}.json")
    records = json.loads(path.read_text(encoding="utf-8"))
    ids = sorted(records, key=int)
    votes = np.array([records[key]["weak_labels"] for key in ids], dtype=np.int64)
    if votes.ndim != 2 or votes.shape[1] != len(YOUTUBE_LABELING_FUNCTIONS):
        raise DataError(
            f"{path}: expected {len(YOUTUBE_LABELING_FUNCTIONS)} weak labels a row, "
            f"got an array of shape {votes.shape}",
            hint="restore the file from the shared datasets",
        )
    frame = pd.DataFrame(
        {
            "id": np.array([int(key) for key in ids], dtype=np.int64),
            "text": pd.array([records[key]["data"]["text"] for key in ids], dtype="str"),
            "label": np.array([records[key]["label"] for key in ids], dtype=np.int64),
        }
    )
    return WeakLabels(frame=frame, weak_labels=votes)


def load_open_bandit(policy: str = "random") -> OpenBandit:
    """Open Bandit Dataset sample (10,000 logged recommendations of 80 items).

    ``policy`` is the logging policy: ``"random"`` (uniform, propensity 1/80) or ``"bts"``
    (Bernoulli Thompson sampling). ``user-item_affinity_k`` columns are renamed
    ``user_item_affinity_k``; the unnamed row-number column is dropped.

    >>> logs, items = load_open_bandit("bts")  # doctest: +SKIP
    >>> len(logs), len(items)  # doctest: +SKIP
    (10000, 80)
    """
    if policy not in ("random", "bts"):
        raise ConfigError(
            "The 'policy' parameter of load_open_bandit must be one of 'random', 'bts'. "
            f"Got {policy!r} instead."
        )
    logs_path = _file("open_bandit", policy, "all.csv")
    logs = _drop_row_numbers(pd.read_csv(logs_path))
    _expect_columns(
        logs, logs_path, ["timestamp", "item_id", "position", "click", "propensity_score"]
    )
    logs.columns = [name.replace("-", "_") for name in logs.columns]
    logs["timestamp"] = pd.to_datetime(logs["timestamp"], utc=True).dt.as_unit("us")
    items_path = _file("open_bandit", policy, "item_context.csv")
    items = _drop_row_numbers(pd.read_csv(items_path))
    _expect_columns(items, items_path, ["item_id"])
    return OpenBandit(logs=logs, item_context=items)


def _drop_row_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    first = str(frame.columns[0])
    if first == "" or first.startswith("Unnamed"):
        return frame.drop(columns=[frame.columns[0]])
    return frame


def _expect_columns(frame: pd.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, frame.columns))}",
            hint="restore the file from the shared datasets",
        )

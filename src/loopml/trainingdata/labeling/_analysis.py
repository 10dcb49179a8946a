"""How each labeling function behaves: polarity, coverage, overlaps, conflicts, accuracy."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import DataError
from loopml.trainingdata.labeling._matrix import ABSTAIN, check_label_matrix, vote_counts

__all__ = ["LFAnalysis", "analyze_lfs"]


@dataclass(frozen=True)
class LFAnalysis:
    """A per-function table and totals over the whole label matrix.

    ``table`` columns: ``polarity`` (classes it voted), ``coverage`` (share of rows it
    votes on), ``overlaps`` (share of rows where it and another function vote),
    ``conflicts`` (share where another function votes a different class), ``votes`` and,
    with gold labels, ``correct``, ``incorrect`` and ``accuracy`` (on the rows it voted).
    """

    table: pd.DataFrame
    totals: dict[str, float]

    def to_text(self) -> str:
        """A plain-text table (what the CLI prints)."""
        shown = self.table.copy()
        shown["polarity"] = shown["polarity"].map(lambda p: ",".join(map(str, p)) or "-")
        lines = [shown.to_string(float_format=lambda x: f"{x:.3f}")]
        lines.append(", ".join(f"{k} {_fmt(v)}" for k, v in self.totals.items()))
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML fragment (a table and a totals line) for reports."""
        shown = self.table.copy()
        shown["polarity"] = shown["polarity"].map(lambda p: ",".join(map(str, p)) or "-")
        totals = ", ".join(f"{html.escape(k)} {_fmt(v)}" for k, v in self.totals.items())
        table = shown.to_html(float_format=lambda x: f"{x:.3f}", border=0)
        return f'<div class="lf-analysis">{table}<p>{totals}</p></div>'


def _fmt(value: float) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def analyze_lfs(
    L: Any, names: Sequence[str] | None = None, y: Any = None, cardinality: int | None = None
) -> LFAnalysis:
    """Summarise a label matrix; pass gold labels ``y`` (``-1`` = unknown) for accuracies.

    >>> L = np.array([[1, 1, -1], [0, 1, -1], [-1, -1, 0], [-1, -1, -1]])
    >>> result = analyze_lfs(L, ["a", "b", "c"], y=[1, 0, 0, -1])
    >>> result.table[["coverage", "overlaps", "conflicts", "accuracy"]]
        coverage  overlaps  conflicts  accuracy
    lf
    a       0.50       0.5       0.25       1.0
    b       0.50       0.5       0.25       0.5
    c       0.25       0.0       0.00       1.0
    >>> result.totals["coverage"], result.totals["conflict"]
    (0.75, 0.25)
    """
    matrix = check_label_matrix(L, cardinality)
    n, m = matrix.shape
    labels = _names(L, names, m)
    k = cardinality if cardinality is not None else max(int(matrix.max()) + 1, 2)
    voted = matrix != ABSTAIN
    n_votes = voted.sum(axis=1)
    counts = vote_counts(matrix, k)
    same = np.take_along_axis(counts, np.clip(matrix, 0, None).astype(np.int64), axis=1)
    conflict = voted & (n_votes[:, None] - same > 0)
    table = pd.DataFrame(
        {
            "polarity": [
                sorted(int(v) for v in np.unique(matrix[voted[:, j], j])) for j in range(m)
            ],
            "coverage": voted.mean(axis=0),
            "overlaps": (voted & (n_votes[:, None] > 1)).mean(axis=0),
            "conflicts": conflict.mean(axis=0),
            "votes": voted.sum(axis=0),
        },
        index=pd.Index(labels, name="lf"),
    )
    if y is not None:
        table = _with_accuracy(table, matrix, voted, y)
    totals = {
        "rows": n,
        "lfs": m,
        "coverage": float((n_votes > 0).mean()),
        "overlap": float((n_votes > 1).mean()),
        "conflict": float(conflict.any(axis=1).mean()),
        "votes_per_row": float(n_votes.mean()),
    }
    return LFAnalysis(table, totals)


def _names(L: Any, names: Sequence[str] | None, m: int) -> list[str]:
    if names is None:
        columns = getattr(L, "columns", None)
        return [str(c) for c in columns] if columns is not None else [f"lf_{j}" for j in range(m)]
    if len(names) != m:
        raise DataError(f"Got {len(names)} names for a label matrix with {m} functions.")
    return list(names)


def _with_accuracy(table: pd.DataFrame, L: Any, voted: Any, y: Any) -> pd.DataFrame:
    gold = np.asarray(y)
    if gold.shape != (L.shape[0],):
        raise DataError(
            f"The gold labels y have shape {gold.shape}; they must hold one label per row "
            f"of L ({L.shape[0]},), with -1 where unknown."
        )
    known = voted & (gold != ABSTAIN)[:, None]
    correct = (known & (gold[:, None] == L)).sum(axis=0)
    total = known.sum(axis=0)
    table = table.assign(correct=correct, incorrect=total - correct)
    with np.errstate(invalid="ignore", divide="ignore"):
        return table.assign(accuracy=np.where(total > 0, correct / np.maximum(total, 1), np.nan))

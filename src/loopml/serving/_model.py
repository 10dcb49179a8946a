"""Models as the service sees them: records in, scores out, as fast as the model allows.

``ServedModel`` wraps a scoring function over the float64 matrix a model was trained on,
plus a ``RowEncoder`` that turns request records into that matrix with dictionary look-ups
(no pandas on the request path). For LightGBM the function is the native Booster's
``predict`` with ``num_threads=1`` (default threading gives multi-millisecond p99 spikes on
single rows; see PEERS.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["RowEncoder", "ServedModel", "constant_model"]

FloatArray = npt.NDArray[np.float64]


class RowEncoder:
    """Records (dicts) to the model's float64 matrix; unknown categories and nulls become NaN.

    ``spec`` is the model's input schema: ``[{"name", "kind", "categories"}, ...]``.

    >>> encoder = RowEncoder([
    ...     {"name": "amount", "kind": "numeric"},
    ...     {"name": "country", "kind": "categorical", "categories": ["DE", "FR"]},
    ... ])
    >>> encoder.encode([{"amount": 3, "country": "FR"}, {"amount": None, "country": "XX"}]).tolist()
    [[3.0, 1.0], [nan, nan]]
    """

    def __init__(self, spec: Sequence[dict[str, Any]]) -> None:
        self.columns = [str(f["name"]) for f in spec]
        self._codes: list[dict[str, float] | None] = [
            {str(c): float(i) for i, c in enumerate(f.get("categories", ()))}
            if f.get("kind") == "categorical"
            else None
            for f in spec
        ]
        self._plan = list(zip(self.columns, self._codes, strict=True))

    def encode(self, records: Sequence[dict[str, Any]]) -> FloatArray:
        out = np.empty((len(records), len(self._plan)), dtype=np.float64)
        nan = math.nan
        for i, record in enumerate(records):
            row = out[i]
            for j, (name, codes) in enumerate(self._plan):
                value = record.get(name)
                if value is None:
                    row[j] = nan
                elif codes is None:
                    row[j] = float(value)
                else:
                    row[j] = codes.get(str(value), nan)
        return out


@dataclass
class ServedModel:
    """One model version, ready to score records."""

    version: str
    encoder: RowEncoder
    score_matrix: Callable[[FloatArray], FloatArray]
    booster: Any = None
    name: str = "model"

    def predict_records(self, records: Sequence[dict[str, Any]]) -> FloatArray:
        """Scores for request records (positive-class probability for binary tasks)."""
        return self.score_matrix(self.encoder.encode(records))

    @classmethod
    def from_booster(
        cls, booster: Any, spec: Sequence[dict[str, Any]], *, version: str
    ) -> ServedModel:
        """A native LightGBM Booster, single-threaded per request."""

        def score(matrix: FloatArray) -> FloatArray:
            return np.asarray(booster.predict(matrix, num_threads=1), dtype=np.float64)

        return cls(version, RowEncoder(spec), score, booster)


def constant_model(
    value: float, spec: Sequence[dict[str, Any]] = (), *, version: str = "baseline"
) -> ServedModel:
    """A model that always answers ``value`` (the prior baseline, the last-resort fallback).

    >>> constant_model(0.01).predict_records([{}, {}]).tolist()
    [0.01, 0.01]
    """
    return ServedModel(version, RowEncoder(spec), lambda matrix: np.full(len(matrix), value))

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

__all__ = ["RowEncoder", "ServedModel", "SingleRowBooster", "constant_model"]

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
    """One model version, ready to score records.

    ``score_matrix`` scores the encoded float64 matrix (the fast path); a model that needs
    the records themselves (a heuristic baseline reading raw columns) sets ``score_records``
    instead, which then wins.
    """

    version: str
    encoder: RowEncoder
    score_matrix: Callable[[FloatArray], FloatArray]
    booster: Any = None
    name: str = "model"
    score_records: Callable[[Sequence[dict[str, Any]]], FloatArray] | None = None
    backend: str = "python"

    def predict_records(self, records: Sequence[dict[str, Any]]) -> FloatArray:
        """Scores for request records (positive-class probability for binary tasks)."""
        if self.score_records is not None:
            return self.score_records(records)
        return self.score_matrix(self.encoder.encode(records))

    @classmethod
    def from_loaded(
        cls,
        loaded: Any,
        *,
        scorer: Callable[[FloatArray], FloatArray] | None = None,
        backend: str | None = None,
    ) -> ServedModel:
        """A registered model (``loopml.registry.LoadedModel``) ready to serve.

        LightGBM models take the fast path: dictionary encoding straight into the matrix and
        the native Booster, single-threaded. Other models score the same encoded matrix
        through their own ``predict_matrix``. ``scorer`` replaces the model's function (a
        compiled backend that passed its parity gate, see ``loopml.serving.compile_model``).
        """
        spec = loaded.input_schema["features"]
        version, name = str(loaded.version), str(loaded.name)
        if scorer is not None:
            return cls(
                version, RowEncoder(spec), scorer, loaded.booster, name, None, backend or "compiled"
            )
        if loaded.booster is not None:
            model = cls.from_booster(loaded.booster, spec, version=version)
            model.name = name
            return model
        return cls(version, RowEncoder(spec), loaded.model.predict_matrix, None, name)

    @classmethod
    def baseline_of(cls, loaded: Any) -> ServedModel:
        """The model's stored baseline as the fallback (``<version>-baseline``).

        A prior (constant) baseline answers without looking at the request; rule and
        last-value baselines read the records as a frame.
        """
        baseline = loaded.baseline
        spec = loaded.input_schema["features"]
        version = f"{loaded.version}-baseline"
        constant = loaded.task != "multiclass_classification"
        if getattr(baseline, "kind", None) == "prior" and constant:
            value = float(baseline.value_[0])
            return cls(
                version,
                RowEncoder(spec),
                lambda m: np.full(len(m), value),
                None,
                str(loaded.name),
                None,
                "baseline",
            )

        def frame_scores(records: Sequence[dict[str, Any]]) -> FloatArray:
            import pandas as pd

            frame = pd.DataFrame.from_records(records)
            return np.asarray(baseline.predict(frame), dtype=np.float64)

        return cls(
            version,
            RowEncoder(spec),
            lambda m: np.full(len(m), np.nan),
            None,
            str(loaded.name),
            frame_scores,
            "baseline",
        )

    @classmethod
    def from_booster(
        cls, booster: Any, spec: Sequence[dict[str, Any]], *, version: str
    ) -> ServedModel:
        """A native LightGBM Booster, single-threaded per request (``SingleRowBooster``)."""
        return cls(
            version, RowEncoder(spec), SingleRowBooster(booster), booster, backend="lightgbm"
        )


class SingleRowBooster:
    """LightGBM's own single-row fast path, with ``Booster.predict`` for larger batches.

    ``Booster.predict`` spends about 40 us a call in Python (a new inner predictor, a
    parameter copy, shape checks) around a few microseconds of tree walking. LightGBM's C
    API has a prepared single-row predictor (``LGBM_BoosterPredictForMatSingleRowFast``);
    calling it through ctypes gives the same numbers (tested bit for bit) in a fraction of
    the time. A lock serialises it: the prepared predictor and the output buffer are shared.

    >>> import lightgbm, numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 4)); y = X[:, 0] > 0
    >>> booster = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, y), 10)
    >>> fast = SingleRowBooster(booster)
    >>> bool(np.array_equal(fast(X[:1]), booster.predict(X[:1])))
    True
    """

    def __init__(self, booster: Any) -> None:
        import ctypes
        import threading

        import lightgbm.basic

        lib = lightgbm.basic._LIB  # type: ignore[attr-defined]
        _c_str, _safe_call = lightgbm.basic._c_str, lightgbm.basic._safe_call

        self.booster = booster
        self.iteration = int(booster.best_iteration or 0)
        self.width = int(booster.num_feature())
        self.outputs = int(booster.num_model_per_iteration())
        self._config = ctypes.c_void_p()
        _safe_call(
            lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(0),
                ctypes.c_int(0),
                ctypes.c_int(self.iteration),
                ctypes.c_int(1),
                ctypes.c_int32(self.width),
                _c_str("num_threads=1"),
                ctypes.byref(self._config),
            )
        )
        self._free = lib.LGBM_FastConfigFree
        self._call = lib.LGBM_BoosterPredictForMatSingleRowFast
        self._check = _safe_call
        self._out = np.empty(self.outputs, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._length = ctypes.c_int64()
        self._length_ref = ctypes.byref(self._length)
        self._void_p = ctypes.c_void_p
        self._lock = threading.Lock()

    def __call__(self, matrix: FloatArray) -> FloatArray:
        if matrix.shape != (1, self.width):
            predicted = self.booster.predict(
                matrix, num_threads=1, num_iteration=self.iteration or None
            )
            return np.asarray(predicted, dtype=np.float64)
        row = np.ascontiguousarray(matrix[0], dtype=np.float64)
        with self._lock:
            self._check(
                self._call(
                    self._config, self._void_p(row.ctypes.data), self._length_ref, self._out_ptr
                )
            )
            out = self._out.copy()
        return out if self.outputs == 1 else out.reshape(1, -1)

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._free(config)


def constant_model(
    value: float, spec: Sequence[dict[str, Any]] = (), *, version: str = "baseline"
) -> ServedModel:
    """A model that always answers ``value`` (the prior baseline, the last-resort fallback).

    >>> constant_model(0.01).predict_records([{}, {}]).tolist()
    [0.01, 0.01]
    """
    return ServedModel(version, RowEncoder(spec), lambda matrix: np.full(len(matrix), value))

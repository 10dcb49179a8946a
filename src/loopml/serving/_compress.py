"""Compression with its costs shown: who pays for the speed.

Three ways to make a LightGBM model smaller and faster, each measured against the original
on the same held-out rows (book, chapter 7: "compression vs accuracy fairness trade-off"):

* **tree pruning**: keep the first ``k`` boosting iterations (no retraining);
* **feature pruning**: retrain on the features with the highest total gain, with the
  original's parameters and number of iterations;
* **distillation**: a small LightGBM (few leaves, few rounds) trained on the teacher's
  scores on the training rows (cross-entropy on the teacher's probabilities for binary
  tasks, squared error on its predictions for regression), not on the labels.

``compress`` returns a ``CompressionReport``: for every variant its size (bytes of the model
text), its single-row latency (median, ``num_threads=1``), the overall metric and the
metric on every slice, each beside the original's, so a slice that loses more than the
average is visible (``worst_slices``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.core import ConfigError

__all__ = [
    "CompressionReport",
    "Variant",
    "compress",
    "distill",
    "prune_features",
    "prune_trees",
]

FloatArray = npt.NDArray[np.float64]


@dataclass
class Variant:
    """A compressed (or the original) model: how to score the full encoded matrix."""

    name: str
    kind: str
    booster: Any
    columns: list[int]

    def predict(self, matrix: FloatArray) -> FloatArray:
        """Scores for the model's full encoded matrix (pruned columns are dropped here)."""
        return np.asarray(self.booster.predict(matrix[:, self.columns], num_threads=1))

    @property
    def size_bytes(self) -> int:
        return len(self.booster.model_to_string().encode())

    @property
    def trees(self) -> int:
        return int(self.booster.num_trees())


def prune_trees(booster: Any, iterations: int) -> Any:
    """The first ``iterations`` boosting rounds of ``booster`` as a new Booster.

    >>> import lightgbm, numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 3)); y = X[:, 0] > 0
    >>> full = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, y), 20)
    >>> prune_trees(full, 5).num_trees()
    5
    """
    import lightgbm

    if iterations < 1:
        raise ConfigError(f"The 'iterations' to keep must be >= 1. Got {iterations!r} instead.")
    return lightgbm.Booster(model_str=booster.model_to_string(num_iteration=iterations))


def _train_params(loaded: Any) -> dict[str, Any]:
    skip = {"num_boost_round", "early_stopping_rounds", "best_iteration"}
    params = {k: v for k, v in loaded.model.params.items() if k not in skip}
    params.update(verbosity=-1, num_threads=2)
    return params


def _rounds(booster: Any) -> int:
    return int(booster.current_iteration())


def prune_features(
    loaded: Any, matrix: FloatArray, y: FloatArray, keep: int
) -> tuple[Any, list[int]]:
    """Retrain on the ``keep`` features with the highest total gain; returns (booster, columns)."""
    import lightgbm

    booster = loaded.booster
    width = matrix.shape[1]
    if not 1 <= keep <= width:
        raise ConfigError(f"The features to keep must be in [1, {width}]. Got {keep!r} instead.")
    gain = booster.feature_importance(importance_type="gain")
    columns = sorted(np.argsort(-gain, kind="stable")[:keep].tolist())
    kinds = set(loaded.model.encoder.categorical_indices)
    categorical = [i for i, c in enumerate(columns) if c in kinds]
    data = lightgbm.Dataset(matrix[:, columns], y, categorical_feature=categorical or "auto")
    return lightgbm.train(_train_params(loaded), data, num_boost_round=_rounds(booster)), columns


def distill(
    loaded: Any, matrix: FloatArray, *, num_leaves: int = 7, rounds: int = 50, seed: int = 0
) -> Any:
    """A small LightGBM student trained on the teacher's scores for ``matrix``."""
    import lightgbm

    task = loaded.task
    if task == "multiclass_classification":
        raise ConfigError("distill supports binary classification and regression models")
    teacher = np.asarray(loaded.booster.predict(matrix))
    params = {
        "objective": "cross_entropy" if task == "binary_classification" else "regression",
        "num_leaves": num_leaves,
        "learning_rate": 0.2,
        "min_child_samples": 20,
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "num_threads": 2,
    }
    categorical = loaded.model.encoder.categorical_indices
    data = lightgbm.Dataset(matrix, teacher, categorical_feature=categorical or "auto")
    return lightgbm.train(params, data, num_boost_round=rounds)


@dataclass
class CompressionReport:
    """Size, latency, overall and per-slice metric of each variant beside the original."""

    metric: str
    higher_is_better: bool
    variants: pd.DataFrame
    slices: pd.DataFrame

    def worst_slices(self, n: int = 5) -> pd.DataFrame:
        """The slices that lose the most against the original (beyond the overall loss)."""
        frame = self.slices.dropna(subset=["excess_loss"])
        return frame.sort_values("excess_loss", ascending=False).head(n)

    def to_markdown(self) -> str:
        """The report as Markdown tables."""
        return (
            f"### Variants ({self.metric})\n\n{_table(self.variants)}\n\n"
            f"### Slices losing the most beyond the overall change\n\n"
            f"{_table(self.worst_slices(10))}\n"
        )


def _table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = [
        "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def _latency_us(variant: Variant, matrix: FloatArray, repeats: int = 400) -> float:
    rows = [matrix[i : i + 1] for i in range(min(50, len(matrix)))]
    for row in rows:
        variant.predict(row)
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        variant.predict(rows[i % len(rows)])
        times[i] = time.perf_counter() - start
    return float(np.median(times) * 1e6)


def _labels(loaded: Any, frame: pd.DataFrame, target: str) -> FloatArray:
    if target not in frame.columns:
        raise ConfigError(f"The frame has no target column {target!r} (columns: {list(frame)})")
    if loaded.task == "binary_classification":
        positive = np.asarray(frame[target].to_numpy() == loaded.classes[1])
        return positive.astype(np.float64)
    return np.asarray(frame[target].to_numpy(dtype=np.float64), dtype=np.float64)


def compress(
    loaded: Any,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    target: str,
    slices: Sequence[str] = (),
    metric: str | None = None,
    keep_iterations: Sequence[float] = (0.5, 0.2),
    keep_features: Sequence[float] = (0.5,),
    distill_leaves: Sequence[int] = (7,),
    distill_rounds: int = 50,
    min_slice_size: int = 50,
    seed: int = 0,
) -> CompressionReport:
    """Build the compressed variants of a registered LightGBM model and report their costs.

    ``train`` holds the rows the students and feature-pruned models learn from; ``test``
    the held-out rows every variant is measured on. Fractions in ``keep_iterations`` and
    ``keep_features`` are of the original's iterations and features.
    """
    from loopml.evaluation import HIGHER_IS_BETTER, compute_metrics, metric_function, slice_metrics

    if loaded.booster is None:
        raise ConfigError("compress works on LightGBM models (this model has no Booster)")
    task = loaded.task
    metric = metric or ("roc_auc" if task == "binary_classification" else "rmse")
    score_metric = metric_function(metric, task)
    X_train = loaded.model.encoder.transform(train)
    X_test = loaded.model.encoder.transform(test)
    y_train, y_test = _labels(loaded, train, target), _labels(loaded, test, target)
    variants = _variants(
        loaded,
        X_train,
        y_train,
        keep_iterations,
        keep_features,
        distill_leaves,
        distill_rounds,
        seed,
    )
    rows, slice_rows = [], []
    for variant in variants:
        score = variant.predict(X_test)
        overall = compute_metrics(y_test, score, task=task)
        rows.append(
            {
                "variant": variant.name,
                "kind": variant.kind,
                "trees": variant.trees,
                "features": len(variant.columns),
                "size_bytes": variant.size_bytes,
                "single_row_us": _latency_us(variant, X_test),
                metric: overall.get(metric, score_metric(y_test, score)),
            }
        )
        if slices:
            table = slice_metrics(
                test,
                y_test,
                score,
                columns=list(slices),
                metrics={metric: score_metric},
                min_size=min_slice_size,
            )
            table.insert(0, "variant", variant.name)
            slice_rows.append(table)
    return _report(metric, HIGHER_IS_BETTER.get(metric, True), rows, slice_rows)


def _variants(
    loaded: Any,
    X: FloatArray,
    y: FloatArray,
    keep_iterations: Sequence[float],
    keep_features: Sequence[float],
    distill_leaves: Sequence[int],
    rounds: int,
    seed: int,
) -> list[Variant]:
    booster = loaded.booster
    everything = list(range(X.shape[1]))
    total = _rounds(booster)
    out = [Variant("original", "original", booster, everything)]
    for share in keep_iterations:
        k = max(1, round(total * share))
        out.append(
            Variant(f"trees {k}/{total}", "prune_trees", prune_trees(booster, k), everything)
        )
    for share in keep_features:
        k = max(1, round(len(everything) * share))
        pruned, columns = prune_features(loaded, X, y, k)
        out.append(Variant(f"features {k}/{len(everything)}", "prune_features", pruned, columns))
    for leaves in distill_leaves:
        student = distill(loaded, X, num_leaves=leaves, rounds=rounds, seed=seed)
        out.append(Variant(f"student {leaves} leaves x {rounds}", "distill", student, everything))
    return out


def _report(
    metric: str, higher: bool, rows: list[dict[str, Any]], slice_rows: list[pd.DataFrame]
) -> CompressionReport:
    variants = pd.DataFrame(rows)
    base = variants.iloc[0]
    sign = 1.0 if higher else -1.0
    variants["size_ratio"] = variants["size_bytes"] / base["size_bytes"]
    variants["speedup"] = base["single_row_us"] / variants["single_row_us"]
    variants["metric_change"] = variants[metric] - base[metric]
    slices = (
        pd.concat(slice_rows, ignore_index=True)
        if slice_rows
        else pd.DataFrame(columns=["variant", "slice", "value", "size", metric])
    )
    if len(slices):
        original = slices[slices["variant"] == "original"].set_index(["slice", "value"])[metric]
        keys = pd.MultiIndex.from_frame(slices[["slice", "value"]])
        slices["original"] = original.reindex(keys).to_numpy()
        slices["change"] = slices[metric] - slices["original"]
        overall = variants.set_index("variant")["metric_change"]
        # how much more this slice loses than the model as a whole (positive: pays more)
        slices["excess_loss"] = sign * (
            overall.reindex(slices["variant"]).to_numpy() - slices["change"]
        )
        slices = slices[slices["variant"] != "original"].reset_index(drop=True)
    return CompressionReport(metric, higher, variants, slices)

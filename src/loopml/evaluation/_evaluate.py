"""``evaluate``: one call that decides what may be served.

It scores the candidate next to the baselines and the champion, with intervals on every
headline metric and on each difference, slices, worst-slice discovery, calibration,
behaviour tests, fairness, importance, churn and the configured gates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.core import ConfigError, DataError, EvaluateConfig
from loopml.evaluation._behaviour import (
    BehaviourResult,
    directional_test,
    invariance_test,
    perturbation_test,
)
from loopml.evaluation._calibration import choose_calibrator, reliability_diagram
from loopml.evaluation._explain import permutation_importance, prediction_churn
from loopml.evaluation._fairness import fairness_report
from loopml.evaluation._gates import GateResult, check_gates
from loopml.evaluation._metrics import (
    HIGHER_IS_BETTER,
    MetricInterval,
    compute_metrics,
    headline_intervals,
    metric_function,
)
from loopml.evaluation._slices import (
    SliceFinding,
    find_worst_slices,
    simpsons_paradox,
    slice_metrics,
)

__all__ = ["Evaluation", "as_scorer", "evaluate"]

FloatArray = npt.NDArray[np.float64]
Scorer = Callable[[pd.DataFrame], FloatArray]

HEADLINE = {
    "binary_classification": ["roc_auc", "average_precision", "log_loss", "brier"],
    "regression": ["mae", "rmse", "r2"],
}


def as_scorer(model: Any, task: str) -> Scorer:
    """A function ``frame -> scores`` for a model, a pipeline or a plain callable.

    Binary classifiers give the positive-class probability; regressors their prediction.

    >>> scorer = as_scorer(lambda frame: frame["x"].to_numpy() * 0.5, "regression")
    >>> scorer(pd.DataFrame({"x": [1.0, 2.0]})).tolist()
    [0.5, 1.0]
    """
    if task == "binary_classification" and hasattr(model, "predict_proba"):

        def score(frame: pd.DataFrame) -> FloatArray:
            proba = np.asarray(model.predict_proba(frame), dtype=np.float64)
            return proba[:, 1] if proba.ndim == 2 else proba

        return score
    if hasattr(model, "predict"):
        return lambda frame: np.asarray(model.predict(frame), dtype=np.float64)
    if callable(model):
        return lambda frame: np.asarray(model(frame), dtype=np.float64)
    raise ConfigError(
        f"cannot score with a {type(model).__name__}",
        hint="pass a model with predict_proba/predict, or a function frame -> scores",
    )


@dataclass
class Evaluation:
    """Everything ``evaluate`` measured; ``to_dict()`` is the JSON report."""

    task: str
    rows: int
    metrics: dict[str, MetricInterval]
    all_metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    differences: dict[str, dict[str, MetricInterval]]
    champion: dict[str, Any] | None
    slices: pd.DataFrame
    worst_slices: list[SliceFinding]
    simpsons_paradox: list[str]
    calibration: dict[str, Any]
    behaviour: list[BehaviourResult]
    fairness: dict[str, dict[str, Any]]
    importance: pd.DataFrame
    gates: list[GateResult] = field(default_factory=list)
    latency: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every gate passed."""
        return all(gate.passed for gate in self.gates)

    @property
    def failed_gates(self) -> list[GateResult]:
        return [gate for gate in self.gates if not gate.passed]

    def to_dict(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = _clean(
            {
                "task": self.task,
                "rows": self.rows,
                "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
                "all_metrics": self.all_metrics,
                "baselines": self.baselines,
                "differences": {
                    ref: {k: v.to_dict() for k, v in d.items()}
                    for ref, d in self.differences.items()
                },
                "champion": self.champion,
                "slices": self.slices.to_dict(orient="records"),
                "worst_slices": [f.to_dict() for f in self.worst_slices],
                "simpsons_paradox": self.simpsons_paradox,
                "calibration": self.calibration,
                "behaviour": [b.to_dict() for b in self.behaviour],
                "fairness": self.fairness,
                "importance": self.importance.to_dict(orient="records"),
                "gates": [g.to_dict() for g in self.gates],
                "passed": self.passed,
                "latency": self.latency,
                "seconds": self.seconds,
            }
        )
        return cleaned


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, numpy scalars plain Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def evaluate(
    model: Any,
    frame: pd.DataFrame,
    *,
    target: str,
    task: str = "binary_classification",
    baselines: Mapping[str, Any] | None = None,
    champion: Any = None,
    config: EvaluateConfig | None = None,
    calibration_frame: pd.DataFrame | None = None,
    features: list[str] | None = None,
    seed: int = 0,
) -> Evaluation:
    """Evaluate ``model`` on ``frame`` (which holds ``target``) and check the gates.

    >>> rng = np.random.default_rng(0)
    >>> test = pd.DataFrame({"x": rng.normal(size=400)})
    >>> test["y"] = (test["x"] + rng.normal(size=400) > 0).astype(int)
    >>> model = lambda f: 1 / (1 + np.exp(-2 * f["x"].to_numpy()))
    >>> prior = lambda f: np.full(len(f), 0.5)
    >>> result = evaluate(model, test, target="y", baselines={"prior": prior},
    ...                   config=EvaluateConfig(bootstrap=50))
    >>> result.metrics["roc_auc"].value > 0.8, result.differences["prior"]["roc_auc"].low > 0
    (True, True)
    """
    config = config or EvaluateConfig()
    if task not in HEADLINE:
        raise ConfigError(
            f"evaluation of task {task!r} is not supported yet; use {sorted(HEADLINE)}"
        )
    if target not in frame.columns:
        raise DataError(
            f"the test frame has no target column {target!r}",
            hint=f"columns: {list(frame.columns)}",
        )
    y = frame[target].to_numpy(dtype=np.float64)
    if np.isnan(y).any():
        raise DataError(
            f"target column {target!r} has {int(np.isnan(y).sum())} missing values",
            hint="drop unlabeled rows from the test frame",
        )
    x = frame[features] if features is not None else frame.drop(columns=[target])
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    scorer = as_scorer(model, task)
    start = time.perf_counter()
    score = scorer(x)
    latency_ms_per_row = (time.perf_counter() - start) * 1000 / max(len(x), 1)
    seconds["predict"] = time.perf_counter() - clock

    clock = time.perf_counter()
    headline = HEADLINE[task]
    metrics = headline_intervals(y, score, task=task, resamples=config.bootstrap, seed=seed)
    all_metrics = compute_metrics(y, score, task=task, threshold=config.threshold)
    seconds["metrics"] = time.perf_counter() - clock

    clock = time.perf_counter()
    references = {name: as_scorer(m, task)(x) for name, m in (baselines or {}).items()}
    if champion is not None:
        references["champion"] = as_scorer(champion, task)(x)
    baseline_metrics = {
        name: compute_metrics(y, s, task=task, threshold=config.threshold)
        for name, s in references.items()
        if name != "champion"
    }
    differences = {
        name: headline_intervals(
            y,
            score,
            task=task,
            reference=ref,
            resamples=config.bootstrap,
            max_resample_size=20_000,
            seed=seed,
        )
        for name, ref in references.items()
    }
    seconds["comparisons"] = time.perf_counter() - clock

    clock = time.perf_counter()
    slice_columns = [c for c in config.slices if all(p in x.columns for p in c.split("*"))]
    missing = [c for c in config.slices if c not in slice_columns]
    if missing:
        raise ConfigError(
            f"evaluate.slices names columns that are not in the test frame: {missing}"
        )
    metric_map = {name: metric_function(name, task) for name in headline}
    slices = slice_metrics(
        x, y, score, columns=slice_columns, metrics=metric_map, min_size=config.min_slice_size
    )
    worst = (
        find_worst_slices(
            x,
            y,
            score,
            task=task,
            columns=slice_columns or _searchable(x),
            min_size=config.min_slice_size,
        )
        if len(x) >= 2 * config.min_slice_size
        else []
    )
    champion_summary: dict[str, Any] | None = None
    paradox: list[str] = []
    if champion is not None:
        champ = references["champion"]
        champion_summary = {
            "metrics": compute_metrics(y, champ, task=task, threshold=config.threshold),
            "churn": prediction_churn(score, champ, threshold=config.threshold)
            if task != "regression"
            else None,
        }
        champ_slices = slice_metrics(
            x, y, champ, columns=slice_columns, metrics=metric_map, min_size=config.min_slice_size
        )
        for metric in headline:
            overall = metrics[metric].value - champion_summary["metrics"][metric]
            for spec in slice_columns:
                mine = slices[(slices["slice"] == spec) & ~slices["too_small"]]
                theirs = champ_slices[(champ_slices["slice"] == spec) & ~champ_slices["too_small"]]
                diffs = list(mine[metric].to_numpy() - theirs[metric].to_numpy())
                if simpsons_paradox(overall, diffs, metric):
                    paradox.append(
                        f"{metric} by {spec}: the overall difference {overall:+.4g} "
                        "reverses in every slice"
                    )
    seconds["slices"] = time.perf_counter() - clock

    clock = time.perf_counter()
    calibration: dict[str, Any] = {}
    if task == "binary_classification":
        calibration = {
            "expected_calibration_error": all_metrics["expected_calibration_error"],
            "reliability": reliability_diagram(y, score),
        }
        if calibration_frame is not None:
            cal_y = calibration_frame[target].to_numpy(dtype=np.float64)
            cal_score = scorer(
                calibration_frame.drop(columns=[target])
                if features is None
                else calibration_frame[features]
            )
            chosen, candidates = choose_calibrator(cal_y, cal_score, seed=seed)
            calibration["calibrator"] = chosen.to_dict()
            calibration["candidates"] = candidates
    seconds["calibration"] = time.perf_counter() - clock

    clock = time.perf_counter()
    behaviour = _behaviour(scorer, x, config, seed)
    fairness = {
        column: fairness_report(
            x[column].astype(str).to_numpy(), y, score, threshold=config.threshold
        )
        for column in config.sensitive
        if task == "binary_classification" and column in x.columns
    }
    seconds["behaviour_fairness"] = time.perf_counter() - clock
    clock = time.perf_counter()
    primary = headline[0] if task == "regression" else "average_precision"
    importance = permutation_importance(
        scorer,
        x,
        y,
        metric_function(primary, task),
        higher_is_better=HIGHER_IS_BETTER[primary],
        repeats=2,
        max_rows=10_000,
        seed=seed,
    )
    seconds["importance"] = time.perf_counter() - clock

    result = Evaluation(
        task=task,
        rows=len(frame),
        metrics=metrics,
        all_metrics=all_metrics,
        baselines=baseline_metrics,
        differences=differences,
        champion=champion_summary,
        slices=slices,
        worst_slices=worst,
        simpsons_paradox=paradox,
        calibration=calibration,
        behaviour=behaviour,
        fairness=fairness,
        importance=importance,
        latency={"batch_ms_per_row": latency_ms_per_row, **_single_row_latency(scorer, x)},
        seconds=seconds,
    )
    result.gates = check_gates(config.gates, result.to_dict())
    return result


def _single_row_latency(scorer: Scorer, x: pd.DataFrame, rows: int = 200) -> dict[str, float]:
    """p50 and p99 of scoring one row at a time (what the ``latency_p99_ms`` gate reads)."""
    if len(x) == 0:
        return {}
    sample = x.iloc[: min(rows, len(x))]
    timings = []
    for i in range(len(sample)):
        row = sample.iloc[[i]]
        start = time.perf_counter()
        scorer(row)
        timings.append((time.perf_counter() - start) * 1000)
    p50, p99 = np.percentile(timings, [50, 99])
    return {"p50_ms": float(p50), "p99_ms": float(p99), "single_rows": float(len(timings))}


def _searchable(frame: pd.DataFrame, limit: int = 10) -> list[str]:
    """Columns worth searching for weak slices: low-cardinality categories and numbers."""
    chosen = []
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) or series.nunique() <= 50:
            chosen.append(column)
    return chosen[:limit]


def _behaviour(
    scorer: Scorer, x: pd.DataFrame, config: EvaluateConfig, seed: int
) -> list[BehaviourResult]:
    sample = x.sample(n=min(len(x), 5000), random_state=seed) if len(x) > 5000 else x
    sample = sample.reset_index(drop=True)
    results = [perturbation_test(scorer, sample, threshold=config.threshold, seed=seed)]
    results += [
        invariance_test(scorer, sample, column=c) for c in config.sensitive if c in sample.columns
    ]
    results += [
        directional_test(scorer, sample, column=c, direction=d)
        for c, d in config.directional.items()
        if c in sample.columns
    ]
    return results

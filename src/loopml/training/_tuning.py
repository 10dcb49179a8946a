"""Hyperparameter search with Optuna: TPE sampling, median pruning, time-aware folds.

Every trial becomes an MLflow run nested under the training run, with its parameters, the
score of each fold it finished and its state (complete or pruned).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from loopml.training._candidates import fit_candidate, search_space
from loopml.training._encoding import FeatureEncoder
from loopml.training._metrics import higher_is_better, score

__all__ = ["TuningResult", "cv_folds", "tune_candidate"]


@dataclass
class TuningResult:
    """The best parameters found, and a record of every trial."""

    best_params: dict[str, Any]
    best_score: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def pruned(self) -> int:
        return sum(1 for t in self.trials if t["state"] == "PRUNED")


def cv_folds(
    frame: Any,
    *,
    timestamp: str | None,
    n_folds: int,
    gap: Any,
    y: np.ndarray,
    task: str,
    seed: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rolling-origin folds on time-ordered data, else (stratified) shuffled K-fold."""
    if timestamp is not None:
        from loopml.trainingdata import rolling_origin_folds

        folds = rolling_origin_folds(frame, timestamp=timestamp, n_folds=n_folds, gap=gap)
        return [(f.train, f.validation) for f in folds if len(f.train) and len(f.validation)]
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter: Any = (
        KFold(n_folds, shuffle=True, random_state=seed)
        if task == "regression"
        else StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    )
    return [(a, b) for a, b in splitter.split(np.zeros(len(y)), y)]


def tune_candidate(
    name: str,
    *,
    task: str,
    metric: str,
    encoder: FeatureEncoder,
    X: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    classes: list[Any],
    trials: int,
    timeout: float | None,
    parallel: int,
    seed: int,
    on_trial: Any = None,
    storage: str | None = None,
    study_name: str | None = None,
    client: Any = None,
) -> TuningResult:
    """Search ``name``'s space; ``on_trial(record)`` is called after each trial (thread-safe).

    With a Dask ``client``, the trials run on the cluster's workers, which share the study
    through ``storage`` (an RDB URL every worker can reach; default a SQLite file, which only
    workers on this machine can); the driver then tracks each trial.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction: Literal["maximize", "minimize"] = (
        "maximize" if higher_is_better(metric) else "minimize"
    )
    sign = 1.0 if direction == "maximize" else -1.0
    if client is not None and storage is None:
        import tempfile

        storage = f"sqlite:///{tempfile.mkdtemp(prefix='loopml-optuna-')}/study.db"
        study_name = study_name or f"{name}-{seed}"
    study = optuna.create_study(
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
        storage=storage,
        study_name=study_name,
        load_if_exists=study_name is not None,
    )
    records: list[dict[str, Any]] = []
    lock = threading.Lock()

    def objective(trial: Any) -> float:
        params = search_space(name, trial)
        scores = []
        for step, (train_rows, valid_rows) in enumerate(folds):
            data = (X[train_rows], y[train_rows], X[valid_rows], y[valid_rows])
            model = fit_candidate(name, task, params, encoder, data, classes=classes, seed=seed)
            predicted = model.validation_scores
            if predicted is None:
                predicted = model.predict_matrix(data[2])
            scores.append(score(task, metric, y[valid_rows], predicted))
            trial.set_user_attr("fold_scores", scores)
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    def callback(study: Any, trial: Any) -> None:
        record = {
            "number": trial.number,
            "state": trial.state.name,
            "params": dict(trial.params),
            "value": trial.value,
            "fold_scores": trial.user_attrs.get("fold_scores", []),
        }
        with lock:
            records.append(record)
            if on_trial is not None:
                on_trial(record)

    started = time.perf_counter()
    if client is not None:
        assert storage is not None and study_name is not None
        _optimize_on_cluster(client, storage, study_name, objective, trials, timeout, seed)
        for trial in study.trials:
            callback(study, trial)
    else:
        study.optimize(
            objective,
            n_trials=trials,
            timeout=timeout,
            n_jobs=parallel,
            callbacks=[callback],
            gc_after_trial=False,
        )
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not complete:
        return TuningResult({}, float("nan"), records, time.perf_counter() - started)
    best = max(complete, key=lambda t: sign * float(t.value or 0.0))
    return TuningResult(
        dict(best.params), float(best.value or 0.0), records, time.perf_counter() - started
    )


def _optimize_on_cluster(
    client: Any,
    storage: str,
    study_name: str,
    objective: Any,
    trials: int,
    timeout: float | None,
    seed: int,
) -> None:
    """Split the trial budget over the workers; each loads the shared study and optimizes."""
    workers = max(1, len(client.scheduler_info()["workers"]))
    shares = [trials // workers + (1 if i < trials % workers else 0) for i in range(workers)]
    futures = [
        client.submit(
            _worker_optimize,
            storage,
            study_name,
            objective,
            share,
            timeout,
            seed + i,
            pure=False,
        )
        for i, share in enumerate(shares)
        if share
    ]
    client.gather(futures)


def _worker_optimize(
    storage: str, study_name: str, objective: Any, trials: int, timeout: float | None, seed: int
) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )
    study.optimize(objective, n_trials=trials, timeout=timeout, gc_after_trial=False)
    return trials

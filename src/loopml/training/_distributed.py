"""Distributed training on Dask: LightGBM's own Dask estimators, one model over all workers.

``train(..., compute="dask")`` starts a ``LocalCluster`` (or connects to
``backends.dask_scheduler``); ``compute=client`` uses a running ``distributed.Client``. The
result is an ordinary LightGBM Booster, stored and served exactly like a local one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from loopml.training._candidates import TrainedModel, lightgbm_params
from loopml.training._encoding import FeatureEncoder

__all__ = ["fit_lightgbm_dask", "local_client"]

_CLIENT: list[Any] = []


def local_client(scheduler: str | None = None, *, n_workers: int = 2) -> Any:
    """A Dask client: to ``scheduler`` when given, else a LocalCluster kept for the process."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler)  # type: ignore[no-untyped-call]
    if not _CLIENT:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n_workers, threads_per_worker=1, processes=False, dashboard_address=None
        )
        _CLIENT.append(Client(cluster))  # type: ignore[no-untyped-call]
    return _CLIENT[0]


def fit_lightgbm_dask(
    client: Any,
    task: str,
    params: dict[str, Any],
    encoder: FeatureEncoder,
    X: np.ndarray,
    y: np.ndarray,
    *,
    classes: list[Any],
    seed: int,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainedModel:
    """Train LightGBM across the cluster's workers; returns the same TrainedModel as locally.

    LightGBM's Dask interface has no early stopping, so the model trains the full
    ``num_boost_round`` rounds, scores every round on the validation rows and keeps the
    best number of rounds (what early stopping picks locally).
    """
    import dask.array as da
    import lightgbm

    used = lightgbm_params(task, params, len(classes), seed)
    rounds = int(used.pop("num_boost_round"))
    used.pop("early_stopping_rounds", None)
    used.pop("deterministic", None)
    used.pop("force_col_wise", None)
    n_workers = max(1, len(client.scheduler_info()["workers"]))
    rows = max(1, math.ceil(len(X) / n_workers))
    dX = da.from_array(X, chunks=(rows, X.shape[1]))  # type: ignore[no-untyped-call]
    dy = da.from_array(y, chunks=(rows,))  # type: ignore[no-untyped-call]
    estimator_cls = (
        lightgbm.DaskLGBMRegressor if task == "regression" else lightgbm.DaskLGBMClassifier
    )
    objective = used.pop("objective")
    seed_value = used.pop("seed")
    estimator = estimator_cls(
        client=client, n_estimators=rounds, objective=objective, random_state=seed_value, **used
    )
    fit_args: dict[str, Any] = {}
    if validation is not None and len(validation[1]):
        vrows = max(1, math.ceil(len(validation[1]) / n_workers))  # a share on every worker
        vX = da.from_array(validation[0], chunks=(vrows, X.shape[1]))  # type: ignore[no-untyped-call]
        vy = da.from_array(validation[1], chunks=(vrows,))  # type: ignore[no-untyped-call]
        fit_args["eval_set"] = [(vX, vy)]
    estimator.fit(dX, dy, categorical_feature=encoder.categorical_indices or "auto", **fit_args)
    booster = estimator.to_local().booster_
    if fit_args:
        results = getattr(estimator, "evals_result_", None) or {}
        if "valid_0" in results:
            [curve] = results["valid_0"].values()
        else:  # the worker that returned the model held no validation rows: score here
            curve = _loss_curve(booster, task, validation[0], validation[1])  # type: ignore[index]
        booster.best_iteration = int(np.argmin(curve)) + 1
    recorded = {
        **used,
        "objective": objective,
        "seed": seed_value,
        "num_boost_round": rounds,
        "compute": "dask",
        "workers": n_workers,
    }
    return TrainedModel("lightgbm", task, encoder, booster, classes, recorded)


def _loss_curve(booster: Any, task: str, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Validation loss after each boosting round, from each round's raw contribution."""
    rounds = booster.current_iteration()
    raw = np.zeros((len(y), max(1, booster.num_model_per_iteration())))
    losses = np.empty(rounds)
    for i in range(rounds):
        step = booster.predict(X, raw_score=True, start_iteration=i, num_iteration=1)
        raw += np.asarray(step).reshape(len(y), -1)
        if task == "regression":
            losses[i] = float(np.mean((raw[:, 0] - y) ** 2))
        elif task == "binary_classification":
            p = np.clip(1 / (1 + np.exp(-raw[:, 0])), 1e-15, 1 - 1e-15)
            losses[i] = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        else:
            shifted = raw - raw.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            losses[i] = float(-np.mean(log_p[np.arange(len(y)), y.astype(int)]))
    return losses

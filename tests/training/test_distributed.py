"""Dask: LightGBM's own Dask estimators on a LocalCluster give a model as good as local."""

from __future__ import annotations

import pytest

from loopml.core import TrainConfig
from loopml.training import train


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.slow
def test_dask_lightgbm_matches_local_quality(tracking, make_binary, client) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=6_000)
    config = TrainConfig.model_validate(
        {"candidates": ["lightgbm"], "tune": {"trials": 0}, "seed": 1}
    )
    local = train(
        frame, target="y", task="binary_classification", timestamp="ts", config=config, **tracking
    )
    dask = train(
        frame,
        target="y",
        task="binary_classification",
        timestamp="ts",
        config=config,
        compute=client,
        **tracking,
    )
    local_auc = local.scores[-1].test["roc_auc"]
    dask_auc = dask.scores[-1].test["roc_auc"]
    assert dask.best is not None and dask.best.params["compute"] == "dask"
    assert dask.best.params["workers"] == 2
    assert type(dask.best.estimator).__name__ == "Booster"
    # same data, same split: the distributed model is as good as the local one
    assert abs(dask_auc - local_auc) < 0.02, (dask_auc, local_auc)
    assert dask.scores[-1].beats_baseline


@pytest.mark.slow
def test_tuning_on_the_cluster_shares_one_study(tracking, make_binary, client) -> None:  # type: ignore[no-untyped-def]
    from loopml.training import open_client

    frame = make_binary(n=1_500)
    config = TrainConfig.model_validate(
        {"candidates": ["logistic_regression"], "tune": {"trials": 6}, "seed": 2}
    )
    result = train(
        frame,
        target="y",
        task="binary_classification",
        timestamp="ts",
        config=config,
        compute=client,
        **tracking,
    )
    tuning = result.tuning["logistic_regression"]
    # both workers drew from one shared study: 6 distinct trial numbers, every one tracked
    assert sorted(t["number"] for t in tuning.trials) == list(range(6))
    mlflow = open_client(tracking["tracking_uri"])
    experiment = mlflow.get_run(result.run_id).info.experiment_id
    assert len(mlflow.search_runs([experiment], "tags.`loopml.kind` = 'trial'")) == 6
    assert result.scores[-1].params["C"] == pytest.approx(tuning.best_params["C"])


@pytest.mark.parametrize(
    ("task", "objective", "metric"),
    [
        ("binary_classification", "binary", "binary_logloss"),
        ("regression", "regression", "l2"),
        ("multiclass_classification", "multiclass", "multi_logloss"),
    ],
)
def test_loss_curve_matches_lightgbm_own_evaluation(task, objective, metric) -> None:  # type: ignore[no-untyped-def]
    import lightgbm
    import numpy as np

    from loopml.training._distributed import _loss_curve

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    y = {
        "binary": (X[:, 0] > 0).astype(float),
        "regression": X[:, 0] + rng.normal(size=600),
        "multiclass": np.digitize(X[:, 0], [-0.5, 0.5]).astype(float),
    }[objective]
    params = {"objective": objective, "verbosity": -1, "num_threads": 1}
    if objective == "multiclass":
        params["num_class"] = 3
    evals: dict = {}
    train_set = lightgbm.Dataset(X[:400], y[:400])
    booster = lightgbm.train(
        params,
        train_set,
        num_boost_round=20,
        valid_sets=[lightgbm.Dataset(X[400:], y[400:], reference=train_set)],
        callbacks=[lightgbm.record_evaluation(evals)],
    )
    expected = evals["valid_0"][metric]
    np.testing.assert_allclose(_loss_curve(booster, task, X[400:], y[400:]), expected, rtol=1e-6)

"""Tuning (TPE, pruning, time-aware folds, every trial tracked) and reproducing a run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.core import DataError, TrainConfig
from loopml.training import open_client, reproduce, train
from loopml.training._tuning import cv_folds, tune_candidate


def test_time_aware_folds_never_validate_on_the_past(make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=1_000)
    y = frame.y.to_numpy()
    folds = cv_folds(
        frame, timestamp="ts", n_folds=3, gap="5h", y=y, task="binary_classification", seed=0
    )
    assert len(folds) == 3
    for train_rows, valid_rows in folds:
        gap = frame.ts.iloc[valid_rows].min() - frame.ts.iloc[train_rows].max()
        assert gap > pd.Timedelta("5h")


def test_tuning_tracks_every_trial_and_prunes(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=1_500)
    config = TrainConfig.model_validate(
        {"candidates": ["logistic_regression"], "tune": {"trials": 12, "parallel": 2}}
    )
    result = train(
        frame, target="y", task="binary_classification", timestamp="ts", config=config, **tracking
    )
    tuning = result.tuning["logistic_regression"]
    assert len(tuning.trials) == 12
    assert result.scores[-1].params["C"] == pytest.approx(tuning.best_params["C"])
    client = open_client(tracking["tracking_uri"])
    experiment = client.get_run(result.run_id).info.experiment_id
    trials = client.search_runs([experiment], "tags.`loopml.kind` = 'trial'")
    assert len(trials) == 12
    states = {t.data.tags["loopml.trial_state"] for t in trials}
    assert states <= {"COMPLETE", "PRUNED"}
    complete = [t for t in trials if t.data.tags["loopml.trial_state"] == "COMPLETE"]
    assert all("cv_average_precision" in t.data.metrics for t in complete)
    assert all("cv_fold0_average_precision" in t.data.metrics for t in trials)


@pytest.mark.slow
def test_median_pruner_stops_hopeless_trials(make_binary) -> None:  # type: ignore[no-untyped-def]
    from loopml.training import FeatureEncoder

    frame = make_binary(n=1_500, with_time=False)
    encoder = FeatureEncoder.fit(frame, ["x1", "x2", "x3", "cat"])
    X, y = encoder.transform(frame), frame.y.to_numpy()
    folds = cv_folds(
        frame, timestamp=None, n_folds=3, gap=None, y=y, task="binary_classification", seed=0
    )
    result = tune_candidate(
        "lightgbm",
        task="binary_classification",
        metric="log_loss",
        encoder=encoder,
        X=X,
        y=y,
        folds=folds,
        classes=[0, 1],
        trials=25,
        timeout=None,
        parallel=1,
        seed=1,
    )
    assert result.pruned >= 1  # trials worse than the median after a fold stop early
    pruned = [t for t in result.trials if t["state"] == "PRUNED"]
    assert all(len(t["fold_scores"]) < 3 for t in pruned)


def test_reproduce_retrains_and_matches(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=1_500)
    config = TrainConfig.model_validate(
        {"candidates": ["lightgbm"], "tune": {"trials": 0}, "seed": 3}
    )
    original = train(
        frame, target="y", task="binary_classification", timestamp="ts", config=config, **tracking
    )
    report = reproduce(original.run_id, tracking_uri=tracking["tracking_uri"])
    assert report.matches, report.summary()
    assert report.rows_compared == len(original.split.test)
    assert report.max_abs_difference == 0.0
    assert report.new_run != original.run_id


def test_reproduce_detects_a_different_model(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=1_500)
    config = TrainConfig.model_validate(
        {"candidates": ["random_forest"], "tune": {"trials": 0}, "seed": 3}
    )
    original = train(
        frame, target="y", task="binary_classification", timestamp="ts", config=config, **tracking
    )
    # overwrite the stored predictions as if the model had been trained differently
    client = open_client(tracking["tracking_uri"])
    path = client.download_artifacts(original.run_id, "predictions.npy")
    stored = client.get_run(original.run_id).info.artifact_uri.removeprefix("file://")
    np.save(f"{stored}/predictions.npy", np.load(path) + 0.01, allow_pickle=False)
    report = reproduce(original.run_id, tracking_uri=tracking["tracking_uri"])
    assert not report.matches
    assert report.max_abs_difference == pytest.approx(0.01, abs=1e-9)
    with pytest.raises(DataError, match="differs from the data it was trained on"):
        reproduce(
            original.run_id,
            tracking_uri=tracking["tracking_uri"],
            frame=frame.assign(x1=frame.x1 + 1),
        )

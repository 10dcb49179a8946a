"""train(): baselines first, candidates judged against the best one, everything tracked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.core import (
    BackendError,
    ConfigError,
    DataError,
    LoopmlWarning,
    SchemaError,
    TrainConfig,
)
from loopml.training import (
    HeuristicBaseline,
    LastValueBaseline,
    baseline_from_json,
    open_client,
    train,
)

NO_TUNING = {"tune": {"trials": 0}}


def config(*candidates: str, **extra: object) -> TrainConfig:
    return TrainConfig.model_validate({"candidates": list(candidates), **NO_TUNING, **extra})


def test_baselines_come_first_and_candidates_must_beat_them(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary()
    result = train(
        frame,
        target="y",
        task="binary_classification",
        timestamp="ts",
        config=config("baseline", "logistic_regression", "lightgbm", heuristics={"rule": "x1 > 1"}),
        **tracking,
    )
    kinds = [(s.name, s.kind) for s in result.scores]
    assert kinds == [
        ("prior", "baseline"),
        ("rule", "baseline"),
        ("last_value", "baseline"),
        ("logistic_regression", "candidate"),
        ("lightgbm", "candidate"),
    ]
    prior = result.scores[0].validation["average_precision"]
    # the prior's average precision is the positive rate of the validation rows
    _, valid, _ = result.split.frames(frame)
    assert prior == pytest.approx(valid.y.mean(), abs=1e-9)
    assert result.best_baseline.name == "rule"  # the rule carries signal
    for score in result.scores[3:]:
        assert score.beats_baseline is True
        assert score.validation["roc_auc"] > 0.8
    # the time split: every training row happens before every validation row
    train_rows, valid_rows, _ = result.split.frames(frame)
    assert train_rows.ts.max() < valid_rows.ts.min()
    assert result.best_name in ("logistic_regression", "lightgbm")
    board = result.leaderboard()
    assert list(board.model) == [s.name for s in result.scores]


def test_run_records_params_metrics_lineage_and_environment(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=1_500)
    result = train(
        frame,
        target="y",
        task="binary_classification",
        timestamp="ts",
        config=config("lightgbm", seed=7),
        lineage={"snapshot.transactions": "abc123"},
        **tracking,
    )
    client = open_client(tracking["tracking_uri"])
    run = client.get_run(result.run_id)
    tags = run.data.tags
    assert tags["loopml.seed"] == "7"
    assert tags["loopml.lineage.snapshot.transactions"] == "abc123"
    assert len(tags["loopml.git.commit"]) in (40, 7)  # a commit, or 'unknown' outside git
    assert tags["loopml.best"] == "lightgbm"
    assert "train_config" in run.data.params and "features" in run.data.params
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    names = sorted(c.info.run_name for c in children)
    assert names == ["last_value", "lightgbm", "prior"]
    lgbm = next(c for c in children if c.info.run_name == "lightgbm")
    assert lgbm.data.params["seed"] == "7"
    assert 0.5 < lgbm.data.metrics["validation_roc_auc"] <= 1.0
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"model", "record.json", "predictions.npy", "data.parquet"} <= artifacts
    import json
    from pathlib import Path

    record = json.loads(Path(client.download_artifacts(result.run_id, "record.json")).read_text())
    assert record["seeds"]["train"] == 7
    assert record["environment"]["lightgbm"]
    assert record["data"]["rows"] == 1_500


def test_candidate_below_the_baseline_is_reported_as_such(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=1_500)
    frame["y"] = (frame.x1 > 0).astype(int)  # the declared rule is exactly the truth
    with pytest.warns(LoopmlWarning, match="does not beat the best baseline 'truth'"):
        result = train(
            frame,
            target="y",
            task="binary_classification",
            config=config("logistic_regression", heuristics={"truth": "x1 > 0"}),
            **tracking,
        )
    candidate = result.scores[-1]
    assert candidate.beats_baseline is False
    assert result.best is None and result.best_name == "truth"
    assert result.model_uri is None
    client = open_client(tracking["tracking_uri"])
    assert client.get_run(result.run_id).data.tags["loopml.beats_baseline"] == "false"


def test_regression_and_multiclass(tracking) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=2_000), "b": rng.normal(size=2_000)})
    frame["y"] = 3 * frame.a - 2 * frame.b + rng.normal(scale=0.5, size=2_000)
    result = train(
        frame,
        target="y",
        task="regression",
        config=config("linear_regression", "lightgbm"),
        **tracking,
    )
    ridge = next(s for s in result.scores if s.name == "linear_regression")
    assert ridge.test["rmse"] == pytest.approx(0.5, abs=0.05)  # the noise level
    assert ridge.test["r2"] > 0.95
    frame["k"] = np.digitize(frame.a, [-0.5, 0.5]).astype(str)  # 3 classes as strings
    multi = train(
        frame.drop(columns="y"),
        target="k",
        task="multiclass_classification",
        config=config("logistic_regression"),
        **tracking,
    )
    assert multi.best is not None and multi.best.classes == ["0", "1", "2"]
    assert multi.scores[-1].test["accuracy"] > 0.9


@pytest.mark.slow
def test_all_candidates_fit_and_ensembles_work(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=1_200, with_time=False)
    result = train(
        frame,
        target="y",
        task="binary_classification",
        config=config("random_forest", "bagging", "stacking"),
        **tracking,
    )
    assert [s.name for s in result.scores if s.kind == "candidate"] == [
        "random_forest",
        "bagging",
        "stacking",
    ]
    assert all(s.validation["roc_auc"] > 0.75 for s in result.scores if s.kind == "candidate")


# -- bad input ---------------------------------------------------------------------------


def test_one_class_target_is_refused(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=200)
    frame["y"] = 1
    with pytest.raises(DataError, match="'y' has one class only \\(1 in 200 rows\\)"):
        train(
            frame, target="y", task="binary_classification", config=config("lightgbm"), **tracking
        )


def test_all_null_target_is_refused(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=200)
    frame["y"] = np.nan
    with pytest.raises(DataError, match="'y' is null in all 200 rows"):
        train(frame, target="y", task="regression", config=config("lightgbm"), **tracking)


def test_unknown_candidate_lists_valid_ones(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="Got 'xgboost'.*valid candidates: bagging, baseline"):
        train(
            make_binary(n=100),
            target="y",
            task="binary_classification",
            config=config("xgboost"),
            **tracking,
        )
    with pytest.raises(ConfigError, match="does not fit the task 'regression'"):
        train(
            make_binary(n=100),
            target="y",
            task="regression",
            config=config("logistic_regression"),
            **tracking,
        )


def test_unreachable_tracking_uri_fails_before_any_work(tmp_path, make_binary) -> None:  # type: ignore[no-untyped-def]
    artifacts = tmp_path / "artifacts"
    with pytest.raises(BackendError, match="cannot be reached.*nothing was tracked"):
        train(
            make_binary(n=200),
            target="y",
            task="binary_classification",
            config=config("lightgbm"),
            tracking_uri="postgresql+psycopg://nobody@127.0.0.1:1/nothing",
            artifact_root=artifacts,
        )
    assert not artifacts.exists()
    with pytest.raises(BackendError, match="tracking server"):
        open_client("http://127.0.0.1:1")


def test_heuristics_are_parsed_safely_and_checked_against_columns() -> None:
    with pytest.raises(ConfigError, match="uses Call"):
        HeuristicBaseline("__import__('os')", task="regression")
    with pytest.raises(ConfigError, match="uses Attribute"):
        HeuristicBaseline("x.__class__", task="regression")
    with pytest.raises(ConfigError, match="not a valid expression"):
        HeuristicBaseline("x >", task="regression")
    rule = HeuristicBaseline("amount > 5 * mean_7d and not flagged", task="binary_classification")
    with pytest.raises(SchemaError, match="reads column\\(s\\) flagged, mean_7d"):
        rule.fit(pd.DataFrame({"amount": [1.0]}), np.array([1]))


def test_heuristic_and_last_value_baselines_round_trip_through_json() -> None:
    frame = pd.DataFrame(
        {"t": [1, 2, 3, 4], "card": ["a", "b", "a", "b"], "amount": [1.0, 10.0, 2.0, 30.0]}
    )
    y = np.array([0.0, 1.0, 0.0, 1.0])
    for base in (
        HeuristicBaseline("amount > 5", task="binary_classification"),
        HeuristicBaseline("amount * 2", task="regression"),
        LastValueBaseline("regression", timestamp="t", entity="card"),
    ):
        base.fit(frame, y)
        again = baseline_from_json(base.to_json())
        np.testing.assert_array_equal(again.predict(frame), base.predict(frame))
    assert HeuristicBaseline("amount * 2", task="regression").fit(frame, y).predict(
        frame
    ).tolist() == [2.0, 20.0, 4.0, 60.0]


def test_schema_differences_are_listed() -> None:
    from loopml.training import FeatureEncoder

    encoder = FeatureEncoder.fit(pd.DataFrame({"a": [1.0], "b": ["x"], "c": [2]}), ["a", "b", "c"])
    with pytest.raises(SchemaError) as caught:
        encoder.check(pd.DataFrame({"a": ["text"], "c": [1]}))
    message = str(caught.value)
    assert "column 'b' (categorical) is missing" in message
    assert "column 'a' is categorical" in message and "trained on numeric" in message


def test_records_encode_like_frames_and_bad_values_name_the_column() -> None:
    from loopml.training import FeatureEncoder

    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": ["x", "y", None]})
    encoder = FeatureEncoder.fit(frame, ["a", "b"])
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    np.testing.assert_array_equal(encoder.transform_records(records), encoder.transform(frame))
    with pytest.raises(SchemaError, match="record 0: column 'a' must be a number. Got 'big'"):
        encoder.transform_records([{"a": "big"}])

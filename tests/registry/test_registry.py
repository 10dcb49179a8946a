"""The registry: versions, aliases, verified loading, refused artifacts, schema checks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from loopml.core import (
    ArtifactIntegrityError,
    GateFailed,
    LoopmlWarning,
    NotFoundError,
    SchemaError,
    TrainConfig,
    UnsafeArtifactError,
)
from loopml.registry import (
    get_model_version,
    list_models,
    load_model,
    register_model,
    set_alias,
)
from loopml.training import open_client, train

LIGHTGBM = TrainConfig.model_validate({"candidates": ["lightgbm"], "tune": {"trials": 0}})
LOGISTIC = TrainConfig.model_validate(
    {"candidates": ["logistic_regression"], "tune": {"trials": 0}}
)


def _train(frame, tracking, config=LIGHTGBM):  # type: ignore[no-untyped-def]
    return train(
        frame,
        target="y",
        task="binary_classification",
        timestamp="ts",
        config=config,
        tracking_uri=tracking["tracking_uri"],
        artifact_root=tracking["artifact_root"],
        experiment=tracking.get("experiment", "loopml"),
    )


def _folder(version) -> Path:  # type: ignore[no-untyped-def]
    return Path(version.source.removeprefix("file://"))


def test_register_load_round_trip_with_everything_serving_needs(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    import lightgbm

    frame = make_binary(n=2_000)
    result = _train(frame, tracking)
    version = register_model(result, tracking["name"], alias="champion")
    assert version.version == 1 and version.aliases == ("champion",)
    assert set(version.hashes) >= {
        "model.txt",
        "input_schema.json",
        "baseline.json",
        "profile.json",
        "evaluation.json",
        "manifest.json",
    }
    loaded = load_model(tracking["name"], tracking_uri=tracking["tracking_uri"])
    assert loaded.version == 1
    assert isinstance(loaded.booster, lightgbm.Booster)
    np.testing.assert_array_equal(loaded.predict_scores(frame), result.best.predict_scores(frame))
    assert loaded.predict_proba(frame.head(3)).shape == (3, 2)
    assert set(loaded.predict(frame)) <= {0, 1}
    # single-row serving straight from the native booster gives the same score
    row = loaded.encoder.transform(frame.head(1))
    assert loaded.booster.predict(row)[0] == pytest.approx(loaded.predict_scores(frame.head(1))[0])
    assert [f["name"] for f in loaded.input_schema["features"]] == ["x1", "x2", "x3", "cat"]
    assert sorted(loaded.schema.columns) == ["cat", "x1", "x2", "x3"]
    train_rows = frame.iloc[result.split.train]
    assert loaded.profile.rows == len(train_rows)
    assert loaded.profile["x1"].mean == pytest.approx(train_rows.x1.mean())
    assert loaded.profile["x2"].nulls == train_rows.x2.isna().sum()
    assert loaded.profile["cat"].categories["a"] == (train_rows.cat == "a").sum()
    scores = loaded.evaluation["score_profile"]["score_0"]
    assert 0 < scores["quantiles"]["0.5"] < 1
    assert loaded.evaluation["metric"] == "average_precision"
    assert loaded.evaluation["baseline"]["kind"] == "baseline"
    prior = loaded.predict_baseline(frame.head(4))
    assert np.allclose(prior, train_rows.y.mean()) or loaded.baseline.name != "prior"
    assert loaded.metadata["lineage"] == {} and loaded.metadata["run_id"] == result.run_id


def test_versions_aliases_and_listing(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=1_200)
    first = register_model(_train(frame, tracking), tracking["name"], alias="champion")
    second = register_model(_train(frame, tracking, LOGISTIC), tracking["name"], alias="challenger")
    uri = tracking["tracking_uri"]
    assert (first.version, second.version) == (1, 2)
    assert load_model(tracking["name"], tracking_uri=uri).version == 1  # champion by default
    assert load_model(f"models:/{tracking['name']}@challenger", tracking_uri=uri).version == 2
    assert (
        load_model(f"models:/{tracking['name']}/2", tracking_uri=uri).booster is None
    )  # sklearn pipeline
    set_alias(tracking["name"], "champion", 2, tracking_uri=uri)
    assert get_model_version(tracking["name"], tracking_uri=uri).version == 2
    [entry] = [m for m in list_models(tracking_uri=uri) if m["name"] == tracking["name"]]
    assert entry == {
        "name": tracking["name"],
        "versions": [1, 2],
        "aliases": {"champion": 2, "challenger": 2},
    }
    with pytest.raises(NotFoundError, match="has no version 9"):
        load_model(tracking["name"], version=9, tracking_uri=uri)
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        load_model("nope", tracking_uri=uri)


def test_tampered_artifact_is_refused(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    version = register_model(_train(make_binary(n=1_000), tracking), tracking["name"])
    model_file = _folder(version) / "model.txt"
    text = model_file.read_text()
    model_file.write_text(text.replace("shrinkage=0.1", "shrinkage=0.2", 1))
    with pytest.raises(ArtifactIntegrityError, match="model.txt .* has SHA-256"):
        load_model(tracking["name"], tracking_uri=tracking["tracking_uri"])
    model_file.write_text(text)
    # rewriting the manifest too does not help: the hashes live in the registry database
    schema = _folder(version) / "input_schema.json"
    schema.write_text(schema.read_text().replace('"x1"', '"x9"'))
    manifest = json.loads((_folder(version) / "manifest.json").read_text())
    from loopml.core import sha256_file

    manifest["sha256"]["input_schema.json"] = sha256_file(schema)
    (_folder(version) / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactIntegrityError, match="manifest.json|input_schema.json"):
        load_model(tracking["name"], tracking_uri=tracking["tracking_uri"])
    (_folder(version) / "baseline.json").unlink()
    with pytest.raises(ArtifactIntegrityError):
        load_model(tracking["name"], tracking_uri=tracking["tracking_uri"])


def _register_custom(tracking, frame, estimator, *, pickle: bool) -> None:  # type: ignore[no-untyped-def]
    """A run whose model folder holds ``estimator``, saved by loopml's own writer."""
    import tempfile

    from loopml.training import FeatureEncoder, PriorBaseline
    from loopml.training._artifacts import save_model_dir
    from loopml.training._candidates import TrainedModel
    from loopml.training._tracking import Tracker

    encoder = FeatureEncoder.fit(frame, ["x1", "x2"])
    estimator.fit(encoder.transform(frame), frame.y)
    model = TrainedModel("custom", "binary_classification", encoder, estimator, [0, 1])
    baseline = PriorBaseline("binary_classification").fit(frame, frame.y.to_numpy())
    tracker = Tracker(tracking["tracking_uri"], "custom", tracking["artifact_root"])
    run_id = tracker.start("custom")
    with tempfile.TemporaryDirectory() as tmp:
        save_model_dir(model, baseline, Path(tmp), profile={}, evaluation={}, pickle=pickle)
        tracker.log_artifacts(run_id, Path(tmp), "model")
    tracker.finish(run_id)
    register_model(run_id, tracking["name"], tracking_uri=tracking["tracking_uri"])


def test_pickle_is_refused_unless_opted_in_by_name(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    frame = make_binary(n=300).fillna(0.0)
    _register_custom(tracking, frame, LogisticRegression(), pickle=True)
    uri = tracking["tracking_uri"]
    with pytest.raises(UnsafeArtifactError, match="is a pickle.*refused"):
        load_model(tracking["name"], tracking_uri=uri)
    loaded = load_model(tracking["name"], tracking_uri=uri, allow_pickle=[tracking["name"]])
    assert loaded.predict_scores(frame).shape == (300,)


def test_skops_refuses_types_outside_the_trusted_list(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    frame = make_binary(n=300).fillna(0.0)
    pipeline = make_pipeline(FunctionTransformer(np.tanh), LogisticRegression())
    _register_custom(tracking, frame, pipeline, pickle=False)
    with pytest.raises(UnsafeArtifactError, match="outside loopml's trusted list: .*numpy.tanh"):
        load_model(tracking["name"], tracking_uri=tracking["tracking_uri"])


@pytest.mark.slow
def test_every_candidate_pipeline_loads_with_the_trusted_list(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=600)
    config = TrainConfig.model_validate(
        {
            "candidates": ["logistic_regression", "random_forest", "bagging", "stacking"],
            "tune": {"trials": 0},
        }
    )
    result = _train(frame, tracking, config)
    register_model(result, "m")
    loaded = load_model("m", tracking_uri=tracking["tracking_uri"])
    np.testing.assert_allclose(loaded.predict_scores(frame), result.best.predict_scores(frame))
    import skops.io as sio

    from loopml.training._artifacts import _BUILTINS, TRUSTED_TYPES, skops_types
    from loopml.training._candidates import fit_candidate

    X, y = loaded.encoder.transform(frame), frame.y.to_numpy()
    for name in ("logistic_regression", "random_forest", "bagging", "stacking"):
        model = fit_candidate(
            name,
            "binary_classification",
            {},
            loaded.encoder,
            (X, y, None, None),
            classes=[0, 1],
            seed=0,
        )
        found = skops_types(sio.dumps(model.estimator)) - _BUILTINS
        assert found <= set(TRUSTED_TYPES), found - set(TRUSTED_TYPES)


def test_schema_mismatch_is_refused_with_the_differences(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=1_000)
    register_model(_train(frame, tracking), tracking["name"])
    loaded = load_model(tracking["name"], tracking_uri=tracking["tracking_uri"])
    changed = frame.drop(columns=["x3"]).assign(x1=frame.x1.astype(str))
    with pytest.raises(SchemaError) as caught:
        loaded.predict(changed)
    message = str(caught.value)
    assert "column 'x3' (numeric) is missing" in message
    assert "column 'x1' is categorical" in message


def test_below_baseline_run_is_not_registered(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    frame = make_binary(n=1_000)
    frame["y"] = (frame.x1 > 0).astype(int)
    config = TrainConfig.model_validate(
        {
            "candidates": ["logistic_regression"],
            "heuristics": {"truth": "x1 > 0"},
            "tune": {"trials": 0},
        }
    )
    with pytest.warns(LoopmlWarning):
        result = _train(frame, tracking, config)
    with pytest.raises(GateFailed, match="no candidate beat the best baseline \\(truth\\)"):
        register_model(result, tracking["name"])
    client = open_client(tracking["tracking_uri"])
    assert client.search_registered_models(f"name = '{tracking['name']}'") == []


def test_registration_and_loading_are_fast(tracking, make_binary) -> None:  # type: ignore[no-untyped-def]
    result = _train(make_binary(n=2_000), tracking)
    started = time.perf_counter()
    register_model(result, tracking["name"], alias="champion")
    registered = time.perf_counter() - started
    started = time.perf_counter()
    load_model(tracking["name"], tracking_uri=tracking["tracking_uri"])
    loaded = time.perf_counter() - started
    # generous bounds for a shared CI box; the benchmark measures the real figures
    assert registered < 5 and loaded < 5, (registered, loaded)


@pytest.mark.services
def test_postgresql_tracking_and_registry(postgres_url, tmp_path, make_binary) -> None:  # type: ignore[no-untyped-def]
    import secrets

    import sqlalchemy

    name = f"loopml_mlflow_test_{secrets.token_hex(4)}"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    uri = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        tracking = {
            "tracking_uri": uri,
            "artifact_root": str(tmp_path / "artifacts"),
            "name": "fraud",
        }
        frame = make_binary(n=800)
        result = _train(frame, tracking)
        register_model(result, tracking["name"], alias="champion")
        loaded = load_model(tracking["name"], tracking_uri=uri)
        np.testing.assert_array_equal(
            loaded.predict_scores(frame), result.best.predict_scores(frame)
        )
    finally:
        from loopml.training import _tracking

        client = _tracking._CLIENTS.pop(uri, None)
        if client is not None:
            client._tracking_client.store.engine.dispose()
            client._get_registry_client().store.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

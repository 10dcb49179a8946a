"""The online service over real HTTP: formats, validation, fallback, metrics, admin, logging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.serving.conftest import SPEC, Server, make_service, served

from loopml.serving import Deployment, PredictionService, RequestError, constant_model, parse_body

ROW = {"x0": 0.5, "x1": 0.1, "x2": -0.3, "x3": 1.2, "x4": 0.0, "country": "FR"}


def expected(booster: Any, row: dict[str, Any]) -> float:
    codes = {"DE": 0, "FR": 1, "US": 2}
    matrix = np.array(
        [[row["x0"], row["x1"], row["x2"], row["x3"], row["x4"], codes[row["country"]]]]
    )
    return float(booster.predict(matrix)[0])


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}},
        {"dataframe_records": [ROW]},
        {"instances": [ROW]},
        {"inputs": {k: [v] for k, v in ROW.items()}},
    ],
    ids=["dataframe_split", "dataframe_records", "instances", "inputs"],
)
def test_mlflow_request_formats(server: Server, booster: Any, body: dict[str, Any]) -> None:
    for path in ("/predict", "/invocations"):
        response = httpx.post(server.url + path, json=body)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["predictions"] == [pytest.approx(expected(booster, ROW))]
        assert data["model_version"] == "1" and data["fallback"] is False


def test_bad_input_is_422_naming_every_field(server: Server) -> None:
    bad = {**ROW, "x1": "not a number", "y": 1}
    del bad["x2"]
    response = httpx.post(server.url + "/predict", json={"dataframe_records": [bad]})
    assert response.status_code == 422
    fields = {p["field"] for p in response.json()["problems"]}
    assert fields == {"x1", "x2", "y"}
    assert httpx.post(server.url + "/predict", content=b"{not json").status_code == 400
    assert httpx.post(server.url + "/predict", json={"rows": []}).status_code == 422
    assert httpx.post(server.url + "/predict", json=[1, 2]).status_code == 422
    big = b'{"instances": [' + b"1," * 600_000 + b"1]}"
    assert httpx.post(server.url + "/predict", content=big).status_code == 413
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}


def test_unseen_category_is_served_and_counted(server: Server) -> None:
    response = httpx.post(
        server.url + "/predict", json={"dataframe_records": [{**ROW, "country": "XX"}]}
    )
    assert response.status_code == 200
    metrics = httpx.get(server.url + "/metrics").text
    assert 'loopml_data_warnings_total{column="country",problem="unseen_category"} 1' in metrics


def test_admin_needs_the_token(server: Server) -> None:
    assert httpx.post(server.url + "/admin/reload").status_code == 401
    wrong = httpx.post(server.url + "/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    ok = httpx.post(server.url + "/admin/reload", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json() == {"reloaded": 1}
    unconfigured = httpx.post(
        server.url + "/admin/rollback", headers={"Authorization": "Bearer s3cret"}
    )
    assert unconfigured.status_code == 501


def test_every_prediction_and_feedback_is_logged(server: Server) -> None:
    ids = []
    for i in range(25):
        response = httpx.post(
            server.url + "/predict",
            json={"dataframe_records": [{**ROW, "x0": i / 10}], "request_id": f"r{i}"},
        )
        ids.append(response.json()["request_id"])
    assert ids == [f"r{i}" for i in range(25)]
    fb = httpx.post(
        server.url + "/feedback",
        json={"request_id": "r3", "label": 1, "time": "2024-05-01T00:00:00+00:00"},
    )
    assert fb.status_code == 200
    assert (
        httpx.post(server.url + "/feedback", json={"request_id": "", "label": "yes"}).status_code
        == 422
    )
    server.service.log_writer.flush()  # type: ignore[union-attr]
    server.service.feedback_writer.flush()  # type: ignore[union-attr]
    logged = server.log.read()
    assert sorted(logged["request_id"]) == sorted(ids)
    assert {"model_version", "prediction", "latency_ms", "fallback", "f_x0", "f_country"} <= set(
        logged.columns
    )
    assert logged["f_x0"].tolist() == pytest.approx([i / 10 for i in range(25)])
    assert server.feedback.read()["request_id"].tolist() == ["r3"]
    text = httpx.get(server.url + "/metrics").text
    assert 'loopml_requests_total{arm="champion",version="1"} 25' in text
    assert 'loopml_request_latency_ms_count{version="1"} 25' in text


def test_failing_model_falls_back_and_says_so(booster: Any, tmp_path: Path) -> None:
    service, log, _ = make_service(booster, tmp_path)
    broken = served(booster, "2")
    broken.score_matrix = lambda matrix: (_ for _ in ()).throw(RuntimeError("boom"))  # type: ignore[assignment]
    service.swap(Deployment.single(broken, fallback=constant_model(0.5, SPEC, version="baseline")))
    answer = service.predict({"dataframe_records": [ROW]})
    assert (
        answer["fallback"]
        and answer["predictions"] == [0.5]
        and "RuntimeError" in answer["fallback_reason"]
    )
    slow = served(booster, "3")
    slow.score_matrix = lambda matrix: (__import__("time").sleep(0.2), np.zeros(len(matrix)))[1]  # type: ignore[assignment]
    service.swap(Deployment.single(slow, fallback=constant_model(0.5, SPEC)))
    service.latency_budget_ms = 20
    answer = service.predict({"dataframe_records": [ROW]})
    assert answer["fallback"] and "budget" in answer["fallback_reason"]
    service.close()
    rows = log.read()
    assert rows["fallback"].tolist() == [True, True]
    assert service.metrics.value("errors", version="2") == 1


def test_entity_requests_use_online_features_and_report_status(
    booster: Any, tmp_path: Path
) -> None:
    store = {42: {"x0": 1.0, "x1": 0.0, "x2": 0.0, "x3": 0.0}}

    def lookup(
        entities: dict[str, Any],
    ) -> tuple[dict[str, Any], dict[str, str], dict[str, str | None]]:
        values = store.get(entities["card_id"], {})
        statuses = {f: ("present" if f in values else "missing") for f in ["x0", "x1", "x2", "x3"]}
        return values, statuses, {f: "2024-01-01T00:00:00+00:00" for f in values}

    service, log, _ = make_service(booster, tmp_path, feature_lookup=lookup)
    service.swap(
        Deployment.single(served(booster), fallback=constant_model(0.5, SPEC))
    )  # no validator: missing x4 allowed
    answer = service.predict(
        {"entities": {"card_id": 42}, "features": {"x4": 0.0, "country": "DE"}}
    )
    merged = {"x0": 1.0, "x1": 0.0, "x2": 0.0, "x3": 0.0, "x4": 0.0, "country": "DE"}
    assert answer["predictions"] == [pytest.approx(expected(booster, merged))]
    assert answer["feature_status"] == {
        "x0": "present",
        "x1": "present",
        "x2": "present",
        "x3": "present",
    }
    missing = service.predict(
        {"entities": {"card_id": 7}, "features": {"x4": 0.0, "country": "DE"}}
    )
    assert set(missing["feature_status"].values()) == {"missing"} and not missing["fallback"]
    service.close()
    assert json.loads(log.read()["feature_status"].iloc[1])["x0"] == "missing"


def test_parse_body_problems() -> None:
    with pytest.raises(RequestError) as caught:
        parse_body({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}})
    assert caught.value.problems[0]["field"] == "dataframe_split.data[0]"
    with pytest.raises(RequestError):
        parse_body({"dataframe_records": [{"a": {"nested": 1}}]})
    with pytest.raises(RequestError):
        parse_body({"inputs": {"a": [1, 2], "b": [1]}})
    assert parse_body({"instances": [[1, 2]], "columns": ["a", "b"]}).records == [{"a": 1, "b": 2}]


def test_service_needs_loaded_versions() -> None:
    from loopml.core import ConfigError
    from loopml.experiments import ChampionPolicy

    service = PredictionService(Deployment.single(constant_model(0.1, version="a")))
    with pytest.raises(ConfigError, match="not loaded"):
        service.swap(Deployment({"a": constant_model(0.1, version="a")}, ChampionPolicy("b")))

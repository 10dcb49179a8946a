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


def _asgi_post(
    app: Any,
    body_chunks: list[bytes],
    *,
    through_router: bool = False,
    unread: list[int] | None = None,
) -> Any:
    """POST /predict through the ASGI interface; (status, JSON) or None when nothing was sent.

    ``unread`` gets the number of body chunks the application never asked for."""
    import asyncio

    from fastapi import FastAPI

    length = sum(len(chunk) for chunk in body_chunks)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")]
        + ([(b"content-length", str(length).encode())] if len(body_chunks) == 1 else []),
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(body_chunks) - 1}
        for i, chunk in enumerate(body_chunks)
    ] or [{"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    call = FastAPI.__call__ if through_router else type(app).__call__
    asyncio.run(call(app, scope, receive, send))
    if unread is not None:
        unread.append(len(messages))
    if not sent:
        return None
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def test_the_hot_path_answers_like_the_declared_route(booster: Any, tmp_path: Path) -> None:
    """/predict is answered straight from the ASGI call; FastAPI's route must agree with it."""
    from loopml.serving import create_app

    service, _, _ = make_service(booster, tmp_path)
    app = create_app(service, max_body_bytes=2_000)
    bodies = [
        json.dumps({"dataframe_records": [ROW], "request_id": "same"}).encode(),
        json.dumps({"dataframe_records": [{**ROW, "x1": "text"}]}).encode(),
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"instances": [' + b"1," * 2_000 + b"1]}",
    ]
    try:
        for body in bodies:
            fast = _asgi_post(app, [body])
            routed = _asgi_post(app, [body], through_router=True)
            assert fast is not None and routed is not None
            if fast[0] == 200:  # latency and arm bookkeeping aside, the same answer
                assert fast[1]["predictions"] == routed[1]["predictions"]
                assert fast[1]["request_id"] == routed[1]["request_id"] == "same"
            else:
                assert fast == routed, body
        assert [_asgi_post(app, [body])[0] for body in bodies] == [200, 422, 400, 400, 422, 413]
        # a body streamed in chunks without a declared length: read whole, or refused past the limit
        whole = json.dumps({"dataframe_records": [ROW]}).encode()
        assert _asgi_post(app, [whole[:10], whole[10:]])[0] == 200
        left: list[int] = []
        chunks = [b"["] + [b"1," * 500] * 40 + [b"1]"]
        assert _asgi_post(app, chunks, unread=left)[0] == 413
        assert left == [39]  # refused at the first chunk past the limit, not after reading it all
        assert _asgi_post(app, []) is None  # the client left before its body: nothing to answer
    finally:
        service.close()

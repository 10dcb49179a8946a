"""Serving registered models: loading, the alias watcher, swaps under load, admin actions."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
import numpy as np
import pytest
from tests.serving.conftest import Registered, start_server

from loopml.core import ConfigError, NotFoundError, Workspace
from loopml.data import EventLog
from loopml.registry import set_alias
from loopml.serving import (
    PredictionLogWriter,
    PredictionService,
    RegistryDeployer,
    RequestError,
    ServedModel,
    create_app,
    load_registered,
    parse_model_ref,
)

ROW = {"x0": 0.5, "x1": 0.1, "x2": -0.3, "x3": 1.2, "x4": 0.0, "country": "FR"}
AUTH = {"Authorization": "Bearer tok3n"}


def deployer_for(registered: Registered, **kwargs: Any) -> RegistryDeployer:
    workspace = Workspace.open(registered.root)
    return RegistryDeployer("fraud", tracking_uri=workspace.tracking_uri, **kwargs)


def service_for(registered: Registered, deployer: RegistryDeployer) -> PredictionService:
    workspace = Workspace.open(registered.root)
    service = PredictionService(
        deployer.initial(),
        log_writer=PredictionLogWriter(
            EventLog(workspace.predictions_log_dir), flush_interval=0.01
        ),
    )
    deployer.attach(service)
    return service


def test_served_model_equals_the_registry_model(registered: Registered) -> None:
    workspace = Workspace.open(registered.root)
    loaded = load_registered("fraud@champion", tracking_uri=workspace.tracking_uri)
    frame = registered.frame.drop(columns="y").head(300).copy()
    frame.loc[::7, "x1"] = np.nan
    frame.loc[::11, "country"] = "XX"  # unseen: missing in both paths
    served = ServedModel.from_loaded(loaded)
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]
    assert served.backend == "lightgbm" and served.version == "1"
    np.testing.assert_allclose(
        served.predict_records(records), loaded.predict_scores(frame), rtol=0, atol=1e-12
    )
    fallback = ServedModel.baseline_of(loaded)
    prior = loaded.baseline.value_[0]
    assert fallback.version == "1-baseline"
    assert fallback.predict_records(records[:3]).tolist() == [prior] * 3


def test_model_references_and_unknown_alias(registered: Registered) -> None:
    assert parse_model_ref("models:/fraud@challenger") == ("fraud", "challenger", None)
    with pytest.raises(ConfigError, match="NAME@ALIAS"):
        parse_model_ref("fraud/x")
    with pytest.raises(NotFoundError, match="no alias 'nope'.*champion"):
        deployer_for(registered, alias="nope").initial()
    workspace = Workspace.open(registered.root)
    with pytest.raises(NotFoundError, match="no registered model named 'fraud2'"):
        RegistryDeployer("fraud2", tracking_uri=workspace.tracking_uri).initial()


def test_validation_comes_from_the_model_schema(registered: Registered) -> None:
    deployer = deployer_for(registered, poll_interval=0)
    service = service_for(registered, deployer)
    answer = service.predict({"dataframe_records": [{**ROW, "x3": None, "country": "XX"}]})
    assert answer["fallback"] is False and 0 < answer["predictions"][0] < 1
    with pytest.raises(RequestError) as caught:
        service.predict({"dataframe_records": [{**ROW, "x0": "high", "y": 1}]})
    assert {p["field"] for p in caught.value.problems} == {"x0", "y"}
    service.close()


def test_alias_swap_under_load_fails_no_request(registered: Registered) -> None:
    deployer = deployer_for(registered, poll_interval=0)
    service = service_for(registered, deployer)
    url, stop = start_server(
        create_app(service, admin_token="tok3n", admin=deployer.admin_actions())
    )
    results: list[tuple[int, str]] = []
    done = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=url) as http:
            while not done.is_set():
                response = http.post("/predict", json={"dataframe_records": [ROW]})
                version = (
                    response.json().get("model_version", "") if response.status_code == 200 else ""
                )
                results.append((response.status_code, version))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        promoted = httpx.post(url + "/admin/promote/2", headers=AUTH)
        assert promoted.status_code == 200 and promoted.json()["version"] == "2"
        after_promote = len(results)
        time.sleep(0.5)
        rolled = httpx.post(url + "/admin/rollback", headers=AUTH)
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["version"] == "1" and rolled.json()["rolled_back_from"] == "2"
        missing = httpx.post(url + "/admin/promote/7", headers=AUTH)
        assert missing.status_code == 404 and "version 7" in missing.json()["error"]
        time.sleep(0.3)
    finally:
        done.set()
        for thread in threads:
            thread.join()
        stop()
        service.close()
    statuses = Counter(code for code, _ in results)
    assert statuses == {200: len(results)} and len(results) > 50
    versions = [v for _, v in results]
    assert "2" in versions[after_promote:] and versions[-1] == "1"
    assert service.metrics.value("swaps") == 2
    logged = EventLog(Workspace.open(registered.root).predictions_log_dir).read()
    assert len(logged) == len(results)  # every answered request is in the log


def test_the_watcher_follows_the_alias(registered: Registered) -> None:
    deployer = deployer_for(registered, poll_interval=0.1)
    service = service_for(registered, deployer)
    deployer.start()
    try:
        set_alias("fraud", "champion", 2, tracking_uri=deployer.tracking_uri)
        deadline = time.monotonic() + 10
        while service.deployment.aliases["champion"] != "2" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.predict({"dataframe_records": [ROW]})["model_version"] == "2"
    finally:
        deployer.stop()
        service.close()


def test_traffic_split_canary_and_shadow(registered: Registered) -> None:
    deployer = deployer_for(registered, poll_interval=0)
    service = service_for(registered, deployer)
    url, stop = start_server(
        create_app(service, admin_token="tok3n", admin=deployer.admin_actions())
    )
    try:
        canary = {"mode": "canary", "challenger": "2", "weight": 30}
        assert httpx.post(url + "/admin/traffic", json=canary).status_code == 401
        assert (
            httpx.post(
                url + "/admin/traffic", json=canary, headers={"Authorization": "Bearer bad"}
            ).status_code
            == 403
        )
        answer = httpx.post(url + "/admin/traffic", json=canary, headers=AUTH)
        assert answer.status_code == 200 and answer.json()["traffic"] == canary
        policy = service.deployment.policy
        arms = Counter()
        with httpx.Client(base_url=url) as http:
            for i in range(400):
                body = {"dataframe_records": [ROW], "unit_id": f"user-{i}"}
                arms[http.post("/predict", json=body).json()["model_version"]] += 1
        assert 0.2 < arms["2"] / 400 < 0.4  # 30 % of units, hashed
        more = httpx.post(url + "/admin/traffic", json={**canary, "weight": 60}, headers=AUTH)
        assert more.status_code == 200
        assert service.deployment.policy is policy and policy.weight == 60  # set_weight
        bad = httpx.post(
            url + "/admin/traffic", json={"mode": "canary", "weight": 500}, headers=AUTH
        )
        assert bad.status_code == 409 and "challenger" in bad.json()["error"]
        shadow = {"mode": "shadow", "challengers": ["2"], "fraction": 1.0}
        assert httpx.post(url + "/admin/traffic", json=shadow, headers=AUTH).status_code == 200
        response = httpx.post(
            url + "/predict", json={"dataframe_records": [ROW], "request_id": "shadowed"}
        )
        assert response.json()["model_version"] == "1"
    finally:
        stop()
        service.close()
    logged = EventLog(Workspace.open(registered.root).predictions_log_dir).read()
    rows = logged[logged["request_id"] == "shadowed"]
    assert sorted(zip(rows["model_version"], rows["shadow"], strict=True)) == [
        ("1", False),
        ("2", True),
    ]
    # the setting lives in the registry, so another worker (a new deployer) follows it
    other = deployer_for(registered, poll_interval=0)
    assert other.initial().policy.__class__.__name__ == "ShadowPolicy"

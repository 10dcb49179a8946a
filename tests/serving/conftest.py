"""A real LightGBM model served by uvicorn on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.data import EventLog, RecordValidator, infer_schema
from loopml.serving import (
    Deployment,
    PredictionLogWriter,
    PredictionService,
    ServedModel,
    constant_model,
)

FEATURES = [f"x{i}" for i in range(5)] + ["country"]
SPEC = [{"name": f"x{i}", "kind": "numeric"} for i in range(5)] + [
    {"name": "country", "kind": "categorical", "categories": ["DE", "FR", "US"]}
]


def training_frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(5)})
    frame["country"] = rng.choice(["DE", "FR", "US"], n)
    frame["y"] = (frame["x0"] + 0.5 * (frame["country"] == "FR") + rng.normal(size=n) > 0).astype(
        int
    )
    return frame


@pytest.fixture(scope="session")
def booster() -> Any:
    import lightgbm as lgb

    frame = training_frame()
    matrix = np.c_[
        frame[[f"x{i}" for i in range(5)]].to_numpy(),
        frame["country"].map({"DE": 0, "FR": 1, "US": 2}),
    ]
    return lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 0},
        lgb.Dataset(matrix, frame["y"], categorical_feature=[5]),
        num_boost_round=30,
    )


def served(booster: Any, version: str = "1") -> ServedModel:
    return ServedModel.from_booster(booster, SPEC, version=version)


@dataclass
class Server:
    url: str
    service: PredictionService
    log: EventLog
    feedback: EventLog
    stop: Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(app: Any) -> tuple[str, Any]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


def make_service(
    booster: Any, tmp_path: Path, **kwargs: Any
) -> tuple[PredictionService, EventLog, EventLog]:
    log = EventLog(tmp_path / "predictions")
    feedback = EventLog(tmp_path / "feedback")
    validator = RecordValidator(infer_schema(training_frame(), target="y"))
    deployment = Deployment.single(
        served(booster), fallback=constant_model(0.5, SPEC), validator=validator, name="fraud"
    )
    service = PredictionService(
        deployment,
        log_writer=PredictionLogWriter(log, flush_interval=0.01, rotate_seconds=0.5),
        feedback_writer=PredictionLogWriter(feedback, flush_interval=0.01, rotate_seconds=0.5),
        **kwargs,
    )
    return service, log, feedback


@pytest.fixture
def server(booster: Any, tmp_path: Path) -> Iterator[Server]:
    from loopml.serving import AdminActions, create_app

    service, log, feedback = make_service(booster, tmp_path)
    state = {"reloads": 0}

    def reload() -> dict[str, Any]:
        state["reloads"] += 1
        return {"reloaded": state["reloads"]}

    app = create_app(service, admin_token="s3cret", admin=AdminActions(reload=reload))
    url, stop = start_server(app)
    yield Server(url, service, log, feedback, stop)
    stop()
    service.close()


# -- a workspace with a registered LightGBM model (trained once per session) ---------------
@dataclass
class Registered:
    root: Path
    frame: pd.DataFrame
    run_id: str


@pytest.fixture(scope="session")
def registered_template(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """A workspace whose registry holds ``fraud`` v1 (alias champion) and v2 (same run)."""
    from loopml.core import Config, TrainConfig, Workspace
    from loopml.registry import register_model
    from loopml.training import train

    root = tmp_path_factory.mktemp("registered")
    workspace = Workspace.create(root, Config(project="serving-test"))
    frame = training_frame()
    result = train(
        frame,
        target="y",
        task="binary_classification",
        config=TrainConfig(candidates=["lightgbm"]),
        tracking_uri=workspace.tracking_uri,
        artifact_root=str(workspace.artifacts_dir),
        keep_data=False,
        seed=0,
    )
    register_model(result, "fraud", tracking_uri=workspace.tracking_uri, alias="champion")
    register_model(result, "fraud", tracking_uri=workspace.tracking_uri)
    return Registered(root, frame, result.run_id)


@pytest.fixture
def registered(registered_template: Registered, tmp_path: Path) -> Registered:
    """A private copy of the registered workspace (the registry database included)."""
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(registered_template.root, root)
    return Registered(root, registered_template.frame, registered_template.run_id)

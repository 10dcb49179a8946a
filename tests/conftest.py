"""Shared fixtures: workspaces, the real PostgreSQL and Redis servers, the shared datasets.

A test that needs a server or a dataset that is absent skips with the reason; with
``LOOPML_REQUIRE_SERVICES=1`` (as in CI) a missing server fails the test instead.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.core import Config, Workspace

POSTGRES_URL = os.environ.get(
    "LOOPML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("LOOPML_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
_DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATASETS = Path(os.environ.get("LOOPML_DATASETS", _DEFAULT_DATASETS))


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _need_service(name: str, host: str, port: int) -> None:
    if _port_open(host, port):
        return
    message = f"{name} is not running on {host}:{port}"
    if os.environ.get("LOOPML_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}, and LOOPML_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> str:
    """SQLAlchemy URL of the real PostgreSQL test database (trust auth on 127.0.0.1)."""
    _need_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


@pytest.fixture
def redis_url() -> Iterator[str]:
    """URL of a Redis database on the real server, flushed before and after the test."""
    _need_service("Redis", "127.0.0.1", 6379)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def datasets_dir() -> Path:
    """``../shared/datasets``; tests that read it skip when it is absent (a user's checkout)."""
    if not DATASETS.is_dir():
        pytest.skip(f"the shared datasets are not at {DATASETS}")
    return DATASETS


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh, empty workspace in a temporary folder."""
    return Workspace.create(tmp_path / "ws", Config(project="test"))


# -- MLflow tracking for the training and registry tests --------------------------------
# One database per session (its schema migrations take seconds), a fresh experiment per
# test. ``_template_db`` is also copied into workspaces so their first MLflow use skips them.


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from loopml.training import open_client

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    open_client(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _shared_db(_template_db: Path) -> Path:
    """The session's tracking database, a copy of the pristine template."""
    import shutil

    path = _template_db.parent / "shared.db"
    shutil.copy(_template_db, path)
    return path


@pytest.fixture
def tracking(tmp_path: Path, _shared_db: Path) -> dict[str, str]:
    """One tracking database for the whole session (MLflow opens a database in seconds),
    a fresh experiment and artifact folder for each test."""
    import secrets

    token = secrets.token_hex(4)
    return {
        "tracking_uri": f"sqlite:///{_shared_db}",
        "artifact_root": str(tmp_path / "artifacts"),
        "experiment": f"test_{token}",
    }


def _make_binary(n: int = 3_000, seed: int = 0, with_time: bool = True) -> pd.DataFrame:
    """y depends on x1, x2 and the category; x3 is noise; a timestamp orders the rows."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "x3": rng.normal(size=n),
            "cat": rng.choice(["a", "b", "c"], size=n),
        }
    )
    logit = 1.5 * frame.x1 - frame.x2 + np.where(frame.cat == "a", 1.0, -0.5)
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame.loc[rng.random(n) < 0.05, "x2"] = np.nan
    if with_time:
        frame["ts"] = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    return frame


@pytest.fixture
def make_binary() -> Callable[..., pd.DataFrame]:
    """``make_binary(n=3000, seed=0, with_time=True)``: a frame with a known signal."""
    return _make_binary

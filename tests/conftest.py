"""Shared fixtures: workspaces, the real PostgreSQL and Redis servers, the shared datasets.

A test that needs a server or a dataset that is absent skips with the reason; with
``LOOPML_REQUIRE_SERVICES=1`` (as in CI) a missing server fails the test instead.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

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

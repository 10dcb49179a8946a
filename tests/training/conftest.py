"""Fixtures: one MLflow database per session (its schema migrations take seconds), a fresh
experiment per test, and small generated datasets. ``_template_db`` is also copied into
workspaces so their first MLflow use skips the migrations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


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

"""Fixtures: a tracking URI per test, copied from a session template (MLflow's schema
migrations take seconds, a file copy milliseconds), and small generated datasets."""

from __future__ import annotations

import shutil
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


@pytest.fixture
def tracking(tmp_path: Path, _template_db: Path) -> dict[str, str]:
    """``tracking_uri`` and ``artifact_root`` in a fresh folder."""
    shutil.copy(_template_db, tmp_path / "mlflow.db")
    return {
        "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "artifact_root": str(tmp_path / "artifacts"),
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

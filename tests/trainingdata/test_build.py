"""Building a training set runs the leakage checks every time; acknowledgements come from
loopml.yaml."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.core import Config, LeakageError


def _frame(n: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "t": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="h"),
            "x": rng.normal(size=n),
            "y": rng.integers(0, 2, n),
        }
    )
    frame["refund_issued"] = frame["y"] * 1.0
    return frame


def _config(**extra: object) -> Config:
    data = {"project": "demo", "split": {"validation": "7d", "test": "7d", "gap": "1d"}, **extra}
    return Config.model_validate(data)


def test_a_leaky_column_stops_the_build_until_acknowledged() -> None:
    from loopml.trainingdata import build_training_set

    frame = _frame()
    with pytest.raises(LeakageError, match="refund_issued") as caught:
        build_training_set(frame, _config(), target="y", timestamp="t")
    assert "acknowledge" in str(caught.value)
    built = build_training_set(
        frame,
        _config(acknowledge=["single_feature_predicts_label:refund_issued"]),
        target="y",
        timestamp="t",
    )
    assert built.reports["test"].by_check("single_feature_predicts_label")[0].acknowledged
    assert len(built.test) == 7 * 24 and built.to_dict()["split"]["boundaries"]["gap"] == "1d"


def test_the_gap_must_cover_the_feedback_window() -> None:
    from loopml.trainingdata import build_training_set

    frame = _frame().drop(columns="refund_issued")
    config = _config(
        sources={"events": {"path": "events.parquet"}},
        labels={"source": "events", "target": "y", "feedback_window": "3d"},
    )
    with pytest.raises(LeakageError, match="gap_shorter_than_horizon"):
        build_training_set(frame, config, timestamp="t")
    config.split.gap = pd.Timedelta("3D").to_pytimedelta()
    assert build_training_set(frame, config, timestamp="t").reports["validation"].ok

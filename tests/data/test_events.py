"""Append-only event logs: atomic segments, UTC date partitions, range reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from loopml.core import DataError, SchemaError, Workspace
from loopml.data import EventLog, feature_log, feedback_log, prediction_log


def test_append_partitions_by_utc_date_and_reads_back(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "preds")
    base = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)
    rows = [
        {"time": base + timedelta(hours=h), "request_id": f"r{h}", "score": h / 10}
        for h in range(5)
    ]
    log.append(rows)
    # 03:00 at +02:00 is 01:00 UTC: partitioned by the UTC date
    log.append(
        pd.DataFrame(
            {
                "time": ["2024-03-04T03:00:00+02:00"],
                "request_id": ["x"],
                "score": [0.5],
                "model": ["v2"],
            }
        )
    )
    folders = sorted({p.parent.name for p in log.segments()})
    assert folders == ["date=2024-03-01", "date=2024-03-02", "date=2024-03-04"]
    everything = log.read()
    assert everything["request_id"].tolist() == ["r0", "r1", "r2", "r3", "r4", "x"]
    assert str(everything["time"].dtype) == "datetime64[us, UTC]"
    assert everything["model"].isna().sum() == 5  # a column added later reads as null
    window = log.read(start=datetime(2024, 3, 1, 23, tzinfo=UTC), end="2024-03-02T01:00:00Z")
    assert window["request_id"].tolist() == ["r1", "r2"]
    assert list(log.read(columns=["score"]).columns) == ["score"]
    with pytest.raises(SchemaError, match="cannot read the log"):
        log.read(columns=["no_such_column"])
    assert not [p for p in (tmp_path / "preds").rglob("*") if p.name.endswith(".tmp")]


def test_segments_are_never_rewritten(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    first = log.append([{"time": "2024-01-01T00:00:00Z", "v": 1}])
    content = first.read_bytes()
    second = log.append([{"time": "2024-01-01T01:00:00Z", "v": 2}])
    assert first != second and first.read_bytes() == content
    assert log.read()["v"].tolist() == [1, 2]


def test_bad_rows_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log")
    with pytest.raises(SchemaError, match="no 'time' column"):
        log.append([{"when": "2024-01-01T00:00:00Z"}])
    with pytest.raises(DataError, match="has no time zone"):
        log.append([{"time": "2024-01-01 00:00:00", "v": 1}])
    with pytest.raises(DataError, match="no rows"):
        log.append([])
    assert log.segments() == [] and log.read().empty


def test_workspace_logs(workspace: Workspace) -> None:
    assert prediction_log(workspace).directory == workspace.predictions_log_dir
    assert feedback_log(workspace).directory == workspace.feedback_log_dir
    assert feature_log(workspace).directory == workspace.features_log_dir
    prediction_log(workspace).append([{"time": datetime.now(UTC), "score": 0.3}])
    assert len(prediction_log(workspace).read()) == 1

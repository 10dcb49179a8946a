"""Workspace layout, path containment, atomic writes, hashing, time and log redaction."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from loopml.core import (
    Config,
    DataError,
    Workspace,
    WorkspaceError,
    atomic_dir,
    atomic_path,
    atomic_write_text,
    ensure_utc,
    ensure_utc_series,
    get_logger,
    sha256_file,
    sha256_json,
)


def test_create_open_and_layout(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "p", Config(project="p"))
    for folder in (
        ws.lake_dir,
        ws.features_dir,
        ws.predictions_log_dir,
        ws.feedback_log_dir,
        ws.reports_dir,
    ):
        assert folder.is_dir()
    nested = ws.root / "a" / "b"
    nested.mkdir(parents=True)
    assert Workspace.open(nested).root == ws.root
    assert ws.tracking_uri == f"sqlite:///{ws.root / '.loopml' / 'mlflow.db'}"
    with pytest.raises(WorkspaceError, match="already exists"):
        Workspace.create(tmp_path / "p", Config(project="p"))


def test_open_without_config_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="loopml init"):
        Workspace.open(tmp_path)


def test_config_is_read_when_used_not_frozen(workspace: Workspace) -> None:
    assert workspace.config.project == "test"
    workspace.save_config(Config(project="renamed"))
    assert workspace.config.project == "renamed"


def test_paths_outside_the_workspace_are_refused(workspace: Workspace, tmp_path: Path) -> None:
    assert workspace.resolve("data/x.csv") == workspace.root / "data" / "x.csv"
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        workspace.resolve("../elsewhere.csv")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        workspace.resolve(tmp_path / "other.csv")
    link = workspace.root / "escape"
    link.symlink_to(tmp_path)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        workspace.resolve("escape/file.csv")
    assert workspace.resolve(tmp_path / "other.csv", must_be_inside=False) == tmp_path / "other.csv"


def test_atomic_write_leaves_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_atomic_dir_all_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "snap" / "v1"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "part-0.parquet").write_bytes(b"x")
        raise RuntimeError("crash")
    assert not target.exists() and list((tmp_path / "snap").iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "part-0.parquet").write_bytes(b"x")
    assert (target / "part-0.parquet").read_bytes() == b"x"
    with atomic_dir(target) as tmp:  # a second writer of the same content-addressed folder
        (tmp / "part-0.parquet").write_bytes(b"x")
    assert sorted(p.name for p in (tmp_path / "snap").iterdir()) == ["v1"]


def test_hashes(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(3 << 20))
    import hashlib

    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha256_json({"a": [1, 2]}) == sha256_json({"a": [1, 2]}) != sha256_json({"a": [2, 1]})


def test_time_helpers() -> None:
    with pytest.raises(DataError, match="no time zone"):
        ensure_utc(datetime(2024, 1, 1))
    aware = ensure_utc(datetime.fromisoformat("2024-01-01T02:00:00+02:00"))
    assert aware == datetime(2024, 1, 1, tzinfo=UTC)

    mixed = pd.Series(["2024-01-01T00:00:00+00:00", "2024-01-01T03:00:00+02:00"])
    converted = ensure_utc_series(mixed, where="events.csv column 'ts'")
    assert str(converted.dt.tz) == "UTC"
    assert converted.iloc[1] == pd.Timestamp("2024-01-01T01:00:00Z")
    with pytest.raises(
        DataError, match=r"events.csv column 'ts', row 1: '2024-01-02' has no time zone"
    ):
        ensure_utc_series(
            pd.Series(["2024-01-01T00:00:00Z", "2024-01-02"]), where="events.csv column 'ts'"
        )
    with pytest.raises(DataError, match=r"row 0: 'yesterday' is not a timestamp"):
        ensure_utc_series(pd.Series(["yesterday"]), where="t")
    naive = pd.Series(pd.to_datetime(["2024-01-01"]))
    with pytest.raises(DataError, match="without a time zone"):
        ensure_utc_series(naive, where="t")
    assert str(ensure_utc_series(naive, where="t", assume_utc=True).dt.tz) == "UTC"


def test_logs_never_hold_secrets(caplog: pytest.LogCaptureFixture) -> None:
    logger = get_logger("test")
    with caplog.at_level(logging.INFO, logger="loopml.test"):
        logger.info("connecting to %s", "postgresql://bob:hunter2@db:5432/x")
        logger.info("Authorization: Bearer s3cr3t-token")
    text = caplog.text
    assert "hunter2" not in text and "s3cr3t-token" not in text
    assert "postgresql://bob:***@db:5432/x" in text

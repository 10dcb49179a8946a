"""Snapshots: content-addressed versions, manifests, and a lake that failures never touch."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from loopml.core import Config, NotFoundError, SourceConfig, Workspace
from loopml.data import get_snapshot, ingest, list_snapshots, load_snapshot


def _lake_files(workspace: Workspace) -> list[Path]:
    return sorted(p for p in workspace.lake_dir.rglob("*"))


def _events(n: int = 100, start: str = "2024-01-01T00:00:00Z") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(n),
            "time": pd.date_range(start, periods=n, freq="h"),
            "amount": [float(i % 17) for i in range(n)],
            "country": ["fr", "de", "us", "es"] * (n // 4),
        }
    )


def test_ingest_writes_manifest_and_dedupes(workspace: Workspace) -> None:
    path = workspace.root / "events.csv"
    frame = _events()
    frame.to_csv(path, index=False)
    source = SourceConfig(path="events.csv", timestamp="time")
    first = ingest(workspace, "events", source)
    assert first.rows == 100 and first.path == workspace.lake_dir / "events" / first.version
    assert first.schema["time"] == "timestamp[us, tz=UTC]" and first.schema["id"] == "int64"
    assert first.time_range is not None
    assert first.time_range[0].isoformat() == "2024-01-01T00:00:00+00:00"
    assert first.time_range[1].isoformat() == "2024-01-05T03:00:00+00:00"
    manifest = json.loads((first.path / "_snapshot.json").read_text())
    assert manifest["version"] == first.version and manifest["rows"] == 100
    assert manifest["source"].endswith("events.csv")
    again = ingest(workspace, "events", source)
    assert again.version == first.version and again.created_at == first.created_at
    assert len(list(workspace.lake_dir.joinpath("events").iterdir())) == 1
    pd.testing.assert_frame_equal(
        load_snapshot(workspace, "events").astype({"country": object}),
        frame.astype({"country": object}).assign(time=frame["time"].astype("datetime64[us, UTC]")),
    )


def test_same_rows_from_another_file_keep_the_version(workspace: Workspace) -> None:
    frame = _events()
    frame.to_csv(workspace.root / "a.csv", index=False)
    frame.to_csv(workspace.root / "b.csv", index=False)
    first = ingest(workspace, "e", SourceConfig(path="a.csv", timestamp="time"))
    second = ingest(workspace, "e", SourceConfig(path="b.csv", timestamp="time"))
    assert first.version == second.version and first.source.endswith("a.csv")
    changed = frame.assign(amount=frame["amount"].where(frame["id"] != 99, 1000.0))
    changed.to_csv(workspace.root / "b.csv", index=False)
    assert ingest(workspace, "e", SourceConfig(path="b.csv")).version != first.version


def test_new_data_is_a_new_version_and_latest_wins(workspace: Workspace) -> None:
    path = workspace.root / "e.csv"
    _events(40).to_csv(path, index=False)
    old = ingest(workspace, "e", "e.csv")
    _events(80).to_csv(path, index=False)
    new = ingest(workspace, "e", "e.csv")
    assert old.version != new.version
    assert [s.version for s in list_snapshots(workspace, "e")] == [old.version, new.version]
    assert get_snapshot(workspace, "e").version == new.version
    assert get_snapshot(workspace, "e", old.version[:6]).rows == 40
    assert list(load_snapshot(workspace, "e", old.version, columns=["id"]).columns) == ["id"]
    with pytest.raises(NotFoundError, match=old.version):
        get_snapshot(workspace, "e", "ffffffff")
    with pytest.raises(NotFoundError, match=r"tables with snapshots: e"):
        get_snapshot(workspace, "other")


def test_ingest_defaults_to_the_configured_source(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    _events(8).to_csv(root / "tx.csv", index=False)
    config = Config(project="p", sources={"tx": SourceConfig(path="tx.csv", timestamp="time")})
    workspace = Workspace.create(root, config)
    assert ingest(workspace, "tx").rows == 8
    with pytest.raises(Exception, match="no source named 'nope'"):
        ingest(workspace, "nope")


def test_table_names_cannot_escape_the_lake(workspace: Workspace) -> None:
    with pytest.raises(Exception, match="'table' parameter of ingest"):
        ingest(workspace, "../escape", "x.csv")


def test_a_json_lines_source_and_a_query(workspace: Workspace) -> None:
    frame = _events(12)
    frame.to_json(workspace.root / "e.jsonl", orient="records", lines=True, date_format="iso")
    snap = ingest(workspace, "e", SourceConfig(path="e.jsonl", timestamp="time"))
    assert snap.rows == 12 and snap.schema["time"] == "timestamp[us, tz=UTC]"
    query = SourceConfig(query="SELECT * FROM 'e.jsonl' WHERE id < 5", timestamp="time")
    assert ingest(workspace, "small", query).rows == 5


def test_ingest_from_a_sqlalchemy_url(workspace: Workspace) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{workspace.root / 'shop.sqlite'}"
    engine = sa.create_engine(url)
    frame = _events(32)
    frame.assign(time=frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")).to_sql(
        "orders", engine, index=False
    )
    engine.dispose()
    snap = ingest(workspace, "orders", SourceConfig(url=url, table="orders", timestamp="time"))
    assert snap.rows == 32 and snap.schema["time"] == "timestamp[us, tz=UTC]"
    assert snap.source.startswith("sqlite:///") and "(table orders)" in snap.source
    assert load_snapshot(workspace, "orders")["id"].tolist() == list(range(32))

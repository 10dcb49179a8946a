"""Bad input, each with a real file: the error names the place and the fix, and the lake
stays empty after the failed ingest."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core import (
    DataError,
    LoopmlError,
    SchemaError,
    SourceConfig,
    SourceError,
    Workspace,
    WorkspaceError,
)
from loopml.data import ingest, read_source


def _fails(
    workspace: Workspace, source: SourceConfig, kind: type[LoopmlError], *patterns: str
) -> str:
    with pytest.raises(kind) as caught:
        ingest(workspace, "t", source)
    message = str(caught.value)
    for pattern in patterns:
        assert pattern in message, (pattern, message)
    assert list(workspace.lake_dir.rglob("*")) == [], "a failed ingest left files in the lake"
    assert list((workspace.state_dir / "tmp").rglob("*")) == [], "staging files were left"
    return message


def test_ragged_rows_name_the_line(workspace: Workspace) -> None:
    path = workspace.root / "ragged.csv"
    path.write_text("a,b,c\n" + "".join(f"{i},{i},{i}\n" for i in range(50)) + "1,2,3,4\n5,6,7\n")
    message = _fails(
        workspace,
        SourceConfig(path="ragged.csv"),
        SourceError,
        "ragged.csv",
        "line 52",
        "4 fields where the header has 3",
    )
    assert "fix that line" in message


def test_ragged_row_deep_in_a_large_file(workspace: Workspace) -> None:
    path = workspace.root / "deep.csv"
    body = "".join(f"{i},{i * 2},x{i}\n" for i in range(60_000))
    path.write_text("a,b,c\n" + body + "1,2\n")
    _fails(
        workspace,
        SourceConfig(path="deep.csv"),
        SourceError,
        "deep.csv",
        "line 60002",
        "2 fields where the header has 3",
    )


def test_latin1_bytes_in_a_utf8_source(workspace: Workspace) -> None:
    path = workspace.root / "latin.csv"
    path.write_bytes("id,city\n1,Paris\n2,Montréal\n".encode("latin-1"))
    _fails(
        workspace,
        SourceConfig(path="latin.csv"),
        SourceError,
        "latin.csv",
        "line 3",
        "not valid utf-8",
        "encoding: latin-1",
    )


def test_empty_file_and_header_only(workspace: Workspace) -> None:
    (workspace.root / "empty.csv").write_bytes(b"")
    _fails(workspace, SourceConfig(path="empty.csv"), SourceError, "empty.csv", "empty")
    (workspace.root / "header.csv").write_text("a,b\n")
    _fails(workspace, SourceConfig(path="header.csv"), SourceError, "header.csv", "no rows")


def test_missing_timestamp_column(workspace: Workspace) -> None:
    (workspace.root / "t.csv").write_text("id,when\n1,2024-01-01T00:00:00Z\n")
    _fails(
        workspace,
        SourceConfig(path="t.csv", timestamp="time"),
        SchemaError,
        "t.csv",
        "no column 'time'",
        "['id', 'when']",
        "fix `timestamp:`",
    )


def test_naive_timestamps(workspace: Workspace) -> None:
    (workspace.root / "n.csv").write_text("id,time\n1,2024-01-01 10:00:00\n2,2024-01-02 10:00:00\n")
    _fails(
        workspace,
        SourceConfig(path="n.csv", timestamp="time"),
        SourceError,
        "n.csv",
        "column 'time', row 0",
        "has no time zone",
        "timezone: UTC",
    )
    snap = ingest(workspace, "t", SourceConfig(path="n.csv", timestamp="time", timezone="UTC"))
    assert snap.time_range is not None and snap.time_range[0].hour == 10


def test_naive_values_mixed_into_aware_ones(workspace: Workspace) -> None:
    rows = [f"{i},2024-01-01T{i % 24:02d}:00:00+02:00\n" for i in range(30)]
    rows.append("30,2024-01-02T00:00:00\n")
    (workspace.root / "m.csv").write_text("id,time\n" + "".join(rows))
    # undeclared: the sniffed timestamp column is still checked value by value
    _fails(
        workspace,
        SourceConfig(path="m.csv"),
        SourceError,
        "m.csv",
        "column 'time', row 30",
        "'2024-01-02T00:00:00' has no time zone",
    )


def test_a_value_that_is_not_a_timestamp(workspace: Workspace) -> None:
    (workspace.root / "b.csv").write_text("id,time\n1,2024-01-01T00:00:00Z\n2,yesterday\n")
    _fails(
        workspace,
        SourceConfig(path="b.csv", timestamp="time"),
        SourceError,
        "b.csv",
        "row 1",
        "'yesterday' is not a timestamp",
    )


def test_duplicate_column_names(workspace: Workspace) -> None:
    (workspace.root / "d.csv").write_text("a,b,a\n1,2,3\n")
    _fails(
        workspace,
        SourceConfig(path="d.csv"),
        SchemaError,
        "d.csv",
        "line 1",
        "['a']",
        "distinct name",
    )


def test_duplicate_column_names_in_parquet(workspace: Workspace) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"])
    pq.write_table(table, workspace.root / "d.parquet")
    _fails(workspace, SourceConfig(path="d.parquet"), SchemaError, "d.parquet", "['x']")


def test_source_path_that_does_not_exist(workspace: Workspace) -> None:
    _fails(
        workspace,
        SourceConfig(path="data/missing.csv"),
        SourceError,
        "data/missing.csv does not exist",
        "fix `path:`",
    )


def test_a_value_of_the_wrong_type_deep_in_a_csv(workspace: Workspace) -> None:
    body = "".join(f"{i},{i}\n" for i in range(40_000))
    (workspace.root / "w.csv").write_text("a,b\n" + body + "7,seven\n")
    message = _fails(workspace, SourceConfig(path="w.csv"), SourceError, "w.csv")
    assert "seven" in message or "40002" in message


def test_path_outside_the_workspace_is_refused_for_writes(workspace: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        workspace.resolve("../elsewhere/profile.json")


def test_errors_are_data_errors_with_exit_code_1(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(DataError) as caught:
        read_source(str(tmp_path / "e.csv"))
    assert caught.value.exit_code == 1

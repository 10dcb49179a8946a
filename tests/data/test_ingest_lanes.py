"""Ingest reads plain CSV files with pyarrow and everything else with DuckDB: the same
data must give the same bytes (hence the same version) whichever lane read it, and the
pyarrow lane must hand anything it does not read exactly like DuckDB back to DuckDB."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.core import SourceConfig, SourceError, Workspace
from loopml.data import _snapshots as snapshots
from loopml.data import ingest, load_snapshot
from loopml.data._arrowcsv import LeaveArrowLane, open_arrow_csv
from loopml.data._sources import open_source


def _write_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    lines = ["id,at,amount,flag,day,name,count"]
    for i in range(rows):
        name = rng.choice(["a", "b c", '"quoted, comma"', "", "é", '"say ""hi"""'])
        amount = "" if i % 97 == 0 else repr(rng.uniform(-1e6, 1e6))
        stamp = f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:07.25+0{i % 9}:30"
        flag = rng.choice(["true", "false", ""])
        lines.append(f"{i},{stamp},{amount},{flag},2024-01-{1 + i % 28:02d},{name},{i % 5}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _both_lanes(tmp_path: Path, config: SourceConfig, group_rows: int) -> tuple[str, str]:
    with open_source(config, base_dir=None) as opened:
        lane = open_arrow_csv(opened)
        assert lane is not None, "a plain CSV file should take the pyarrow lane"
        fast = snapshots._write_batches(
            tmp_path / "fast.parquet",
            lane.schema,
            lane.batches,
            group_rows=group_rows,
        )
        reader = opened.relation().to_arrow_reader(1000)
        slow = snapshots._write_batches(
            tmp_path / "duck.parquet",
            reader.schema.remove_metadata(),
            snapshots._duckdb_batches(opened, reader),
            group_rows=group_rows,
        )
    assert fast is not None and slow is not None and fast.rows == slow.rows
    return fast.sha256, slow.sha256


def test_both_lanes_write_identical_bytes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _write_csv(path, 5_000)
    config = SourceConfig(path=str(path), timestamp="at")
    # small row groups, so that several are cut from batches of different sizes
    fast, slow = _both_lanes(tmp_path, config, group_rows=700)
    assert fast == slow
    table = pq.read_table(tmp_path / "fast.parquet")
    assert pq.read_metadata(tmp_path / "fast.parquet").num_row_groups > 3
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert table.column("name").null_count > 0 and table.column("amount").null_count > 0
    names = set(table.column("name").to_pylist())
    assert names == {"a", "b c", "quoted, comma", None, "é", 'say "hi"'}


def test_version_does_not_depend_on_the_lane(workspace: Workspace) -> None:
    _write_csv(workspace.root / "t.csv", 3_000)
    first = ingest(workspace, "t", SourceConfig(path="t.csv", timestamp="at"))
    # the same rows, from Parquet (DuckDB's lane), are the same version
    frame = load_snapshot(workspace, "t")
    frame.to_parquet(workspace.root / "t.parquet")
    second = ingest(workspace, "t2", SourceConfig(path="t.parquet", timestamp="at"))
    assert first.version == second.version and first.rows == second.rows == 3_000


def test_values_only_duckdb_reads_leave_the_lane(workspace: Workspace) -> None:
    path = workspace.root / "odd.csv"
    rows = [f"{i},2024-01-01T00:00:{i % 60:02d}Z,{i}.5" for i in range(3_000)]
    # DuckDB parses a 'UTC' suffix and nanoseconds; pyarrow's cast does not
    rows.append("3000,2024-01-02 00:00:00 UTC,1.0")
    rows.append("3001,2024-01-02T00:00:00.123456789+01:00,2.0")
    path.write_text("id,at,x\n" + "\n".join(rows) + "\n", encoding="utf-8")
    config = SourceConfig(path="odd.csv", timestamp="at")
    with open_source(config, base_dir=workspace.root) as opened:
        lane = open_arrow_csv(opened)
        assert lane is not None
        with pytest.raises(LeaveArrowLane):
            for _ in lane.batches:
                pass
    snap = ingest(workspace, "odd", config)
    assert snap.rows == 3_002
    assert snap.time_range is not None
    assert snap.time_range[1].isoformat() == "2024-01-02T00:00:00+00:00"


def test_literal_quotes_keep_duckdb_s_reading(workspace: Workspace) -> None:
    # no quoting in the sniffed sample: DuckDB keeps a later '"' as text, so must the lane
    rows = [f"{i},n{i}" for i in range(30_000)] + ['30000,"plain"']
    (workspace.root / "q.csv").write_text("id,name\n" + "\n".join(rows) + "\n")
    frame = load_snapshot(workspace, ingest(workspace, "q", "q.csv").table)
    assert frame["name"].iloc[-1] == '"plain"'


def test_a_naive_value_deep_in_the_file_still_names_its_row(workspace: Workspace) -> None:
    rows = [f"{i},2024-01-01T00:00:00Z" for i in range(5_000)] + ["5000,2024-01-01T00:00:00"]
    (workspace.root / "n.csv").write_text("id,at\n" + "\n".join(rows) + "\n")
    with pytest.raises(SourceError, match=r"row 5000.*no time zone"):
        ingest(workspace, "n", SourceConfig(path="n.csv", timestamp="at"))
    assert not any(workspace.lake_dir.rglob("*.parquet"))


_ODD_BUT_VALID = {
    "crlf": "id,name,x\r\n1,a,1.5\r\n2,b,2.5\r\n",
    "bom": "\ufeffid,name,x\n1,a,1.5\n2,b,2.5\n",
    "quoted_newline": 'id,name,x\n1,"a\nb",1.5\n2,"c, d",2.5\n3,"e ""q""",3\n',
    "blank_lines": "id,x\n1,1.5\n\n2,2.5\n\n\n",
    "crlf_blank_line": "id,x\r\n1,1.5\r\n\r\n2,2.5\r\n",
    "no_final_newline": "id,x\n1,1.5\n2,2.5",
    "semicolons": "id;name;x\n1;a;1,5\n2;b;2,5\n",
    "null_words_are_text": "id,name,x\n1,NULL,1\n2,NA,2\n3,null,\n",
    "single_quotes": "id,name\n1,'a'\n2,'b, c'\n",
    "a_quote_inside_a_value": 'id,name\n1,"x"\n2,a"b\n',
    "booleans_and_dates": "id,ok,day\n1,true,2024-01-01\n2,false,\n3,,2024-02-29\n",
    "leading_zeros_and_signs": "id,x\n007,+1.5\n2,-2\n",
}


@pytest.mark.parametrize("name", sorted(_ODD_BUT_VALID))
def test_odd_but_valid_files_read_the_same_in_both_lanes(tmp_path: Path, name: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(_ODD_BUT_VALID[name], encoding="utf-8")
    fast, slow = _both_lanes(tmp_path, SourceConfig(path=str(path)), group_rows=2)
    assert fast == slow


def _write_quoted_csv(path: Path, rows: int) -> None:
    rng = random.Random(11)
    names = ["plain", '"a, b"', '"two\nlines"', '"say ""hi"""', '"\r\n"', "", '""']
    lines = ["id,name,x"] + [f"{i},{rng.choice(names)},{rng.uniform(-1, 1)!r}" for i in range(rows)]
    path.write_bytes(("\n".join(lines) + "\n").encode())


@pytest.mark.parametrize("chunk_bytes", [97, 1024, 7_000, 65_536])
def test_records_cut_into_chunks_read_as_duckdb_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    # chunks end at newlines outside quotes, wherever the quoted newlines fall; small
    # pages make the writer cut many, so bytes match only if pages do not follow chunks
    from loopml.data import _arrowcsv

    monkeypatch.setattr(_arrowcsv, "_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(snapshots, "_DATA_PAGE_BYTES", 4096)
    path = tmp_path / "q.csv"
    _write_quoted_csv(path, 6_000)
    fast, slow = _both_lanes(tmp_path, SourceConfig(path=str(path)), group_rows=2_500)
    assert fast == slow
    table = pq.read_table(tmp_path / "fast.parquet")
    assert table.num_rows == 6_000 and "two\nlines" in table.column("name").to_pylist()
    assert pq.read_metadata(tmp_path / "fast.parquet").row_group(0).column(2).total_compressed_size


def test_a_stray_quote_in_a_chunked_file_goes_to_duckdb(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.data import _arrowcsv

    monkeypatch.setattr(_arrowcsv, "_CHUNK_BYTES", 512)
    rows = (
        [f'{i},"q{i}"' for i in range(2_000)]
        + ['2000,5" screen']
        + [f'{i},"q{i}"' for i in range(2_001, 4_000)]
    )
    (workspace.root / "s.csv").write_text("id,name\n" + "\n".join(rows) + "\n")
    config = SourceConfig(path="s.csv")
    with open_source(config, base_dir=workspace.root) as opened:
        lane = open_arrow_csv(opened)
        assert lane is not None
        with pytest.raises(LeaveArrowLane, match="quote inside an unquoted value"):
            for _ in lane.batches:
                pass
    frame = load_snapshot(workspace, ingest(workspace, "s", config).table)
    assert len(frame) == 4_000 and frame["name"].iloc[2_000] == '5" screen'


def test_pages_do_not_depend_on_the_chunk_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.data import _arrowcsv

    monkeypatch.setattr(snapshots, "_DATA_PAGE_BYTES", 2048)
    path = tmp_path / "t.csv"
    _write_csv(path, 20_000)
    digests = set()
    for chunk_bytes in (3_000, 50_000, 4 * 2**20):
        monkeypatch.setattr(_arrowcsv, "_CHUNK_BYTES", chunk_bytes)
        with open_source(SourceConfig(path=str(path), timestamp="at"), base_dir=None) as opened:
            lane = open_arrow_csv(opened)
            assert lane is not None
            out = tmp_path / f"{chunk_bytes}.parquet"
            written = snapshots._write_batches(out, lane.schema, lane.batches, group_rows=9_000)
            assert written is not None and written.rows == 20_000
            digests.add(written.sha256)
    assert len(digests) == 1

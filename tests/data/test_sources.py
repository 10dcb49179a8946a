"""Sources: every format, the SQL paths, streaming, and the timestamp rules."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.core import SchemaError, SourceConfig, SourceError
from loopml.data import iter_batches, read_source

ROWS = [
    {"id": 1, "time": "2024-03-01T10:00:00+01:00", "amount": 12.5, "country": "fr"},
    {"id": 2, "time": "2024-03-01T10:00:00-05:00", "amount": 3.0, "country": "us"},
    {"id": 3, "time": "2024-03-02T00:00:00Z", "amount": None, "country": "de"},
]
EXPECTED_UTC = pd.to_datetime(
    ["2024-03-01T09:00:00Z", "2024-03-01T15:00:00Z", "2024-03-02T00:00:00Z"], utc=True
)


def _write_csv(path: Path) -> Path:
    pd.DataFrame(ROWS).to_csv(path, index=False)
    return path


def _check(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == ["id", "time", "amount", "country"]
    assert str(frame["time"].dtype) == "datetime64[us, UTC]"
    assert list(frame["time"]) == list(EXPECTED_UTC)
    assert frame["amount"].isna().tolist() == [False, False, True]
    assert frame["country"].tolist() == ["fr", "us", "de"]


def test_csv_with_mixed_offsets_becomes_utc(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv")
    _check(read_source(SourceConfig(path=str(path), timestamp="time")))
    _check(read_source(str(path)))  # sniffed timestamp column, no declaration


def test_jsonl_and_json(tmp_path: Path) -> None:
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    _check(read_source(SourceConfig(path=str(jsonl), timestamp="time")))
    whole = tmp_path / "t.json"
    whole.write_text(json.dumps(ROWS))
    _check(read_source(SourceConfig(path=str(whole), timestamp="time")))


def test_parquet_with_aware_and_naive_timestamps(tmp_path: Path) -> None:
    frame = pd.DataFrame(ROWS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.tz_convert("Asia/Tokyo")
    aware = tmp_path / "aware.parquet"
    frame.to_parquet(aware)
    _check(read_source(SourceConfig(path=str(aware), timestamp="time")))
    naive = tmp_path / "naive.parquet"
    frame.assign(time=frame["time"].dt.tz_convert("UTC").dt.tz_localize(None)).to_parquet(naive)
    with pytest.raises(SchemaError, match=r"naive.parquet, column 'time'.*timezone: UTC"):
        read_source(SourceConfig(path=str(naive), timestamp="time"))
    _check(read_source(SourceConfig(path=str(naive), timestamp="time", timezone="UTC")))


def test_declared_timezone_applies_to_naive_text(tmp_path: Path) -> None:
    path = tmp_path / "local.csv"
    path.write_text("id,time\n1,2024-07-01 12:00:00\n2,2024-01-01 12:00:00\n")
    frame = read_source(SourceConfig(path=str(path), timestamp="time", timezone="Europe/Paris"))
    # summer time is UTC+2, winter time UTC+1
    assert frame["time"].dt.hour.tolist() == [10, 11]


def test_duckdb_query_over_files_relative_to_base_dir(tmp_path: Path) -> None:
    _write_csv(tmp_path / "a.csv")
    config = SourceConfig(query="SELECT * FROM 'a.csv' WHERE amount IS NOT NULL", timestamp="time")
    frame = read_source(config, base_dir=tmp_path)
    assert frame["id"].tolist() == [1, 2]
    assert str(frame["time"].dtype) == "datetime64[us, UTC]"


def test_sqlite_url_table_and_query(tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    pd.DataFrame(ROWS).to_sql("events", engine, index=False)
    engine.dispose()
    _check(read_source(SourceConfig(url=url, table="events", timestamp="time")))
    frame = read_source(SourceConfig(url=url, query="SELECT id, amount FROM events WHERE id > 1"))
    assert frame["id"].tolist() == [2, 3]


def test_postgres_url_streams_in_batches(postgres_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    n = 120_000
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS loopml_data_src"))
        connection.execute(
            sa.text(
                "CREATE TABLE loopml_data_src AS SELECT g AS id, g * 0.5::float8 AS amount, "
                "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS time "
                f"FROM generate_series(1, {n}) AS g"
            )
        )
    try:
        config = SourceConfig(url=postgres_url, table="loopml_data_src", timestamp="time")
        batches = list(iter_batches(config, batch_size=50_000))
        sizes = [batch.num_rows for batch in batches]
        assert sum(sizes) == n and max(sizes) <= 50_000 and len(sizes) >= 3
        frame = pa.Table.from_batches(batches).to_pandas()
        assert len(frame) == n and frame["id"].is_unique
        assert str(frame["time"].dtype) == "datetime64[us, UTC]"
        assert frame["time"].min() == pd.Timestamp("2024-01-01 00:00:01", tz="UTC")
        query = "SELECT id, amount FROM loopml_data_src WHERE id <= 10"
        small = read_source(SourceConfig(url=postgres_url, query=query))
        assert small["amount"].tolist() == [i * 0.5 for i in range(1, 11)]
        missing = SourceConfig(url=postgres_url, table="no_such_table")
        with pytest.raises(SourceError, match="no table 'no_such_table'"):
            read_source(missing)
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS loopml_data_src"))
        engine.dispose()


def test_iter_batches_streams_a_large_csv(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    n = 300_000
    frame = pd.DataFrame({"id": range(n), "x": [i * 0.25 for i in range(n)]})
    frame.to_csv(path, index=False)
    batches = list(iter_batches(str(path), batch_size=10_000, columns=["x"]))
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert max(b.num_rows for b in batches) <= 10_000
    assert sum(b.num_rows for b in batches) == n
    assert batches[0].schema.names == ["x"]


def test_unknown_extension_and_bad_batch_size(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(Exception, match="cannot tell the format"):
        read_source(str(path))
    with pytest.raises(Exception, match="'batch_size' parameter of iter_batches"):
        next(iter_batches(str(_write_csv(tmp_path / "t.csv")), batch_size=0))


def test_latin1_source_reads_when_declared(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("id,city\n1,Montréal\n2,Zürich\n".encode("latin-1"))
    frame = read_source(SourceConfig(path=str(path), encoding="latin-1"))
    assert frame["city"].tolist() == ["Montréal", "Zürich"]


def test_parquet_written_by_pyarrow_roundtrips(tmp_path: Path) -> None:
    table = pa.table({"a": [1, 2, 3], "b": ["x", "y", None]})
    pq.write_table(table, tmp_path / "t.parquet")
    frame = read_source(str(tmp_path / "t.parquet"), columns=["b"])
    assert list(frame.columns) == ["b"] and frame["b"].isna().sum() == 1


def test_nanosecond_parquet_timestamps(tmp_path: Path) -> None:
    stamps = [0, 1_700_000_000_123_456_789]
    table = pa.table(
        {
            "aware": pa.array(stamps, pa.timestamp("ns", "UTC")),
            "naive": pa.array(stamps, pa.timestamp("ns")),
        }
    )
    pq.write_table(table, tmp_path / "ns.parquet")
    with pytest.raises(SchemaError, match="column 'naive': timestamps without a time zone"):
        read_source(SourceConfig(path=str(tmp_path / "ns.parquet"), timestamp="aware"))
    config = SourceConfig(path=str(tmp_path / "ns.parquet"), timestamp="aware", timezone="UTC")
    frame = read_source(config)
    assert str(frame["aware"].dtype) == str(frame["naive"].dtype) == "datetime64[us, UTC]"
    exact = pd.Timestamp("2023-11-14 22:13:20.123456789", tz="UTC")
    assert abs(frame["aware"].iloc[1] - exact) < pd.Timedelta(1, "us")  # microseconds kept

"""Benchmark of loopml.data: ingest, profile and record validation, side by side with pandas.

Generates a table of N rows x 20 columns (id, an offset timestamp, 9 floats, 4 ints,
5 categoricals) as CSV with DuckDB, then in one process:

1. ingest: ``loopml.data.ingest`` (CSV -> content-addressed Parquet snapshot, streamed
   (pyarrow's CSV reader with DuckDB's sniffed types), timestamps checked and converted to
   UTC, SHA-256 of the result, fsynced) against a plain ``pandas.read_csv`` +
   ``DataFrame.to_parquet`` of the same file (target: loopml >= 2x);
2. profile: ``loopml.data.profile`` of the snapshot (target: 10M x 20 under 15 s on 2 cores);
3. validation: ``RecordValidator.validate`` on one 30-field record (p50/p99 in us), and
   ``validate_snapshot`` over the whole snapshot (rows/s).

    python benchmarks/data_layer.py            # 10M rows (about 2 GB of CSV in --dir)
    python benchmarks/data_layer.py --quick    # 50k rows, seconds
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from loopml.core import Config, SourceConfig, Workspace
from loopml.data import (
    RecordValidator,
    Schema,
    Snapshot,
    infer_schema,
    ingest,
    profile,
    validate_batch,
)
from loopml.data._workflow import validate_snapshot


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate_csv(path: Path, rows: int) -> None:
    """A 20-column table: numeric, categorical and an offset timestamp column."""
    floats = ", ".join(f"round(random() * {10 ** (i % 4)} + {i}, 4) AS f{i}" for i in range(9))
    ints = ", ".join(f"(random() * {10 ** (i + 1)})::BIGINT AS i{i}" for i in range(4))
    cats = ", ".join(
        f"'c{i}_' || ((random() * {5 * (i + 1) ** 2})::INT)::VARCHAR AS c{i}" for i in range(5)
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""COPY (
            SELECT r AS id,
                   strftime(TIMESTAMP '2024-01-01' + to_seconds(r * 3), '%Y-%m-%dT%H:%M:%S')
                       || '+00:00' AS event_time,
                   {floats}, {ints}, {cats}
            FROM range({rows}) t(r)
        ) TO '{path}' (HEADER)"""
    )
    con.close()


class Clock:
    """Wall-clock and CPU seconds (all threads of this process) of a block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def line(self, label: str, rows: int) -> str:
        return (
            f"{label:34s} {self.wall:8.2f} s wall {rows / self.wall:12,.0f} rows/s   "
            f"{self.cpu:7.2f} s CPU {rows / self.cpu:12,.0f} rows/CPU-s   "
            f"load {os.getloadavg()[0]:.1f}"
        )


def settle() -> None:
    """Flush dirty pages first, so that no timed run pays for the previous one's writeback
    (the 1.4 GB CSV just generated cost the run right after it 2-3 s here)."""
    os.sync()
    time.sleep(1.0)


def bench_ingest(workspace: Workspace, csv: Path) -> tuple[Clock, Snapshot]:
    settle()
    with Clock() as clock:
        snapshot = ingest(workspace, "bench", SourceConfig(path=str(csv), timestamp="event_time"))
    return clock, snapshot


def bench_pandas(csv: Path, out: Path) -> Clock:
    settle()
    with Clock() as clock:
        frame = pd.read_csv(csv)
        frame.to_parquet(out)
    del frame
    return clock


def thirty_field_validator() -> tuple[RecordValidator, dict[str, object]]:
    columns: dict[str, dict[str, object]] = {}
    record: dict[str, object] = {}
    for i in range(30):
        kind = ("float", "int", "category")[i % 3]
        spec: dict[str, object] = {"dtype": kind, "nullable": i % 2 == 0}
        if kind == "category":
            spec["categories"] = [f"c{j}" for j in range(100)]
            record[f"f{i}"] = "c42"
        else:
            spec.update(min=0.0, max=1000.0)
            record[f"f{i}"] = 7 if kind == "int" else 7.5
        columns[f"f{i}"] = spec
    return RecordValidator(Schema.from_json({"columns": columns})), record


def latency(validator: RecordValidator, record: dict[str, object], n: int) -> tuple[float, float]:
    timings = np.empty(n)
    for k in range(n):
        start = time.perf_counter_ns()
        validator.validate(record)
        timings[k] = time.perf_counter_ns() - start
    return float(np.percentile(timings, 50)) / 1e3, float(np.percentile(timings, 99)) / 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50k rows, seconds")
    parser.add_argument("--rows", type=int, default=None, help="rows to generate")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    rows = args.rows or (50_000 if args.quick else 10_000_000)
    scratch = args.dir or Path(tempfile.mkdtemp(prefix="loopml-bench-data-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        run(rows, scratch)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


def run(rows: int, scratch: Path) -> None:
    print(
        f"loopml.data benchmark: {rows:,} rows x 20 columns, {os.cpu_count()} cores, "
        f"duckdb {duckdb.__version__}, pandas {pd.__version__}, python {sys.version.split()[0]}"
    )
    csv = scratch / "table.csv"
    start = time.perf_counter()
    generate_csv(csv, rows)
    size_mb = csv.stat().st_size / 2**20
    print(f"generated {csv} ({size_mb:,.0f} MiB) in {time.perf_counter() - start:.1f} s")

    workspace = Workspace.create(scratch / "ws", Config(project="bench"), overwrite=True)
    load = os.getloadavg()[0]
    print(f"\n== ingest: CSV -> Parquet (side by side, same file; load before {load:.1f}) ==")
    print(
        "alternating runs, best of each reported below: whichever runs first in a process "
        "pays for touching fresh memory (1-3 s of system time on this VM)"
    )
    ours: list[Clock] = []
    theirs: list[Clock] = []
    snapshots: list[Snapshot] = []
    for attempt in range(1 if rows < 1_000_000 else 2):
        clock, snapshot = bench_ingest(workspace, csv)
        ours.append(clock)
        snapshots.append(snapshot)
        print(
            clock.line(f"loopml ingest, run {attempt + 1}", rows)
            + f"   peak RSS so far {_peak_rss_mb():,.0f} MiB"
        )
        theirs.append(bench_pandas(csv, scratch / "pandas.parquet"))
        print(
            theirs[-1].line(f"pandas read_csv + to_parquet, run {attempt + 1}", rows)
            + f"   peak RSS so far {_peak_rss_mb():,.0f} MiB"
        )
    loopml = min(ours, key=lambda clock: clock.wall)
    pandas_clock = min(theirs, key=lambda clock: clock.wall)
    print(
        f"loopml vs pandas (best of each): {pandas_clock.wall / loopml.wall:.2f}x on wall time, "
        f"{pandas_clock.cpu / loopml.cpu:.2f}x on CPU time (target >= 2x); first runs: "
        f"{theirs[0].wall / ours[0].wall:.2f}x on wall time; loopml also parses and checks "
        f"the timestamps (pandas keeps them as text), hashes and fsyncs the snapshot"
    )
    snapshot = snapshots[0]
    pandas_mb = (scratch / "pandas.parquet").stat().st_size / 2**20
    print(f"Parquet written: loopml {snapshot.bytes / 2**20:,.0f} MiB, pandas {pandas_mb:,.0f} MiB")
    print(
        f"ingesting identical data again gives the same version: "
        f"{all(s.version == snapshot.version for s in snapshots)} ({snapshot.version})"
    )

    print("\n== profile: the snapshot ==")
    with Clock() as clock:
        result = profile(snapshot)
    print(
        clock.line("loopml profile", rows) + f"   {len(result.columns)} columns "
        f"(target: 10M x 20 under 15 s on 2 cores)"
    )

    print("\n== validation ==")
    validator, record = thirty_field_validator()
    p50, p99 = latency(validator, record, 200_000)
    print(f"RecordValidator.validate, 30 fields, valid record: p50 {p50:.1f} us, p99 {p99:.1f} us")
    bad = {**record, "f0": -5.0, "f2": "c999", "f1": "seven"}
    p50_bad, p99_bad = latency(validator, bad, 50_000)
    print(
        f"RecordValidator.validate, 30 fields, 3 problems: p50 {p50_bad:.1f} us, "
        f"p99 {p99_bad:.1f} us"
    )
    schema = infer_schema(snapshot, timestamp="event_time")
    real = RecordValidator(schema)
    sample = pd.read_parquet(snapshot.data_path).head(1000).to_dict("records")
    p50_real, p99_real = latency(real, sample[0], 100_000)
    print(
        f"RecordValidator.validate, this table's 20 fields: p50 {p50_real:.1f} us, "
        f"p99 {p99_real:.1f} us"
    )
    with Clock() as clock:
        report = validate_snapshot(workspace, "bench", schema=schema)
    print(
        clock.line("validate_snapshot (vectorised)", rows)
        + f"   problems found: {len(report.problems)}"
    )
    assert validate_batch(pd.DataFrame(sample), schema).ok


if __name__ == "__main__":
    sys.exit(main())

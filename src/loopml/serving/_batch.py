"""Batch prediction: Parquet in, Parquet out, in bounded memory, locally or on Dask.

The input is read in record batches (``batch_size`` rows at a time), each batch goes through
the model's own encoder (the preprocessing it was trained with: the same
``FeatureEncoder.transform``), and the scores are appended to the output file, so memory
stays at a few batches whatever the input's size. Every output row carries the columns of
the input that are not model features (ids, timestamps), the prediction and the model
version that made it. The output appears atomically when the whole input is scored.

With ``compute="dask"`` each Parquet file (or row group) of a partitioned input is scored
by a Dask worker in parallel; the output is a folder of Parquet parts whose rows, read in
order, equal the local path's output.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from loopml.core import SchemaError, SourceError, atomic_dir, atomic_path, get_logger, progress

__all__ = ["BatchResult", "predict_parquet", "score_frame"]

_log = get_logger("serving.batch")
_SCORERS = 2  # slices scored at once, each by the model on one thread
_SLICE_ROWS = 16_384


@dataclass(frozen=True)
class BatchResult:
    """What a batch prediction run did."""

    output: Path
    rows: int
    seconds: float
    model: str
    version: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.inf


def score_frame(
    model: Any, frame: pd.DataFrame, *, version: int, keep: list[str], threads: int | None = None
) -> pd.DataFrame:
    """Score one batch: kept columns, the prediction(s) and the model version.

    ``model`` is the registered model's ``TrainedModel`` (encoder + estimator); ``threads``
    caps the model's threads for this batch.
    """
    scores = model.predict_matrix(model.encoder.transform(frame), threads=threads)
    out = {name: frame[name].to_numpy() for name in keep}
    if scores.ndim == 2:
        for index, label in enumerate(model.classes):
            out[f"prediction_{label}"] = scores[:, index]
    else:
        out["prediction"] = scores
    result = pd.DataFrame(out, index=frame.index)
    result["model_version"] = np.int64(version)
    return result


class _PartitionScorer:
    """``score_frame`` for one Dask partition (a plain object: Dask would unpack a dataclass)."""

    def __init__(self, model: Any, version: int, keep: list[str]) -> None:
        self.model, self.version, self.keep = model, version, keep

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        return score_frame(self.model, frame, version=self.version, keep=self.keep)


def _dataset(path: Path) -> ds.Dataset:
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder", hint="pass a Parquet file or folder")
    try:
        return ds.dataset(str(path), format="parquet")
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(f"{path} is not readable Parquet: {error}") from None


def _columns(dataset: ds.Dataset, path: Path, model: Any, keep: list[str] | None) -> list[str]:
    names = dataset.schema.names
    missing = [c for c in model.encoder.columns if c not in names]
    if missing:
        raise SchemaError(
            f"{path} lacks the model's input column(s) {missing}",
            hint=f"the model reads {model.encoder.columns}; the file has {names}",
        )
    if keep is None:
        return [c for c in names if c not in model.encoder.columns]
    unknown = [c for c in keep if c not in names]
    if unknown:
        raise SchemaError(f"{path} has no column(s) {unknown} to keep (it has {names})")
    return list(keep)


def predict_parquet(
    loaded: Any,
    input: str | Path,
    output: str | Path,
    *,
    batch_size: int = 65_536,
    keep: list[str] | None = None,
    compute: Any = "local",
) -> BatchResult:
    """Score a Parquet file or folder with a registered model (``loopml.registry.LoadedModel``).

    ``compute`` is ``"local"`` (stream batches in this process), ``"dask"`` (a LocalCluster)
    or a ``distributed.Client``.
    """
    if batch_size < 1:
        raise SchemaError(f"The 'batch_size' parameter must be >= 1. Got {batch_size!r} instead.")
    source, target = Path(input), Path(output)
    dataset = _dataset(source)
    kept = _columns(dataset, source, loaded.model, keep)
    start = time.perf_counter()
    if compute == "local":
        rows = _local(loaded, dataset, target, kept, batch_size)
    else:
        rows = _dask(loaded, source, target, kept, compute)
    seconds = time.perf_counter() - start
    _log.info("scored %d rows in %.2f s into %s", rows, seconds, target)
    return BatchResult(target, rows, seconds, loaded.name, int(loaded.version))


def _local(loaded: Any, dataset: ds.Dataset, target: Path, kept: list[str], batch_size: int) -> int:
    """Read (this thread), score (``_SCORERS`` threads, a slice of rows each, the model on
    one thread per slice) and write (a writer thread) overlap; each batch is written whole,
    in input order, and at most a few slices wait anywhere, so memory stays bounded.

    A slice per thread rather than every thread on each batch: a model's own threads split
    a batch's rows evenly and wait for the slowest, so whenever reading, encoding or writing
    took a core, a whole core's share of the batch waited; slices of ``_SLICE_ROWS`` rows
    keep the two threads finishing together.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    columns = list(dict.fromkeys([*kept, *loaded.model.encoder.columns]))
    total = dataset.count_rows()
    batches = _read_batches(dataset, columns, batch_size)
    workers = max(1, min(_SCORERS, os.cpu_count() or 1))

    def score(batch: pa.RecordBatch) -> pa.Table:
        frame = batch.to_pandas(split_blocks=True)
        scored = score_frame(loaded.model, frame, version=loaded.version, keep=kept, threads=1)
        return pa.Table.from_pandas(scored, preserve_index=False)

    rows = 0
    with (
        atomic_path(target) as tmp,
        _Writer(tmp) as writer,
        ThreadPoolExecutor(workers, thread_name_prefix="loopml-batch") as pool,
    ):
        queued: deque[list[Future[pa.Table]]] = deque()
        waiting = 0

        def write_oldest() -> None:
            nonlocal waiting
            parts = queued.popleft()
            waiting -= len(parts)
            writer.put(pa.concat_tables([part.result() for part in parts]))

        try:
            steps = progress(batches, total=math.ceil(total / batch_size), description="predict")
            for batch in steps:
                if batch.num_rows == 0:
                    continue
                parts = [
                    pool.submit(score, batch.slice(start, _SLICE_ROWS))
                    for start in range(0, batch.num_rows, _SLICE_ROWS)
                ]
                queued.append(parts)
                waiting += len(parts)
                rows += batch.num_rows
                while waiting > 2 * workers and len(queued) > 1:
                    write_oldest()
            while queued:
                write_oldest()
        finally:
            for parts in queued:
                for future in parts:
                    future.cancel()
        if rows == 0:  # an empty input still gets a (typed) empty output
            empty = dataset.head(0, columns=columns).to_pandas()
            scored = score_frame(loaded.model, empty, version=loaded.version, keep=kept)
            writer.put(pa.Table.from_pandas(scored, preserve_index=False))
    return rows


def _read_batches(
    dataset: ds.Dataset, columns: list[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    """The dataset's rows file by file, in order, decoded on this thread: the dataset
    scanner's read-ahead threads cost 2-3x the CPU of a plain sequential read here, CPU
    the scoring threads need (this thread is otherwise idle while they score)."""
    for fragment in dataset.get_fragments():
        path = getattr(fragment, "path", None)
        if path is None:  # not a file fragment: let the scanner read it
            yield from fragment.to_batches(columns=columns, batch_size=batch_size)
            continue
        with pq.ParquetFile(path) as file:
            yield from file.iter_batches(batch_size=batch_size, columns=columns, use_threads=False)


class _Writer:
    """Writes tables to one Parquet file from a background thread (bounded queue)."""

    def __init__(self, path: Path) -> None:
        import queue
        import threading

        self.path = path
        self.tables: queue.Queue[pa.Table | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="loopml-batch-writer")

    def __enter__(self) -> _Writer:
        self.thread.start()
        return self

    def put(self, table: pa.Table) -> None:
        if self.error is not None:
            raise self.error
        self.tables.put(table)

    def _run(self) -> None:
        writer: pq.ParquetWriter | None = None
        try:
            while (table := self.tables.get()) is not None:
                if writer is None:
                    # no dictionary for floats (scores are nearly all distinct: building a
                    # dictionary only to drop it was three quarters of the write)
                    plain = [f.name for f in table.schema if pa.types.is_floating(f.type)]
                    dictionary = [f.name for f in table.schema if f.name not in plain]
                    writer = pq.ParquetWriter(self.path, table.schema, use_dictionary=dictionary)
                writer.write_table(table)
        except BaseException as error:  # reported to the reading thread
            self.error = error
            while self.tables.get() is not None:  # drain so put() never blocks forever
                pass
        finally:
            if writer is not None:
                writer.close()

    def __exit__(self, *exc: object) -> None:
        self.tables.put(None)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error


def _dask(loaded: Any, source: Path, target: Path, kept: list[str], compute: Any) -> int:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    columns = list(dict.fromkeys([*kept, *loaded.model.encoder.columns]))
    frame = dd.read_parquet(str(source), columns=columns, split_row_groups=False)
    meta = score_frame(loaded.model, frame._meta, version=loaded.version, keep=kept)
    scored = frame.map_partitions(
        _PartitionScorer(loaded.model, int(loaded.version), kept), meta=meta
    )
    own: tuple[Any, Any] | None = None
    client = compute if isinstance(compute, Client) else None
    if client is None:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)  # type: ignore[no-untyped-call]
        own = (client, cluster)
    try:
        with atomic_dir(target) as tmp:
            scored.to_parquet(str(tmp), write_index=False, compute=True)
        return int(pq.ParquetDataset(str(target)).read(columns=["model_version"]).num_rows)
    finally:
        if own is not None:
            own[0].close()
            own[1].close()

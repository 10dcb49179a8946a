"""The prediction log writer: batched, durable, bounded, rotated into Parquet.

Log-and-wait (book, chapter 7): every prediction is written down so that its label can
meet it later. The request path appends a row to an in-memory queue (about a
microsecond); once ``batch_rows`` rows wait or ``flush_interval`` seconds have passed since
the last write, the request that notices appends them as JSON lines to a journal file and
hands them to the operating system (``write`` + ``flush``, tens of microseconds). A
background thread writes what a pause in traffic leaves queued, every ``idle_flush``
seconds (and every ``flush_interval`` when ``fsync=True``, so no request waits on the
disk). Every ``rotate_seconds`` or ``rotate_rows`` the journal is closed, converted into
one Parquet segment of the date-partitioned prediction log, and deleted; with
``convert_in_child=True`` (``loopml serve``) a child process converts it. A journal left
behind by a crashed process is converted when the next writer opens the same log.

Why the request thread writes and a child converts: on two cores at concurrency 8, one
uvicorn worker at 10,000 req/s had a p99 of 9-47 ms while a background thread drained the
queue every 20 ms and converted journals (both take the GIL from the request thread), and
2-4 ms with the drain inline and the conversion in a child.

What a crash can lose (the documented bound, tested with ``kill -9``):

- the process is killed: only rows still in the in-memory queue, i.e. rows accepted in the
  last ``flush_interval`` seconds (default 20 ms) while requests keep coming, and at most
  the last ``idle_flush`` seconds (default 0.5 s) of rows before a pause; rows already
  written to the journal survive in the OS page cache and are recovered;
- the machine loses power: with ``fsync=True``, the same bound; otherwise also what the
  OS had not yet written to disk.

When the disk is slower than the traffic, the queue stops growing at ``max_pending`` rows:
``write`` then waits up to ``block_timeout`` seconds and raises ``LogBackpressure``
(the service answers 503), so memory stays bounded and no accepted row is dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

import orjson
import pandas as pd

from loopml.core import BackendError, get_logger
from loopml.data import EventLog

__all__ = ["LogBackpressure", "PredictionLogWriter"]

_log = get_logger("serving.log")
_CHILD_NICE = 10


class LogBackpressure(BackendError):
    """The prediction log cannot keep up; the request should be retried later (HTTP 503)."""


class PredictionLogWriter:
    """Append prediction rows from many threads; a background thread makes them durable.

    >>> import tempfile
    >>> from loopml.data import EventLog
    >>> writer = PredictionLogWriter(EventLog(tempfile.mkdtemp()))
    >>> writer.write({"time": "2024-01-01T00:00:00Z", "request_id": "r1", "prediction": 0.2})
    >>> writer.close()
    >>> writer.log.read()["request_id"].tolist()
    ['r1']
    """

    def __init__(
        self,
        log: EventLog,
        *,
        flush_interval: float = 0.02,
        batch_rows: int = 256,
        idle_flush: float = 0.5,
        rotate_seconds: float = 5.0,
        rotate_rows: int = 50_000,
        max_pending: int = 100_000,
        block_timeout: float = 1.0,
        fsync: bool = False,
        convert_in_child: bool = False,
    ) -> None:
        self.log = log
        self.flush_interval = flush_interval
        self.batch_rows = batch_rows
        self.idle_flush = max(idle_flush, flush_interval)
        self.rotate_seconds = rotate_seconds
        self.rotate_rows = rotate_rows
        self.max_pending = max_pending
        self.block_timeout = block_timeout
        self.fsync = fsync
        self.journal_dir = log.directory / "_journal"
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self._queue: deque[dict[str, Any]] = deque()
        self._space = threading.Condition()
        self._stop = threading.Event()
        self._rotate_now = threading.Event()
        self._wake = threading.Event()  # flush() and close() cut the thread's wait short
        self._journal_lock = threading.Lock()  # one drain or journal swap at a time
        self._last_drain = time.monotonic()
        self._journal: IO[bytes] | None = None
        self._journal_path: Path | None = None
        self._journal_rows = 0
        self._journal_opened = 0.0
        self._sequence = 0
        self.rows_written = 0
        self.convert_in_child = convert_in_child
        self._child: _Converter | None = None
        self.recovered_rows = self.recover()
        self._thread = threading.Thread(target=self._run, name="loopml-prediction-log", daemon=True)
        self._thread.start()

    # -- request path ------------------------------------------------------------------
    def write(self, row: dict[str, Any]) -> None:
        """Queue one row (never drops it: waits, then raises ``LogBackpressure``)."""
        if len(self._queue) >= self.max_pending:
            with self._space:
                deadline = time.monotonic() + self.block_timeout
                while len(self._queue) >= self.max_pending:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise LogBackpressure(
                            f"the prediction log has {len(self._queue)} rows waiting",
                            hint="the disk is slower than the traffic; retry shortly",
                        )
                    self._space.wait(left)
        self._queue.append(row)
        if self.fsync or (
            len(self._queue) < self.batch_rows
            and time.monotonic() - self._last_drain < self.flush_interval
        ):
            return
        if self._journal_lock.acquire(blocking=False):  # else another thread is draining
            try:
                self._drain()
            finally:
                self._journal_lock.release()

    @property
    def pending(self) -> int:
        """Rows accepted but not yet written to the journal."""
        return len(self._queue)

    # -- background --------------------------------------------------------------------
    def _run(self) -> None:
        wait = self.flush_interval if self.fsync else self.idle_flush
        while not self._stop.is_set():
            with self._journal_lock:
                self._drain()
            if self._rotate_now.is_set():
                with self._journal_lock:  # rows queued after the drain above, before flush()
                    self._drain()
                self._rotate()
                self._rotate_now.clear()
            self._maybe_rotate()
            self._wake.wait(wait)
            self._wake.clear()
        with self._journal_lock:
            self._drain()
        self._rotate()

    def _drain(self) -> None:
        """Queued rows into the journal; the caller holds ``_journal_lock``."""
        self._last_drain = time.monotonic()
        if not self._queue:
            return
        rows = []
        while self._queue:
            rows.append(self._queue.popleft())
        try:
            journal = self._open_journal()
            journal.write(b"".join(_json_line(row) + b"\n" for row in rows))
            journal.flush()
            if self.fsync:
                os.fsync(journal.fileno())
        except OSError:  # keep the rows, in order, for the next try (the queue stays bounded)
            self._queue.extendleft(reversed(rows))
            _log.exception("could not write the prediction journal; will retry")
            return
        self._journal_rows += len(rows)
        with self._space:
            self._space.notify_all()

    def _open_journal(self) -> IO[bytes]:
        if self._journal is None:
            self._sequence += 1
            name = f"journal-{os.getpid()}-{time.time_ns()}-{self._sequence}.jsonl"
            self._journal_path = self.journal_dir / name
            self._journal = self._journal_path.open("ab")
            fcntl.flock(self._journal.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._journal_opened = time.monotonic()
            self._journal_rows = 0
        return self._journal

    def _maybe_rotate(self) -> None:
        if self._journal is None:
            return
        old = time.monotonic() - self._journal_opened >= self.rotate_seconds
        if old or self._journal_rows >= self.rotate_rows:
            self._rotate()

    def _rotate(self) -> None:
        with self._journal_lock:  # a request may be appending to it
            if self._journal is None or self._journal_path is None:
                return
            journal, path = self._journal, self._journal_path
            self._journal, self._journal_path = None, None
        try:
            if self.convert_in_child:
                if self._child is None:
                    self._child = _Converter(self.log)
                try:
                    self.rows_written += self._child.convert(path)
                except (EOFError, OSError):  # the child died: a new one next time
                    self._child = None
                    raise
            else:
                self.rows_written += _convert(self.log, path)
        except Exception:  # keep the journal for recovery; never lose rows
            _log.exception("could not rotate %s into Parquet; it will be recovered", path)
        finally:
            journal.close()

    # -- lifecycle ---------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> None:
        """Block until every row queued before the call is in a Parquet segment."""
        self._rotate_now.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        while self._rotate_now.is_set() and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise LogBackpressure(f"the prediction log did not flush within {timeout} s")
            time.sleep(self.flush_interval / 4)

    def close(self) -> None:
        """Stop the background thread after writing everything to Parquet."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        if self._child is not None:
            self._child.close()
            self._child = None

    def recover(self) -> int:
        """Convert journals that no live writer holds into Parquet; returns rows recovered."""
        recovered = 0
        for path in sorted(self.journal_dir.glob("journal-*.jsonl")):
            try:
                with path.open("a", encoding="utf-8") as handle:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    recovered += _convert(self.log, path)
            except BlockingIOError:
                continue  # a live writer in another process holds it
        if recovered:
            _log.warning("recovered %d prediction log rows from a previous crash", recovered)
        return recovered


def _json_line(row: dict[str, Any]) -> bytes:
    """One journal line. orjson writes a row in about a tenth of ``json.dumps``'s time, and
    this thread shares the GIL with the requests; NaN becomes null. A value orjson refuses
    (an integer past 64 bits) takes ``json.dumps``."""
    try:
        return orjson.dumps(row, default=str, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        return json.dumps(row, default=str, separators=(",", ":")).encode("utf-8")


class _Converter:
    """A child process that turns journals into Parquet segments (``convert_in_child``).

    In a busy service the conversion (pyarrow, pandas, Parquet: 100-400 ms of CPU for a
    5-second journal) shared the GIL with the request thread and put tens of milliseconds
    on the p99; a child process has its own. It is a plain ``python -m`` subprocess (not
    multiprocessing's spawn, which would import the caller's ``__main__`` again), fed
    journal paths on stdin, one per line, answering ``ok ROWS`` or ``error MESSAGE``. It
    exits when its stdin closes, so with this process; a journal it did not finish stays
    for ``recover``.
    """

    def __init__(self, log: EventLog) -> None:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loopml.serving._log_child",
                str(log.directory),
                log.time_column,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def convert(self, path: Path) -> int:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(f"{path}\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline().strip()
        if not answer:
            raise EOFError("the log converter exited")
        kind, _, value = answer.partition(" ")
        if kind != "ok":
            raise BackendError(f"the log converter could not convert {path}: {value}")
        return int(value)

    def close(self) -> None:
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # never hang the caller's shutdown on the child
            self._process.kill()


def _converter_main(directory: str, time_column: str) -> None:
    """The child's loop: a journal path per stdin line, ``ok ROWS`` or ``error ...`` back.

    It runs at a lower priority (nice +10): its bursts of conversion (100-400 ms of CPU
    every rotation per worker) took a core from busy workers and set their p99; at nice 10
    the scheduler gives it about a tenth of a contended core and the rest whenever a core
    is idle, which is still more than the journals need (about 5% of a core per worker at
    6,000 requests/s), so it keeps up.
    """
    with contextlib.suppress(OSError, AttributeError):
        os.nice(_CHILD_NICE)
    log = EventLog(directory, time_column=time_column)
    for line in sys.stdin:
        try:
            answer = f"ok {_convert(log, Path(line.strip()))}"
        except Exception as failure:  # reported to the writer, which keeps the journal
            answer = f"error {type(failure).__name__}: {failure}".replace("\n", " ")
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


def _convert(log: EventLog, path: Path) -> int:
    """One journal into one Parquet segment; returns its rows.

    pyarrow's JSON reader parses the journal in C++ without holding the GIL for long (a
    5-second journal at 1,200 rows/s took 44 ms of this thread's CPU against 169 ms for
    ``json.loads`` per line, and the request threads wait on that GIL). A journal it cannot
    read (a torn last line after a crash, a column whose type changes) takes the
    line-by-line path, which skips a torn line.
    """
    import pyarrow as pa
    import pyarrow.json as pa_json

    strings = pa.schema([("time", pa.string())])  # keep the offset; EventLog reads it
    try:
        table = pa_json.read_json(path, parse_options=pa_json.ParseOptions(explicit_schema=strings))
    except (pa.ArrowInvalid, OSError):
        return _convert_lines(log, path)
    if any(pa.types.is_timestamp(f.type) or pa.types.is_date(f.type) for f in table.schema):
        return _convert_lines(log, path)  # a value that looked like a time: keep it as text
    frame = table.to_pandas()
    if len(frame):
        log.write(frame)
    path.unlink()
    return len(frame)


def _convert_lines(log: EventLog, path: Path) -> int:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                _log.warning("skipping a torn last line in %s", path)
    if rows:
        log.write(pd.DataFrame(rows))
    path.unlink()
    return len(rows)

"""One in-memory DuckDB database per process; each query gets its own cheap cursor.

Opening a DuckDB connection costs tens of milliseconds; a cursor on an open one costs
microseconds, and frames registered on a cursor are visible to that cursor only.
"""

from __future__ import annotations

import os
import threading

import duckdb

__all__ = ["cursor"]

_LOCK = threading.Lock()
_BASE: dict[int, duckdb.DuckDBPyConnection] = {}


def cursor() -> duckdb.DuckDBPyConnection:
    """A fresh cursor on this process's shared in-memory database (close it when done).

    >>> con = cursor()
    >>> con.sql("SELECT 42").fetchall()
    [(42,)]
    >>> con.close()
    """
    pid = os.getpid()
    with _LOCK:
        base = _BASE.get(pid)
        if base is None:
            base = _BASE[pid] = duckdb.connect()
    return base.cursor()

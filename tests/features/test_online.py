"""Online stores: the shared contract over SQLite and Redis, races, crashes and latency."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.core import BackendError, Config, Workspace
from loopml.features import (
    RedisOnlineStore,
    SQLiteOnlineStore,
    check_online_store,
    open_online_store,
)

T0 = pd.Timestamp("2024-05-01", tz="UTC")


def test_sqlite_passes_the_contract(tmp_path: Path) -> None:
    passed = check_online_store(SQLiteOnlineStore(tmp_path / "online.sqlite"))
    assert len(passed) == 10


def test_redis_passes_the_contract(redis_url: str) -> None:
    passed = check_online_store(RedisOnlineStore(redis_url, namespace="contract"))
    assert len(passed) == 10


def _race(store_factory: object) -> None:
    """Two writers interleave old and new rows; the newest row always survives."""
    def writer(offsets: range) -> None:
        store = store_factory()  # type: ignore[operator]
        for minute in offsets:
            frame = pd.DataFrame({"id": np.arange(50), "at": T0 + pd.Timedelta(minutes=minute),
                                  "x": float(minute)})
            store.write("race", frame, keys="id", event_timestamp="at")
        store.close()

    threads = [threading.Thread(target=writer, args=(range(start, 60, 2),)) for start in (0, 1)]
    threads.append(threading.Thread(target=writer, args=(range(59, -1, -3),)))  # newest first
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = store_factory()  # type: ignore[operator]
    values = {r.values["x"] for r in store.read("race", [{"id": i} for i in range(50)])}
    assert values == {59.0}


def test_concurrent_writers_never_go_back_in_time_sqlite(tmp_path: Path) -> None:
    _race(lambda: SQLiteOnlineStore(tmp_path / "online.sqlite"))


def test_concurrent_writers_never_go_back_in_time_redis(redis_url: str) -> None:
    _race(lambda: RedisOnlineStore(redis_url, namespace="race"))


def test_sqlite_reader_sees_views_written_by_another_connection(tmp_path: Path) -> None:
    """A reader caches each view's description; a commit elsewhere must invalidate it."""
    reader = SQLiteOnlineStore(tmp_path / "online.sqlite")
    writer = SQLiteOnlineStore(tmp_path / "online.sqlite")  # another connection
    assert reader.read("v", [{"id": 1}])[0].status == "missing"  # no view yet: cached
    writer.write("v", pd.DataFrame({"id": [1], "at": [T0], "x": [1.0]}), keys="id",
                 event_timestamp="at")
    assert reader.read("v", [{"id": 1}])[0].values == {"x": 1.0}
    writer.write("v", pd.DataFrame({"id": [2], "at": [T0], "x": [2.0], "y": [3.0]}), keys="id",
                 event_timestamp="at")
    assert reader.read("v", [{"id": 9}])[0].values == {"x": None, "y": None}
    reader.write("v", pd.DataFrame({"id": [3], "at": [T0], "z": [4.0]}), keys="id",
                 event_timestamp="at")  # its own write: its own cache is cleared too
    assert reader.read("v", [{"id": 9}])[0].values == {"z": None}
    writer.delete_view("v")
    assert reader.read("v", [{"id": 3}])[0].status == "missing"


def test_workspace_opens_sqlite_by_default(workspace: Workspace) -> None:
    store = open_online_store(workspace)
    assert isinstance(store, SQLiteOnlineStore)
    assert store.path == workspace.online_store_path


def test_workspace_opens_redis_when_configured(tmp_path: Path, redis_url: str) -> None:
    config = Config.model_validate({"project": "p", "backends": {"online_store": "redis",
                                                                  "redis_url": redis_url}})
    store = open_online_store(Workspace.create(tmp_path / "w", config))
    assert isinstance(store, RedisOnlineStore) and store.namespace == "loopml:p"


def test_sqlite_reads_of_ten_features_are_fast(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"id": np.arange(20_000), "at": T0})
    for i in range(10):
        frame[f"f{i}"] = rng.normal(size=len(frame))
    store = SQLiteOnlineStore(tmp_path / "online.sqlite")
    store.write("v", frame, keys="id", event_timestamp="at")
    ids = rng.integers(0, 20_000, 3000)
    timings = []
    for entity in ids:
        start = time.perf_counter()
        record = store.read("v", [{"id": int(entity)}], ttl="7d", now=T0.to_pydatetime())[0]
        timings.append(time.perf_counter() - start)
        assert record.status == "present"
    # The median is what the code controls; the tail on a shared 2-core machine is the
    # scheduler's. benchmarks/point_in_time.py reports the p99.
    median = float(np.median(timings))
    assert median < 0.0005, f"median {median * 1e6:.0f} us"


# -- a Redis server that goes away mid-write ------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes", "--appendfsync", "always", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    yield _free_port(), tmp_path


@pytest.mark.services
def test_redis_dying_mid_write_raises_and_leaves_no_partial_batch(
    own_redis: tuple[int, Path],
) -> None:
    port, folder = own_redis
    server = _start_redis(port, folder)
    try:
        store = RedisOnlineStore(f"redis://127.0.0.1:{port}/0", namespace="crash", timeout=10)
        first = pd.DataFrame({"id": np.arange(1000), "at": T0, "x": 1.0})
        assert store.write("v", first, keys="id", event_timestamp="at") == 1000
        n = 150_000
        second = pd.DataFrame({"id": np.arange(n), "at": T0 + pd.Timedelta(hours=1), "x": 2.0})
        errors: list[BaseException] = []

        def write() -> None:
            try:
                store.write("v", second, keys="id", event_timestamp="at")
            except BaseException as error:  # noqa: BLE001 - recorded for the assertion
                errors.append(error)

        thread = threading.Thread(target=write)
        thread.start()
        time.sleep(0.2)  # the batch is being encoded, sent or run by now
        server.kill()
        server.wait()
        thread.join(timeout=60)
        assert len(errors) == 1 and isinstance(errors[0], BackendError), errors
        assert "batch is not applied" in str(errors[0]) or "not applied" in str(errors[0])
        store.close()
        server = _start_redis(port, folder)  # same append-only file: what survived the crash
        after = RedisOnlineStore(f"redis://127.0.0.1:{port}/0", namespace="crash")
        old = {r.values["x"] for r in after.read("v", [{"id": i} for i in range(1000)])}
        new = {r.status for r in after.read("v", [{"id": i} for i in range(1000, n, 997)])}
        assert old in ({1.0}, {2.0}), f"a partial batch is visible: {old}"
        assert new == ({"missing"} if old == {1.0} else {"present"}), (old, new)
        after.close()
    finally:
        server.kill()
        server.wait()


def test_an_unreachable_redis_is_a_backend_error() -> None:
    store = RedisOnlineStore(f"redis://127.0.0.1:{_free_port()}/0", timeout=0.5)
    frame = pd.DataFrame({"id": [1], "at": [T0], "x": [1.0]})
    with pytest.raises(BackendError, match="Redis at redis://127.0.0.1"):
        store.write("v", frame, keys="id", event_timestamp="at")

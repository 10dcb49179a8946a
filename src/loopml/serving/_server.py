"""``loopml serve``: the service for a workspace, on uvicorn, one socket per worker process.

Why not ``uvicorn --workers N``: its workers share one listening socket, one worker takes
nearly every connection, and keep-alive responses wait on Nagle's algorithm (about 40 ms;
uvicorn#3149). Here each worker process binds its **own** socket on the same port with
``SO_REUSEPORT``, so the kernel spreads connections evenly over the workers, and sets
``TCP_NODELAY`` on it (accepted connections inherit it on Linux).

Each worker loads ``NAME@ALIAS`` from the workspace registry, follows the alias
(``RegistryDeployer``), reads online features for ``serve.features``, and writes its own
prediction log journal (the journals of all workers land in the same date-partitioned
log). On SIGTERM or SIGINT a worker stops accepting, finishes in-flight requests, and
flushes its log into Parquet before it exits. The admin token comes from the environment
variable ``LOOPML_ADMIN_TOKEN`` and is never logged.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any

from loopml.core import BackendError, ConfigError, Workspace, get_logger
from loopml.data import EventLog
from loopml.serving._app import create_app
from loopml.serving._balance import ConnectionBalancer
from loopml.serving._deploy import RegistryDeployer, parse_model_ref
from loopml.serving._log import PredictionLogWriter
from loopml.serving._service import PredictionService

__all__ = ["ServeOptions", "bind_socket", "build_service", "serve"]

_log = get_logger("serving.server")
TOKEN_ENV = "LOOPML_ADMIN_TOKEN"


@dataclass
class ServeOptions:
    """How to serve; ``None`` fields come from ``serve:`` in ``loopml.yaml``."""

    model: str
    host: str | None = None
    port: int | None = None
    workers: int | None = None
    poll_interval: float = 5.0
    backend: str = "auto"
    enforce_budget: bool | None = None
    flush_interval: float = 0.02


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with SO_REUSEPORT (one per worker) and TCP_NODELAY.

    >>> sock = bind_socket("127.0.0.1", 0)
    >>> sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    True
    >>> sock.close()
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def build_service(
    workspace: Workspace, options: ServeOptions, balancer: ConnectionBalancer | None = None
) -> tuple[PredictionService, RegistryDeployer, Any]:
    """The service, its registry deployer and the FastAPI app for ``options.model``;
    ``balancer`` evens out keep-alive connections over several workers."""
    config = workspace.config.serve
    name, alias, version = parse_model_ref(options.model)
    deployer = RegistryDeployer(
        name,
        alias=alias or "champion",
        version=version,
        tracking_uri=workspace.tracking_uri,
        poll_interval=options.poll_interval,
        fallback=config.fallback is not None,
        compiled_dir=workspace.state_dir / "compiled",
        backend=options.backend,
    )
    deployment = deployer.initial()
    lookup = None
    if config.features:
        from loopml.serving._features import online_feature_lookup

        lookup = online_feature_lookup(workspace, config.features)
    fast = all(m.backend in ("lightgbm", "tl2cgen", "onnx") for m in deployment.models.values())
    enforce = options.enforce_budget if options.enforce_budget is not None else not fast
    service = PredictionService(
        deployment,
        log_writer=PredictionLogWriter(
            EventLog(workspace.predictions_log_dir),
            flush_interval=options.flush_interval,
            convert_in_child=True,  # Parquet conversion off this process's GIL (p99)
        ),
        feedback_writer=PredictionLogWriter(
            EventLog(workspace.feedback_log_dir), flush_interval=options.flush_interval
        ),
        feature_lookup=lookup,
        latency_budget_ms=config.latency_budget_ms,
        enforce_budget=enforce,
        max_rows=10_000,
    )
    deployer.attach(service)
    token = os.environ.get(TOKEN_ENV) or None
    if token is None:
        _log.warning("%s is not set: every admin call will be refused", TOKEN_ENV)
    app = create_app(
        service,
        admin_token=token,
        admin=deployer.admin_actions(),
        max_body_bytes=config.max_body_bytes,
        balancer=balancer,
    )
    return service, deployer, app


def _run_worker(
    root: str,
    options: ServeOptions,
    host: str,
    port: int,
    ready: Any = None,
    slot: tuple[Any, int] | None = None,
) -> None:
    """One worker process: its own socket, service, deployer and log writer; ``slot`` (the
    workers' shared connection counts and this worker's index) turns on balancing."""
    import uvicorn

    workspace = Workspace.open(root)
    balancer = ConnectionBalancer(slot[0], slot[1]) if slot is not None else None
    service, deployer, app = build_service(workspace, options, balancer)
    sock = bind_socket(host, port)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=10,
            server_header=False,
            date_header=False,
        )
    )
    deployer.start()
    # move everything loaded so far (MLflow, SQLAlchemy, pandas: hundreds of thousands of
    # objects) out of the collector's reach: full collections over them were tens of
    # milliseconds of stalls, the service's p99 (measured: p99 185-294 ms -> 20-35 ms at
    # concurrency 8 on a loaded 2-core machine)
    gc.collect()
    gc.freeze()
    if ready is not None:
        ready.set()  # the socket listens: connections queue until uvicorn accepts them
    versions = ", ".join(sorted(service.deployment.models))
    _log.info(
        "worker %d serving %s (version %s) on %s:%d",
        os.getpid(),
        options.model,
        versions,
        host,
        port,
    )
    # uvicorn re-raises the signal that stopped it once it has restored the previous
    # handlers; with the default handlers that kills the process before the log is
    # flushed, so the previous handlers here only take note of it
    quiet = {s: signal.signal(s, _noted) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        deployer.stop()
        service.close()  # flushes the prediction and feedback logs into Parquet
        sock.close()
        for signum, handler in quiet.items():
            signal.signal(signum, handler)


def _noted(signum: int, _frame: Any) -> None:
    _log.info("worker %d stopping on signal %d", os.getpid(), signum)


def _worker_entry(*args: Any) -> None:
    """A supervised worker: ``_run_worker``'s arguments; it dies with the supervisor."""
    _die_with_parent()
    with contextlib.suppress(KeyboardInterrupt):  # the parent forwards SIGINT as SIGTERM
        _run_worker(*args)


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this worker if the supervisor dies (even by kill -9)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def serve(workspace: Workspace, options: ServeOptions) -> None:
    """Run the service until SIGTERM/SIGINT (blocking)."""
    config = workspace.config.serve
    host = options.host or config.host
    port = config.port if options.port is None else options.port
    workers = options.workers or config.workers
    if workers < 1:
        raise ConfigError(f"The '--workers' option must be >= 1. Got {workers!r} instead.")
    name, alias, version = parse_model_ref(options.model)
    probe = RegistryDeployer(
        name,
        alias=alias or "champion",
        version=version,
        tracking_uri=workspace.tracking_uri,
        poll_interval=0,
    )
    probe._registry_state()  # an unknown model or alias fails here, before any worker starts
    if port == 0:
        with bind_socket(host, 0) as sock:
            port = int(sock.getsockname()[1])
    print(
        f"loopml serve: {options.model} on http://{host}:{port} ({workers} worker(s))", flush=True
    )
    if workers == 1:
        _run_worker(str(workspace.root), options, host, port)
        return
    _supervise(str(workspace.root), options, host, port, workers)


def _supervise(root: str, options: ServeOptions, host: str, port: int, workers: int) -> None:
    """Start ``workers`` processes, restart one that dies, stop them all on a signal.

    A worker that dies before it serves (a model that cannot load, a port in use) stops
    the whole command with its exit code; so do more than 5 crashes within a minute.
    """
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    # per worker: clients answered lately, and when it counted them (ConnectionBalancer)
    counts = context.Array("d", 2 * workers, lock=False)
    stopping = False
    crashes: list[float] = []

    def start(index: int, signal_ready: Any = None) -> Any:
        process = context.Process(
            target=_worker_entry,
            args=(root, options, host, port, signal_ready, (counts, index)),
            name="loopml-serve-worker",
        )
        process.start()
        return process

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    processes = [start(i, ready if i == 0 else None) for i in range(workers)]
    try:
        while not stopping:
            for index, process in enumerate(processes):
                if process.is_alive() or stopping:
                    continue
                crashes.append(time.monotonic())
                recent = [t for t in crashes if t > time.monotonic() - 60]
                if not ready.is_set() or len(recent) > 5:
                    raise BackendError(
                        f"a serving worker exited with code {process.exitcode} "
                        + ("before it could serve" if not ready.is_set() else "too often"),
                        hint="its error is printed above",
                    )
                _log.warning(
                    "worker %s exited with %s; starting another", process.pid, process.exitcode
                )
                counts[2 * index] = 0.0
                processes[index] = start(index)
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join(timeout=30)
        for signum, handler in previous.items():
            signal.signal(signum, handler)

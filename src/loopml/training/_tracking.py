"""Experiment tracking on MLflow: a checked connection, runs, and what each run records.

The tracking URI is SQLite in the workspace by default (``sqlite:///.../mlflow.db``) or any
MLflow backend: a database URL (PostgreSQL, MySQL) or an MLflow server (``http(s)://``).
A backend that cannot be reached is a ``BackendError`` before anything is written.
"""

from __future__ import annotations

import json
import platform
import subprocess
import threading
from pathlib import Path
from typing import Any

from loopml.core import BackendError, ConfigError, get_logger, redact

__all__ = ["Tracker", "environment_record", "git_record", "open_client"]

_log = get_logger("training.tracking")
_CLIENTS: dict[str, Any] = {}
_LOCK = threading.Lock()


def _check_database(uri: str) -> None:
    import sqlalchemy

    if uri.startswith("sqlite:"):
        path = uri.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return
    args = {"connect_timeout": 5} if uri.startswith(("postgresql", "mysql")) else {}
    engine = sqlalchemy.create_engine(uri, connect_args=args)
    try:
        with engine.connect():
            pass
    except Exception as error:
        raise BackendError(
            f"the MLflow tracking database {redact(uri)} cannot be reached: "
            f"{type(error).__name__}: {redact(str(error).splitlines()[0])}",
            hint="start the database or fix backends.tracking_uri in loopml.yaml; "
            "nothing was tracked or registered",
        ) from None
    finally:
        engine.dispose()


def _check_server(uri: str) -> None:
    import httpx

    try:
        httpx.get(uri.rstrip("/") + "/health", timeout=5.0).raise_for_status()
    except httpx.HTTPError as error:
        raise BackendError(
            f"the MLflow tracking server {redact(uri)} cannot be reached: {error}",
            hint="start the server or fix backends.tracking_uri; nothing was tracked or registered",
        ) from None


def open_client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` for ``tracking_uri``, after checking the backend answers.

    >>> open_client("mlflow.db")
    Traceback (most recent call last):
    ...
    loopml.core._exceptions.ConfigError: The 'tracking_uri' parameter must be ...
    """
    if not isinstance(tracking_uri, str) or "://" not in tracking_uri:
        raise ConfigError(
            "The 'tracking_uri' parameter must be an MLflow tracking URI like "
            f"'sqlite:///path/mlflow.db', 'postgresql://...' or 'http://host:5000'. "
            f"Got {tracking_uri!r} instead."
        )
    with _LOCK:
        if tracking_uri in _CLIENTS:
            return _CLIENTS[tracking_uri]
        if tracking_uri.startswith(("http://", "https://")):
            _check_server(tracking_uri)
        elif tracking_uri.startswith("file:"):
            raise ConfigError(
                f"The 'tracking_uri' {tracking_uri!r} is MLflow's file store, which needs "
                "MLFLOW_ALLOW_FILE_STORE and is deprecated.",
                hint="use sqlite:///path/mlflow.db instead",
            )
        else:
            _check_database(tracking_uri)
        from mlflow.tracking import MlflowClient

        try:
            client = MlflowClient(tracking_uri=tracking_uri)
            client.search_experiments(max_results=1)
        except Exception as error:
            raise BackendError(
                f"MLflow could not open {redact(tracking_uri)}: {redact(str(error))[:300]}",
                hint="check backends.tracking_uri; nothing was tracked or registered",
            ) from None
        _CLIENTS[tracking_uri] = client
        return client


def local_folder(uri: str) -> Path | None:
    """The local path of a ``file:`` (or plain path) artifact URI; None for remote stores.

    >>> str(local_folder("file:///tmp/a%20b/model")), local_folder("s3://bucket/x")
    ('/tmp/a b/model', None)
    """
    from urllib.parse import unquote, urlparse

    if uri.startswith("file:"):
        return Path(unquote(urlparse(uri).path))
    if "://" not in uri:
        return Path(uri)
    return None


def get_run_info(client: Any, run_id: str) -> Any:
    """The MLflow run, or NotFoundError."""
    from mlflow.exceptions import MlflowException

    from loopml.core import NotFoundError

    try:
        return client.get_run(run_id)
    except MlflowException:
        raise NotFoundError(f"no run {run_id!r} in the tracking store") from None


def git_record(folder: str | Path = ".") -> dict[str, Any]:
    """The git commit and dirty flag of ``folder`` (``unknown`` outside a repository)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": "unknown", "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def environment_record() -> dict[str, str]:
    """Python and the versions of the libraries a model depends on."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in (
        "loopml",
        "numpy",
        "pandas",
        "scikit-learn",
        "lightgbm",
        "optuna",
        "mlflow-skinny",
        "skops",
        "scipy",
        "dask",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


class Tracker:
    """Runs in one MLflow experiment, with artifacts under ``artifact_root``."""

    def __init__(
        self, tracking_uri: str, experiment: str, artifact_root: str | Path | None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.client = open_client(tracking_uri)
        self.experiment_id = self._experiment(experiment, artifact_root)

    def _experiment(self, name: str, artifact_root: str | Path | None) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = None
        if artifact_root is not None:
            folder = Path(artifact_root).resolve()
            folder.mkdir(parents=True, exist_ok=True)
            location = folder.as_uri()
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except Exception:  # another process created it first
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def start(
        self, name: str, *, parent: str | None = None, tags: dict[str, Any] | None = None
    ) -> str:
        """Open a run (nested under ``parent`` when given); returns its id."""
        all_tags = {str(k): _text(v) for k, v in (tags or {}).items()}
        if parent is not None:
            all_tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        return str(run.info.run_id)

    def log(
        self,
        run_id: str,
        *,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None:
        """Log params, metrics and tags in one batch."""
        from mlflow.entities import Metric, Param, RunTag

        from loopml.core import utcnow

        now = int(utcnow().timestamp() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items() if v == v],
            params=[Param(str(k), _text(v)[:6000]) for k, v in (params or {}).items()],
            tags=[RunTag(str(k), _text(v)[:5000]) for k, v in (tags or {}).items()],
        )

    def log_artifacts(self, run_id: str, folder: Path, path: str | None = None) -> None:
        """Copy a folder into the run's artifacts."""
        self.client.log_artifacts(run_id, str(folder), path)

    def finish(self, run_id: str, *, failed: bool = False) -> None:
        """Close a run."""
        self.client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")

    def artifact_uri(self, run_id: str) -> str:
        return str(self.client.get_run(run_id).info.artifact_uri)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)

"""The workspace: a project folder with ``loopml.yaml`` and the ``.loopml/`` state beside it.

``Workspace`` is a thin façade that knows where things live on disk; the stage packages
do the work. The layout::

    loopml.yaml
    .loopml/
      lake/<table>/<version>/     immutable Parquet snapshots (version = content hash)
      features/                   offline feature tables, materialisation state
      online.sqlite               online store (embedded)
      mlflow.db, artifacts/       tracking and registry (embedded)
      state.sqlite                deployments, monitors, alerts, experiments
      logs/predictions/date=.../  prediction log
      logs/feedback/date=.../     labels that arrived
      reports/                    HTML reports and model cards
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from loopml.core._atomic import atomic_write_text
from loopml.core._config import Config, dump_config, load_config
from loopml.core._exceptions import WorkspaceError
from loopml.core._state import StateStore

__all__ = ["CONFIG_FILE", "STATE_DIR", "Workspace"]

CONFIG_FILE = "loopml.yaml"
STATE_DIR = ".loopml"


@dataclass(frozen=True)
class Workspace:
    """A loopml project on disk.

    >>> import tempfile
    >>> ws = Workspace.create(tempfile.mkdtemp(), Config(project="demo"))
    >>> ws.config.project, ws.lake_dir.name, ws.lake_dir.is_dir()
    ('demo', 'lake', True)
    """

    root: Path

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def create(
        cls, root: str | os.PathLike[str], config: Config, *, overwrite: bool = False
    ) -> Workspace:
        """Write ``loopml.yaml`` and the state folders under ``root``."""
        root = Path(root).resolve()
        config_path = root / CONFIG_FILE
        if config_path.exists() and not overwrite:
            raise WorkspaceError(
                f"{config_path} already exists",
                hint="open it with Workspace.open, or pass overwrite=True / --force",
            )
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config_path, dump_config(config))
        workspace = cls(root)
        workspace.ensure_layout()
        return workspace

    @classmethod
    def open(cls, path: str | os.PathLike[str] = ".") -> Workspace:
        """Open the workspace at ``path`` or the nearest folder above it with ``loopml.yaml``."""
        start = Path(path).resolve()
        for folder in (start, *start.parents):
            if (folder / CONFIG_FILE).is_file():
                workspace = cls(folder)
                workspace.ensure_layout()
                return workspace
        raise WorkspaceError(
            f"no {CONFIG_FILE} in {start} or any folder above it",
            hint="run `loopml init DATA_FILE` to create a workspace, or pass --dir",
        )

    def ensure_layout(self) -> None:
        """Create the state folders if they are missing (idempotent)."""
        for folder in (
            self.lake_dir,
            self.features_dir,
            self.artifacts_dir,
            self.predictions_log_dir,
            self.feedback_log_dir,
            self.features_log_dir,
            self.reports_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)

    # -- configuration -----------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def config(self) -> Config:
        """The configuration, read from disk on every access (never frozen at import)."""
        return load_config(self.config_path)

    def save_config(self, config: Config) -> None:
        """Replace ``loopml.yaml`` atomically."""
        atomic_write_text(self.config_path, dump_config(config))

    # -- layout ------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def lake_dir(self) -> Path:
        return self.state_dir / "lake"

    @property
    def features_dir(self) -> Path:
        return self.state_dir / "features"

    @property
    def online_store_path(self) -> Path:
        return self.state_dir / "online.sqlite"

    @property
    def mlflow_db_path(self) -> Path:
        return self.state_dir / "mlflow.db"

    @property
    def artifacts_dir(self) -> Path:
        return self.state_dir / "artifacts"

    @property
    def state_db_path(self) -> Path:
        return self.state_dir / "state.sqlite"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def predictions_log_dir(self) -> Path:
        return self.logs_dir / "predictions"

    @property
    def feedback_log_dir(self) -> Path:
        return self.logs_dir / "feedback"

    @property
    def features_log_dir(self) -> Path:
        return self.logs_dir / "features"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: the configured one, else SQLite in the workspace."""
        configured = self.config.backends.tracking_uri
        return configured or f"sqlite:///{self.mlflow_db_path}"

    @property
    def state_url(self) -> str:
        """SQLAlchemy URL of the state store: the configured one, else SQLite (WAL)."""
        configured = self.config.backends.state_url
        return configured or f"sqlite:///{self.state_db_path}"

    def state_store(self) -> StateStore:
        """The state store (deployments, monitors, alerts, experiments, decisions)."""
        return StateStore(self.state_url)

    # -- paths -------------------------------------------------------------------------
    def resolve(self, path: str | os.PathLike[str], *, must_be_inside: bool = True) -> Path:
        """Resolve a path relative to the workspace root.

        With ``must_be_inside`` (the default for anything loopml writes), a path that escapes
        the workspace (``../x``, an absolute path elsewhere, a symlink out) is an error.
        """
        candidate = Path(path)
        resolved = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        if must_be_inside and not resolved.is_relative_to(self.root):
            raise WorkspaceError(
                f"path {str(path)!r} resolves to {resolved}, outside the workspace {self.root}",
                hint="use a path inside the workspace, or copy the file into it",
            )
        return resolved

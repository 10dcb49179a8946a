"""The exceptions loopml raises, and the warnings it emits.

Every error a user can cause derives from one root, and each says what was wrong, where
(file, line, column, row, field) and what to do about it::

    LoopmlError
    ├── ConfigError                 loopml.yaml or a parameter is wrong        (exit code 2)
    │   └── WorkspaceError          no workspace, or a path outside it         (exit code 2)
    ├── DataError                   the data itself is wrong                   (exit code 1)
    │   ├── SourceError             a source cannot be read (encoding, ragged rows, empty)
    │   ├── SchemaError             columns or types do not match what is expected
    │   ├── DataValidationError     a batch or record broke the schema (carries the report)
    │   └── LeakageError            a training set leaks the label or the future
    ├── NotFoundError               a snapshot, model, alias or run does not exist
    ├── BackendError                a server (PostgreSQL, Redis, MLflow) cannot be reached
    ├── GateFailed                  a model did not pass its promotion gates
    └── ArtifactError               an artifact cannot be trusted
        ├── ArtifactIntegrityError  its SHA-256 does not match the recorded one
        └── UnsafeArtifactError     its format could run code on load (pickle)

HTTP status codes are chosen only at the service edge; the command line maps
``exit_code`` to the process exit status.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArtifactError",
    "ArtifactIntegrityError",
    "BackendError",
    "ConfigError",
    "DataError",
    "DataValidationError",
    "GateFailed",
    "LeakageError",
    "LoopmlError",
    "LoopmlWarning",
    "NotFoundError",
    "SchemaError",
    "SourceError",
    "UnsafeArtifactError",
    "WorkspaceError",
]


class LoopmlError(Exception):
    """The root of every error loopml raises on purpose.

    Examples
    --------
    >>> try:
    ...     raise ConfigError("bad key", hint="rename it")
    ... except LoopmlError as error:
    ...     print(error, "| exit code", error.exit_code)
    bad key (rename it) | exit code 2
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None, **context: Any) -> None:
        self.message = message
        self.hint = hint
        self.context = context
        super().__init__(message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ConfigError(LoopmlError):
    """The configuration or a parameter is wrong: fix the file or the call."""

    exit_code = 2


class WorkspaceError(ConfigError):
    """No workspace where one was expected, or a path that escapes it."""


class DataError(LoopmlError):
    """The data is wrong: a source, a schema, a batch or a training set."""

    exit_code = 1


class SourceError(DataError):
    """A data source cannot be read as declared."""


class SchemaError(DataError):
    """Columns or types do not match what is expected."""


class DataValidationError(DataError):
    """A batch or a record broke its schema; ``report`` holds every problem found."""

    def __init__(self, message: str, *, report: Any = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


class LeakageError(DataError):
    """A training set leaks information it will not have at prediction time."""

    def __init__(self, message: str, *, findings: Any = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.findings = findings


class NotFoundError(LoopmlError):
    """A snapshot, model version, alias or run that does not exist."""

    exit_code = 2


class BackendError(LoopmlError):
    """A backend server cannot be reached or answered with an error."""

    exit_code = 1


class GateFailed(LoopmlError):
    """A model did not pass every promotion gate; ``failures`` lists which and why."""

    def __init__(self, message: str, *, failures: Any = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failures = failures


class ArtifactError(LoopmlError):
    """An artifact cannot be trusted."""


class ArtifactIntegrityError(ArtifactError):
    """An artifact's SHA-256 differs from the one recorded when it was registered."""


class UnsafeArtifactError(ArtifactError):
    """An artifact in a format that can run code when loaded, refused by default."""


class LoopmlWarning(UserWarning):
    """A condition the user should know about that does not stop the work."""

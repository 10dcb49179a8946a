"""The Typer application and the mapping of loopml errors to exit codes.

Exit codes: 0 ok, 1 data problems found, 2 usage or configuration error.
Each stage's commands live in their own module with a ``register(app)`` function,
listed in ``_COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

import loopml
from loopml.core import LoopmlError, redact

app = typer.Typer(
    name="loopml",
    help="The whole production loop of a supervised ML model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_COMMAND_MODULES: list[str] = [
    "loopml.cli._demo",
    "loopml.cli._data",
    "loopml.cli._experiments",
    "loopml.cli._features",
    "loopml.cli._monitoring",
    "loopml.cli._serving",
    "loopml.cli._trainingdata",
    "loopml.cli._label",
    "loopml.cli._training",
    "loopml.cli._continual",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loopml {loopml.__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """loopml: data, features, training, evaluation, serving, monitoring, continual learning."""


for _module in _COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; loopml errors become a message on stderr and an exit code."""
    try:
        returned = app(args=argv, standalone_mode=False)
    except LoopmlError as error:
        typer.echo(f"error: {redact(str(error))}", err=True)
        return error.exit_code
    except typer.Exit as stop:
        return int(stop.exit_code or 0)
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    except Exception as error:  # click usage errors carry their own exit code
        exit_code = getattr(error, "exit_code", None)
        show = getattr(error, "show", None)
        if exit_code is not None and callable(show):
            show()
            return int(exit_code)
        raise
    return returned if isinstance(returned, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

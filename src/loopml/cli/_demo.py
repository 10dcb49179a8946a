"""``loopml demo``: the loop, end to end, on the built-in card-fraud scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""
    app.command("demo")(demo)


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder for the demo's data and workspace.")
    ] = Path("loopml-demo"),
    days: Annotated[
        int, typer.Option("--days", min=2, help="Days of transactions to generate.")
    ] = 90,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the scenario.")] = 0,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Start clean: remove the folder's .loopml/ state, loopml.yaml and the demo's "
            "files (other files are kept).",
        ),
    ] = False,
) -> None:
    """Generate the card-fraud scenario, ingest, profile and validate it, and summarise."""
    from rich.console import Console

    from loopml.datasets import run_demo

    run_demo(directory, days=days, seed=seed, force=force, console=Console())

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
    """Run the whole loop on the card-fraud scenario and write a timeline report."""
    from rich.console import Console

    from loopml.continual import LOOP_MIN_DAYS, LOOP_STEPS
    from loopml.datasets import DEMO_STEPS, run_demo

    console = Console()
    loop = days >= LOOP_MIN_DAYS
    if not loop:
        console.print(
            f"[yellow]note:[/] the loop steps (train, evaluate, replay, report) need at least "
            f"{LOOP_MIN_DAYS} days (labels take up to 30 days to arrive); with --days {days} "
            "only the data steps run."
        )

    steps = [*DEMO_STEPS, *LOOP_STEPS] if loop else list(DEMO_STEPS)
    run_demo(directory, days=days, seed=seed, force=force, console=console, steps=steps)

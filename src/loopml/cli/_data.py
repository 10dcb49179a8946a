"""``loopml init | ingest | validate | profile``: the data commands.

Each command is a thin wrapper over a public function of ``loopml.data``.
Exit codes: 0 ok, 1 data problems found, 2 usage or configuration error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.core import ConfigError, DataValidationError, Workspace

if TYPE_CHECKING:
    from loopml.data import Profile, ValidationReport

_DIR = typer.Option("--dir", help="The workspace folder (or a folder inside it).")


def register(app: typer.Typer) -> None:
    """Add the ``init``, ``ingest``, ``validate`` and ``profile`` commands."""
    app.command("init")(init)
    app.command("ingest")(ingest)
    app.command("validate")(validate)
    app.command("profile")(profile)


def _console() -> Any:
    from rich.console import Console

    return Console()


def init(
    data_file: Annotated[Path, typer.Argument(help="A CSV, Parquet, JSON or JSONL file.")],
    directory: Annotated[Path, _DIR] = Path("."),
    target: Annotated[str | None, typer.Option("--target", help="The column to predict.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite loopml.yaml.")] = False,
) -> None:
    """Write loopml.yaml for a data file: infer its schema, propose the task and timestamp."""
    from loopml.data import init_project

    result = init_project(data_file, directory=directory, target=target, force=force)
    console = _console()
    console.print(f"wrote {result.workspace.config_path}")
    for choice in result.choices:
        console.print(f"  - {choice}")
    kinds = ", ".join(f"{c.name}: {c.dtype}" for c in result.schema.columns.values())
    console.print(f"  - columns: {kinds}")
    console.print("next: `loopml ingest`, then `loopml profile " + result.table + "`")


def ingest(
    table: Annotated[str | None, typer.Argument(help="The source to ingest.")] = None,
    all_sources: Annotated[
        bool, typer.Option("--all", help="Ingest every source in loopml.yaml.")
    ] = False,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Snapshot sources into the workspace lake (identical data keeps its version)."""
    from rich.table import Table

    from loopml.data import ingest as ingest_table
    from loopml.data import list_snapshots

    workspace = Workspace.open(directory)
    tables = _tables(workspace, table, all_sources)
    shown = Table("table", "version", "rows", "time range", "")
    for name in tables:
        before = {snap.version for snap in list_snapshots(workspace, name)}
        snapshot = ingest_table(workspace, name)
        span = (
            f"{snapshot.time_range[0]:%Y-%m-%d %H:%M} .. {snapshot.time_range[1]:%Y-%m-%d %H:%M}"
            if snapshot.time_range
            else "-"
        )
        state = "unchanged" if snapshot.version in before else "new"
        shown.add_row(name, snapshot.version, f"{snapshot.rows:,}", span, state)
    _console().print(shown)


def _tables(workspace: Workspace, table: str | None, all_sources: bool) -> list[str]:
    sources = sorted(workspace.config.sources)
    if table is not None and all_sources:
        raise ConfigError("give a TABLE or --all, not both")
    if table is not None:
        return [table]
    if all_sources or len(sources) == 1:
        if not sources:
            raise ConfigError(
                f"{workspace.config_path} declares no sources", hint="add one under `sources:`"
            )
        return sources
    raise ConfigError(
        f"say which source to ingest: {', '.join(sources) or 'none declared'}",
        hint="pass a TABLE or --all",
    )


def validate(
    table: Annotated[str, typer.Argument(help="The table to validate.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Snapshot version (default: newest).")
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema",
            help="A schema JSON file (default: inferred from the first snapshot of the table).",
        ),
    ] = None,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Validate a snapshot against the reference schema; exit 1 when problems are found."""
    from loopml.data import get_snapshot, list_snapshots, validate_snapshot

    workspace = Workspace.open(directory)
    snapshot = get_snapshot(workspace, table, version)
    report = validate_snapshot(workspace, table, snapshot.version, schema)
    console = _console()
    reference = (
        "schema file " + str(schema)
        if schema
        else (f"the schema of the first snapshot ({list_snapshots(workspace, table)[0].version})")
    )
    console.print(f"{table}@{snapshot.version}: {report.rows:,} rows checked against {reference}")
    if report.ok:
        console.print("no problems found")
        return
    _print_problems(console, report)
    raise DataValidationError(
        f"{table}@{snapshot.version}: {len(report.problems)} data problem(s) found",
        report=report,
        hint="see the table above: each row says what to do",
    )


def _print_problems(console: Any, report: ValidationReport) -> None:
    from rich.table import Table

    shown = Table("column", "first row", "rows", "problem", "what to do")
    for problem in report.problems:
        row = "-" if problem.row is None else str(problem.row)
        shown.add_row(problem.column, row, f"{problem.count:,}", problem.message, problem.fix)
    console.print(shown)
    console.print(f"{len(report.problems)} problem(s) found")


def profile(
    table: Annotated[str, typer.Argument(help="The table to profile.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Snapshot version (default: newest).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the profile JSON (inside the workspace)."),
    ] = None,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Profile a snapshot: print a table of statistics and write the profile JSON."""
    from loopml.data import get_snapshot, snapshot_profile
    from loopml.data._workflow import profile_path

    workspace = Workspace.open(directory)
    target = workspace.resolve(out) if out is not None else None
    snapshot = get_snapshot(workspace, table, version)
    result = snapshot_profile(workspace, table, snapshot.version)
    written = profile_path(workspace, table, snapshot.version)
    if target is not None:
        written = result.save(target)
    console = _console()
    _print_profile(console, result)
    console.print(f"{table}@{snapshot.version}: {result.rows:,} rows; profile written to {written}")


def _print_profile(console: Any, result: Profile) -> None:
    from rich.table import Table

    shown = Table("column", "kind", "count", "nulls", "min", "max", "mean", "std", "top values")
    for name, column in result.columns.items():
        top = ""
        if column.categories:
            ranked = sorted(column.categories.items(), key=lambda item: -item[1])[:3]
            top = ", ".join(f"{value} ({n:,})" for value, n in ranked)
        shown.add_row(
            name,
            column.kind,
            f"{column.count:,}",
            f"{column.nulls:,}",
            _fmt(column.min),
            _fmt(column.max),
            _fmt(column.mean),
            _fmt(column.std),
            top,
        )
    console.print(shown)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

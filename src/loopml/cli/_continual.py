"""``loopml loop | status | simulate | evaluate | promote | rollback``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from loopml.core import ConfigError


def register(app: typer.Typer) -> None:
    """Add the ``loop``, ``status`` and ``simulate`` commands."""
    app.command("loop")(loop)
    app.command("status")(status)
    app.command("simulate")(simulate)
    app.command("evaluate")(evaluate)
    app.command("promote")(promote)
    app.command("rollback")(rollback)
    app.command("freshness")(freshness)


def loop(
    directory: Annotated[Path, typer.Option("--dir", help="The workspace.")] = Path("."),
    every: Annotated[
        str | None, typer.Option(help="Keep running, one pass every this long (e.g. 1h).")
    ] = None,
    max_passes: Annotated[int, typer.Option(help="Stop after this many passes.")] = 0,
    retrain: Annotated[bool, typer.Option(help="Ask for a retrain by hand.")] = False,
) -> None:
    """Run one pass of the loop (ingest, monitor, decide, train, evaluate, roll out)."""
    import time

    from loopml.continual import run_pass
    from loopml.core import Workspace, parse_duration

    workspace = Workspace.open(directory)
    pause = parse_duration(every, name="every").total_seconds() if every else None
    passes = 0
    while True:
        result = run_pass(workspace, manual=retrain)
        passes += 1
        typer.echo(
            f"pass {result.pass_id} {result.status}" + (" (resumed)" if result.resumed else "")
        )
        for name, outcome in result.steps.items():
            typer.echo(f"  {name:<9} {_describe(outcome)}")
        if pause is None or (max_passes and passes >= max_passes):
            return
        time.sleep(pause)


def _describe(outcome: dict[str, object]) -> str:
    keys = (
        "why",
        "skipped",
        "reasons",
        "waiting",
        "drift_alert",
        "registered",
        "passed",
        "promoted",
        "versions",
        "note",
    )
    return ", ".join(
        f"{k}={outcome[k]}" for k in keys if k in outcome and outcome[k] not in (None, [])
    )


def status(
    directory: Annotated[Path, typer.Option("--dir", help="The workspace.")] = Path("."),
    limit: Annotated[int, typer.Option(help="How many journal entries.")] = 20,
) -> None:
    """Show the loop's last decisions, its state and the model aliases."""
    from rich.console import Console
    from rich.table import Table

    from loopml.continual import loop_status
    from loopml.core import Workspace

    info = loop_status(Workspace.open(directory), limit=limit)
    console = Console()
    console.print(f"aliases: {info['aliases']}; current pass: {info['current']}")
    table = Table("time", "pass", "step", "outcome")
    for entry in info["journal"]:
        rest = {k: v for k, v in entry.items() if k not in ("time", "pass_id", "step")}
        table.add_row(
            entry["time"][:19],
            str(entry.get("pass_id", ""))[-8:],
            str(entry["step"]),
            _describe(rest) or str(rest)[:80],
        )
    console.print(table)


def simulate(
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet file, one row per event.")],
    timestamp: Annotated[str, typer.Option("--timestamp", help="Column with each row's time.")],
    target: Annotated[str, typer.Option("--target", help="Column with the label.")],
    step: Annotated[str, typer.Option(help="Replay step, e.g. 1d or 6h.")] = "1d",
    warmup: Annotated[str, typer.Option(help="Data before the first model serves.")] = "7d",
    label_delay: Annotated[str, typer.Option(help="Delay before each label is known.")] = "0s",
    every: Annotated[str | None, typer.Option(help="Retrain schedule, e.g. 1d.")] = "1d",
    on_drift: Annotated[bool, typer.Option(help="Also retrain on a drift alert.")] = False,
    mode: Annotated[str, typer.Option(help="stateless or stateful.")] = "stateless",
    window: Annotated[str | None, typer.Option(help="Train on the last N of data only.")] = None,
    shadow: Annotated[
        str | None, typer.Option(help="Shadow each challenger for this long.")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write the HTML timeline here.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result as JSON.")
    ] = None,
) -> None:
    """Replay DATA through serving, monitoring, retraining and rollouts; print the quality."""
    import pandas as pd

    from loopml import continual
    from loopml.core import RetrainConfig, RolloutConfig, atomic_write_text, ensure_utc_series

    if not data.is_file():
        raise ConfigError(f"--data {data}: no such file")
    frame = pd.read_parquet(data) if data.suffix == ".parquet" else pd.read_csv(data)
    if timestamp not in frame.columns:
        raise ConfigError(
            f"--timestamp {timestamp!r} is not a column of {data} ({list(frame.columns)})"
        )
    frame[timestamp] = ensure_utc_series(
        frame[timestamp], where=f"{data} column {timestamp!r}", assume_utc=True
    )
    retrain = RetrainConfig(every=every, on_drift=on_drift, mode=mode, window=window)
    rollout = RolloutConfig(shadow=shadow) if shadow else None
    result = continual.simulate(
        frame,
        timestamp=timestamp,
        target=target,
        step=step,
        warmup=warmup,
        label_delay=label_delay,
        retrain=retrain,
        rollout=rollout,
        monitor=on_drift,
    )
    typer.echo(result.summary())
    if report is not None:
        from loopml.continual._report import render_timeline

        atomic_write_text(report, render_timeline(result, title=f"Replay of {data.name}"))
        typer.echo(f"report: {report}")
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(result.to_dict(), default=str, indent=1))


def evaluate(
    directory: Annotated[Path, typer.Option("--dir", help="The workspace.")] = Path("."),
    version: Annotated[int | None, typer.Option(help="Model version (default: newest).")] = None,
) -> None:
    """Evaluate a registered version: gates, slices, behaviour tests, model card and report."""
    from rich.console import Console
    from rich.table import Table

    from loopml.continual import evaluate_version
    from loopml.core import Workspace

    result = evaluate_version(Workspace.open(directory), version)
    evaluated = result.evaluation
    table = Table("metric", "value", "95% interval", *[f"vs {k}" for k in evaluated.differences])
    for metric, interval in evaluated.metrics.items():
        diffs = [
            f"{d[metric].value:+.4f} [{d[metric].low:+.4f}, {d[metric].high:+.4f}]"
            for d in evaluated.differences.values()
        ]
        table.add_row(
            metric, f"{interval.value:.4f}", f"[{interval.low:.4f}, {interval.high:.4f}]", *diffs
        )
    console = Console()
    console.print(f"{result.name} v{result.version} (champion: {result.champion})")
    console.print(table)
    for gate in evaluated.gates:
        console.print(("[green]pass[/] " if gate.passed else "[red]FAIL[/] ") + gate.reason)
    console.print(f"report and model card: {result.report_dir}")
    if not evaluated.passed:
        raise typer.Exit(1)


def promote(
    version: Annotated[int, typer.Argument(help="The version to make champion.")],
    directory: Annotated[Path, typer.Option("--dir", help="The workspace.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Promote even if a gate fails.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why (required with --force).")] = None,
) -> None:
    """Move the champion alias to VERSION when every gate passes (or --force --reason)."""
    from loopml.continual import promote as promote_version
    from loopml.core import Workspace

    record = promote_version(Workspace.open(directory), version, force=force, reason=reason)
    typer.echo(
        f"{record['model']}: champion v{record['from']} -> v{record['to']} ({record['reason']})"
    )


def rollback(
    directory: Annotated[Path, typer.Option("--dir", help="The workspace.")] = Path("."),
    reason: Annotated[str, typer.Option(help="Why.")] = "rollback by hand",
) -> None:
    """Point the champion alias back at the version it held before the last promotion."""
    from loopml.continual import rollback as rollback_version
    from loopml.core import Workspace

    record = rollback_version(Workspace.open(directory), reason=reason)
    typer.echo(f"{record['model']}: champion v{record['from']} -> v{record['to']} ({reason})")


def freshness(
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet file, one row per event.")],
    timestamp: Annotated[str, typer.Option("--timestamp", help="Column with each row's time.")],
    target: Annotated[str, typer.Option("--target", help="Column with the label.")],
    features: Annotated[str, typer.Option(help="Comma-separated feature columns.")],
    evaluation: Annotated[str, typer.Option(help="The evaluation window at the end.")] = "7d",
    train_window: Annotated[str, typer.Option(help="How much data each model trains on.")] = "30d",
    staleness: Annotated[str, typer.Option(help="Comma-separated days of staleness.")] = "0,1,7,30",
) -> None:
    """Quality of models trained 0, 1, 7, 30... days before the evaluation window."""
    import pandas as pd

    from loopml.continual import freshness_experiment
    from loopml.core import ensure_utc_series

    if not data.is_file():
        raise ConfigError(f"--data {data}: no such file")
    frame = pd.read_parquet(data) if data.suffix == ".parquet" else pd.read_csv(data)
    frame[timestamp] = ensure_utc_series(
        frame[timestamp], where=f"{data} column {timestamp!r}", assume_utc=True
    )
    try:
        days = tuple(int(d) for d in staleness.split(","))
    except ValueError:
        raise ConfigError(
            f"--staleness must be whole days like 0,1,7,30. Got {staleness!r}"
        ) from None
    result = freshness_experiment(
        frame,
        timestamp=timestamp,
        target=target,
        features=features.split(","),
        evaluation=evaluation,
        train_window=train_window,
        staleness=days,
    )
    typer.echo(f"{result.metric} on the last {evaluation} ({result.evaluation_rows:,} rows):")
    for row in result.table.itertuples():
        typer.echo(
            f"  trained {row.staleness_days:>4} days stale ({row.train_rows:,} rows): "
            f"{row.quality:.4f}"
        )

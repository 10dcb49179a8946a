"""``loopml monitor run | report | alerts``: thin wrappers over ``loopml.monitoring``.

Exit codes: 0 ok, 1 a data problem (no predictions logged), 2 usage or configuration.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from loopml.core import ConfigError, Workspace, ensure_utc

_DIR = typer.Option("--dir", help="The workspace folder (or a folder inside it).")
_JSON = typer.Option("--json", help="Print JSON instead of text.")

monitor_app = typer.Typer(
    help="Drift, data and model quality, feedback loops and alerts over the prediction log.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``monitor`` command group."""
    app.add_typer(monitor_app, name="monitor")


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"The '{option}' option must be an ISO time like '2024-05-01T00:00:00Z'. Got "
            f"{value!r} instead."
        ) from None
    return ensure_utc(parsed, where=f"--{option}")


def _fmt(value: Any) -> str:
    return "-" if value is None else (f"{value:.3g}" if isinstance(value, float) else str(value))


@monitor_app.command("run")
def monitor_run(
    start: Annotated[str | None, typer.Option(help="First time to monitor (ISO, UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="End of the period (ISO, exclusive).")] = None,
    now: Annotated[
        str | None, typer.Option(help="Treat this as the current time (labels due).")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            help="first_window, previous_window, or a profile JSON (default: monitor.reference)."
        ),
    ] = None,
    as_json: Annotated[bool, _JSON] = False,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Monitor the prediction log over windows; save the HTML and JSON report; evaluate alerts."""
    from loopml.monitoring import run_monitor

    workspace = Workspace.open(directory)
    run = run_monitor(
        workspace,
        start=_when(start, "start"),
        end=_when(end, "end"),
        now=_when(now, "now"),
        reference=reference,
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "run_id": run.run_id,
                    "report": str(run.report_dir),
                    "metrics": run.metrics_frame().to_dict("records"),
                    "alerts": [e.to_dict() for e in run.alert_events],
                },
                default=str,
                indent=1,
            )
        )
        return
    typer.echo(
        f"monitor run {run.run_id}: {len(run.windows)} windows of {run.to_dict()['window']}, "
        f"reference {run.reference}"
    )
    for window in run.windows:
        m = window.metrics
        drifted = ", ".join(window.drift.drifted_columns) if window.drift else "(reference)"
        quality = m.get("quality.accuracy", m.get("quality.rmse"))
        typer.echo(
            f"  {window.window.label}  n={window.n:<7} drifted: {drifted or 'none':<30} "
            f"accuracy {_fmt(quality)} (estimated {_fmt(m.get('estimated.accuracy'))})  "
            f"p99 {_fmt(m.get('ops.latency_p99_ms'))} ms"
        )
    for event in run.alert_events:
        typer.echo(f"  ALERT {event.rule} {event.status}: {event.message}")
    typer.echo(f"report: {run.report_dir}/report.html")


@monitor_app.command("report")
def monitor_report(
    run_id: Annotated[str, typer.Argument(help="A run id, or 'latest'.")] = "latest",
    output_format: Annotated[str, typer.Option("--format", help="html or json.")] = "html",
    output: Annotated[Path | None, typer.Option(help="Copy the report to this file.")] = None,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Print the path of a saved report (or copy it to --output)."""
    from loopml.monitoring import load_run

    if output_format not in ("html", "json"):
        raise ConfigError(
            f"The '--format' option must be 'html' or 'json'. Got {output_format!r} instead."
        )
    run = load_run(Workspace.open(directory), run_id)
    source = Path(run["path"]) / f"report.{output_format}"
    if output is not None:
        shutil.copyfile(source, output)
        typer.echo(str(output))
    else:
        typer.echo(str(source))


@monitor_app.command("alerts")
def monitor_alerts(
    limit: Annotated[int, typer.Option(help="How many recent transitions to show.")] = 20,
    as_json: Annotated[bool, _JSON] = False,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Show each alert rule's state and the latest firing / resolved transitions."""
    from loopml.monitoring import alert_status

    status = alert_status(Workspace.open(directory), limit=limit)
    if as_json:
        typer.echo(json.dumps(status, indent=2, default=str))
        return
    if not status["rules"]:
        typer.echo("no alert rules (add them under monitor.alerts in loopml.yaml)")
    for rule in status["rules"]:
        side = ">" if rule["above"] else "<"
        typer.echo(
            f"{rule['rule']}: {rule['status']} ({rule['metric']} {side} {rule['threshold']:g}; "
            f"last value {_fmt(rule['value'])}, since {rule['since'] or '-'})"
        )
    for event in status["events"]:
        typer.echo(f"  {event['at']}  {event['rule']} {event['status']}: {event['message']}")

"""``loopml simulate``: replay a time-ordered dataset through the loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from loopml.core import ConfigError


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command."""
    app.command("simulate")(simulate)


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
    retrain = RetrainConfig(every=every, on_drift=on_drift, mode=mode, window=window)  # type: ignore[arg-type]
    rollout = RolloutConfig(shadow=shadow) if shadow else None  # type: ignore[arg-type]
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

"""``loopml serve``, ``loopml predict`` and ``loopml compile`` over ``loopml.serving``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from loopml.core import ConfigError, Workspace

_DIR = typer.Option("--dir", help="The workspace folder (or a folder inside it).")
_MODEL_HELP = "The model: NAME@ALIAS, NAME/VERSION or NAME (its champion)."


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``predict`` and ``compile``."""
    app.command("serve")(serve_command)
    app.command("predict")(predict_command)
    app.command("compile")(compile_command)


def serve_command(
    model: Annotated[str, typer.Argument(help=_MODEL_HELP)],
    directory: Annotated[Path, _DIR] = Path("."),
    host: Annotated[str | None, typer.Option(help="Address (default: serve.host).")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default: serve.port; 0 picks one).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes, each on its own SO_REUSEPORT socket.")
    ] = None,
    poll: Annotated[
        float, typer.Option(help="Seconds between registry checks for a moved alias (0: never).")
    ] = 5.0,
    backend: Annotated[
        str,
        typer.Option(
            help="auto (a compiled backend that passed its gate, else lightgbm), "
            "lightgbm, tl2cgen or onnx."
        ),
    ] = "auto",
    budget_thread: Annotated[
        bool | None,
        typer.Option(
            "--budget-thread/--no-budget-thread",
            help="Run the model in a thread so the latency budget can cut it off "
            "(default: only for models that are not known to be fast).",
        ),
    ] = None,
) -> None:
    """Serve a registered model over HTTP (admin token: env LOOPML_ADMIN_TOKEN)."""
    from loopml.serving import ServeOptions, serve

    options = ServeOptions(model, host, port, workers, poll, backend, budget_thread)
    serve(Workspace.open(directory), options)


def predict_command(
    model: Annotated[str, typer.Option("--model", help=_MODEL_HELP)],
    input: Annotated[Path, typer.Option("--input", help="Parquet file or folder to score.")],
    output: Annotated[Path, typer.Option("--output", help="Parquet file (folder with dask).")],
    directory: Annotated[Path, _DIR] = Path("."),
    batch_size: Annotated[int, typer.Option(help="Rows per batch (bounds memory).")] = 65_536,
    compute: Annotated[
        str, typer.Option(help="local, or dask (backends.dask_scheduler, else a LocalCluster).")
    ] = "local",
) -> None:
    """Score a Parquet file with a registered model; the model version is written per row."""
    from loopml.serving import load_registered, predict_parquet

    workspace = Workspace.open(directory)
    loaded = load_registered(model, tracking_uri=workspace.tracking_uri)
    engine: object = compute
    if compute not in ("local", "dask"):
        raise ConfigError(f"The '--compute' option must be local or dask. Got {compute!r} instead.")
    scheduler = workspace.config.backends.dask_scheduler
    if compute == "dask" and scheduler:
        from distributed import Client

        engine = Client(scheduler)  # type: ignore[no-untyped-call]
    result = predict_parquet(loaded, input, output, batch_size=batch_size, compute=engine)
    typer.echo(
        f"scored {result.rows} rows with {result.model} version {result.version} in "
        f"{result.seconds:.2f} s ({result.rows_per_second:,.0f} rows/s) -> {result.output}"
    )


def compile_command(
    model: Annotated[str, typer.Option("--model", help=_MODEL_HELP)],
    data: Annotated[
        Path, typer.Option("--data", help="Held-out rows (Parquet) for the parity gate.")
    ],
    backend: Annotated[str, typer.Option(help="tl2cgen or onnx.")] = "tl2cgen",
    tolerance: Annotated[
        float | None, typer.Option(help="Max absolute difference allowed (default per backend).")
    ] = None,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Build a fast backend for a LightGBM model and check it against the native model."""
    import pandas as pd

    from loopml.serving import compile_model, load_registered

    workspace = Workspace.open(directory)
    loaded = load_registered(model, tracking_uri=workspace.tracking_uri)
    if not data.is_file():
        raise ConfigError(f"The '--data' option must name a Parquet file. {data} is not one.")
    rows = pd.read_parquet(data)
    report = compile_model(
        loaded,
        rows,
        backend=backend,
        out_dir=workspace.state_dir / "compiled",
        tolerance=tolerance,
    )
    typer.echo(json.dumps(report.to_json(), indent=2))

"""``loopml train``, ``loopml runs list | show``, ``loopml models list | show | register | alias``:
thin calls into ``loopml.training`` and ``loopml.registry``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from loopml.core import Workspace

_DIR = typer.Option("--dir", help="The workspace folder (or a folder inside it).")
_JSON = typer.Option("--json", help="Print JSON instead of text.")


def register(app: typer.Typer) -> None:
    """Add ``train`` and the ``runs`` and ``models`` groups to ``app``."""
    app.command("train")(train_command)
    runs = typer.Typer(help="Tracked training runs.", no_args_is_help=True)
    runs.command("list")(runs_list)
    runs.command("show")(runs_show)
    app.add_typer(runs, name="runs")
    models = typer.Typer(help="The model registry: versions and aliases.", no_args_is_help=True)
    models.command("list")(models_list)
    models.command("show")(models_show)
    models.command("register")(models_register)
    models.command("alias")(models_alias)
    app.add_typer(models, name="models")


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, sort_keys=True))


def train_command(
    directory: Annotated[str, _DIR] = ".",
    register_as: Annotated[
        str | None, typer.Option("--register", help="Register the best model under this name.")
    ] = None,
    reproduce_run: Annotated[
        str | None,
        typer.Option(
            "--reproduce",
            metavar="RUN_ID",
            help="Retrain run RUN_ID from its record and check the predictions match.",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override train.seed.")] = None,
) -> None:
    """Train baselines, then the configured candidates (tuned), tracked in MLflow.

    Exit status 1 when no candidate beats the best baseline, or when --reproduce finds
    different predictions.
    """
    import warnings

    from loopml.core import LoopmlWarning
    from loopml.training import reproduce, train_workspace

    workspace = Workspace.open(directory)
    if reproduce_run is not None:
        report = reproduce(
            reproduce_run,
            tracking_uri=workspace.tracking_uri,
            artifact_root=workspace.artifacts_dir,
        )
        typer.echo(report.summary())
        raise typer.Exit(0 if report.matches else 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoopmlWarning)  # the summary says it
        result = train_workspace(workspace, seed=seed)
    typer.echo(result.summary())
    if register_as is not None and result.best is not None:
        from loopml.registry import register_model

        version = register_model(result, register_as, tracking_uri=result.tracking_uri)
        typer.echo(f"registered {version.name} version {version.version}")
    if result.best is None:
        typer.echo("no candidate beat the best baseline; nothing to register", err=True)
        raise typer.Exit(1)


def runs_list(
    directory: Annotated[str, _DIR] = ".",
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 20,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """List training runs, newest first."""
    from loopml.training import list_runs

    workspace = Workspace.open(directory)
    runs = list_runs(tracking_uri=workspace.tracking_uri, limit=limit)
    if as_json:
        _echo_json(runs)
        return
    if not runs:
        typer.echo("no training runs yet (run `loopml train`)")
    for run in runs:
        verdict = "beats baseline" if run["beats_baseline"] else "below baseline"
        typer.echo(
            f"{run['run_id']}  {run['start_time']}  {run['status']}  {run['task']}  "
            f"best={run['best']}  {verdict}"
        )


def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    directory: Annotated[str, _DIR] = ".",
) -> None:
    """Show a run: its tags (git, seeds, lineage), params, metrics and nested runs."""
    from loopml.training import get_run

    workspace = Workspace.open(directory)
    _echo_json(get_run(run_id, tracking_uri=workspace.tracking_uri))


def models_list(
    directory: Annotated[str, _DIR] = ".",
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """List registered models, their versions and aliases."""
    from loopml.registry import list_models

    models = list_models(tracking_uri=Workspace.open(directory).tracking_uri)
    if as_json:
        _echo_json(models)
        return
    if not models:
        typer.echo("no registered models (use `loopml train --register NAME`)")
    for model in models:
        aliases = ", ".join(f"{a}->v{v}" for a, v in sorted(model["aliases"].items())) or "-"
        typer.echo(f"{model['name']}  versions={model['versions']}  aliases: {aliases}")


def models_show(
    name: Annotated[str, typer.Argument(help="Model name, or models:/name@alias.")],
    directory: Annotated[str, _DIR] = ".",
    version: Annotated[int | None, typer.Option(help="A version number.")] = None,
    alias: Annotated[str | None, typer.Option(help="An alias, e.g. champion.")] = None,
) -> None:
    """Show a version (default: champion, else latest), verifying its artifacts."""
    from loopml.registry import load_model

    loaded = load_model(
        name, version=version, alias=alias, tracking_uri=Workspace.open(directory).tracking_uri
    )
    _echo_json(
        {
            **loaded.info.to_dict(),
            "task": loaded.task,
            "features": loaded.features,
            "baseline": loaded.baseline.name,
            "evaluation": {
                k: v for k, v in loaded.evaluation.items() if k in ("metric", "model", "baseline")
            },
            "artifacts_verified": sorted(loaded.info.hashes),
        }
    )


def models_register(
    run_id: Annotated[str, typer.Argument(help="The training run whose model to register.")],
    name: Annotated[str, typer.Argument(help="The model name.")],
    directory: Annotated[str, _DIR] = ".",
    alias: Annotated[str | None, typer.Option(help="Also point this alias at it.")] = None,
) -> None:
    """Register a run's model as a new version (refused if it did not beat its baseline)."""
    from loopml.registry import register_model

    version = register_model(
        run_id, name, alias=alias, tracking_uri=Workspace.open(directory).tracking_uri
    )
    typer.echo(f"registered {version.name} version {version.version}")


def models_alias(
    name: Annotated[str, typer.Argument(help="The model name.")],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. champion or challenger.")],
    version: Annotated[int, typer.Argument(help="The version it points to.")],
    directory: Annotated[str, _DIR] = ".",
) -> None:
    """Point an alias at a version."""
    from loopml.registry import set_alias

    set_alias(name, alias, version, tracking_uri=Workspace.open(directory).tracking_uri)
    typer.echo(f"{name}@{alias} -> version {version}")

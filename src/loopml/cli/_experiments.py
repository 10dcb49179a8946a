"""``loopml experiment start|status|stop|report``; ``loopml rollout start|status|abort|resume``.

Thin wrappers over ``loopml.experiments``; state lives in the workspace's state store.
Exit codes: 0 ok, 1 a data problem (e.g. a sample-ratio mismatch in a report), 2 usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.core import ConfigError, DataError, SourceError, StateStore, Workspace

if TYPE_CHECKING:
    import pandas as pd

    from loopml.experiments import CanaryState, Variant

_DIR = typer.Option("--dir", help="The workspace folder (or a folder inside it).")
_JSON = typer.Option("--json", help="Print JSON instead of text.")

experiment_app = typer.Typer(
    help="A/B experiments: start, status, stop, report.", no_args_is_help=True
)
rollout_app = typer.Typer(
    help="Canary rollouts: start, status, abort, resume.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the ``experiment`` and ``rollout`` command groups."""
    app.add_typer(experiment_app, name="experiment")
    app.add_typer(rollout_app, name="rollout")


def _store(directory: Path) -> tuple[Workspace, StateStore]:
    workspace = Workspace.open(directory)
    return workspace, StateStore(workspace.state_url)


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def parse_variant(text: str) -> Variant:
    """``name=version`` or ``name=version:weight``, as written after ``--variant``."""
    from loopml.experiments import Variant

    name, sep, rest = text.partition("=")
    version, _, weight = rest.partition(":")
    try:
        share = float(weight) if weight else 1.0
    except ValueError:
        share = -1.0
    if not sep or not name or not version or share <= 0:
        raise ConfigError(
            f"The '--variant' option must look like 'control=v1' or 'treatment=v2:0.5'. "
            f"Got {text!r} instead."
        )
    return Variant(name.strip(), version.strip(), share)


@experiment_app.command("start")
def experiment_start(
    name: Annotated[str, typer.Argument(help="The experiment's name (also its default salt).")],
    variant: Annotated[
        list[str], typer.Option("--variant", help="name=version[:weight], two or more.")
    ],
    salt: Annotated[str | None, typer.Option(help="Hash salt (default: the name).")] = None,
    unit: Annotated[str, typer.Option(help="The randomisation unit (user, card, ...).")] = "user",
    traffic: Annotated[float, typer.Option(help="Share of units enrolled (0, 1].")] = 1.0,
    layer: Annotated[str | None, typer.Option(help="Exclusive layer name.")] = None,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Start an A/B experiment: record its variants, weights and salt."""
    from loopml.experiments import start_experiment

    variants = [parse_variant(v) for v in variant]
    if len(variants) < 2:
        raise ConfigError(
            f"An experiment needs two or more --variant options. Got {len(variants)}."
        )
    _, store = _store(directory)
    record = start_experiment(
        store, name, variants, salt=salt, unit=unit, layer=layer, traffic=traffic
    )
    shares = ", ".join(f"{v['name']}={v['version']} ({v['weight']:g})" for v in record["variants"])
    typer.echo(f"started experiment {name!r} on {unit}s: {shares}; salt {record['salt']!r}")


@experiment_app.command("status")
def experiment_status(
    name: Annotated[str | None, typer.Argument(help="One experiment (default: all).")] = None,
    as_json: Annotated[bool, _JSON] = False,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Show one experiment or list them all."""
    from loopml.experiments import get_experiment, list_experiments

    _, store = _store(directory)
    records = [get_experiment(store, name)] if name else list_experiments(store)
    if as_json:
        _echo_json(records)
        return
    if not records:
        typer.echo("no experiments")
    for r in records:
        shares = ", ".join(f"{v['name']}={v['version']} ({v['weight']:g})" for v in r["variants"])
        stop = (
            f", stopped {r['stopped_at']} ({r['stop_reason'] or 'no reason'})"
            if r["stopped_at"]
            else ""
        )
        typer.echo(f"{r['name']}: {r['status']} since {r['started_at']}{stop}; {shares}")


@experiment_app.command("stop")
def experiment_stop(
    name: Annotated[str, typer.Argument(help="The experiment to stop.")],
    reason: Annotated[str, typer.Option(help="Why it stops.")] = "",
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Stop an experiment (units then get the default version)."""
    from loopml.experiments import stop_experiment

    _, store = _store(directory)
    record = stop_experiment(store, name, reason=reason)
    typer.echo(f"stopped experiment {name!r} at {record['stopped_at']}")


def read_outcomes(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file of per-unit outcomes."""
    import pandas as pd

    if not path.is_file():
        raise SourceError(f"The outcomes file {path} does not exist.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path)
    except Exception as error:  # pandas raises many kinds; name the file
        raise SourceError(f"Cannot read {path}: {error}") from None
    raise SourceError(f"The outcomes file {path} must be .csv or .parquet. Got {suffix or 'none'}.")


@experiment_app.command("report")
def experiment_report(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    data: Annotated[Path, typer.Option(help="CSV/Parquet, one row per unit.")],
    metric: Annotated[str, typer.Option(help="The outcome column (0/1 or numeric).")],
    variant_column: Annotated[str, typer.Option(help="Column holding the variant.")] = "variant",
    covariate: Annotated[str | None, typer.Option(help="Pre-period column for CUPED.")] = None,
    order_column: Annotated[
        str | None, typer.Option(help="Arrival-time column: adds the mSPRT p-value.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    as_json: Annotated[bool, _JSON] = False,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Analyse an experiment: SRM check, effect, interval, p-value and decision."""
    from loopml.experiments import ab_report, get_experiment

    _, store = _store(directory)
    record = get_experiment(store, name)
    variants = record["variants"]
    if len(variants) != 2:
        raise ConfigError(f"report compares two variants; {name!r} has {len(variants)}.")
    total = sum(v["weight"] for v in variants)
    report = ab_report(
        read_outcomes(data), metric=metric, variant_column=variant_column,
        control=variants[0]["name"], treatment=variants[1]["name"], covariate=covariate,
        order_column=order_column, expected_fractions=[v["weight"] / total for v in variants],
        alpha=alpha,
    )  # fmt: skip
    if as_json:
        _echo_json(report.to_dict())
    else:
        typer.echo(report.summary())
    if report.srm.alarm:
        raise DataError(
            f"experiment {name!r}: sample ratio mismatch (p = {report.srm.p_value:.2g})",
            hint="the split differs from the plan; check assignment and logging",
        )


def _rollout_line(state: CanaryState) -> str:
    text = (
        f"{state.name}: {state.status} at {state.weight:g}% to {state.challenger} "
        f"(champion {state.champion}; steps {'/'.join(f'{s:g}' for s in state.spec.steps)})"
    )
    return text + (f"; {state.reason}" if state.reason else "")


@rollout_app.command("start")
def rollout_start(
    name: Annotated[str, typer.Argument(help="The rollout (e.g. the model's name).")],
    champion: Annotated[str, typer.Option(help="The version serving now.")],
    challenger: Annotated[str, typer.Option(help="The version to roll out.")],
    steps: Annotated[
        str | None, typer.Option(help="Traffic steps in percent, e.g. '5,25,50,100'.")
    ] = None,
    min_samples: Annotated[int | None, typer.Option(help="Requests per analysis.")] = None,
    failure_limit: Annotated[int, typer.Option(help="Failed analyses before rollback.")] = 1,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Start a canary rollout (steps default to continual.rollout.canary in loopml.yaml)."""
    from loopml.experiments import CanarySpec, start_rollout

    workspace, store = _store(directory)
    configured = workspace.config.continual.rollout.canary
    step_values = configured.steps if configured else [5.0, 25.0, 50.0, 100.0]
    if steps is not None:
        try:
            step_values = [float(s) for s in steps.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(
                f"The '--steps' option must be comma-separated percentages like '5,25,50,100'. "
                f"Got {steps!r} instead."
            ) from None
    samples = min_samples or (configured.min_samples if configured else 200)
    spec = CanarySpec(steps=tuple(step_values), min_samples=samples, failure_limit=failure_limit)
    state = start_rollout(store, name, champion, challenger, spec)
    typer.echo(f"started {_rollout_line(state)}")


@rollout_app.command("status")
def rollout_status(
    name: Annotated[str | None, typer.Argument(help="One rollout (default: all).")] = None,
    as_json: Annotated[bool, _JSON] = False,
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Show one rollout (with its analyses) or list them all."""
    from loopml.experiments import get_rollout, list_rollouts

    _, store = _store(directory)
    states = [get_rollout(store, name)] if name else list_rollouts(store)
    if as_json:
        _echo_json([s.to_dict() for s in states])
        return
    if not states:
        typer.echo("no rollouts")
    for state in states:
        typer.echo(_rollout_line(state))
        for entry in state.history if name else ():
            typer.echo(f"  {entry['time']}  {entry['weight']:g}%  {entry['outcome']}")


@rollout_app.command("abort")
def rollout_abort(
    name: Annotated[str, typer.Argument(help="The rollout to abort.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the state store).")],
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Roll back to 0% now, recording the reason."""
    from loopml.experiments import abort_rollout

    _, store = _store(directory)
    state = abort_rollout(store, name, reason)
    typer.echo(f"rolled back {_rollout_line(state)}")


@rollout_app.command("resume")
def rollout_resume(
    name: Annotated[str, typer.Argument(help="A paused rollout.")],
    directory: Annotated[Path, _DIR] = Path("."),
) -> None:
    """Continue a rollout that paused on inconclusive analyses, with a fresh window."""
    from loopml.experiments import resume_rollout

    _, store = _store(directory)
    state = resume_rollout(store, name)
    typer.echo(f"resumed {_rollout_line(state)}")

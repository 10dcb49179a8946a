"""``loopml features list | build | materialize | get | check-skew``: thin calls into
``loopml.features``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from loopml.core import ConfigError, DataError, Workspace, format_duration

_DIR = typer.Option("--dir", help="The workspace folder (or a folder inside it).")
_VIEWS = typer.Option("--view", "-v", help="A feature view (repeat for several; default all).")


def register(app: typer.Typer) -> None:
    """Add the ``features`` command group to ``app``."""
    group = typer.Typer(
        help="Feature views, training sets, the online store, skew checks.", no_args_is_help=True
    )
    group.command("list")(list_views)
    group.command("build")(build)
    group.command("materialize")(materialize_command)
    group.command("get")(get)
    group.command("check-skew")(check_skew_command)
    app.add_typer(group, name="features")


def list_views(directory: Annotated[str, _DIR] = ".") -> None:
    """List the feature views: kind, entity keys, source, TTL, version and features."""
    from loopml.features import load_views

    views = load_views(Workspace.open(directory))
    if not views:
        typer.echo("no feature views (add them under `features:` in loopml.yaml)")
        return
    for name, view in views.items():
        ttl = format_duration(view.ttl_delta) if view.ttl_delta else "-"
        features = ", ".join(view.feature_names) or "(every column of the source)"
        typer.echo(
            f"{name}  [{view.kind}]  keys={','.join(view.keys)}  source={view.source}  "
            f"ttl={ttl}  version={view.version}\n    {features}"
        )


def build(
    directory: Annotated[str, _DIR] = ".",
    views: Annotated[list[str] | None, _VIEWS] = None,
    refresh: Annotated[bool, typer.Option(help="Ingest the sources anew first.")] = False,
) -> None:
    """Build the training set of `labels:` and the views, saved with its version record."""
    from loopml.features import build_workspace_training_set

    result, path = build_workspace_training_set(
        Workspace.open(directory), views or None, refresh=refresh
    )
    record = result.record
    typer.echo(
        f"training set {record['id']}: {record['rows']} rows, "
        f"{len(result.frame.columns)} columns -> {path}"
    )
    for name, info in record["views"].items():
        typer.echo(f"  {name} @ {info['version']} from {info['source']}@{info['source_version']}")


def materialize_command(
    directory: Annotated[str, _DIR] = ".",
    views: Annotated[list[str] | None, _VIEWS] = None,
    end: Annotated[
        str | None, typer.Option(help="ISO time to materialise up to (default now).")
    ] = None,
    full: Annotated[bool, typer.Option(help="Ignore the high-water marks.")] = False,
    refresh: Annotated[bool, typer.Option(help="Ingest the sources anew first.")] = False,
) -> None:
    """Copy new feature values into the online store (incremental)."""
    from loopml.features import materialize

    result = materialize(
        Workspace.open(directory), views or None, end=_time(end, "end"), full=full, refresh=refresh
    )
    typer.echo(str(result))


def get(
    entity: Annotated[
        list[str], typer.Option("--entity", "-e", help="A key, like card_id=42 (repeat for more).")
    ],
    directory: Annotated[str, _DIR] = ".",
    views: Annotated[list[str] | None, _VIEWS] = None,
) -> None:
    """Read one entity's online feature values, with event times and statuses, as JSON."""
    from loopml.features import get_online_features

    keys = _entity(entity)
    records = get_online_features(Workspace.open(directory), keys, views or None)
    payload: dict[str, Any] = {
        name: {
            "status": r.status,
            "event_time": r.event_time.isoformat() if r.event_time else None,
            "values": r.values,
        }
        for name, r in records.items()
    }
    typer.echo(json.dumps(payload, indent=2, default=str))


def check_skew_command(
    directory: Annotated[str, _DIR] = ".",
    views: Annotated[list[str] | None, _VIEWS] = None,
    since: Annotated[str | None, typer.Option(help="ISO time: replay requests from here.")] = None,
    until: Annotated[
        str | None, typer.Option(help="ISO time: replay requests before this.")
    ] = None,
    tolerance: Annotated[float, typer.Option(help="Relative tolerance for numbers.")] = 1e-9,
) -> None:
    """Replay the feature log through the offline store; exit 1 when skew is found."""
    from loopml.features import check_skew

    report = check_skew(
        Workspace.open(directory),
        views=views or None,
        since=_time(since, "since"),
        until=_time(until, "until"),
        tolerance=tolerance,
    )
    typer.echo(str(report))
    if not report.ok:
        raise DataError("training-serving skew found (see the table above)")


def _entity(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"The '--entity' option must look like card_id=42. Got {pair!r} instead."
            )
        out[key.strip()] = value.strip()
    return out


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"The '--{name}' option must be an ISO time like "
            f"2024-05-01T00:00:00Z. Got {value!r} instead."
        ) from None
    if parsed.tzinfo is None:
        raise ConfigError(
            f"The '--{name}' option needs a time zone, e.g. {value}Z. Got {value!r} instead."
        )
    return parsed

"""The data steps the command line runs: init a project, validate and profile snapshots."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from loopml.core import (
    Config,
    ConfigError,
    LabelsConfig,
    SchemaError,
    SourceConfig,
    SourceError,
    SplitConfig,
    Workspace,
)
from loopml.data._frames import open_table
from loopml.data._profile import Profile, profile
from loopml.data._schema import Schema, infer_schema
from loopml.data._snapshots import check_table_name, get_snapshot, list_snapshots
from loopml.data._sources import quote, to_source_config
from loopml.data._validation import Problem, ValidationReport, validate_batch

__all__ = [
    "InitResult",
    "init_project",
    "reference_schema",
    "snapshot_profile",
    "validate_snapshot",
]

_TARGET_NAMES = ("target", "label", "labels", "y", "class", "is_fraud", "fraud", "churn", "outcome")
_VALIDATE_BATCH_ROWS = 262_144


@dataclass(frozen=True)
class InitResult:
    """What ``init_project`` wrote and every choice it made, in words (see ``init_project``).

    >>> InitResult.__dataclass_fields__["choices"].type
    'list[str]'
    """

    workspace: Workspace
    config: Config
    table: str
    schema: Schema
    choices: list[str] = field(default_factory=list)


def init_project(
    data_file: str | os.PathLike[str],
    *,
    directory: str | os.PathLike[str] = ".",
    target: str | None = None,
    force: bool = False,
) -> InitResult:
    """Write ``loopml.yaml`` for a data file: infer its schema, propose task and timestamp.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "sales.csv").write_text(
    ...     "time,store,units\\n2024-01-01T00:00:00Z,a,3.5\\n2024-01-02T00:00:00Z,b,5.25\\n")
    >>> result = init_project(folder / "sales.csv", directory=folder, target="units")
    >>> result.config.task, result.config.sources["sales"].timestamp
    ('regression', 'time')
    """
    root = Path(directory).resolve()
    data_path = Path(data_file).resolve()
    if not data_path.is_file():
        raise SourceError(
            f"data file {data_path} does not exist", hint="give the path of a CSV/Parquet/JSON file"
        )
    table = _table_name(data_path)
    source, schema, choices = _inspect(data_path, root, target)
    task = _propose_task(data_path, source, schema, choices)
    config = Config(
        project=_project_name(root),
        task=task,
        sources={table: source},
        labels=LabelsConfig(source=table, target=schema.target) if schema.target else None,
        split=SplitConfig(by="time" if source.timestamp else _untimed_split(task)),
    )
    workspace = Workspace.create(root, config, overwrite=force)
    choices.insert(0, f"table {table!r} reads {source.path}")
    return InitResult(workspace, config, table, schema, choices)


def _table_name(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", path.name.split(".")[0]).strip("._-")
    return name or "data"


def _project_name(root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", root.name).strip("._-")
    return name or "project"


def _untimed_split(task: str | None) -> Any:
    return (
        "stratified"
        if task in ("binary_classification", "multiclass_classification")
        else ("random")
    )


def _inspect(
    data_path: Path, root: Path, target: str | None
) -> tuple[SourceConfig, Schema, list[str]]:
    choices: list[str] = []
    shown = str(data_path.relative_to(root)) if data_path.is_relative_to(root) else str(data_path)
    if not data_path.is_relative_to(root):
        choices.append(f"the data file is outside the workspace; loopml reads it from {shown}")
    source = to_source_config(shown).model_copy(update={"path": str(data_path)})
    try:
        schema = infer_schema(source)
    except SchemaError as error:
        if error.context.get("reason") != "naive_timestamp":
            raise
        source = source.model_copy(update={"timezone": "UTC"})
        choices.append(
            f"column {error.context.get('column')!r} holds timestamps without a time zone: "
            "declared `timezone: UTC` (change it if they are local times)"
        )
        schema = infer_schema(source)
    target = _pick_target(schema, target, choices)
    stamp = _pick_timestamp(schema, choices)
    schema = infer_schema(source, target=target, timestamp=stamp)
    source = source.model_copy(update={"path": shown, "timestamp": stamp})
    return source, schema, choices


def _pick_target(schema: Schema, target: str | None, choices: list[str]) -> str | None:
    if target is not None:
        if target not in schema:
            raise ConfigError(
                f"the data has no column {target!r} to use as --target; "
                f"its columns are {schema.names}",
                hint="pass one of those columns",
            )
        return target
    lowered = {name.lower(): name for name in schema.names}
    found = next((lowered[n] for n in _TARGET_NAMES if n in lowered), None)
    if found is None:
        choices.append("no target column given or recognised: pass --target COL to set the task")
    else:
        choices.append(f"target {found!r} (recognised by its name; pass --target to change it)")
    return found


def _pick_timestamp(schema: Schema, choices: list[str]) -> str | None:
    stamps = [c.name for c in schema.columns.values() if c.dtype == "timestamp"]
    if not stamps:
        choices.append("no timestamp column found: splits will not be by time")
        return None
    named = [n for n in stamps if re.search(r"time|date|stamp|_at$", n, re.IGNORECASE)]
    chosen = (named or stamps)[0]
    others = (
        f" (other timestamp columns: {[s for s in stamps if s != chosen]})"
        if (len(stamps) > 1)
        else ""
    )
    choices.append(f"timestamp column {chosen!r}{others}")
    return chosen


def _propose_task(data_path: Path, source: SourceConfig, schema: Schema, choices: list[str]) -> Any:
    target = schema.target
    if target is None:
        return None
    column = schema[target]
    absolute = source.model_copy(update={"path": str(data_path)})
    with open_table(absolute) as table:
        distinct = table.con.sql(
            f"SELECT count(DISTINCT {quote(target)}) FROM {table.from_sql}"
        ).fetchall()[0][0]
    zero_one = column.min == 0.0 and column.max == 1.0
    if column.dtype == "bool" or (distinct == 2 and (column.dtype != "float" or zero_one)):
        task = "binary_classification"
    elif column.dtype in ("category", "string") or (column.dtype == "int" and distinct <= 20):
        task = "multiclass_classification"
    else:
        task = "regression"
    choices.append(f"task {task} ({target!r} is {column.dtype} with {distinct} distinct values)")
    return task


def reference_schema(workspace: Workspace, table: str) -> Schema:
    """The schema inferred from the first snapshot of ``table`` (its reference).

    >>> import tempfile
    >>> from loopml.core import Config, Workspace
    >>> from loopml.data import ingest
    >>> ws = Workspace.create(tempfile.mkdtemp(), Config(project="demo"))
    >>> _ = (ws.root / "t.csv").write_text("x\\n1\\n2\\n")
    >>> _ = ingest(ws, "t", "t.csv")
    >>> reference_schema(ws, "t")["x"].max
    2.0
    """
    first = list_snapshots(workspace, table)
    if not first:
        get_snapshot(workspace, table)  # raises NotFoundError naming what exists
    config = workspace.config
    target = config.labels.target if config.labels and config.labels.source == table else None
    source = config.sources.get(table)
    stamp = first[0].timestamp or (source.timestamp if source else None)
    columns = first[0].schema
    return infer_schema(
        first[0],
        target=target if target in columns else None,
        timestamp=stamp if stamp in columns else None,
    )


def validate_snapshot(
    workspace: Workspace,
    table: str,
    version: str | None = None,
    schema: Schema | str | os.PathLike[str] | None = None,
) -> ValidationReport:
    """Validate a snapshot (the newest by default) against a schema, batch by batch.

    The schema defaults to the one inferred from the first snapshot of the table.

    >>> import tempfile
    >>> from loopml.core import Config, Workspace
    >>> from loopml.data import ingest
    >>> ws = Workspace.create(tempfile.mkdtemp(), Config(project="demo"))
    >>> _ = (ws.root / "t.csv").write_text("x\\n1\\n2\\n")
    >>> _ = ingest(ws, "t", "t.csv")
    >>> _ = (ws.root / "t.csv").write_text("x\\n1\\n7\\n")
    >>> _ = ingest(ws, "t", "t.csv")
    >>> [str(p) for p in validate_snapshot(ws, "t").problems]  # doctest: +ELLIPSIS
    ["column 'x', row 1: 7.0 is outside the range [1.0, 2.0] of the reference; ..."]
    """
    check_table_name(table)
    snapshot = get_snapshot(workspace, table, version)
    if schema is None:
        schema = reference_schema(workspace, table)
    elif not isinstance(schema, Schema):
        schema = Schema.load(schema)
    found: dict[tuple[str, str], Problem] = {}
    offset = 0
    for batch in pq.ParquetFile(snapshot.data_path).iter_batches(_VALIDATE_BATCH_ROWS):
        frame = batch.to_pandas()
        for problem in validate_batch(frame, schema).problems:
            _combine(found, problem, offset)
        offset += len(frame)
    return ValidationReport(offset, list(found.values()))


def _combine(found: dict[tuple[str, str], Problem], problem: Problem, offset: int) -> None:
    from dataclasses import replace

    shifted = replace(
        problem,
        row=None if problem.row is None else problem.row + offset,
        rows=tuple(r + offset for r in problem.rows),
    )
    key = (problem.column, problem.problem)
    if key not in found:
        found[key] = shifted
        return
    kept = found[key]
    if kept.row is None:  # a column-level problem (missing column) is the same in every batch
        return
    found[key] = replace(
        kept, count=kept.count + shifted.count, rows=(kept.rows + shifted.rows)[:5]
    )


def snapshot_profile(
    workspace: Workspace, table: str, version: str | None = None, *, refresh: bool = False
) -> Profile:
    """The profile of a snapshot, computed once and kept in ``.loopml/profiles/``.

    >>> import tempfile
    >>> from loopml.core import Config, Workspace
    >>> from loopml.data import ingest
    >>> ws = Workspace.create(tempfile.mkdtemp(), Config(project="demo"))
    >>> _ = (ws.root / "t.csv").write_text("x\\n1\\n3\\n")
    >>> snapshot_profile(ws, "t" if ingest(ws, "t", "t.csv") else "")["x"].mean
    2.0
    """
    snapshot = get_snapshot(workspace, table, version)
    path = profile_path(workspace, table, snapshot.version)
    if path.is_file() and not refresh:
        return Profile.load(path)
    result = profile(snapshot)
    result.save(path)
    return result


def profile_path(workspace: Workspace, table: str, version: str) -> Path:
    """Where ``snapshot_profile`` keeps the profile of one snapshot."""
    return workspace.state_dir / "profiles" / check_table_name(table) / f"{version}.json"

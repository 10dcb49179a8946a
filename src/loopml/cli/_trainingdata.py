"""``loopml data split | check-leakage | sample | label-delay``: training-data commands.

Each command is a thin wrapper over a public function of ``loopml.trainingdata``.
Exit codes: 0 ok, 1 leakage or bad data found, 2 usage or configuration error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from loopml.core import Config, ConfigError, DataError, Workspace, WorkspaceError

group = typer.Typer(
    help="Training data: splits, leakage checks, sampling, label delay.", no_args_is_help=True
)

_DIR = typer.Option("--dir", help="The workspace folder (defaults come from its loopml.yaml).")


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group."""
    app.add_typer(group, name="data")


def _read(path: Path) -> Any:
    import pandas as pd

    _check_file(path)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    return _parse_times(pd.read_csv(path))


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file", hint="pass a CSV or Parquet file")
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(
            f"{path}: unsupported file type '{path.suffix}'", hint="use a .csv or .parquet file"
        )


def _parse_times(frame: Any) -> Any:
    """CSV columns of ISO timestamps with an offset become UTC datetimes."""
    import pandas as pd

    for column in frame.columns:
        if pd.api.types.is_string_dtype(frame[column]) or frame[column].dtype == object:
            sample = frame[column].dropna().astype(str).head(20)
            iso = sample.str.match(r"^\d{4}-\d\d-\d\d[T ][\d:.]+(Z|[+-]\d\d:?\d\d)$")
            if len(sample) and iso.all():
                frame[column] = pd.to_datetime(frame[column], utc=True, format="mixed")
    return frame


def _config(directory: Path | None) -> Config:
    if directory is None:
        return Config(project="adhoc")
    try:
        return Workspace.open(directory).config
    except WorkspaceError:
        return Config(project="adhoc")


def _fraction_or_duration(value: str | None) -> float | str | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


_SPLIT_OPTION_WORDS = {
    "by": "must be one of time, group, stratified, stratified_group, random",
    "validation": "must be a fraction like 0.15 or a duration like '7d'",
    "test": "must be a fraction like 0.15 or a duration like '14d'",
    "gap": "must be a duration like '1d'",
}


def _split_config(config: Config, overrides: dict[str, Any]) -> Any:
    """``config.split`` with the command-line options applied, errors naming the option."""
    from pydantic import ValidationError

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return config.split.model_validate({**config.split.model_dump(), **given})
    except ValidationError as error:
        problems: dict[str, str] = {}
        for item in error.errors():
            field = str(item["loc"][0])
            problems.setdefault(field, _SPLIT_OPTION_WORDS.get(field, str(item["msg"])))
        text = "; ".join(
            f"--{field}: {message} (got {given.get(field)!r})"
            for field, message in problems.items()
        )
        raise ConfigError(text) from None


@group.command("split")
def split_command(
    data_file: Annotated[Path, typer.Argument(help="A CSV or Parquet file.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for train/validation/test.")],
    target: Annotated[str | None, typer.Option("--target", help="The label column.")] = None,
    timestamp: Annotated[str | None, typer.Option("--timestamp", help="Time column.")] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="time|group|stratified|stratified_group|random")
    ] = None,
    group_column: Annotated[str | None, typer.Option("--group", help="Group column.")] = None,
    validation: Annotated[str | None, typer.Option(help="Fraction or duration ('7d').")] = None,
    test: Annotated[str | None, typer.Option(help="Fraction or duration ('14d').")] = None,
    gap: Annotated[str | None, typer.Option(help="Duration dropped before each part.")] = None,
    horizon: Annotated[str | None, typer.Option(help="Label horizon the gap must cover.")] = None,
    id_column: Annotated[list[str] | None, typer.Option("--id", help="Row id column.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for shuffled splits.")] = None,
    directory: Annotated[Path | None, _DIR] = None,
) -> None:
    """Split a file (time split by default), check it for leakage, write three Parquet files."""
    from loopml.core import atomic_dir
    from loopml.trainingdata import build_training_set

    config = _config(directory)
    overrides = {
        "by": by,
        "validation": _fraction_or_duration(validation),
        "test": _fraction_or_duration(test),
        "gap": gap,
        "group": group_column,
        "seed": seed,
    }
    config = config.model_copy(update={"split": _split_config(config, overrides)})
    frame = _read(data_file)
    built = build_training_set(
        frame,
        config,
        target=target,
        timestamp=timestamp,
        group=group_column,
        id_columns=id_column or [],
        label_horizon=horizon,
    )
    with atomic_dir(out) as tmp:
        for name in ("train", "validation", "test"):
            getattr(built, name).to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "split.json").write_text(json.dumps(built.to_dict(), indent=2, default=str))
    counts = built.split.counts
    typer.echo(
        f"wrote {out}: train {counts['train']}, validation {counts['validation']}, "
        f"test {counts['test']} rows (by {built.split.by}; "
        f"{built.split.boundaries.get('dropped_in_gap', 0)} dropped in gaps)"
    )
    for name, report in built.reports.items():
        for finding in report.findings:
            typer.echo(f"  train vs {name}: {finding}")


@group.command("check-leakage")
def check_leakage_command(
    train_file: Annotated[Path, typer.Argument(help="Training rows (CSV or Parquet).")],
    test_file: Annotated[Path, typer.Argument(help="Validation or test rows.")],
    target: Annotated[str, typer.Option("--target", help="The label column.")],
    timestamp: Annotated[str | None, typer.Option("--timestamp")] = None,
    group_column: Annotated[str | None, typer.Option("--group")] = None,
    id_column: Annotated[list[str] | None, typer.Option("--id")] = None,
    horizon: Annotated[str | None, typer.Option(help="Label horizon.")] = None,
    acknowledge: Annotated[
        list[str] | None,
        typer.Option("--ack", help="A finding to accept, by name ('check' or 'check:column')."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    directory: Annotated[Path | None, _DIR] = None,
) -> None:
    """Run every leakage check of one file against another; exit 1 on a severe finding."""
    from loopml.core import atomic_write_text
    from loopml.trainingdata import check_leakage

    acknowledged = [*_config(directory).acknowledge, *(acknowledge or [])]
    report = check_leakage(
        _read(train_file),
        _read(test_file),
        target=target,
        timestamp=timestamp,
        group=group_column,
        id_columns=id_column,
        label_horizon=horizon,
        acknowledge=acknowledged,
    )
    typer.echo(report.summary())
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(report.to_dict(), indent=2))
    report.raise_for_severe()


class _Rows(Sequence[int]):
    """Row positions of one batch, offset into the file (what the reservoir keeps)."""

    def __init__(self, start: int, length: int) -> None:
        self.start, self.length = start, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self.start + i for i in range(*index.indices(self.length))]
        return self.start + int(index)


def _batches(path: Path) -> Iterator[Any]:
    import pandas as pd
    import pyarrow.parquet as pq

    if path.suffix.lower() == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
            yield batch.to_pandas()
    else:
        for chunk in pd.read_csv(path, chunksize=65_536):
            yield _parse_times(chunk)


def _reservoir(path: Path, n: int, seed: int) -> Any:
    """Stream the file once, keep row positions by Algorithm L, then read those rows."""
    import pandas as pd

    from loopml.trainingdata import ReservoirSampler

    _check_file(path)
    sampler, start = ReservoirSampler(n, seed=seed), 0
    for batch in _batches(path):
        sampler.update(_Rows(start, len(batch)))
        start += len(batch)
    wanted = set(sampler.sample())
    kept, start = [], 0
    for batch in _batches(path):
        rows = [i for i in range(len(batch)) if start + i in wanted]
        kept.append(batch.iloc[rows])
        start += len(batch)
    typer.echo(f"reservoir: {sampler.seen_} rows streamed, {sampler.draws_} random draws")
    return pd.concat(kept, ignore_index=True)


@group.command("sample")
def sample_command(
    data_file: Annotated[Path, typer.Argument(help="A CSV or Parquet file.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    method: Annotated[str, typer.Option(help="simple|stratified|weighted|reservoir")] = "simple",
    n: Annotated[int | None, typer.Option("--n", help="Rows to keep.")] = None,
    frac: Annotated[float | None, typer.Option("--frac", help="Share of rows to keep.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Stratify by this column.")] = None,
    weight: Annotated[str | None, typer.Option("--weight", help="Weight column.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Sample rows of a file; ``reservoir`` streams it without loading it whole."""
    from loopml.core import atomic_path
    from loopml.trainingdata import simple_sample, stratified_sample, weighted_sample

    if method == "reservoir":
        if n is None:
            raise ConfigError("data sample --method reservoir needs --n")
        sample = _reservoir(data_file, n, seed)
    elif method == "simple":
        sample = simple_sample(_read(data_file), n=n, frac=frac, seed=seed)
    elif method == "stratified":
        if by is None:
            raise ConfigError("data sample --method stratified needs --by COLUMN")
        sample = stratified_sample(_read(data_file), by, n=n, frac=frac, seed=seed)
    elif method == "weighted":
        if weight is None or n is None:
            raise ConfigError("data sample --method weighted needs --weight COLUMN and --n")
        sample = weighted_sample(_read(data_file), weight, n=n, seed=seed)
    else:
        raise ConfigError(
            f"The '--method' option must be simple, stratified, weighted or "
            f"reservoir. Got {method!r} instead."
        )
    with atomic_path(out) as tmp:
        sample.to_parquet(tmp, index=False)
    typer.echo(f"wrote {out}: {len(sample)} rows ({method})")


@group.command("label-delay")
def label_delay_command(
    predictions_file: Annotated[Path, typer.Argument(help="Predictions or events.")],
    labels_file: Annotated[Path, typer.Argument(help="Labels as they arrived.")],
    key: Annotated[str, typer.Option("--key", help="Column naming one prediction.")],
    prediction_time: Annotated[str, typer.Option("--prediction-time")],
    label_time: Annotated[str, typer.Option("--label-time")],
    horizon: Annotated[
        str | None,
        typer.Option(help="Only predictions at least this old count (default: the longest delay)."),
    ] = None,
    now: Annotated[str | None, typer.Option(help="ISO time of the join (default: now).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json")] = None,
) -> None:
    """How long labels take to arrive, and the window that would catch 95% of them."""
    from loopml.core import atomic_write_text, ensure_utc
    from loopml.trainingdata import label_delay

    when = None
    if now:
        try:
            when = ensure_utc(datetime.fromisoformat(now), where="--now")
        except ValueError:
            raise ConfigError(
                f"The '--now' option must be an ISO time like '2024-03-01T00:00:00+00:00'. "
                f"Got {now!r} instead."
            ) from None
    report = label_delay(
        _read(predictions_file),
        _read(labels_file),
        key=key,
        prediction_time=prediction_time,
        label_time=label_time,
        now=when,
        horizon=horizon,
    )
    record = report.to_dict()
    if record["cohort"] == 0:
        raise DataError(
            "label-delay: no prediction is old enough to have seen its labels",
            hint="pass a shorter --horizon or a later --now",
        )
    typer.echo(
        f"{record['predictions']} predictions, {record['labels']} labels; cohort of "
        f"{record['cohort']} predictions at least {record['horizon']} old"
    )
    typer.echo("delay quantiles: " + ", ".join(f"{k} {v}" for k, v in record["quantiles"].items()))
    typer.echo(
        "share of labels within: "
        + ", ".join(f"{k} {v:.1%}" for k, v in record["coverage"].items())
    )
    typer.echo(f"suggested feedback window (95% of labels): {record['suggested_window_95']}")
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(record, indent=2))

"""``loopml demo``: run, for real, every stage of the loop that loopml has so far.

The demo is a list of named steps over one shared state; each step does its work with the
public API a user would call and returns one line saying what it did. Later stages of the
loop append their steps to ``STEPS`` (features, training, evaluation, serving, ...).

Today's steps:

1. ``generate``   the card-fraud scenario (:func:`loopml.datasets.card_fraud`);
2. ``write``      it as Parquet files under ``<dir>/data`` as the bank knows it on the last
                  day (transactions before that day, chargebacks reported by then), the last
                  day apart as a fresh batch, the ground truth under ``<dir>/truth``;
3. ``workspace``  ``loopml.yaml`` declaring the sources, entities, labels and task;
4. ``ingest``     each source into a content-addressed snapshot;
5. ``profile``    the transactions snapshot (the reference monitoring will compare with);
6. ``labels``     the fraud rate and how late the chargebacks arrive, against the truth;
7. ``validate``   the fresh day, and a deliberately corrupted copy of it, against the
                  schema inferred from the training period.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopml.core import (
    Config,
    ConfigError,
    Workspace,
    WorkspaceError,
    atomic_path,
    atomic_write_text,
    load_config,
)
from loopml.datasets._card_fraud import CardFraud, card_fraud

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.data import Profile, Schema, ValidationReport

__all__ = ["DEMO_CONFIG", "DEMO_PROJECT", "STEPS", "DemoResult", "DemoStep", "run_demo"]

DEMO_PROJECT = "card-fraud-demo"
SOURCES = ("transactions", "chargebacks", "cards", "merchants")

DEMO_CONFIG: dict[str, Any] = {
    "project": DEMO_PROJECT,
    "task": "binary_classification",
    "sources": {
        "transactions": {"path": "data/transactions.parquet", "timestamp": "event_time"},
        "chargebacks": {"path": "data/chargebacks.parquet", "timestamp": "reported_at"},
        "cards": {"path": "data/cards.parquet"},
        "merchants": {"path": "data/merchants.parquet"},
    },
    "entities": {
        "card": {"key": "card_id", "description": "a payment card"},
        "merchant": {"key": "merchant_id", "description": "a merchant"},
        "transaction": {"key": "transaction_id", "description": "one payment"},
    },
    "labels": {
        "source": "chargebacks",
        "target": "is_fraud",
        "entity": "transaction",
        "timestamp": "reported_at",
        "feedback_window": "60d",
        "implicit_label": 0,
    },
}
"""The demo's ``loopml.yaml``, as a user would write it."""


@dataclass(frozen=True)
class DemoStep:
    """One finished step: its name, what it did, and how long it took."""

    name: str
    message: str
    seconds: float


@dataclass
class DemoResult:
    """Everything the demo produced; also written as ``<dir>/.loopml/reports/demo.json``."""

    directory: Path
    seed: int
    days: int
    world: CardFraud | None = None
    as_of: pd.Timestamp | None = None
    workspace: Workspace | None = None
    files: dict[str, Path] = field(default_factory=dict)
    snapshots: dict[str, Any] = field(default_factory=dict)
    new_versions: dict[str, bool] = field(default_factory=dict)
    profile: Profile | None = None
    profile_path: Path | None = None
    schema_path: Path | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    validation: ValidationReport | None = None
    corrupted_validation: ValidationReport | None = None
    planted: dict[str, int] = field(default_factory=dict)
    """Column -> row of each problem planted in the corrupted copy of the fresh day."""
    steps: list[DemoStep] = field(default_factory=list)
    summary_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """What later stages of the loop produced (training run, evaluation, simulation)."""

    @property
    def fresh(self) -> pd.DataFrame:
        """The fresh day's transactions (the batch that is validated)."""
        return pd.read_parquet(self.files["fresh"])


Step = Callable[[DemoResult], str]


def run_demo(
    directory: str | Path = "loopml-demo",
    *,
    days: int = 90,
    seed: int = 0,
    force: bool = False,
    console: Console | None = None,
    steps: list[Step] | None = None,
) -> DemoResult:
    """Run every step of the demo in ``directory`` and print what each one did.

    ``steps`` defaults to the data steps (``STEPS``); ``loopml demo`` passes the whole loop
    (``STEPS + loopml.continual.LOOP_STEPS``).

    Re-running in the same folder is safe: files are rewritten atomically and identical data
    maps to the same snapshot versions. A folder holding another project's ``loopml.yaml`` is
    refused unless ``force``, which first removes the folder's ``.loopml/`` state, its
    ``loopml.yaml`` and the files the demo writes (other files are left alone).

    >>> import tempfile
    >>> result = run_demo(tempfile.mkdtemp(), days=8, console=None)
    >>> [step.name for step in result.steps][:3]
    ['generate', 'write', 'workspace']
    >>> result.snapshots["transactions"].rows == len(result.world.transactions) - len(result.fresh)
    True
    >>> shutil.rmtree(result.directory)
    """
    from loopml.datasets._demo_report import print_step, print_summary

    if isinstance(days, bool) or not isinstance(days, int) or days < 2:
        raise ConfigError(
            f"The 'days' parameter of run_demo must be an integer >= 2. Got {days!r} instead."
        )
    result = DemoResult(directory=Path(directory).resolve(), seed=seed, days=days)
    _prepare_folder(result.directory, force)
    for step in STEPS if steps is None else steps:
        began = time.perf_counter()
        message = step(result)
        done = DemoStep(step.__name__.removeprefix("step_"), message, time.perf_counter() - began)
        result.steps.append(done)
        if console is not None:
            print_step(console, done)
    result.summary_path = _write_summary(result)
    if console is not None:
        print_summary(console, result)
    return result


def _prepare_folder(directory: Path, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise WorkspaceError(
            f"--dir {directory} is a file, not a folder",
            hint="give a folder for the demo (it is created if missing)",
        )
    config_path = directory / "loopml.yaml"
    if config_path.is_file():
        try:
            owner = f"project {load_config(config_path).project!r}"
        except ConfigError:  # an unreadable config is not the demo's either
            owner = "a configuration that does not load"
        if owner != f"project {DEMO_PROJECT!r}" and not force:
            raise WorkspaceError(
                f"{config_path} holds {owner}, not the demo's",
                hint="choose another --dir, or pass --force to replace it with the demo",
            )
    if force:
        shutil.rmtree(directory / ".loopml", ignore_errors=True)
        written = [directory / "data" / f"{name}.parquet" for name in SOURCES]
        written += (directory / "data").glob("transactions-*.parquet")
        written += [
            directory / "truth" / "labels.parquet",
            directory / "truth" / "ground_truth.json",
        ]
        for path in written:
            path.unlink(missing_ok=True)
        config_path.unlink(missing_ok=True)


# -- the steps --------------------------------------------------------------------------
def step_generate(result: DemoResult) -> str:
    world = card_fraud(n_days=result.days, seed=result.seed)
    result.world = world
    result.as_of = world.ground_truth.end - pd.Timedelta(days=1)
    frauds = int(world.labels["is_fraud"].sum())
    return (
        f"{len(world.transactions):,} transactions of {len(world.cards):,} cards at "
        f"{len(world.merchants):,} merchants over {result.days} days; {frauds:,} fraudulent"
    )


def step_write(result: DemoResult) -> str:
    world, as_of = _world(result), _as_of(result)
    data, truth = result.directory / "data", result.directory / "truth"
    tx = world.transactions
    fresh_date = as_of.date().isoformat()
    tables = {
        "transactions": tx[tx["event_time"] < as_of],
        "chargebacks": world.chargebacks_as_of(as_of),
        "cards": world.cards,
        "merchants": world.merchants,
        "fresh": tx[tx["event_time"] >= as_of],
        "labels": world.labels,
    }
    for stale in data.glob("transactions-*.parquet"):  # an earlier run's fresh day
        stale.unlink()
    for name, frame in tables.items():
        folder = truth if name == "labels" else data
        file_name = f"transactions-{fresh_date}.parquet" if name == "fresh" else f"{name}.parquet"
        result.files[name] = _write_parquet(frame.reset_index(drop=True), folder / file_name)
    result.files["ground_truth"] = truth / "ground_truth.json"
    atomic_write_text(
        result.files["ground_truth"], json.dumps(world.ground_truth.to_dict(), indent=2)
    )
    return (
        f"data/ as known on {fresh_date}: {len(tables['transactions']):,} transactions, "
        f"{len(tables['chargebacks']):,} chargebacks; fresh day {len(tables['fresh']):,} rows; "
        "true labels and planted facts in truth/"
    )


def step_workspace(result: DemoResult) -> str:
    config = Config.model_validate(DEMO_CONFIG)
    existed = (result.directory / "loopml.yaml").is_file()
    result.workspace = Workspace.create(result.directory, config, overwrite=True)
    verb = "rewrote" if existed else "wrote"
    return (
        f"{verb} loopml.yaml: {len(config.sources)} sources, {len(config.entities)} entities, "
        "labels from chargebacks (60d feedback window), task binary_classification"
    )


def step_ingest(result: DemoResult) -> str:
    from loopml.data import ingest, list_snapshots

    workspace = _workspace(result)
    parts = []
    for table in SOURCES:
        before = {snap.version for snap in list_snapshots(workspace, table)}
        snapshot = ingest(workspace, table)
        result.snapshots[table] = snapshot
        result.new_versions[table] = snapshot.version not in before
        state = "new" if result.new_versions[table] else "unchanged"
        parts.append(f"{table}@{snapshot.version[:8]} ({snapshot.rows:,} rows, {state})")
    return "; ".join(parts)


def step_profile(result: DemoResult) -> str:
    from loopml.data import profile

    snapshot = result.snapshots["transactions"]
    result.profile = profile(snapshot)
    target = _workspace(result).reports_dir / "profiles" / f"transactions-{snapshot.version}.json"
    result.profile_path = result.profile.save(target)
    return f"transactions@{snapshot.version[:8]}: {_describe_profile(result.profile)}"


def step_labels(result: DemoResult) -> str:
    world, as_of = _world(result), _as_of(result)
    tx = pd.read_parquet(result.files["transactions"], columns=["transaction_id", "event_time"])
    cb = pd.read_parquet(result.files["chargebacks"], columns=["transaction_id", "reported_at"])
    joined = cb.merge(tx, on="transaction_id", how="inner")
    delay = (joined["reported_at"] - joined["event_time"]).dt.total_seconds() / 86_400
    truth = world.labels[world.labels["event_time"] < as_of]
    result.facts = {
        "as_of": as_of.isoformat(),
        "transactions": len(tx),
        "fraud_true": int(truth["is_fraud"].sum()),
        "fraud_rate_true": float(truth["is_fraud"].mean()),
        "fraud_reported": len(joined),
        "fraud_rate_reported": len(joined) / len(tx),
        "label_delay_days": _quantiles(delay),
        "unreported_fraction_planted": world.ground_truth.unreported_fraction,
        "new_fraud_pattern_at": world.ground_truth.new_fraud_pattern_at.isoformat(),
        "spending_shift_at": world.ground_truth.spending_shift_at.isoformat(),
    }
    facts = result.facts
    return (
        f"true fraud rate {facts['fraud_rate_true']:.2%}; chargebacks known by {as_of.date()} "
        f"cover {facts['fraud_reported']:,} of {facts['fraud_true']:,} frauds "
        f"({facts['fraud_rate_reported']:.2%} of transactions); they arrived after a median "
        f"{facts['label_delay_days']['median']:.1f} d, at most "
        f"{facts['label_delay_days']['max']:.1f} d"
    )


def step_validate(result: DemoResult) -> str:
    from loopml.data import infer_schema, validate_batch

    workspace = _workspace(result)
    snapshot = result.snapshots["transactions"]
    schema = _identifiers_unbounded(infer_schema(snapshot, timestamp="event_time"))
    result.schema_path = schema.save(workspace.reports_dir / "schemas" / "transactions.json")
    fresh = result.fresh
    result.validation = validate_batch(fresh, schema)
    corrupted, result.planted = _corrupt(fresh, seed=result.seed)
    result.corrupted_validation = validate_batch(corrupted, schema)
    return (
        f"fresh day ({len(fresh):,} rows) against the schema of transactions@"
        f"{snapshot.version[:8]}: {describe_report(result.validation)}; a copy with "
        f"{len(result.planted)} planted problems: {describe_report(result.corrupted_validation)}"
    )


STEPS: list[Step] = [
    step_generate,
    step_write,
    step_workspace,
    step_ingest,
    step_profile,
    step_labels,
    step_validate,
]
"""The demo's steps, in order; later stages of the loop append theirs."""


# -- helpers ----------------------------------------------------------------------------
def _world(result: DemoResult) -> CardFraud:
    assert result.world is not None, "the 'generate' step runs first"
    return result.world


def _as_of(result: DemoResult) -> pd.Timestamp:
    assert result.as_of is not None, "the 'generate' step runs first"
    return result.as_of


def _workspace(result: DemoResult) -> Workspace:
    assert result.workspace is not None, "the 'workspace' step runs first"
    return result.workspace


def _write_parquet(frame: pd.DataFrame, target: Path) -> Path:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return target


def _quantiles(values: pd.Series) -> dict[str, float]:
    if values.empty:
        return {
            "min": float("nan"),
            "median": float("nan"),
            "p90": float("nan"),
            "max": float("nan"),
        }
    return {
        "min": float(values.min()),
        "median": float(values.median()),
        "p90": float(values.quantile(0.9)),
        "max": float(values.max()),
    }


def _identifiers_unbounded(schema: Schema) -> Schema:
    """Identifiers name things, they do not measure them: new ids above the old range are
    normal (transaction ids grow), so their range is not checked."""
    from loopml.data import Schema

    columns = {
        name: replace(column, min=None, max=None) if column.role == "id" else column
        for name, column in schema.columns.items()
    }
    return Schema(columns)


def _corrupt(fresh: pd.DataFrame, *, seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """A copy of the batch with three planted problems, and the row of each."""
    corrupted = fresh.copy()
    rows = np.random.default_rng(seed).choice(len(corrupted), size=3, replace=False)
    corrupted.loc[corrupted.index[rows[0]], "amount"] = -100.0
    corrupted.loc[corrupted.index[rows[1]], "country"] = "XX"
    corrupted["card_id"] = corrupted["card_id"].astype("Int64")
    corrupted.loc[corrupted.index[rows[2]], "card_id"] = pd.NA
    planted = {"amount": int(rows[0]), "country": int(rows[1]), "card_id": int(rows[2])}
    return corrupted, planted


def _describe_profile(profile: Profile) -> str:
    amount, device = profile["amount"], profile["device"]
    quantiles = amount.quantiles or []
    median = f"${quantiles[50]:,.2f}" if quantiles else "n/a"
    p99 = f"${quantiles[99]:,.2f}" if quantiles else "n/a"
    missing = device.nulls / max(device.count + device.nulls, 1)
    return (
        f"{profile.rows:,} rows x {len(profile.columns)} columns; amount median {median}, "
        f"p99 {p99}; device missing {missing:.1%}"
    )


def describe_report(report: ValidationReport) -> str:
    """One line: 'no problems', or each problem's column, kind and number of rows."""
    if report.ok:
        return "no problems"
    found = ", ".join(
        f"{p.column}: {p.problem} ({p.count} row{'s' if p.count > 1 else ''})"
        for p in report.problems
    )
    return f"{len(report.problems)} problem(s): {found}"


def _report_json(report: ValidationReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    problems = [
        {"column": p.column, "problem": p.problem, "row": p.row, "count": p.count}
        for p in report.problems
    ]
    return {"rows": report.rows, "ok": report.ok, "problems": problems}


def _write_summary(result: DemoResult) -> Path:
    workspace = _workspace(result)
    summary = {
        "directory": str(result.directory),
        "seed": result.seed,
        "days": result.days,
        "steps": [
            {"name": s.name, "message": s.message, "seconds": round(s.seconds, 3)}
            for s in result.steps
        ],
        "snapshots": {
            table: {"version": snap.version, "rows": snap.rows, "new": result.new_versions[table]}
            for table, snap in result.snapshots.items()
        },
        "facts": result.facts,
        "validation": {
            "fresh": _report_json(result.validation),
            "corrupted": _report_json(result.corrupted_validation),
            "planted": result.planted,
        },
        "profile": str(result.profile_path) if result.profile_path else None,
        "schema": str(result.schema_path) if result.schema_path else None,
        "files": {name: str(path) for name, path in result.files.items()},
    }
    target = workspace.reports_dir / "demo.json"
    atomic_write_text(target, json.dumps(summary, indent=2, default=str))
    return target

"""``loopml label apply | analyze | fit | query | errors``: weak supervision on the command line.

Each command is a thin wrapper over ``loopml.trainingdata.labeling``. Files are CSV or
Parquet (JSON Lines also read); outputs are written atomically.
Exit codes: 0 ok, 1 bad data, 2 usage or configuration error.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from loopml.core import ConfigError, DataError, atomic_path

group = typer.Typer(
    help="Labels when there are none: labeling functions, label models, active learning, "
    "label errors.",
    no_args_is_help=True,
)

MODELS = {
    "majority": "MajorityVote",
    "dawid-skene": "DawidSkene",
    "matrix-completion": "MatrixCompletion",
    "triplet": "Triplet",
}


def register(app: typer.Typer) -> None:
    """Add the ``label`` command group."""
    app.add_typer(group, name="label")


def _read(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"{path}: no such file", hint="pass a CSV, Parquet or JSONL file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: cannot be read as {suffix[1:]}: {error}") from error
    raise ConfigError(
        f"{path}: unsupported file type '{suffix}'", hint="use .csv, .parquet or .jsonl"
    )


def _write(frame: Any, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(
            f"{path}: unsupported output type '{suffix}'", hint="use .csv or .parquet"
        )
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    typer.echo(f"wrote {path} ({len(frame)} rows)")


def _load_lfs(path: Path) -> list[Any]:
    """The labeling functions a Python file defines: its ``LFS`` list, else every one."""
    from loopml.trainingdata.labeling import LabelingFunction

    if not path.is_file() or path.suffix != ".py":
        raise ConfigError(f"{path}: not a Python file", hint="pass the file defining your LFs")
    name = f"_loopml_user_lfs_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise ConfigError(
            f"{path}: importing it failed: {type(error).__name__}: {error}"
        ) from error
    found = getattr(module, "LFS", None)
    if found is None:
        found = [v for v in vars(module).values() if isinstance(v, LabelingFunction)]
    if not found:
        raise ConfigError(
            f"{path} defines no labeling function",
            hint="decorate functions with @labeling_function, or list them in LFS",
        )
    return list(found)


def _label_matrix(path: Path) -> Any:
    frame = _read(path)
    if frame.shape[1] == 0:
        raise DataError(f"{path}: the label matrix has no columns")
    return frame


@group.command("apply")
def apply_command(
    data_file: Annotated[Path, typer.Argument(help="The rows to label (CSV/Parquet/JSONL).")],
    lfs: Annotated[Path, typer.Option("--lfs", help="A .py file defining labeling functions.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write L (.parquet or .csv).")],
    cardinality: Annotated[int | None, typer.Option(help="Number of classes.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", help="Worker processes for row LFs.")] = 1,
) -> None:
    """Apply labeling functions to every row and write the label matrix L."""
    from loopml.trainingdata.labeling import analyze_lfs, apply_lfs

    L = apply_lfs(_read(data_file), _load_lfs(lfs), cardinality=cardinality, n_jobs=jobs)
    _write(L, out)
    typer.echo(analyze_lfs(L, cardinality=cardinality).to_text())


@group.command("analyze")
def analyze_command(
    matrix: Annotated[Path, typer.Argument(help="The label matrix L written by `apply`.")],
    gold: Annotated[Path | None, typer.Option(help="Rows with gold labels (same order).")] = None,
    label_column: Annotated[str, typer.Option(help="The gold label column.")] = "label",
    report: Annotated[Path | None, typer.Option(help="Also write an HTML fragment here.")] = None,
) -> None:
    """Per labeling function: polarity, coverage, overlaps, conflicts, accuracy on gold."""
    from loopml.core import atomic_write_text
    from loopml.trainingdata.labeling import analyze_lfs

    L = _label_matrix(matrix)
    y = None
    if gold is not None:
        frame = _read(gold)
        if label_column not in frame.columns:
            raise DataError(f"{gold}: no column {label_column!r}", hint="pass --label-column")
        y = frame[label_column].fillna(-1).to_numpy()
    result = analyze_lfs(L, y=y)
    typer.echo(result.to_text())
    if report is not None:
        atomic_write_text(report, result.to_html())
        typer.echo(f"wrote {report}")


def _class_balance(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError as error:
        raise ConfigError(
            f"The '--class-balance' option must be probabilities like '0.4,0.6'. Got {text!r}."
        ) from error


@group.command("fit")
def fit_command(
    matrix: Annotated[Path, typer.Argument(help="The label matrix L.")],
    out: Annotated[Path, typer.Option("--out", help="Probabilistic labels (.parquet/.csv).")],
    model: Annotated[str, typer.Option(help=f"One of {', '.join(MODELS)}.")] = "dawid-skene",
    class_balance: Annotated[str | None, typer.Option(help="e.g. '0.4,0.6'.")] = None,
    cardinality: Annotated[int | None, typer.Option(help="Number of classes.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (recorded).")] = 0,
    min_votes: Annotated[int, typer.Option(help="Rows with fewer votes get keep=False.")] = 1,
) -> None:
    """Fit a label model on L and write P(y | votes), the label and a coverage flag."""
    import numpy as np
    import pandas as pd

    from loopml.trainingdata import labeling

    if model not in MODELS:
        raise ConfigError(
            f"The '--model' option must be one of {', '.join(MODELS)}. Got {model!r} instead."
        )
    L = _label_matrix(matrix)
    fitted = getattr(labeling, MODELS[model])(cardinality=cardinality)
    fitted.fit(L, class_balance=_class_balance(class_balance), seed=seed)
    proba = fitted.predict_proba(L)
    kept = labeling.training_labels(proba, L, min_votes=min_votes)
    keep = np.zeros(len(L), dtype=bool)
    keep[kept.rows] = True
    result = pd.DataFrame(proba, columns=[f"proba_{c}" for c in range(proba.shape[1])])
    result["label"] = fitted.predict(L)
    result["keep"] = keep
    _write(result, out)
    accuracies = pd.Series(fitted.lf_accuracies_, index=list(map(str, L.columns)))
    typer.echo(f"{MODELS[model]} (seed {seed}): class balance {np.round(fitted.class_balance_, 3)}")
    typer.echo("estimated LF accuracies:\n" + accuracies.round(3).to_string())
    typer.echo(kept.summary())


@group.command("query")
def query_command(
    proba_file: Annotated[Path, typer.Argument(help="A file with proba_0..proba_k columns.")],
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows to ask for.")] = 10,
    strategy: Annotated[str, typer.Option(help="least_confidence|margin|entropy|random")] = (
        "entropy"
    ),
    features: Annotated[Path | None, typer.Option(help="Rows' features (same order).")] = None,
    columns: Annotated[str | None, typer.Option(help="Feature columns, comma-separated.")] = None,
    density_beta: Annotated[float, typer.Option(help="Weight by density ** beta.")] = 0.0,
    diversity: Annotated[float, typer.Option(help="0..1 trade-off for batch diversity.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed for the random strategy.")] = 0,
) -> None:
    """Print the rows to label next, most informative first."""
    from loopml.trainingdata.labeling import query, uncertainty_scores

    frame = _read(proba_file)
    proba_columns = [c for c in frame.columns if str(c).startswith("proba_")]
    if len(proba_columns) < 2:
        raise DataError(f"{proba_file}: needs proba_0, proba_1, ... columns (from `label fit`)")
    proba = frame[proba_columns].to_numpy(dtype=float)
    X = _features(features, columns) if features is not None else None
    rows = query(
        proba,
        batch_size,
        strategy=strategy,
        X=X,
        density_beta=density_beta,
        diversity=diversity,
        seed=seed,
    )
    scores = uncertainty_scores(proba, "entropy")
    typer.echo("rank  row  entropy")
    for rank, row in enumerate(rows, start=1):
        typer.echo(f"{rank:>4}  {row:>3}  {scores[row]:.3f}")


def _features(path: Path, columns: str | None) -> Any:
    frame = _read(path)
    names = columns.split(",") if columns else list(frame.select_dtypes("number").columns)
    missing = [c for c in names if c not in frame.columns]
    if missing or not names:
        raise DataError(f"{path}: feature columns {missing or names} not found")
    return frame[names].to_numpy(dtype=float)


@group.command("errors")
def errors_command(
    data_file: Annotated[Path, typer.Argument(help="Labelled rows.")],
    label_column: Annotated[str, typer.Option(help="The given label column.")] = "label",
    proba: Annotated[Path | None, typer.Option(help="Out-of-fold proba_* file.")] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="Numeric features for a logistic regression when --proba is absent."),
    ] = None,
    cv: Annotated[int, typer.Option(help="Folds for out-of-fold probabilities.")] = 5,
    out: Annotated[Path | None, typer.Option(help="Write the ranked report here.")] = None,
    top: Annotated[int, typer.Option(help="Rows to print.")] = 20,
) -> None:
    """Rank likely mislabeled rows (confident learning); nothing is dropped."""
    from loopml.trainingdata.labeling import find_label_errors

    frame = _read(data_file)
    if label_column not in frame.columns:
        raise DataError(f"{data_file}: no column {label_column!r}", hint="pass --label-column")
    labels = frame[label_column]
    if labels.isna().any():
        row = int(labels.isna().to_numpy().argmax())
        raise DataError(
            f"{data_file}: column {label_column!r} is empty at row {row}",
            hint="label every row, or drop unlabelled rows first",
        )
    classes = sorted(labels.unique())
    y = labels.map({c: i for i, c in enumerate(classes)}).to_numpy()
    if proba is not None:
        probabilities = _read(proba).filter(like="proba_").to_numpy(dtype=float)
    else:
        probabilities = _oof(frame, label_column, columns, y, cv)
    report = find_label_errors(y, probabilities)
    report["given_label"] = [classes[i] for i in report["given_label"]]
    report["suggested_label"] = [classes[i] for i in report["suggested_label"]]
    typer.echo(
        f"{len(report)} likely label errors of {len(frame)} rows "
        f"(estimated noise rate {report.attrs['noise_rate']:.3f}); most suspicious:"
    )
    typer.echo(report.head(top).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if out is not None:
        _write(report, out)


def _oof(frame: Any, label_column: str, columns: str | None, y: Any, cv: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from loopml.trainingdata.labeling import out_of_fold_proba

    features = frame.drop(columns=[label_column]).select_dtypes("number")
    names = columns.split(",") if columns else list(features.columns)
    missing = [c for c in names if c not in frame.columns]
    if missing or not names:
        raise DataError(
            f"feature columns {missing or names} not found",
            hint="pass --columns a,b,c or a --proba file",
        )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    X = frame[names].to_numpy(dtype=float)
    return out_of_fold_proba(model, X, y, cv=cv)

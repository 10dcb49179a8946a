"""Safe model artifacts: what a model folder holds and how it is written and read back.

A model folder holds only formats that cannot run code when read:

============================  =====================================================
``model.txt``                 LightGBM's native text format (a Booster)
``model.skops``               an sklearn pipeline in skops format, loaded with an explicit
                              list of trusted types (``TRUSTED_TYPES``); anything else
                              in the file is refused
``model.pkl``                 only when the user asked for pickle when saving; refused
                              on load unless the model is named in ``allow_pickle``
``input_schema.json``         the input columns, kinds and categories (the encoder)
``data_schema.json``          the same columns as a ``loopml.data.Schema`` (for validators)
``baseline.json``             the fallback baseline, fitted
``profile.json``              the reference profile of the training rows
                              (``loopml.data.Profile``)
``evaluation.json``           metrics on validation and test, and the baseline's
``model.json``                task, classes, candidate name and parameters
``manifest.json``             SHA-256 of every file above
============================  =====================================================
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from loopml.core import (
    ArtifactIntegrityError,
    UnsafeArtifactError,
    atomic_write_bytes,
    atomic_write_text,
    sha256_file,
)
from loopml.training._baselines import Baseline, baseline_from_json
from loopml.training._candidates import TrainedModel
from loopml.training._encoding import FeatureEncoder

__all__ = ["TRUSTED_TYPES", "load_model_dir", "save_model_dir", "skops_types", "verify_files"]

MANIFEST = "manifest.json"
TRUSTED_TYPES: tuple[str, ...] = (
    "builtins.slice",
    "loopml.features.transformers.FeatureScaler",
    "loopml.features.transformers.MissingIndicatorImputer",
    "numpy.float64",
    "numpy.int64",
    "numpy.ndarray",
    "numpy.random._generator.Generator",
    "numpy.uint64",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn._loss._loss.CyHalfSquaredError",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.ensemble._bagging.BaggingClassifier",
    "sklearn.ensemble._bagging.BaggingRegressor",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._stacking.StackingClassifier",
    "sklearn.ensemble._stacking.StackingRegressor",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
)


def _write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True, default=_plain))


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def save_model_dir(
    model: TrainedModel,
    baseline: Baseline,
    folder: Path,
    *,
    profile: dict[str, Any],
    evaluation: dict[str, Any],
    data_schema: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    pickle: bool = False,
) -> dict[str, str]:
    """Write a model folder; returns ``{file: sha256}`` (also written as ``manifest.json``)."""
    folder.mkdir(parents=True, exist_ok=True)
    if pickle:
        import pickle as pickle_module

        model_file = "model.pkl"
        atomic_write_bytes(folder / model_file, pickle_module.dumps(model.estimator))
    elif model.is_booster:
        model_file = "model.txt"
        atomic_write_text(folder / model_file, model.estimator.model_to_string())
    else:
        import skops.io as sio

        model_file = "model.skops"
        atomic_write_bytes(folder / model_file, sio.dumps(model.estimator))
    meta = {
        "format": "loopml.model/1",
        "name": model.name,
        "task": model.task,
        "classes": [
            _plain(c) if not isinstance(c, str | int | float | bool) else c for c in model.classes
        ],
        "params": model.params,
        "model_file": model_file,
        **(extra or {}),
    }
    _write_json(folder / "model.json", meta)
    _write_json(folder / "input_schema.json", model.encoder.to_json())
    _write_json(folder / "baseline.json", baseline.to_json())
    _write_json(folder / "profile.json", profile)
    if data_schema is not None:
        _write_json(folder / "data_schema.json", data_schema)
    _write_json(folder / "evaluation.json", evaluation)
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST)
    hashes = {name: sha256_file(folder / name) for name in files}
    _write_json(folder / MANIFEST, {"format": "loopml.manifest/1", "sha256": hashes})
    return hashes


def verify_files(folder: Path, expected: dict[str, str]) -> None:
    """Raise ArtifactIntegrityError unless every file has exactly its recorded SHA-256."""
    for name, digest in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            raise ArtifactIntegrityError(
                f"artifact {name} is missing from {folder}",
                hint="the model folder was altered after registration; re-register the model",
            )
        actual = sha256_file(path)
        if actual != digest:
            raise ArtifactIntegrityError(
                f"artifact {name} in {folder} has SHA-256 {actual[:16]}..., but "
                f"{digest[:16]}... was recorded when it was registered",
                hint="the file was changed or corrupted; refusing to load it",
            )


_BUILTINS = frozenset(
    f"builtins.{name}"
    for name in ("dict", "list", "str", "tuple", "int", "float", "bool", "NoneType", "bytes")
)


def skops_types(data: bytes) -> set[str]:
    """Every type named anywhere in a skops file (its ``schema.json``), not only those that
    skops itself distrusts: skops trusts every scikit-learn class and numpy function by
    default, loopml trusts only ``TRUSTED_TYPES``."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("__class__"), str) and isinstance(node.get("__module__"), str):
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _load_estimator(
    folder: Path, model_file: str, *, model_name: str, allow_pickle: Collection[str]
) -> Any:
    path = folder / model_file
    if model_file == "model.txt":
        import lightgbm

        return lightgbm.Booster(model_str=path.read_text(encoding="utf-8"))
    if model_file == "model.skops":
        import skops.io as sio

        data = path.read_bytes()
        found = skops_types(data)
        untrusted = sorted(found - set(TRUSTED_TYPES) - _BUILTINS)
        if untrusted:
            raise UnsafeArtifactError(
                f"{path} holds types outside loopml's trusted list: {', '.join(untrusted)}",
                hint="only load it after reviewing those types",
            )
        return sio.loads(data, trusted=sorted(found))
    if model_file == "model.pkl":
        if model_name not in allow_pickle and model_file not in allow_pickle:
            raise UnsafeArtifactError(
                f"{path} is a pickle, which can run arbitrary code when loaded; refused",
                hint=f"if you trust it, pass allow_pickle=[{model_name!r}]",
            )
        import pickle

        return pickle.loads(path.read_bytes())  # noqa: S301 - opted in by name above
    raise UnsafeArtifactError(f"{path}: unknown model format {model_file!r}")


def load_model_dir(
    folder: Path,
    expected: dict[str, str],
    *,
    model_name: str,
    allow_pickle: Collection[str] = (),
) -> tuple[TrainedModel, Baseline, dict[str, Any]]:
    """Verify every file against ``expected`` hashes, then read the model, baseline and metadata.

    Returns ``(model, baseline, documents)`` where documents holds the parsed JSON files.
    """
    verify_files(folder, expected)
    docs = {
        name.removesuffix(".json"): json.loads((folder / name).read_text(encoding="utf-8"))
        for name in expected
        if name.endswith(".json")
    }
    meta = docs["model"]
    if meta["model_file"] not in expected:
        raise ArtifactIntegrityError(f"{folder}: the model file has no recorded SHA-256")
    estimator = _load_estimator(
        folder, meta["model_file"], model_name=model_name, allow_pickle=allow_pickle
    )
    encoder = FeatureEncoder.from_json(docs["input_schema"])
    model = TrainedModel(
        meta["name"], meta["task"], encoder, estimator, meta["classes"], meta["params"]
    )
    return model, baseline_from_json(docs["baseline"]), docs

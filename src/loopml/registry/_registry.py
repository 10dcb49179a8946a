"""The model registry on MLflow: versions, aliases, lineage, and loading with integrity checks.

Registering records the SHA-256 of every file of the model folder as tags of the model
version, in the registry's own database; loading recomputes them and refuses any mismatch
(``ArtifactIntegrityError``), so a file swapped on disk after registration is never loaded.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import (
    ArtifactIntegrityError,
    ConfigError,
    GateFailed,
    NotFoundError,
    sha256_file,
)

__all__ = [
    "LoadedModel",
    "ModelVersion",
    "delete_alias",
    "get_model_version",
    "list_models",
    "load_model",
    "register_model",
    "set_alias",
]

_HASH_TAG = "loopml.sha256."
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: where it came from and what it holds."""

    name: str
    version: int
    run_id: str
    source: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    created: int = 0

    @property
    def hashes(self) -> dict[str, str]:
        """``{file: sha256}`` recorded at registration."""
        return {k[len(_HASH_TAG) :]: v for k, v in self.tags.items() if k.startswith(_HASH_TAG)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "source": self.source,
            "aliases": list(self.aliases),
            "tags": self.tags,
            "created": self.created,
        }


def _client(tracking_uri: str | None) -> Any:
    from loopml.training._tracking import open_client

    if tracking_uri is None:
        from loopml.core import Workspace

        tracking_uri = Workspace.open(".").tracking_uri
    return open_client(tracking_uri)


def _model_folder(source: str) -> Path:
    from loopml.training._tracking import local_folder

    local = local_folder(source)
    if local is not None:
        return local
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=source))


def _version(mv: Any) -> ModelVersion:
    return ModelVersion(
        name=mv.name,
        version=int(mv.version),
        run_id=mv.run_id or "",
        source=mv.source,
        aliases=tuple(getattr(mv, "aliases", ()) or ()),
        tags=dict(mv.tags or {}),
        created=int(mv.creation_timestamp or 0),
    )


def register_model(
    run: Any,
    name: str,
    *,
    tracking_uri: str | None = None,
    alias: str | None = None,
    tags: dict[str, str] | None = None,
    allow_below_baseline: bool = False,
) -> ModelVersion:
    """Register the model of a training run (a ``TrainingResult`` or a run id) as a new version.

    A run whose best candidate did not beat its baseline is refused (``GateFailed``) unless
    ``allow_below_baseline``. The SHA-256 of every artifact is recorded on the version.
    """
    run_id = getattr(run, "run_id", run)
    tracking_uri = getattr(run, "tracking_uri", None) or tracking_uri
    client = _client(tracking_uri)
    from loopml.training._tracking import get_run_info

    info = get_run_info(client, str(run_id))
    if info.data.tags.get("loopml.beats_baseline") == "false" and not allow_below_baseline:
        raise GateFailed(
            f"run {run_id}: no candidate beat the best baseline "
            f"({info.data.tags.get('loopml.best', '?')}); refusing to register it",
            hint="improve the features or candidates, or pass allow_below_baseline=True",
        )
    source = info.info.artifact_uri.rstrip("/") + "/model"
    folder = _model_folder(source)
    if not (folder / "manifest.json").is_file():
        raise NotFoundError(f"run {run_id} has no model artifacts at {source}")
    hashes = _hash_folder(folder)
    _check_name(name, "name")
    if alias is not None:
        _check_name(alias, "alias")
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if "RESOURCE_ALREADY_EXISTS" not in str(error.error_code):
            raise
    version_tags = {f"{_HASH_TAG}{k}": v for k, v in hashes.items()}
    version_tags.update({k: str(v) for k, v in info.data.tags.items() if k.startswith("loopml.")})
    version_tags.update(tags or {})
    mv = client.create_model_version(name, source, run_id=str(run_id), tags=version_tags)
    if alias is not None:
        client.set_registered_model_alias(name, alias, mv.version)
    return get_model_version(name, version=int(mv.version), tracking_uri=tracking_uri)


def _hash_folder(folder: Path) -> dict[str, str]:
    import json

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["sha256"]
    hashes = {name: sha256_file(folder / name) for name in manifest}
    changed = sorted(n for n in manifest if manifest[n] != hashes[n])
    if changed:
        raise ArtifactIntegrityError(
            f"{folder}: {', '.join(changed)} changed since training (manifest mismatch)",
            hint="retrain; refusing to register altered artifacts",
        )
    hashes["manifest.json"] = sha256_file(folder / "manifest.json")
    return hashes


def _check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not _ALIAS.match(value):
        raise ConfigError(
            f"The '{what}' of a model must be letters, digits, '_' or '-', starting with a "
            f"letter (at most 64). Got {value!r} instead."
        )


def set_alias(
    name: str, alias: str, version: int, *, tracking_uri: str | None = None
) -> ModelVersion:
    """Point ``alias`` (``champion``, ``challenger``, ...) at ``version``."""
    _check_name(alias, "alias")
    client = _client(tracking_uri)
    get_model_version(name, version=version, tracking_uri=tracking_uri)
    client.set_registered_model_alias(name, alias, str(version))
    return get_model_version(name, version=version, tracking_uri=tracking_uri)


def delete_alias(name: str, alias: str, *, tracking_uri: str | None = None) -> None:
    """Remove an alias."""
    _client(tracking_uri).delete_registered_model_alias(name, alias)


def get_model_version(
    name: str,
    *,
    version: int | None = None,
    alias: str | None = None,
    tracking_uri: str | None = None,
) -> ModelVersion:
    """A version by number or alias; neither: the ``champion`` alias, else the latest version."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        if version is not None:
            return _version(client.get_model_version(name, str(version)))
        if alias is not None:
            return _version(client.get_model_version_by_alias(name, alias))
        model = client.get_registered_model(name)
    except MlflowException:
        what = f"version {version}" if version is not None else f"alias {alias!r}"
        raise NotFoundError(
            f"model {name!r} has no {what}" if (version or alias) else f"no model named {name!r}",
            hint="list them with `loopml models list`",
        ) from None
    if "champion" in (model.aliases or {}):
        return _version(client.get_model_version_by_alias(name, "champion"))
    versions = client.search_model_versions(f"name='{name}'")
    if not versions:
        raise NotFoundError(f"model {name!r} has no versions")
    return _version(max(versions, key=lambda v: int(v.version)))


def list_models(*, tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """Every registered model with its versions and aliases."""
    client = _client(tracking_uri)
    out = []
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name='{model.name}'")
        out.append(
            {
                "name": model.name,
                "versions": sorted(int(v.version) for v in versions),
                "aliases": {k: int(v) for k, v in (model.aliases or {}).items()},
            }
        )
    return out


def _parse_reference(reference: str) -> tuple[str, int | None, str | None]:
    if not reference.startswith("models:/"):
        return reference, None, None
    rest = reference[len("models:/") :]
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, None, alias
    name, _, number = rest.partition("/")
    return name, int(number) if number else None, None


@dataclass
class LoadedModel:
    """A registered model, verified and ready to predict.

    ``schema`` is the input schema, ``profile`` the reference profile of the training data,
    ``evaluation`` the scores at training time, ``baseline`` the fallback, ``booster`` the
    native LightGBM Booster when the model is one (for fast single-row serving).
    """

    info: ModelVersion
    model: Any
    baseline: Any
    documents: dict[str, Any]

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def task(self) -> str:
        return str(self.model.task)

    @property
    def classes(self) -> list[Any]:
        return list(self.model.classes)

    @property
    def schema(self) -> Any:
        """The input columns as a ``loopml.data.Schema`` (for validators)."""
        from loopml.data import Schema

        return Schema.from_json(self.documents["data_schema"])

    @property
    def input_schema(self) -> dict[str, Any]:
        """The encoder's schema: columns, kinds (numeric / categorical) and categories."""
        return dict(self.documents["input_schema"])

    @property
    def encoder(self) -> Any:
        return self.model.encoder

    @property
    def features(self) -> list[str]:
        return list(self.model.encoder.columns)

    @property
    def profile(self) -> Any:
        """The reference profile of the training rows (``loopml.data.Profile``)."""
        from loopml.data import Profile

        return Profile.from_json(self.documents["profile"])

    @property
    def evaluation(self) -> dict[str, Any]:
        return dict(self.documents["evaluation"])

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.documents["model"])

    @property
    def booster(self) -> Any:
        return self.model.estimator if self.model.is_booster else None

    def check_schema(self, frame: pd.DataFrame) -> None:
        """Raise SchemaError listing every difference between ``frame`` and the input schema."""
        self.model.encoder.check(frame)

    def predict_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """P(positive) (binary), class probabilities (multiclass) or values (regression)."""
        return np.asarray(self.model.predict_scores(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one column per class in ``classes`` order."""
        if self.task == "regression":
            raise ConfigError(f"model {self.name!r} is a regression model; use predict")
        scores = self.predict_scores(frame)
        return np.column_stack([1 - scores, scores]) if scores.ndim == 1 else scores

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted labels (classes; 0.5 threshold for binary) or values."""
        scores = self.predict_scores(frame)
        if self.task == "regression":
            return scores
        chosen = (scores >= 0.5).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        labels: np.ndarray = np.asarray(self.classes, dtype=object)[chosen]
        return labels

    def predict_baseline(self, frame: pd.DataFrame) -> np.ndarray:
        """The fallback baseline's scores, in the same shape as :meth:`predict_scores`."""
        return np.asarray(self.baseline.predict(frame), dtype=np.float64)


def load_model(
    name_or_uri: str,
    *,
    alias: str | None = None,
    version: int | None = None,
    tracking_uri: str | None = None,
    allow_pickle: Collection[str] = (),
) -> LoadedModel:
    """Load a registered model after checking every artifact's SHA-256.

    ``name_or_uri`` is a name or ``models:/name@alias`` / ``models:/name/3``. Pickle artifacts
    are refused unless the model (or file) is named in ``allow_pickle``.
    """
    from loopml.training._artifacts import load_model_dir

    name, parsed_version, parsed_alias = _parse_reference(name_or_uri)
    info = get_model_version(
        name,
        version=version or parsed_version,
        alias=alias or parsed_alias,
        tracking_uri=tracking_uri,
    )
    expected = info.hashes
    if not expected:
        raise ArtifactIntegrityError(
            f"model {name!r} version {info.version} has no recorded SHA-256 hashes",
            hint="it was not registered by loopml; re-register it with register_model",
        )
    folder = _model_folder(info.source)
    model, baseline, docs = load_model_dir(
        folder, expected, model_name=name, allow_pickle=allow_pickle
    )
    return LoadedModel(info, model, baseline, docs)

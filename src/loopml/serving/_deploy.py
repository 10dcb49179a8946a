"""Serving what the registry says: ``NAME@ALIAS``, followed as the alias moves.

``RegistryDeployer`` builds a ``Deployment`` from the model registry and keeps it current:
a background thread polls the registered model every ``poll_interval`` seconds (one
MLflow query: its aliases and tags), and ``/admin/reload`` does the same at once. When the
alias points at another version, or the traffic setting changed, the new versions are
loaded and verified *beside* the serving ones, then ``PredictionService.swap`` replaces the
snapshot in one assignment, so no request fails during a swap.

The admin actions act on the registry, so every worker process (and every replica) follows
them on its next poll:

* ``promote(version)`` moves the alias to ``version``;
* ``rollback()`` moves it back to the version this process served before (else the
  highest registered version below the current one);
* ``traffic(setting)`` stores a routing setting as the registered model's tag
  ``loopml.serving.traffic``: ``{"mode": "champion"}``,
  ``{"mode": "canary", "challenger": "3", "weight": 10}`` (``CanaryPolicy``; a new weight
  for the same challenger is applied with ``set_weight``),
  ``{"mode": "shadow", "challengers": ["3"], "fraction": 0.5}`` (``ShadowPolicy``) or
  ``{"mode": "ab", "experiment": "x", "variants": {"control": "2", "treatment": "3"}}``
  (``ABPolicy``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopml.core import ConfigError, NotFoundError, get_logger
from loopml.data import ColumnSchema, RecordValidator, Schema
from loopml.serving._app import AdminActions
from loopml.serving._model import ServedModel
from loopml.serving._service import Deployment, PredictionService

__all__ = ["RegistryDeployer", "load_registered", "parse_model_ref", "validator_for"]

_log = get_logger("serving.deploy")
TRAFFIC_TAG = "loopml.serving.traffic"
_MODES = ("champion", "canary", "shadow", "ab")


def parse_model_ref(reference: str) -> tuple[str, str | None, int | None]:
    """``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME`` (the champion) to its parts.

    >>> parse_model_ref("fraud@champion"), parse_model_ref("fraud/3"), parse_model_ref("fraud")
    (('fraud', 'champion', None), ('fraud', None, 3), ('fraud', 'champion', None))
    >>> parse_model_ref("fraud@")
    Traceback (most recent call last):
    ...
    loopml.core._exceptions.ConfigError: The model reference must look like 'NAME@ALIAS'...
    """
    text = reference.removeprefix("models:/")
    name, at, alias = text.partition("@")
    name, slash, number = name.partition("/")
    if not name or (at and not alias) or (slash and not number.isdigit()):
        raise ConfigError(
            "The model reference must look like 'NAME@ALIAS', 'NAME/VERSION' or 'NAME'. "
            f"Got {reference!r} instead."
        )
    if slash:
        return name, None, int(number)
    return name, alias or "champion", None


def load_registered(reference: str, *, tracking_uri: str) -> Any:
    """Load (and verify) the registered model a reference names: a ``LoadedModel``."""
    from loopml.registry import load_model

    name, alias, version = parse_model_ref(reference)
    return load_model(
        name, alias=alias if version is None else None, version=version, tracking_uri=tracking_uri
    )


def validator_for(loaded: Any) -> RecordValidator:
    """A request validator from the model's own input schema.

    Numeric inputs must be numbers (or null: the model's missing-value path); categorical
    ones may be any value, an unseen category is a counted warning and is encoded as
    missing; the target in a request is an error.
    """
    target = getattr(loaded, "info", None) and loaded.info.tags.get("loopml.target")
    if "data_schema" in getattr(loaded, "documents", {}):
        schema = loaded.schema  # written at training: types and ranges of the features
        if target and target not in schema:
            role = ColumnSchema(target, "float", role="target")
            schema = Schema({**schema.columns, target: role})
        return RecordValidator(schema)
    columns: dict[str, dict[str, Any]] = {}
    for feature in loaded.input_schema["features"]:
        if feature["kind"] == "categorical":
            columns[feature["name"]] = {"dtype": "category", "categories": feature["categories"]}
        else:
            dtype = "bool" if feature.get("dtype") == "bool" else "float"
            columns[feature["name"]] = {"dtype": dtype}
    if target and target not in columns:
        columns[target] = {"dtype": "float", "role": "target"}
    return RecordValidator(Schema.from_json({"columns": columns}))


@dataclass
class _Loaded:
    model: ServedModel
    fallback: ServedModel
    validator: RecordValidator


class RegistryDeployer:
    """Loads ``name@alias`` from the registry into a service and keeps following it."""

    def __init__(
        self,
        name: str,
        *,
        alias: str = "champion",
        version: int | None = None,
        tracking_uri: str,
        poll_interval: float = 5.0,
        fallback: bool = True,
        compiled_dir: str | Path | None = None,
        backend: str = "auto",
    ) -> None:
        self.name = name
        self.alias = alias
        self.pinned = version
        self.tracking_uri = tracking_uri
        self.poll_interval = poll_interval
        self.fallback = fallback
        self.compiled_dir = Path(compiled_dir) if compiled_dir is not None else None
        self.backend = backend
        self.service: PredictionService | None = None
        self.history: list[str] = []
        self._cache: dict[str, _Loaded] = {}
        self._state: tuple[str, str] | None = None  # (champion version, traffic json)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- registry ----------------------------------------------------------------------
    def _client(self) -> Any:
        from loopml.training import open_client

        return open_client(self.tracking_uri)

    def _registry_state(self) -> tuple[str, str]:
        """(version the alias names, traffic setting JSON) in one registry query."""
        from mlflow.exceptions import MlflowException

        try:
            model = self._client().get_registered_model(self.name)
        except MlflowException:
            raise NotFoundError(
                f"no registered model named {self.name!r} in {self.tracking_uri}",
                hint="list models with `loopml models list`, or register one with `loopml train`",
            ) from None
        traffic = (model.tags or {}).get(TRAFFIC_TAG, '{"mode": "champion"}')
        if self.pinned is not None:
            return str(self.pinned), traffic
        aliases = model.aliases or {}
        if self.alias not in aliases:
            raise NotFoundError(
                f"model {self.name!r} has no alias {self.alias!r} "
                f"(its aliases: {sorted(aliases) or 'none'})",
                hint=f"point it at a version: `loopml promote {self.name} VERSION`",
            )
        return str(aliases[self.alias]), traffic

    def _load(self, version: str) -> _Loaded:
        cached = self._cache.get(version)
        if cached is not None:
            return cached
        from loopml.registry import load_model

        loaded = load_model(self.name, version=int(version), tracking_uri=self.tracking_uri)
        scorer, backend = self._compiled(loaded)
        model = ServedModel.from_loaded(loaded, scorer=scorer, backend=backend)
        entry = _Loaded(model, ServedModel.baseline_of(loaded), validator_for(loaded))
        self._cache[version] = entry
        _log.info("loaded %s version %s (backend %s)", self.name, version, model.backend)
        return entry

    def _compiled(self, loaded: Any) -> tuple[Any, str | None]:
        if self.backend == "lightgbm" or (self.backend == "auto" and self.compiled_dir is None):
            return None, None
        if self.compiled_dir is None:
            raise ConfigError(f"The {self.backend!r} backend needs the folder of compiled models.")
        from loopml.serving._backends import find_compiled

        found = find_compiled(self.compiled_dir, loaded, self.backend)
        if found is None:
            if self.backend != "auto":
                raise NotFoundError(
                    f"no compiled {self.backend} backend that passed its parity gate for "
                    f"{loaded.name} version {loaded.version}",
                    hint=f"run `loopml compile --model {loaded.name}/{loaded.version} "
                    f"--backend {self.backend} --data HELD_OUT.parquet`",
                )
            return None, None
        return found

    def build(self, champion: str, traffic_json: str) -> Deployment:
        """The deployment for a champion version and a traffic setting."""
        traffic = _parse_traffic(traffic_json)
        versions = [champion, *_traffic_versions(traffic)]
        loaded = {v: self._load(v) for v in dict.fromkeys(versions)}
        policy = self._policy(champion, traffic)
        main = loaded[champion]
        return Deployment(
            {v: e.model for v, e in loaded.items()},
            policy,
            main.fallback if self.fallback else None,
            main.validator,
            self.name,
            {self.alias: champion},
        )

    def _policy(self, champion: str, traffic: dict[str, Any]) -> Any:
        from loopml.experiments import (
            ABPolicy,
            CanaryPolicy,
            ChampionPolicy,
            Experiment,
            ShadowPolicy,
            Variant,
        )

        mode = traffic["mode"]
        current = self.service.deployment.policy if self.service is not None else None
        if mode == "canary":
            challenger, weight = str(traffic["challenger"]), float(traffic["weight"])
            same = isinstance(current, CanaryPolicy) and (current.champion, current.challenger) == (
                champion,
                challenger,
            )
            if same:
                current.set_weight(weight)  # type: ignore[union-attr]
                return current
            return CanaryPolicy(champion, challenger, weight=weight)
        if mode == "shadow":
            return ShadowPolicy(
                ChampionPolicy(champion),
                [str(v) for v in traffic["challengers"]],
                fraction=float(traffic.get("fraction", 1.0)),
            )
        if mode == "ab":
            variants = [Variant(arm, str(v)) for arm, v in traffic["variants"].items()]
            experiment = Experiment(str(traffic.get("experiment", "ab")), variants)
            return ABPolicy(experiment, default_version=champion)
        return ChampionPolicy(champion)

    # -- following the registry --------------------------------------------------------
    def attach(self, service: PredictionService) -> None:
        """Serve through ``service`` from now on (it starts with the current deployment)."""
        self.service = service

    def initial(self) -> Deployment:
        """Read the registry and build the first deployment (errors are raised, not logged)."""
        state = self._registry_state()
        deployment = self.build(*state)
        self._state = state
        self.history.append(state[0])
        return deployment

    def reload(self) -> dict[str, Any]:
        """Check the registry now; swap when the alias or the traffic setting moved."""
        with self._lock:
            state = self._registry_state()
            if state == self._state:
                return {"changed": False, **self._summary()}
            deployment = self.build(*state)
            if self.service is not None:
                self.service.swap(deployment)
            if self._state is None or state[0] != self._state[0]:
                self.history.append(state[0])
            self._state = state
            self._cache = {v: e for v, e in self._cache.items() if v in deployment.models}
            _log.info("now serving %s: %s", self.name, self._summary())
            return {"changed": True, **self._summary()}

    def _summary(self) -> dict[str, Any]:
        champion, traffic = self._state or ("", "{}")
        return {
            "model": self.name,
            "alias": self.alias,
            "version": champion,
            "traffic": json.loads(traffic),
        }

    def start(self) -> None:
        """Poll the registry in a background thread."""
        if self._thread is not None or self.poll_interval <= 0:
            return
        self._thread = threading.Thread(target=self._poll, name="loopml-alias-watch", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.reload()
            except Exception as error:  # keep serving what we have; say why
                _log.warning("registry poll failed (still serving the last version): %s", error)

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- admin actions -----------------------------------------------------------------
    def promote(self, version: str) -> dict[str, Any]:
        """Point the alias at ``version`` (after loading it), then swap."""
        if not str(version).isdigit():
            raise ConfigError(f"The version to promote must be a number. Got {version!r} instead.")
        from loopml.registry import set_alias

        self._load(str(version))  # a version that cannot load is refused before the move
        set_alias(self.name, self.alias, int(version), tracking_uri=self.tracking_uri)
        return self.reload()

    def rollback(self) -> dict[str, Any]:
        """Point the alias back at the previous version."""
        current = self._state[0] if self._state else None
        earlier = [v for v in self.history if v != current]
        if earlier:
            target = earlier[-1]
        else:
            from loopml.registry import list_models

            models = {m["name"]: m for m in list_models(tracking_uri=self.tracking_uri)}
            below = [v for v in models[self.name]["versions"] if current and v < int(current)]
            if not below:
                raise ConfigError(
                    f"model {self.name!r} has no version before {current} to roll back to"
                )
            target = str(max(below))
        result = self.promote(target)
        return {**result, "rolled_back_from": current}

    def traffic(self, setting: dict[str, Any]) -> dict[str, Any]:
        """Store a routing setting in the registry and apply it."""
        text = json.dumps(_check_traffic(setting), sort_keys=True)
        for version in _traffic_versions(json.loads(text)):
            self._load(version)
        self._client().set_registered_model_tag(self.name, TRAFFIC_TAG, text)
        return self.reload()

    def admin_actions(self) -> AdminActions:
        """The admin routes' actions, bound to this deployer."""
        return AdminActions(self.reload, self.promote, self.rollback, self.traffic)


def _parse_traffic(text: str) -> dict[str, Any]:
    try:
        return _check_traffic(json.loads(text))
    except (ValueError, ConfigError) as error:
        _log.warning("ignoring a bad traffic setting in the registry (%s); champion only", error)
        return {"mode": "champion"}


def _check_traffic(setting: Any) -> dict[str, Any]:
    if not isinstance(setting, dict) or setting.get("mode") not in _MODES:
        raise ConfigError(
            f"The traffic setting needs a 'mode' in {list(_MODES)}. Got {setting!r} instead."
        )
    mode = setting["mode"]
    need = {"canary": ("challenger", "weight"), "shadow": ("challengers",), "ab": ("variants",)}
    missing = [k for k in need.get(mode, ()) if k not in setting]
    if missing:
        raise ConfigError(f"The {mode} traffic setting needs {missing}. Got {setting!r} instead.")
    if mode == "canary":
        weight = setting["weight"]
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not 0 <= weight <= 100
        ):
            raise ConfigError(
                f"The canary 'weight' must be a percentage in [0, 100]. Got {weight!r} instead."
            )
    if mode == "shadow" and (
        not isinstance(setting["challengers"], list) or not setting["challengers"]
    ):
        raise ConfigError(
            "The shadow setting's 'challengers' must be a non-empty list of versions."
        )
    if mode == "ab" and (not isinstance(setting["variants"], dict) or not setting["variants"]):
        raise ConfigError("The ab setting's 'variants' must map arm names to versions.")
    for version in _traffic_versions(setting):
        if not version.isdigit():
            raise ConfigError(
                f"Traffic settings name registered versions (numbers). Got {version!r} instead."
            )
    return dict(setting)


def _traffic_versions(traffic: dict[str, Any]) -> list[str]:
    mode = traffic.get("mode")
    if mode == "canary":
        return [str(traffic["challenger"])]
    if mode == "shadow":
        return [str(v) for v in traffic["challengers"]]
    if mode == "ab":
        return [str(v) for v in traffic["variants"].values()]
    return []

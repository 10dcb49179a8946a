"""The project configuration, ``loopml.yaml``, as strict pydantic models.

Every section rejects unknown keys; the error names the file, the line, the key and the
closest valid key. Durations are written like ``"7d"`` and parsed once, here.

>>> config = Config.model_validate({"project": "demo", "task": "binary_classification"})
>>> config.split.by
'time'
>>> Config.model_validate({"project": "demo", "tsak": "regression"})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Config
...
"""

from __future__ import annotations

import difflib
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from loopml.core._durations import format_duration, parse_duration
from loopml.core._exceptions import ConfigError

__all__ = [
    "AggregationConfig",
    "BackendsConfig",
    "CanaryConfig",
    "Config",
    "ContinualConfig",
    "Duration",
    "EntityConfig",
    "EvaluateConfig",
    "FeatureViewConfig",
    "GateConfig",
    "LabelsConfig",
    "MonitorConfig",
    "RetrainConfig",
    "RolloutConfig",
    "ServeConfig",
    "SourceConfig",
    "SplitConfig",
    "TrainConfig",
    "dump_config",
    "load_config",
]


def _duration(value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except ConfigError:
        raise ValueError(
            f"must be a duration like '7d' (units: ms, s, m, h, d, w). Got {value!r} instead."
        ) from None


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
]
"""A duration written like ``"30m"`` or ``"7d"``."""

Task = Literal["binary_classification", "multiclass_classification", "regression", "ranking"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SourceConfig(_Section):
    """A data source: exactly one of ``path``, ``query`` (DuckDB SQL) or ``url`` (SQLAlchemy)."""

    path: str | None = None
    query: str | None = None
    url: str | None = None
    table: str | None = None
    format: Literal["csv", "parquet", "json", "jsonl"] | None = None
    timestamp: str | None = None
    created_timestamp: str | None = None
    timezone: str | None = None
    delimiter: str | None = None
    encoding: str = "utf-8"

    @model_validator(mode="after")
    def _one_location(self) -> SourceConfig:
        # with a 'url', 'query' is the SQL run on that database, not a DuckDB query
        given = [name for name in ("path", "query", "url") if getattr(self, name)]
        if self.url and self.query:
            given.remove("query")
        if len(given) != 1:
            raise ValueError(
                "a source needs exactly one of 'path', 'query' or 'url'"
                + (f"; got {', '.join(given)}" if given else "")
            )
        if self.url and not (self.table or self.query):
            raise ValueError("a 'url' source also needs 'table'")
        return self


class EntityConfig(_Section):
    """An entity and its join key(s)."""

    key: str | list[str]
    description: str = ""

    @property
    def keys(self) -> list[str]:
        return [self.key] if isinstance(self.key, str) else list(self.key)


class AggregationConfig(_Section):
    """Windowed aggregations of one column, per entity."""

    column: str
    functions: list[Literal["count", "sum", "mean", "min", "max", "stddev", "distinct_count"]] = (
        Field(min_length=1)
    )
    windows: list[Duration] = Field(min_length=1)


class FeatureViewConfig(_Section):
    """A feature view: plain columns, a SQL transformation or windowed aggregations."""

    entity: str
    source: str
    columns: list[str] = Field(default_factory=list)
    sql: str | None = None
    aggregations: list[AggregationConfig] = Field(default_factory=list)
    timestamp: str | None = None
    created_timestamp: str | None = None
    ttl: Duration | None = None
    description: str = ""


class LabelsConfig(_Section):
    """Where labels come from and how long to wait for them."""

    source: str
    target: str
    entity: str | None = None
    timestamp: str | None = None
    feedback_window: Duration | None = None
    implicit_label: Any = None


class SplitConfig(_Section):
    """How rows are split into train, validation and test."""

    by: Literal["time", "group", "stratified", "stratified_group", "random"] = "time"
    # float first: a Duration also accepts a bare number (as seconds), so 0.15 would be 0.15 s
    validation: float | Duration = 0.15
    test: float | Duration = 0.15
    gap: Duration | None = None
    group: str | None = None
    seed: int = 0


class TuneConfig(_Section):
    trials: int = Field(default=20, ge=0)
    metric: str | None = None
    timeout: Duration | None = None
    parallel: int = Field(default=1, ge=1)


class TrainConfig(_Section):
    """Candidates, baselines and tuning."""

    candidates: list[str] = Field(default_factory=lambda: ["baseline", "lightgbm"])
    heuristics: dict[str, str] = Field(default_factory=dict)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    seed: int = 0
    backend: Literal["local", "dask"] = "local"


class GateConfig(_Section):
    """One promotion gate: a metric that must beat a reference or stay within a bound."""

    metric: str
    beats: Literal["baseline", "champion"] | None = None
    by: float = 0.0
    at_most: float | None = None
    at_least: float | None = None
    slice: str | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> GateConfig:
        if self.beats is None and self.at_most is None and self.at_least is None:
            raise ValueError("a gate needs one of 'beats', 'at_most' or 'at_least'")
        return self


class EvaluateConfig(_Section):
    slices: list[str] = Field(default_factory=list)
    min_slice_size: int = Field(default=50, ge=1)
    gates: list[GateConfig] = Field(default_factory=list)
    sensitive: list[str] = Field(default_factory=list)
    directional: dict[str, Literal["increasing", "decreasing"]] = Field(default_factory=dict)
    bootstrap: int = Field(default=1000, ge=0)
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)


class ServeConfig(_Section):
    features: list[str] = Field(default_factory=list)
    fallback: str | None = "baseline"
    latency_budget_ms: float = Field(default=50.0, gt=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    max_body_bytes: int = Field(default=1_000_000, gt=0)


class DriftConfig(_Section):
    """Drift decisions: significant after correction AND an effect of at least ``min_effect``
    (Wasserstein in reference standard deviations for numbers, Jensen-Shannon distance for
    categories). 0.05 keeps a 0.1-sigma shift detectable; 0.1 sits right on it."""

    alpha: float = Field(default=0.01, gt=0.0, lt=1.0)
    correction: Literal["holm", "bh", "none"] = "holm"
    min_effect: float = Field(default=0.05, ge=0.0)
    multivariate: bool = True


class AlertRuleConfig(_Section):
    """An alert: ``metric`` above (or below) ``threshold`` for ``for_windows`` windows in a
    row and at least ``for_duration``; sinks are ``log``, ``file[:path]``, ``webhook:URL``."""

    name: str
    metric: str
    threshold: float
    above: bool = True
    for_windows: int = Field(default=1, ge=1)
    for_duration: Duration | None = None
    sinks: list[str] = Field(default_factory=lambda: ["log"])


class MonitorConfig(_Section):
    """Monitoring: the window, the reference (``first_window``, ``previous_window``, or the
    path of a profile JSON), how long labels take to arrive, and the alert rules."""

    window: Duration = timedelta(days=1)
    reference: str = "first_window"
    label_delay: Duration | None = None
    item_column: str | None = None
    drift: DriftConfig = Field(default_factory=DriftConfig)
    alerts: list[AlertRuleConfig] = Field(default_factory=list)


class RetrainConfig(_Section):
    every: Duration | None = None
    on_drift: bool = False
    on_quality_drop: float | None = None
    mode: Literal["stateless", "stateful"] = "stateless"
    window: Duration | None = None
    min_new_labels: int = Field(default=0, ge=0)
    # stateful: the continued model's new trees fit on the labels of this last stretch only
    # (a rebuild still uses the whole window); None fits them on the whole window
    continue_window: Duration | None = None


class CanaryConfig(_Section):
    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0])
    every: Duration = timedelta(hours=1)
    min_samples: int = Field(default=200, ge=1)
    max_quality_drop: float = Field(default=0.02, ge=0.0)
    max_error_increase: float = Field(default=0.01, ge=0.0)
    inconclusive_limit: int = Field(default=5, ge=1)


class RolloutConfig(_Section):
    shadow: Duration | None = None
    canary: CanaryConfig | None = None


class ContinualConfig(_Section):
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)


class BackendsConfig(_Section):
    """Where state lives. Every default is embedded in the workspace; each has a server twin."""

    tracking_uri: str | None = None
    state_url: str | None = None
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    stream: Literal["log", "redis"] = "log"
    compute: Literal["local", "dask"] = "local"
    dask_scheduler: str | None = None


class Config(_Section):
    """The whole of ``loopml.yaml``."""

    project: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    task: Task | None = None
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    entities: dict[str, EntityConfig] = Field(default_factory=dict)
    features: dict[str, FeatureViewConfig] = Field(default_factory=dict)
    labels: LabelsConfig | None = None
    split: SplitConfig = Field(default_factory=SplitConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    continual: ContinualConfig = Field(default_factory=ContinualConfig)
    backends: BackendsConfig = Field(default_factory=BackendsConfig)
    acknowledge: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Config:
        for name, view in self.features.items():
            if view.source not in self.sources:
                raise ValueError(f"feature view '{name}' names unknown source '{view.source}'")
            if view.entity not in self.entities:
                raise ValueError(f"feature view '{name}' names unknown entity '{view.entity}'")
        if self.labels is not None and self.labels.source not in self.sources:
            raise ValueError(f"labels name unknown source '{self.labels.source}'")
        return self


def load_config(path: str | Path) -> Config:
    """Read and validate ``loopml.yaml``; every problem names the file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", hint="run `loopml init` to write one") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason})") from None
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "loopml.yaml") -> Config:
    """Validate configuration text; ``source`` is the name used in error messages."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(f"{where}: not valid YAML: {getattr(error, 'problem', error)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must hold a mapping with at least 'project:'")
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, node, source)) from None


def dump_config(config: Config) -> str:
    """The configuration as YAML, without the defaults a user did not set."""
    data = config.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _describe(error: ValidationError, root: yaml.Node | None, source: str) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        line = _line_of(root, loc)
        where = f"{source}:{line}" if line else source
        dotted = ".".join(str(part) for part in loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(Config, loc[:-1])
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
            suggestion = f"; did you mean '{close[0]}'?" if close else ""
            valid = ", ".join(sorted(allowed))
            lines.append(f"{where}: unknown key '{dotted}'{suggestion} (valid keys here: {valid})")
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            lines.append(f"{where}: '{dotted}': {message}")
    return "\n".join(lines)


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    best = node
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == str(part)]
            if not match:
                break
            best, node = match[0][0], match[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = best = node.value[part]
        else:
            break
    return best.start_mark.line + 1 if best is not None else None


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) in (dict, list):
            annotation = get_args(annotation)[-1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip ``X | None`` and ``Annotated`` down to the model class if there is one."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
            if get_origin(arg) in (dict, list):
                return arg
        return annotation
    if isinstance(annotation, str):
        return typing.get_type_hints(Config).get(annotation, annotation)
    return annotation

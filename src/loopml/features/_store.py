"""Training sets, materialisation and online reads over a workspace's feature views.

The core functions take DataFrames (``build_training_set`` with ``sources=``); the
workspace paths read each source from its newest snapshot in the lake (ingesting one
first when there is none), so every training set records the exact snapshot versions and
view versions that went into it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import (
    ConfigError,
    NotFoundError,
    SchemaError,
    Workspace,
    atomic_dir,
    atomic_write_text,
    ensure_utc,
    get_logger,
    new_id,
    sha256_bytes,
    short_hash,
    utcnow,
)
from loopml.features._aggregates import aggregate_as_of
from loopml.features._definitions import FeatureView, views_from_config
from loopml.features._online import OnlineRecord, OnlineStore, open_online_store
from loopml.features._pit import epoch_us, point_in_time_join

__all__ = [
    "MaterializeResult",
    "TrainingSet",
    "build_training_set",
    "build_workspace_training_set",
    "get_online_features",
    "load_source",
    "load_views",
    "materialize",
]

_LOG = get_logger("features.store")
_STATE_FILE = "materialize_state.json"
_CHUNK = 50_000


# -- definitions and sources ------------------------------------------------------------
def load_views(workspace: Workspace, names: Sequence[str] | None = None) -> dict[str, FeatureView]:
    """The workspace's feature views (all, or those named), by name."""
    views = views_from_config(workspace.config)
    if names:
        unknown = [n for n in names if n not in views]
        if unknown:
            raise NotFoundError(
                f"no feature view {unknown[0]!r} in {workspace.config_path} "
                f"(views: {', '.join(views) or 'none'})",
                hint="add it under `features:` or pick a listed one",
            )
        views = {n: views[n] for n in names}
    return views


def load_source(
    workspace: Workspace, name: str, *, refresh: bool = False
) -> tuple[pd.DataFrame, str]:
    """A source's rows and the snapshot version they came from.

    The newest snapshot of the table is used; with ``refresh`` (or when there is none) the
    source is ingested first, which makes a new version only if its content changed.
    """
    from loopml.data import get_snapshot, ingest

    if name not in workspace.config.sources:
        raise ConfigError(
            f"no source {name!r} in {workspace.config_path} "
            f"(sources: {', '.join(workspace.config.sources) or 'none'})"
        )
    try:
        snapshot = ingest(workspace, name) if refresh else get_snapshot(workspace, name)
    except NotFoundError:
        snapshot = ingest(workspace, name)
    import pyarrow.parquet as pq

    # no pre-buffering of whole column chunks, and split blocks (no consolidation copy):
    # 5M rows x 8 columns read with about 0.4 CPU s and 150 MB less than the defaults
    table = pq.read_table(snapshot.data_path, pre_buffer=False)
    return table.to_pandas(split_blocks=True, self_destruct=True), snapshot.version


def _frame_version(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    columns = json.dumps([str(c) for c in frame.columns]).encode()
    return "frame-" + short_hash(sha256_bytes(columns + hashed.tobytes()))


# -- training sets ----------------------------------------------------------------------
@dataclass
class TrainingSet:
    """A training frame and the record of exactly what went into it."""

    frame: pd.DataFrame
    record: dict[str, Any]

    def save(self, folder: str | Path) -> Path:
        """Write ``data.parquet`` and ``record.json`` into ``folder`` atomically."""
        target = Path(folder)
        with atomic_dir(target) as tmp:
            self.frame.to_parquet(tmp / "data.parquet", index=False)
            (tmp / "record.json").write_text(json.dumps(self.record, indent=2, default=str))
        return target


def build_training_set(
    labels: pd.DataFrame,
    views: Sequence[FeatureView],
    *,
    timestamp: str,
    sources: Mapping[str, pd.DataFrame],
    source_versions: Mapping[str, str] | None = None,
) -> TrainingSet:
    """Join every view to the label rows as of each row's ``timestamp``.

    Column and SQL views are joined point-in-time (with their TTL); aggregation views are
    computed over each window ending at the label time, never including a later event.
    The label rows come back in their order, with their columns first.

    >>> import pandas as pd
    >>> from loopml.features import Aggregation, Entity, FeatureView
    >>> card = Entity("card", keys="card_id")
    >>> tx = pd.DataFrame({"card_id": [1, 1, 2], "amount": [5.0, 7.0, 3.0],
    ...     "at": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02"], utc=True)})
    >>> spend = FeatureView("spend", entity=card, source="tx", timestamp="at",
    ...     aggregations=[Aggregation("amount", ["sum"], ["2d"])])
    >>> labels = pd.DataFrame({"card_id": [1, 2], "is_fraud": [0, 1],
    ...     "ts": pd.to_datetime(["2024-01-03 12:00", "2024-01-05 00:00"], utc=True)})
    >>> result = build_training_set(labels, [spend], timestamp="ts", sources={"tx": tx})
    >>> result.frame["amount_sum_2d"].tolist(), result.record["views"]["spend"]["kind"]
    ([7.0, nan], 'aggregations')
    """
    if timestamp not in labels.columns:
        raise SchemaError(f"The labels have no timestamp column {timestamp!r}")
    taken: dict[str, str] = {str(c): "labels" for c in labels.columns}
    parts = [labels]
    record_views: dict[str, Any] = {}
    versions = dict(source_versions or {})
    for view in views:
        if view.source not in sources:
            raise ConfigError(
                f"Feature view {view.name!r} needs source {view.source!r}, "
                f"which was not given (sources: {', '.join(sources)})"
            )
        rows = view.rows(sources[view.source])
        features = _view_features(view, rows, labels, timestamp)
        for column in features.columns:
            if column in taken:
                raise SchemaError(
                    f"Feature {column!r} of view {view.name!r} clashes with a column of "
                    f"{taken[column]}",
                    hint="rename it in one of the views (SQL: `AS new_name`)",
                )
            taken[str(column)] = f"view {view.name!r}"
        parts.append(features)
        versions.setdefault(view.source, _frame_version(sources[view.source]))
        record_views[view.name] = {
            "version": view.version,
            "kind": view.kind,
            "source": view.source,
            "source_version": versions[view.source],
            "features": list(features.columns),
            "definition": view.to_json(),
        }
    frame = pd.concat(parts, axis=1)
    record = {
        "id": new_id("ts"),
        "created_at": utcnow().isoformat(),
        "rows": len(frame),
        "timestamp": timestamp,
        "views": record_views,
        "sources": {name: versions[name] for name in sorted({v.source for v in views})},
        "label_rows": len(labels),
    }
    return TrainingSet(frame, record)


def _view_features(
    view: FeatureView, rows: pd.DataFrame, labels: pd.DataFrame, timestamp: str
) -> pd.DataFrame:
    missing = [k for k in view.keys if k not in labels.columns]
    if missing:
        raise SchemaError(
            f"The labels have no key column {missing[0]!r}, which view {view.name!r} joins on"
        )
    if view.aggregations:
        return aggregate_as_of(
            rows,
            labels,
            keys=list(view.keys),
            event_timestamp=view.timestamp,
            query_timestamp=timestamp,
            aggregations=view.aggregations,
        )
    entity_rows = labels[[*view.keys, timestamp]]
    joined = point_in_time_join(
        entity_rows,
        rows,
        keys=list(view.keys),
        entity_timestamp=timestamp,
        feature_timestamp=view.timestamp,
        created_timestamp=view.created_timestamp,
        ttl=view.ttl_delta,
    )
    return joined.drop(columns=[*view.keys, timestamp])


def build_workspace_training_set(
    workspace: Workspace,
    views: Sequence[str] | None = None,
    *,
    refresh: bool = False,
    save: bool = True,
) -> tuple[TrainingSet, Path | None]:
    """The training set of the workspace's ``labels:`` and feature views, saved under
    ``.loopml/features/training/<id>/`` with its record (snapshot and view versions)."""
    config = workspace.config
    if config.labels is None:
        raise ConfigError(
            f"{workspace.config_path} has no `labels:` section",
            hint="add labels: {source: ..., target: ..., entity: ...}",
        )
    chosen = load_views(workspace, views)
    frames: dict[str, pd.DataFrame] = {}
    versions: dict[str, str] = {}
    for name in sorted({config.labels.source, *(v.source for v in chosen.values())}):
        frames[name], versions[name] = load_source(workspace, name, refresh=refresh)
    labels_frame = _label_rows(workspace, frames[config.labels.source], list(chosen.values()))
    timestamp = _label_timestamp(workspace)
    result = build_training_set(
        labels_frame,
        list(chosen.values()),
        timestamp=timestamp,
        sources=frames,
        source_versions=versions,
    )
    result.record["labels"] = {
        "source": config.labels.source,
        "target": config.labels.target,
        "source_version": versions[config.labels.source],
    }
    path = None
    if save:
        path = result.save(workspace.features_dir / "training" / result.record["id"])
    return result, path


def _label_timestamp(workspace: Workspace) -> str:
    config = workspace.config
    assert config.labels is not None
    timestamp = config.labels.timestamp or config.sources[config.labels.source].timestamp
    if timestamp is None:
        raise ConfigError(
            "the labels have no timestamp column",
            hint="add `timestamp:` to `labels:` or to its source",
        )
    return timestamp


def _label_rows(
    workspace: Workspace, frame: pd.DataFrame, views: list[FeatureView]
) -> pd.DataFrame:
    config = workspace.config
    assert config.labels is not None
    keys = list(dict.fromkeys(k for v in views for k in v.keys))
    columns = list(dict.fromkeys([*keys, _label_timestamp(workspace), config.labels.target]))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"label source {config.labels.source!r} has no column {missing[0]!r}")
    return frame[columns]


# -- materialisation --------------------------------------------------------------------
@dataclass
class MaterializeResult:
    """What one materialisation run wrote, per view."""

    end: datetime
    views: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"materialized up to {self.end.isoformat()}"]
        for name, info in self.views.items():
            lines.append(
                f"  {name}: {info['rows']} rows from {info['since'] or 'the start'} "
                f"({info['mode']})"
            )
        return "\n".join(lines)


def materialize(
    workspace: Workspace,
    views: Sequence[str] | None = None,
    *,
    end: datetime | None = None,
    store: OnlineStore | None = None,
    refresh: bool = False,
    full: bool = False,
) -> MaterializeResult:
    """Copy the newest feature values into the online store, incrementally.

    Each view remembers its high-water mark. A column/SQL view writes the rows that
    arrived since then (by created timestamp when the view has one, so late events are
    not missed; else by event timestamp) up to ``end``; an aggregation view recomputes,
    as of ``end``, every entity with an event in the longest window before the previous or
    the new mark, so entities whose windows emptied are updated too. A view whose
    definition changed is materialised in full.
    """
    end = ensure_utc(end, where="end") if end else utcnow()
    chosen = load_views(workspace, views)
    state_path = workspace.features_dir / _STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    own_store = store is None
    target = store or open_online_store(workspace)
    result = MaterializeResult(end)
    try:
        for name, view in chosen.items():
            previous = state.get(name, {})
            since = (
                None
                if full or previous.get("version") != view.version
                else (datetime.fromisoformat(previous["high_water"]))
            )
            frame, version = load_source(workspace, view.source, refresh=refresh)
            rows = _materialize_view(view, frame, since, end, target)
            state[name] = {
                "version": view.version,
                "high_water": end.isoformat(),
                "snapshot": version,
            }
            atomic_write_text(state_path, json.dumps(state, indent=2))
            result.views[name] = {
                "rows": rows,
                "since": since.isoformat() if since else None,
                "mode": "incremental" if since else "full",
                "snapshot": version,
            }
    finally:
        if own_store:
            target.close()
    return result


def _materialize_view(
    view: FeatureView,
    frame: pd.DataFrame,
    since: datetime | None,
    end: datetime,
    store: OnlineStore,
) -> int:
    rows = view.rows(frame)
    event = epoch_us(rows[view.timestamp], where=f"view {view.name!r} column {view.timestamp!r}")
    end_us = _us(end)
    if view.aggregations:
        return _materialize_aggregates(view, rows, event, since, end, store)
    clock = (
        epoch_us(rows[view.created_timestamp], where=view.created_timestamp)
        if view.created_timestamp
        else event
    )
    chosen = event <= end_us
    if since is not None:
        chosen &= clock > _us(since)
    return _write_chunks(
        store, view, rows[np.asarray(chosen)], view.timestamp, view.created_timestamp
    )


def _materialize_aggregates(
    view: FeatureView,
    rows: pd.DataFrame,
    event: np.ndarray,
    since: datetime | None,
    end: datetime,
    store: OnlineStore,
) -> int:
    window = view.max_window
    start = (since or end) - window
    recent = (event > _us(start)) & (event <= _us(end))
    if since is None:
        recent = event <= _us(end)
    entities = rows.loc[recent, list(view.keys)].drop_duplicates().reset_index(drop=True)
    if entities.empty:
        return 0
    at = "__loopml_as_of"
    entities[at] = pd.Timestamp(end)
    values = aggregate_as_of(
        rows,
        entities,
        keys=list(view.keys),
        event_timestamp=view.timestamp,
        query_timestamp=at,
        aggregations=view.aggregations,
    )
    return _write_chunks(store, view, pd.concat([entities, values], axis=1), at, None)


def _write_chunks(
    store: OnlineStore, view: FeatureView, frame: pd.DataFrame, event: str, created: str | None
) -> int:
    written = 0
    for start in range(0, len(frame), _CHUNK):
        written += store.write(
            view.name,
            frame.iloc[start : start + _CHUNK],
            keys=list(view.keys),
            event_timestamp=event,
            created_timestamp=created,
        )
    return written


def _us(value: datetime) -> int:
    return int((pd.Timestamp(value) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1))


# -- online reads -----------------------------------------------------------------------
def get_online_features(
    workspace: Workspace,
    entity: Mapping[str, Any],
    views: Sequence[str] | None = None,
    *,
    now: datetime | None = None,
    store: OnlineStore | None = None,
) -> dict[str, OnlineRecord]:
    """Each view's values for one entity (views whose keys the entity gives), TTL applied."""
    chosen = load_views(workspace, views)
    usable = {n: v for n, v in chosen.items() if all(k in entity for k in v.keys)}
    if not usable:
        keys = sorted({k for v in chosen.values() for k in v.keys})
        raise ConfigError(
            f"The entity {dict(entity)!r} gives no view's keys "
            f"(keys the views use: {', '.join(keys) or 'none'})"
        )
    own_store = store is None
    target = store or open_online_store(workspace)
    try:
        return {
            name: target.read(name, [entity], ttl=view.ttl_delta, now=now)[0]
            for name, view in usable.items()
        }
    finally:
        if own_store:
            target.close()

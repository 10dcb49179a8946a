"""Feature logging at serving time, and the training-serving skew check that replays it.

``log_features`` appends what the serving layer used (keys, values, event times, statuses,
request id, model version) to the workspace's feature log (``loopml.data.EventLog``: one
new Parquet segment per call and day under ``date=YYYY-MM-DD/``). ``check_skew`` reads the
log back, recomputes every logged value with the offline point-in-time join as of the
request time, and reports, per feature, how many served values differ, how many were
missing on either side, and how large the differences are (ML Test Score, "Monitor 3").
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import (
    SchemaError,
    Workspace,
    ensure_utc,
    utcnow,
)
from loopml.features._definitions import FeatureView
from loopml.features._online import OnlineRecord, _payloads

__all__ = [
    "SkewReport",
    "check_skew",
    "feature_log_entries",
    "log_features",
    "read_feature_log",
    "skew_report",
]

LOG_COLUMNS = [
    "time",
    "request_id",
    "model_version",
    "view",
    "entity",
    "values",
    "event_time",
    "status",
]
"""One entry per request and view; ``time`` is when the request was served."""


def feature_log_entries(
    *,
    request_id: str,
    model_version: str,
    entity: Mapping[str, Any],
    records: Mapping[str, OnlineRecord],
    requested_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """The log entries of one request: one per view read from the online store.

    >>> from loopml.features import OnlineRecord
    >>> entries = feature_log_entries(request_id="r1", model_version="3", entity={"card": 1},
    ...     records={"spend": OnlineRecord("missing", {"total": None})})
    >>> entries[0]["status"], entries[0]["values"]
    ('missing', '{"total": null}')
    """
    at = ensure_utc(requested_at, where="requested_at") if requested_at else utcnow()
    return [
        {
            "time": at,
            "request_id": request_id,
            "model_version": model_version,
            "view": view,
            "entity": json.dumps(dict(entity), default=str, sort_keys=True),
            "values": json.dumps(record.values, default=str),
            "event_time": record.event_time,
            "status": record.status,
        }
        for view, record in records.items()
    ]


def log_features(
    destination: Workspace | str | os.PathLike[str], entries: Sequence[Mapping[str, Any]]
) -> Path | None:
    """Append feature log entries (see ``feature_log_entries``) as Parquet segments.

    ``destination`` is a workspace (its ``.loopml/logs/features``) or a folder; entries go
    to one new segment per day under ``date=YYYY-MM-DD/``, each written atomically. Returns
    the last segment written, or ``None`` when there was nothing to write.
    """
    from loopml.data import EventLog

    if not entries:
        return None
    folder = (
        destination.features_log_dir if isinstance(destination, Workspace) else Path(destination)
    )
    frame = pd.DataFrame(list(entries))
    missing = [c for c in LOG_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"A feature log entry has no {missing[0]!r}",
            hint=f"every entry needs {', '.join(LOG_COLUMNS)}",
        )
    frame = frame[LOG_COLUMNS].astype(
        {
            "request_id": "str",
            "model_version": "str",
            "view": "str",
            "entity": "str",
            "values": "str",
            "status": "str",
        }
    )
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True).dt.as_unit("us")
    return EventLog(folder).write(frame)[-1]


def read_feature_log(
    source: Workspace | str | os.PathLike[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Every logged entry (optionally with ``since <= time < until``), in time order."""
    from loopml.data import EventLog

    folder = source.features_log_dir if isinstance(source, Workspace) else Path(source)
    frame = EventLog(folder).read(start=since, end=until)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in LOG_COLUMNS})
    return frame.reset_index(drop=True)


# -- the skew check -----------------------------------------------------------------------
@dataclass
class SkewReport:
    """Per feature: compared values, mismatches, missing on each side, difference sizes."""

    features: pd.DataFrame
    requests: int

    @property
    def ok(self) -> bool:
        """True when every served value equals the offline value (missing on both is equal)."""
        columns = ["mismatches", "missing_online", "missing_offline"]
        return bool((self.features[columns].to_numpy() == 0).all())

    def __str__(self) -> str:
        if self.features.empty:
            return f"no logged feature values to compare ({self.requests} requests)"
        head = f"{self.requests} requests replayed; " + ("no skew" if self.ok else "SKEW FOUND")
        return head + "\n" + self.features.to_string(index=False)


def skew_report(
    logged: pd.DataFrame,
    views: Mapping[str, FeatureView],
    sources: Mapping[str, pd.DataFrame],
    *,
    tolerance: float = 1e-9,
) -> SkewReport:
    """Compare logged (served) values with the offline values as of each request time.

    Numbers match when ``|served - offline| <= tolerance * (1 + |offline|)``; other values
    when they are equal after the same JSON encoding the online store uses.
    """
    from loopml.features._store import build_training_set

    rows = []
    for view_name, group in logged.groupby("view", sort=True):
        view = views.get(str(view_name))
        if view is None:
            continue
        entities = pd.DataFrame([json.loads(e) for e in group["entity"]])
        entities["__requested_at"] = pd.to_datetime(group["time"].to_numpy(), utc=True)
        for key in view.keys:
            if key not in entities.columns:
                raise SchemaError(f"logged entities of view {view.name!r} lack key {key!r}")
        offline = build_training_set(
            entities[[*view.keys, "__requested_at"]],
            [view],
            timestamp="__requested_at",
            sources=sources,
        ).frame
        names = [c for c in offline.columns if c not in {*view.keys, "__requested_at"}]
        offline_values = [json.loads(p) for p in _payloads(offline[names])]
        served = [
            json.loads(v) if s == "present" else dict.fromkeys(names)
            for v, s in zip(group["values"], group["status"], strict=True)
        ]
        rows.extend(_compare(view.name, names, served, offline_values, tolerance))
    columns = [
        "view",
        "feature",
        "compared",
        "mismatches",
        "missing_online",
        "missing_offline",
        "mean_abs_diff",
        "max_abs_diff",
    ]
    return SkewReport(
        pd.DataFrame(rows, columns=columns),
        requests=int(logged["request_id"].nunique()) if len(logged) else 0,
    )


def _compare(
    view: str,
    names: list[str],
    served: list[dict[str, Any]],
    offline: list[dict[str, Any]],
    tolerance: float,
) -> list[dict[str, Any]]:
    out = []
    for name in names:
        a = [s.get(name) for s in served]
        b = [o.get(name) for o in offline]
        missing_online = sum(x is None and y is not None for x, y in zip(a, b, strict=True))
        missing_offline = sum(x is not None and y is None for x, y in zip(a, b, strict=True))
        both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
        numeric = [(float(x), float(y)) for x, y in both if _is_number(x) and _is_number(y)]
        diffs = np.array([abs(x - y) for x, y in numeric])
        limits = np.array([tolerance * (1 + abs(y)) for _, y in numeric])
        mismatches = int((diffs > limits).sum()) + sum(
            x != y for x, y in both if not (_is_number(x) and _is_number(y))
        )
        out.append(
            {
                "view": view,
                "feature": name,
                "compared": len(a),
                "mismatches": mismatches,
                "missing_online": missing_online,
                "missing_offline": missing_offline,
                "mean_abs_diff": float(diffs.mean()) if len(diffs) else 0.0,
                "max_abs_diff": float(diffs.max()) if len(diffs) else 0.0,
            }
        )
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_skew(
    workspace: Workspace,
    *,
    views: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tolerance: float = 1e-9,
) -> SkewReport:
    """Replay the workspace's feature log through the offline store and report the skew."""
    from loopml.features._store import load_source, load_views

    chosen = load_views(workspace, views)
    logged = read_feature_log(workspace, since=since, until=until)
    logged = logged[logged["view"].isin(list(chosen))] if len(logged) else logged
    needed = sorted({chosen[str(v)].source for v in logged["view"].unique()}) if len(logged) else []
    sources = {name: load_source(workspace, name)[0] for name in needed}
    return skew_report(logged, chosen, sources, tolerance=tolerance)

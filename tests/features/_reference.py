"""Brute-force references the tests (and the benchmark's gate) compare loopml against."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def brute_force_pit(
    entities: pd.DataFrame,
    features: pd.DataFrame,
    *,
    keys: Sequence[str],
    entity_timestamp: str,
    feature_timestamp: str,
    created_timestamp: str | None = None,
    ttl: pd.Timedelta | None = None,
) -> pd.DataFrame:
    """One Python loop over entity rows; for each, scan every feature row. Slow and obvious."""
    value_columns = [
        c for c in features.columns if c not in {*keys, feature_timestamp, created_timestamp}
    ]
    feature_rows = features.to_dict("records")
    out = []
    for entity in entities.to_dict("records"):
        when = entity[entity_timestamp]
        best, best_rank = None, None
        for position, row in enumerate(feature_rows):
            if any(_missing(entity[k]) or _missing(row[k]) or entity[k] != row[k] for k in keys):
                continue
            at = row[feature_timestamp]
            if _missing(at) or _missing(when) or at > when:
                continue
            created = row[created_timestamp] if created_timestamp else None
            rank = (at, _sortable(created), position)
            if best_rank is None or rank > best_rank:
                best, best_rank = row, rank
        if best is not None and ttl is not None and when - best[feature_timestamp] > ttl:
            best = None
        out.append({c: (best[c] if best is not None else None) for c in value_columns})
    joined = pd.DataFrame(out, columns=value_columns, index=entities.index)
    return pd.concat([entities, joined], axis=1)


def _missing(value: object) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value))


def _sortable(value: object) -> pd.Timestamp:
    if _missing(value):
        return pd.Timestamp.min.tz_localize("UTC")
    assert isinstance(value, pd.Timestamp)
    return value

"""Online features for entity requests: the feature store's online read as a ``FeatureLookup``.

For ``{"entities": {"card_id": 42}, ...}`` every view listed in ``serve.features`` whose
keys the request gives is read from the online store (SQLite or Redis, TTL applied). Each
feature comes back with a status (``present``, ``missing``, ``outside_ttl``) and its event
time; the service serves a feature that is not ``present`` as null (the model's
missing-value path) and reports the status in the response and the prediction log.
"""

from __future__ import annotations

from typing import Any

from loopml.core import LoopmlError, Workspace
from loopml.serving._requests import RequestError
from loopml.serving._service import FeatureLookup

__all__ = ["online_feature_lookup"]


def online_feature_lookup(
    workspace: Workspace, views: list[str] | None = None, *, store: Any = None
) -> FeatureLookup:
    """A lookup over the workspace's online store for the named views (default: ``serve.features``).

    ``store`` overrides the configured online store (tests, a shared Redis client).
    """
    from loopml.features import load_views, open_online_store

    names = list(views if views is not None else workspace.config.serve.features)
    chosen = load_views(workspace, names) if names else {}
    online = store if store is not None else open_online_store(workspace)

    def lookup(
        entities: dict[str, Any],
    ) -> tuple[dict[str, Any], dict[str, str], dict[str, str | None]]:
        usable = {n: v for n, v in chosen.items() if all(k in entities for k in v.keys)}
        if not usable:
            keys = sorted({k for v in chosen.values() for k in v.keys})
            raise RequestError(
                [
                    {
                        "field": "entities",
                        "problem": f"gives none of the keys the views use ({keys or 'none'})",
                    }
                ]
            )
        values: dict[str, Any] = {}
        statuses: dict[str, str] = {}
        times: dict[str, str | None] = {}
        for name, view in usable.items():
            try:
                record = online.read(
                    name, [{k: entities[k] for k in view.keys}], ttl=view.ttl_delta
                )[0]
            except LoopmlError as error:  # a key of the wrong kind: the client's fault
                raise RequestError([{"field": "entities", "problem": str(error)}]) from None
            when = record.event_time.isoformat() if record.event_time is not None else None
            for feature in view.feature_names:
                values[feature] = record.values.get(feature)
                statuses[feature] = record.status
                times[feature] = when
        return values, statuses, times

    return lookup

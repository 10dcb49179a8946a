"""Feature store (placeholder while being built)."""
from loopml.features._aggregates import aggregate_as_of
from loopml.features._checks import check_online_store
from loopml.features._definitions import Aggregation, Entity, FeatureView, views_from_config
from loopml.features._kernel import StreamingAggregator
from loopml.features._online import (
    OnlineRecord,
    OnlineStore,
    RedisOnlineStore,
    SQLiteOnlineStore,
    open_online_store,
)
from loopml.features._pit import point_in_time_join

__all__ = ["Aggregation", "Entity", "FeatureView", "OnlineRecord", "OnlineStore",
           "RedisOnlineStore", "SQLiteOnlineStore", "StreamingAggregator", "aggregate_as_of",
           "check_online_store", "open_online_store", "point_in_time_join", "views_from_config"]

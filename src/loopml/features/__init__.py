"""Feature store (placeholder while being built)."""
from loopml.features._aggregates import aggregate_as_of
from loopml.features._definitions import Aggregation, Entity, FeatureView, views_from_config
from loopml.features._kernel import StreamingAggregator
from loopml.features._pit import point_in_time_join

__all__ = ["Aggregation", "Entity", "FeatureView", "StreamingAggregator", "aggregate_as_of",
           "point_in_time_join", "views_from_config"]

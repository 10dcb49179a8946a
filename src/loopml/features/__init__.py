"""Features: definitions, point-in-time training data, the online store, streaming windows.

* ``Entity``, ``FeatureView``, ``Aggregation`` define features in Python;
  ``views_from_config`` reads them from ``loopml.yaml``.
* ``point_in_time_join`` gives each entity row the latest feature row at or before its
  time (deterministic ties, TTL, every entity row kept); ``aggregate_as_of`` computes
  windowed aggregates as of given times; ``build_training_set`` joins views to labels and
  records the versions that went in.
* ``SQLiteOnlineStore`` and ``RedisOnlineStore`` keep the newest values for serving
  (``check_online_store`` is their contract); ``materialize`` fills them incrementally.
* ``StreamingAggregator`` is the one windowed-aggregation kernel (tiles plus raw tail);
  ``LogEventStream`` / ``RedisEventStream`` and ``StreamProcessor`` feed it.
* ``log_features`` and ``check_skew`` catch training-serving skew.

>>> from loopml import features
>>> features.Entity("card", keys="card_id").keys
('card_id',)
"""

from loopml.features._aggregates import aggregate_as_of
from loopml.features._checks import check_online_store
from loopml.features._definitions import (
    FUNCTIONS,
    Aggregation,
    Entity,
    FeatureView,
    views_from_config,
    window_label,
)
from loopml.features._kernel import StreamingAggregator
from loopml.features._online import (
    STATUSES,
    OnlineRecord,
    OnlineStore,
    RedisOnlineStore,
    SQLiteOnlineStore,
    open_online_store,
)
from loopml.features._pit import point_in_time_join
from loopml.features._skew import (
    SkewReport,
    check_skew,
    feature_log_entries,
    log_features,
    read_feature_log,
    skew_report,
)
from loopml.features._store import (
    MaterializeResult,
    TrainingSet,
    build_training_set,
    build_workspace_training_set,
    get_online_features,
    load_source,
    load_views,
    materialize,
)
from loopml.features._streams import (
    EventStream,
    LogEventStream,
    RedisEventStream,
    StreamProcessor,
)

__all__ = [
    "FUNCTIONS",
    "STATUSES",
    "Aggregation",
    "Entity",
    "EventStream",
    "FeatureView",
    "LogEventStream",
    "MaterializeResult",
    "OnlineRecord",
    "OnlineStore",
    "RedisEventStream",
    "RedisOnlineStore",
    "SQLiteOnlineStore",
    "SkewReport",
    "StreamProcessor",
    "StreamingAggregator",
    "TrainingSet",
    "aggregate_as_of",
    "build_training_set",
    "build_workspace_training_set",
    "check_online_store",
    "check_skew",
    "feature_log_entries",
    "get_online_features",
    "load_source",
    "load_views",
    "log_features",
    "materialize",
    "open_online_store",
    "point_in_time_join",
    "read_feature_log",
    "skew_report",
    "views_from_config",
    "window_label",
]

"""Data: sources, snapshots, schemas, profiles, validation and the event logs.

>>> from loopml import data
>>> data.Schema.from_json({"columns": {"x": {"dtype": "int"}}})["x"].dtype
'int'
"""

from loopml.data._events import EventLog, feature_log, feedback_log, prediction_log
from loopml.data._profile import ColumnProfile, Profile, profile
from loopml.data._schema import ColumnSchema, Schema, infer_schema
from loopml.data._snapshots import Snapshot, get_snapshot, ingest, list_snapshots, load_snapshot
from loopml.data._sources import iter_batches, read_source
from loopml.data._validation import Problem, RecordValidator, ValidationReport, validate_batch
from loopml.data._workflow import (
    InitResult,
    init_project,
    reference_schema,
    snapshot_profile,
    validate_snapshot,
)

__all__ = [
    "ColumnProfile",
    "ColumnSchema",
    "EventLog",
    "InitResult",
    "Problem",
    "Profile",
    "RecordValidator",
    "Schema",
    "Snapshot",
    "ValidationReport",
    "feature_log",
    "feedback_log",
    "get_snapshot",
    "infer_schema",
    "ingest",
    "init_project",
    "iter_batches",
    "list_snapshots",
    "load_snapshot",
    "prediction_log",
    "profile",
    "read_source",
    "reference_schema",
    "snapshot_profile",
    "validate_batch",
    "validate_snapshot",
]

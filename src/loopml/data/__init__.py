"""Data: sources, snapshots, schema, profiles, validation and the event logs."""

from loopml.data._schema import ColumnSchema, Schema, infer_schema
from loopml.data._snapshots import Snapshot, get_snapshot, ingest, list_snapshots, load_snapshot
from loopml.data._sources import iter_batches, read_source

__all__ = [
    "ColumnSchema",
    "Schema",
    "Snapshot",
    "get_snapshot",
    "infer_schema",
    "ingest",
    "iter_batches",
    "list_snapshots",
    "load_snapshot",
    "read_source",
]

"""Schema inference: types, nullability, ranges, categories and roles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.core import SchemaError, SourceConfig, Workspace
from loopml.data import ColumnSchema, Schema, infer_schema, ingest


def _frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "card_id": rng.integers(0, 10_000, n),
            "merchant": [f"m{i}" for i in range(n)],
            "category": rng.choice(["food", "travel", "fuel"], n),
            "amount": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2.0, 30.0, n)),
            "items": rng.integers(1, 9, n),
            "online": rng.random(n) < 0.3,
            "time": pd.date_range("2024-02-01", periods=n, freq="min", tz="UTC"),
            "is_fraud": (rng.random(n) < 0.05).astype(int),
        }
    )


def test_infer_schema_from_a_frame() -> None:
    frame = _frame()
    schema = infer_schema(frame, target="is_fraud")
    kinds = {name: (c.dtype, c.role) for name, c in schema.columns.items()}
    assert kinds == {
        "card_id": ("int", "id"),
        "merchant": ("string", "feature"),
        "category": ("category", "feature"),
        "amount": ("float", "feature"),
        "items": ("int", "feature"),
        "online": ("bool", "feature"),
        "time": ("timestamp", "timestamp"),
        "is_fraud": ("int", "target"),
    }
    assert schema["amount"].nullable and not schema["items"].nullable
    assert schema["amount"].min == pytest.approx(np.nanmin(frame["amount"]))
    assert schema["amount"].max == pytest.approx(np.nanmax(frame["amount"]))
    assert schema["items"].min == 1.0 and schema["items"].max == 8.0
    assert schema["category"].categories == ("food", "fuel", "travel")
    assert schema["time"].min == "2024-02-01T00:00:00+00:00"
    assert schema.target == "is_fraud" and schema.timestamp == "time"
    assert "amount" in schema.features and "card_id" not in schema.features


def test_same_schema_from_a_snapshot_and_its_parquet(workspace: Workspace) -> None:
    frame = _frame()
    frame.to_parquet(workspace.root / "t.parquet")
    snapshot = ingest(workspace, "t", SourceConfig(path="t.parquet", timestamp="time"))
    from_frame = infer_schema(frame, target="is_fraud")
    assert infer_schema(snapshot, target="is_fraud") == from_frame
    assert infer_schema(snapshot.data_path, target="is_fraud") == from_frame
    assert infer_schema(str(snapshot.path), target="is_fraud") == from_frame


def test_json_roundtrip_and_files(tmp_path: Path) -> None:
    schema = infer_schema(_frame(), target="is_fraud")
    assert Schema.from_json(schema.to_json()) == schema
    import json

    assert Schema.from_json(json.dumps(schema.to_json())) == schema
    path = schema.save(tmp_path / "schema.json")
    assert Schema.load(path) == schema
    (tmp_path / "broken.json").write_text('{"columns": {')
    with pytest.raises(SchemaError, match=r"broken.json, line 1: not valid JSON"):
        Schema.load(tmp_path / "broken.json")
    with pytest.raises(SchemaError, match="does not exist"):
        Schema.load(tmp_path / "none.json")


def test_bad_schema_entries_are_named() -> None:
    with pytest.raises(SchemaError, match="'dtype' of column 'x' must be one of"):
        ColumnSchema("x", "decimal")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="'role' of column 'x'"):
        Schema.from_json({"columns": {"x": {"dtype": "int", "role": "label"}}})
    with pytest.raises(SchemaError, match="schema column 'x'"):
        Schema.from_json({"columns": {"x": {"dtype": "int", "colour": "red"}}})


def test_unknown_target_is_an_error() -> None:
    with pytest.raises(SchemaError, match="no target column 'label'"):
        infer_schema(_frame(), target="label")

"""Validation of batches and single records: every kind of problem, and the latency."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from loopml.core import DataValidationError
from loopml.data import RecordValidator, Schema, infer_schema, validate_batch

SCHEMA = Schema.from_json(
    {
        "columns": {
            "card_id": {"dtype": "int", "role": "id", "nullable": False},
            "amount": {"dtype": "float", "min": 0.0, "max": 500.0, "nullable": True},
            "items": {"dtype": "int", "min": 1.0, "max": 10.0, "nullable": False},
            "country": {"dtype": "category", "categories": ["de", "fr", "us"]},
            "online": {"dtype": "bool"},
            "note": {"dtype": "string"},
            "time": {"dtype": "timestamp", "role": "timestamp"},
            "is_fraud": {"dtype": "int", "role": "target"},
        }
    }
)


def _good(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "card_id": range(n),
            "amount": [10.0, 20.0, None, 30.0, 499.0, 0.0][:n],
            "items": [1, 2, 3, 4, 5, 10][:n],
            "country": ["fr", "de", "us", "fr", None, "de"][:n],
            "online": [True, False, True, False, True, False][:n],
            "note": ["a", "b", "c", "d", "e", "f"][:n],
            "time": pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC"),
            "is_fraud": [0, 0, 1, 0, 0, 0][:n],
        }
    )


def test_a_clean_batch_has_no_problems() -> None:
    report = validate_batch(_good(), SCHEMA)
    assert report.ok and report.problems == [] and report.rows == 6
    report.raise_for_problems()


def test_no_false_alarms_on_the_data_the_schema_came_from() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=5000),
            "k": rng.integers(0, 9, 5000),
            "c": rng.choice(["a", "b", "c"], 5000),
            "f": rng.random(5000) < 0.5,
            "t": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(5000), "s"),
        }
    )
    schema = infer_schema(frame)
    assert validate_batch(frame, schema).ok
    validator = RecordValidator(schema)
    assert all(validator.validate(r) == [] for r in frame.head(500).to_dict("records"))


def test_each_problem_names_column_row_and_fix() -> None:
    frame = _good()
    frame["amount"] = [10.0, 20.0, 900.0, 30.0, -1.0, 0.0]
    frame["items"] = pd.array([1, None, 3, 4, 5, 10], dtype="Int64")
    frame["country"] = ["fr", "de", "br", "fr", None, "de"]
    frame["card_id"] = [0, 1, 2, 3.5, 4, 5]
    frame["time"] = pd.date_range("2024-01-01", periods=6, freq="D")  # naive
    report = validate_batch(frame.drop(columns=["note"]), SCHEMA)
    found = {(p.column, p.problem): p for p in report.problems}
    assert set(found) == {
        ("amount", "out_of_range"),
        ("items", "null"),
        ("country", "unseen_category"),
        ("card_id", "wrong_type"),
        ("time", "wrong_type"),
        ("note", "missing_column"),
    }
    assert found["amount", "out_of_range"].row == 2 and found["amount", "out_of_range"].count == 2
    assert found["amount", "out_of_range"].rows == (2, 4)
    assert found["items", "null"].row == 1
    assert found["country", "unseen_category"].value == "br"
    assert found["card_id", "wrong_type"].row == 3
    assert found["note", "missing_column"].row is None
    assert all(p.fix for p in report.problems)
    table = report.to_frame()
    assert list(table.columns) == ["column", "row", "problem", "count", "value", "message", "fix"]
    assert len(table) == 6
    with pytest.raises(DataValidationError, match=r"6 data problem\(s\) in 6 rows") as caught:
        report.raise_for_problems()
    assert caught.value.report is report and caught.value.exit_code == 1


def test_text_in_numeric_and_bad_booleans_and_timestamps() -> None:
    frame = _good().astype({"amount": object, "online": object, "time": object})
    frame.loc[3, "amount"] = "ten"
    frame.loc[1, "online"] = "maybe"
    frame["time"] = ["2024-01-01T00:00:00Z", "2024-01-01 10:00", "soon", None, None, None]
    found = {(p.column, p.problem): p for p in validate_batch(frame, SCHEMA).problems}
    assert (
        found["amount", "wrong_type"].row == 3
        and "'ten' is not a number" in found["amount", "wrong_type"].message
    )
    assert found["online", "wrong_type"].row == 1
    assert found["time", "wrong_type"].rows == (1, 2)


def test_target_present_at_serving_time() -> None:
    serving = validate_batch(_good().drop(columns=["time"]), SCHEMA, serving=True)
    assert [(p.column, p.problem) for p in serving.problems] == [("is_fraud", "target_present")]
    assert "drop the target column" in serving.problems[0].fix
    assert validate_batch(_good().drop(columns=["is_fraud", "time"]), SCHEMA, serving=True).ok


def _record() -> dict[str, object]:
    return {
        "card_id": 7,
        "amount": 12.5,
        "items": 2,
        "country": "fr",
        "online": True,
        "note": "x",
        "time": datetime(2024, 1, 1, tzinfo=UTC),
    }


def test_record_problems() -> None:
    validator = RecordValidator(SCHEMA)
    assert validator.validate(_record()) == []
    assert (
        validator.validate({**_record(), "amount": None, "time": "2024-01-01T00:00:00+01:00"}) == []
    )
    bad = {
        **_record(),
        "amount": 900.0,
        "items": "two",
        "country": "br",
        "online": "yes",
        "time": datetime(2024, 1, 1),
        "is_fraud": 1,
    }
    del bad["card_id"]
    problems = {(p.column, p.problem): p for p in validator.validate(bad)}
    assert set(problems) == {
        ("card_id", "missing_column"),
        ("amount", "out_of_range"),
        ("items", "wrong_type"),
        ("country", "unseen_category"),
        ("online", "wrong_type"),
        ("time", "wrong_type"),
        ("is_fraud", "target_present"),
    }
    assert all(p.row is None and p.fix for p in problems.values())
    assert "900.0 is outside the range [0.0, 500.0]" in problems["amount", "out_of_range"].message
    nulls = validator.validate({**_record(), "items": float("nan")})
    assert [(p.column, p.problem) for p in nulls] == [("items", "null")]
    assert validator.validate({**_record(), "items": 2.5})[0].problem == "wrong_type"
    assert validator.validate({**_record(), "items": np.int64(3), "amount": np.float32(1)}) == []
    assert validator.validate({**_record(), "amount": True})[0].problem == "wrong_type"


def test_record_validation_latency_for_30_fields() -> None:
    columns = {}
    record: dict[str, object] = {}
    for i in range(30):
        kind = ("float", "int", "category")[i % 3]
        spec: dict[str, object] = {"dtype": kind, "nullable": i % 2 == 0}
        if kind == "category":
            spec["categories"] = [f"c{j}" for j in range(50)]
            record[f"f{i}"] = "c7"
        else:
            spec.update(min=0.0, max=1000.0)
            record[f"f{i}"] = 3 if kind == "int" else 3.5
        columns[f"f{i}"] = spec
    validator = RecordValidator(Schema.from_json({"columns": columns}))
    assert validator.validate(record) == []
    timings = []
    for _ in range(5000):
        start = time.perf_counter_ns()
        validator.validate(record)
        timings.append(time.perf_counter_ns() - start)
    p50 = float(np.median(timings)) / 1000
    assert p50 < 100, f"median {p50:.1f} us for 30 fields"


def test_ids_outside_the_reference_range_are_not_problems() -> None:
    schema = infer_schema(_good())
    assert schema["card_id"].role == "id" and schema["card_id"].max == 5
    new_cards = _good().assign(card_id=[100, 101, 102, 103, 104, -1])
    assert validate_batch(new_cards, schema).ok
    validator = RecordValidator(schema)
    record = new_cards.iloc[0].to_dict()
    record["card_id"] = 10**9
    assert validator.validate(record) == []
    # an id is still checked for its type, and other numbers for their range
    bad = new_cards.assign(card_id=[1.5, 2, 3, 4, 5, 6], items=[1, 2, 3, 4, 5, 99])
    codes = {(p.column, p.problem) for p in validate_batch(bad, schema).problems}
    assert codes == {("card_id", "wrong_type"), ("items", "out_of_range")}

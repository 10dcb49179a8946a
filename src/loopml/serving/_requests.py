"""Request bodies: MLflow's four formats and loopml's entity requests, parsed into records.

MLflow clients send one of::

    {"dataframe_split": {"columns": [...], "data": [[...], ...]}}
    {"dataframe_records": [{...}, ...]}
    {"instances": [{...}, ...]}            (or a list of lists with "columns" unknown)
    {"inputs": {"col": [...], ...}}        (or a list of records)

loopml also takes ``{"entities": {"card_id": 42}, "features": {...request-time values}}``,
which fetches the entity's online features and merges the request-time values on top.
Every problem is a ``RequestError`` naming the field, mapped to HTTP 422 at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loopml.core import DataError

__all__ = ["ParsedRequest", "RequestError", "parse_body"]

_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs", "entities")


class RequestError(DataError):
    """A request body that cannot be read; ``problems`` lists every field at fault."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
        super().__init__(f"invalid request: {summary}")
        self.problems = problems


@dataclass
class ParsedRequest:
    """Records to score, plus entity keys when the request names an entity."""

    records: list[dict[str, Any]]
    entities: dict[str, Any] | None = None
    request_id: str | None = None
    unit_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _fail(where: str, problem: str) -> RequestError:
    return RequestError([{"field": where, "problem": problem}])


def parse_body(body: Any, *, max_rows: int = 10_000) -> ParsedRequest:
    """Read a decoded JSON body into records.

    >>> parse_body({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}).records
    [{'a': 1, 'b': 2}]
    >>> parse_body({"entities": {"card_id": 42}, "features": {"amount": 9.5}}).entities
    {'card_id': 42}
    >>> parse_body({"rows": []})
    Traceback (most recent call last):
    ...
    loopml.serving._requests.RequestError: invalid request: body: ...
    """
    if not isinstance(body, dict):
        raise _fail("body", f"must be a JSON object with one of {list(_FORMATS)}")
    found = [key for key in _FORMATS if key in body]
    if len(found) != 1:
        raise _fail("body", f"must hold exactly one of {list(_FORMATS)}; got {sorted(body)}")
    kind = found[0]
    request_id = _optional_str(body, "request_id")
    unit_id = _optional_str(body, "unit_id")
    if kind == "entities":
        entities = body["entities"]
        if not isinstance(entities, dict) or not entities:
            raise _fail("entities", "must be a non-empty object of entity keys")
        features = body.get("features", {})
        if not isinstance(features, dict):
            raise _fail("features", "must be an object of request-time feature values")
        _check_scalars(entities, "entities")
        _check_scalars(features, "features")
        return ParsedRequest([dict(features)], dict(entities), request_id, unit_id)
    records = _records(kind, body[kind], body.get("columns"))
    if not records:
        raise _fail(kind, "holds no rows")
    if len(records) > max_rows:
        raise _fail(kind, f"holds {len(records)} rows; at most {max_rows} per request")
    for index, record in enumerate(records):
        _check_scalars(record, f"{kind}[{index}]")
    return ParsedRequest(records, None, request_id, unit_id)


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _fail(key, "must be a string")
    return str(value)


def _records(kind: str, payload: Any, columns: Any) -> list[dict[str, Any]]:
    if kind == "dataframe_split":
        if not isinstance(payload, dict):
            raise _fail(kind, "must be an object with 'columns' and 'data'")
        columns, data = payload.get("columns"), payload.get("data")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise _fail(f"{kind}.columns", "must be a list of column names")
        if not isinstance(data, list):
            raise _fail(f"{kind}.data", "must be a list of rows")
        return [_zip(columns, row, f"{kind}.data[{i}]") for i, row in enumerate(data)]
    if kind == "inputs" and isinstance(payload, dict):
        lengths = {len(v) if isinstance(v, list) else -1 for v in payload.values()}
        if not payload or len(lengths) != 1 or -1 in lengths:
            raise _fail(kind, "an object of inputs must map each column to a list of equal length")
        names = list(payload)
        return [
            dict(zip(names, values, strict=True)) for values in zip(*payload.values(), strict=True)
        ]
    if not isinstance(payload, list):
        raise _fail(kind, "must be a list of records")
    records = []
    for index, row in enumerate(payload):
        if isinstance(row, dict):
            records.append(row)
        elif isinstance(row, list) and isinstance(columns, list):
            records.append(_zip(columns, row, f"{kind}[{index}]"))
        else:
            raise _fail(f"{kind}[{index}]", "must be an object of column values")
    return records


def _zip(columns: list[str], row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, list) or len(row) != len(columns):
        raise _fail(where, f"must be a list of {len(columns)} values (one per column)")
    return dict(zip(columns, row, strict=True))


def _check_scalars(record: dict[str, Any], where: str) -> None:
    for key, value in record.items():
        if not isinstance(key, str):
            raise _fail(where, "column names must be strings")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise _fail(f"{where}.{key}", "must be a number, a string, a boolean or null")

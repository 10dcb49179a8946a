"""Validation of a batch (vectorised) and of a single record (the serving path).

Problems found: a missing required column, a value of the wrong type, a null where the
schema has none, a number outside the range seen in the reference, a category not seen
in the reference, and the target column present at serving time. Every problem names the
column, the row (or the record's field), what is wrong and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import DataValidationError
from loopml.data._schema import ColumnSchema, Schema

__all__ = ["Problem", "RecordValidator", "ValidationReport", "validate_batch"]

_EXAMPLE_ROWS = 5
_FIXES = {
    "missing_column": "send the column (the schema requires it), or re-infer the schema",
    "wrong_type": "send values of the schema's type, or fix the producer of this column",
    "null": "fill the value, or re-infer the schema from data where the column has nulls",
    "out_of_range": "check the producer; if the new range is real, re-infer the schema "
    "from fresher reference data",
    "unseen_category": "map the value to a known category, or re-infer the schema if the "
    "new category is legitimate",
    "target_present": "drop the target column from serving requests: the model must not "
    "see the label it predicts",
}


@dataclass(frozen=True)
class Problem:
    """One problem: ``column`` (the field), the first ``row`` (None for a single record),
    ``problem`` (a code), a ``message`` and the ``fix``; ``count`` rows are affected.

    >>> str(Problem("amount", "null", "null values", "fill the value", row=3, count=2))
    "column 'amount', row 3: null values (2 rows); fill the value"
    """

    column: str
    problem: str
    message: str
    fix: str
    row: int | None = None
    count: int = 1
    value: Any = None
    rows: tuple[int, ...] = ()

    def __str__(self) -> str:
        where = (
            f"column {self.column!r}"
            if self.row is None
            else (f"column {self.column!r}, row {self.row}")
        )
        more = f" ({self.count} rows)" if self.count > 1 else ""
        return f"{where}: {self.message}{more}; {self.fix}"


@dataclass(frozen=True)
class ValidationReport:
    """Every problem found in a batch; ``ok`` when there are none.

    >>> schema = Schema.from_json({"columns": {"amount": {"dtype": "float", "min": 0.0}}})
    >>> report = validate_batch(pd.DataFrame({"amount": [1.0, -5.0]}), schema)
    >>> report.ok, report.problems[0].problem, report.problems[0].row
    (False, 'out_of_range', 1)
    """

    rows: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_frame(self) -> pd.DataFrame:
        """One row per problem: column, row, problem, count, value, message, fix."""
        names = ["column", "row", "problem", "count", "value", "message", "fix"]
        return pd.DataFrame(
            [[getattr(p, n) for n in names] for p in self.problems], columns=names
        ).astype({"row": "Int64"})

    def raise_for_problems(self) -> None:
        """Raise ``DataValidationError`` (carrying this report) if there is any problem."""
        if self.problems:
            lines = "\n".join(f"  - {p}" for p in self.problems[:20])
            extra = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
            raise DataValidationError(
                f"{len(self.problems)} data problem(s) in {self.rows} rows:\n{lines}{extra}",
                report=self,
            )

    def __str__(self) -> str:
        if self.ok:
            return f"{self.rows} rows: no problems"
        return "\n".join(str(p) for p in self.problems)


def _problem(
    column: str, code: str, message: str, positions: np.ndarray | None = None, value: Any = None
) -> Problem:
    if positions is None:
        return Problem(column, code, message, _FIXES[code], value=value)
    rows = tuple(int(p) for p in positions[:_EXAMPLE_ROWS])
    return Problem(
        column,
        code,
        message,
        _FIXES[code],
        row=rows[0],
        count=len(positions),
        value=value,
        rows=rows,
    )


# -- batches --------------------------------------------------------------------------------
def validate_batch(
    frame: pd.DataFrame, schema: Schema, *, serving: bool = False
) -> ValidationReport:
    """Check every column of ``frame`` against ``schema``, vectorised.

    With ``serving=True`` the target column must be absent, and the target and timestamp
    columns are not required.

    >>> schema = Schema.from_json({"columns": {"country": {"dtype": "category",
    ...                                                    "categories": ["de", "fr"]}}})
    >>> [str(p) for p in validate_batch(pd.DataFrame({"country": ["fr", "us"]}), schema).problems]
    ["column 'country', row 1: 'us' is not one of the 2 categories of the reference; map the \
value to a known category, or re-infer the schema if the new category is legitimate"]
    """
    problems: list[Problem] = []
    for column in schema.columns.values():
        if column.role == "target" and serving:
            if column.name in frame.columns:
                problems.append(
                    _problem(
                        column.name,
                        "target_present",
                        f"the target column {column.name!r} is in a serving batch",
                    )
                )
            continue
        if column.name not in frame.columns:
            if not (serving and column.role == "timestamp"):
                problems.append(
                    _problem(column.name, "missing_column", f"column {column.name!r} is missing")
                )
            continue
        problems += _check_series(frame[column.name], column)
    return ValidationReport(len(frame), problems)


def _check_series(series: pd.Series, column: ColumnSchema) -> list[Problem]:
    values = series.reset_index(drop=True)
    problems: list[Problem] = []
    nulls = values.isna().to_numpy()
    if not column.nullable and nulls.any():
        positions = np.flatnonzero(nulls)
        problems.append(_problem(column.name, "null", "null values", positions))
    checker = _BATCH_CHECKS.get(column.dtype)
    if checker is not None:
        problems += checker(values, nulls, column)
    return problems


def _numeric(values: pd.Series, nulls: np.ndarray, column: ColumnSchema) -> list[Problem]:
    problems: list[Problem] = []
    if pd.api.types.is_bool_dtype(values.dtype):
        positions = np.flatnonzero(~nulls)
        return [
            _problem(
                column.name,
                "wrong_type",
                f"booleans where {column.dtype} numbers are expected",
                positions,
                values.iloc[positions[0]],
            )
        ]
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = np.isnan(numbers) & ~nulls
        if bad.any():
            positions = np.flatnonzero(bad)
            problems.append(
                _problem(
                    column.name,
                    "wrong_type",
                    f"{values.iloc[positions[0]]!r} is not a number",
                    positions,
                    values.iloc[positions[0]],
                )
            )
    if column.dtype == "int":
        fractional = ~np.isnan(numbers) & (numbers != np.round(numbers))
        if fractional.any():
            positions = np.flatnonzero(fractional)
            problems.append(
                _problem(
                    column.name,
                    "wrong_type",
                    f"{numbers[positions[0]]!r} is not an integer",
                    positions,
                    float(numbers[positions[0]]),
                )
            )
    problems += _range(numbers, column)
    return problems


def _range(numbers: np.ndarray, column: ColumnSchema) -> list[Problem]:
    if column.role == "id":
        return []  # a new card or customer outside the reference's ids is not a data problem
    low = -np.inf if column.min is None else float(column.min)
    high = np.inf if column.max is None else float(column.max)
    with np.errstate(invalid="ignore"):
        outside = (numbers < low) | (numbers > high)
    if not outside.any():
        return []
    positions = np.flatnonzero(outside)
    first = float(numbers[positions[0]])
    return [
        _problem(
            column.name,
            "out_of_range",
            f"{first!r} is outside the range [{column.min}, {column.max}] of the reference",
            positions,
            first,
        )
    ]


def _boolean(values: pd.Series, nulls: np.ndarray, column: ColumnSchema) -> list[Problem]:
    if pd.api.types.is_bool_dtype(values.dtype):
        return []
    allowed = [True, False, "true", "false", "True", "False"]
    bad = ~nulls & ~values.isin(allowed).to_numpy()
    if not bad.any():
        return []
    positions = np.flatnonzero(bad)
    first = values.iloc[positions[0]]
    return [_problem(column.name, "wrong_type", f"{first!r} is not a boolean", positions, first)]


def _category(values: pd.Series, nulls: np.ndarray, column: ColumnSchema) -> list[Problem]:
    if column.categories is None:
        return []
    text = values.astype("string") if not pd.api.types.is_string_dtype(values.dtype) else values
    bad = ~nulls & ~text.isin(list(column.categories)).to_numpy()
    if not bad.any():
        return []
    positions = np.flatnonzero(bad)
    first = values.iloc[positions[0]]
    return [
        _problem(
            column.name,
            "unseen_category",
            f"{first!r} is not one of the {len(column.categories)} categories of the reference",
            positions,
            first,
        )
    ]


def _timestamp(values: pd.Series, nulls: np.ndarray, column: ColumnSchema) -> list[Problem]:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return []
    if pd.api.types.is_datetime64_dtype(values.dtype):
        positions = np.flatnonzero(~nulls)
        return [
            _problem(
                column.name,
                "wrong_type",
                "timestamps without a time zone",
                positions,
                values.iloc[positions[0]] if len(positions) else None,
            )
        ]
    text = values.astype("string")
    has_zone = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).fillna(False)
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    bad = ~nulls & (parsed.isna().to_numpy() | ~has_zone.to_numpy(dtype=bool))
    if not bad.any():
        return []
    positions = np.flatnonzero(bad)
    first = values.iloc[positions[0]]
    return [
        _problem(
            column.name,
            "wrong_type",
            f"{first!r} is not a timestamp with a time zone",
            positions,
            first,
        )
    ]


_BATCH_CHECKS: dict[str, Callable[[pd.Series, np.ndarray, ColumnSchema], list[Problem]]] = {
    "int": _numeric,
    "float": _numeric,
    "bool": _boolean,
    "category": _category,
    "timestamp": _timestamp,
}


# -- single records -------------------------------------------------------------------------
_Check = Callable[[Any], str | None]


class RecordValidator:
    """Validate one record (a dict) against a schema: the serving path.

    Everything that can be decided from the schema is decided in ``__init__``; ``validate``
    runs one small check per field.

    >>> schema = Schema.from_json({"columns": {
    ...     "amount": {"dtype": "float", "min": 0.0, "max": 100.0, "nullable": False},
    ...     "country": {"dtype": "category", "categories": ["de", "fr"]},
    ...     "label": {"dtype": "int", "role": "target"}}})
    >>> validator = RecordValidator(schema)
    >>> validator.validate({"amount": 5.0, "country": "fr"})
    []
    >>> [(p.column, p.problem) for p in validator.validate({"country": "us", "label": 1})]
    [('amount', 'missing_column'), ('country', 'unseen_category'), ('label', 'target_present')]
    """

    def __init__(self, schema: Schema, *, serving: bool = True) -> None:
        self.schema = schema
        self.serving = serving
        self._targets = (
            [c.name for c in schema.columns.values() if c.role == "target"] if (serving) else []
        )
        self._fields: list[tuple[str, bool, bool, _Check, str]] = []
        for column in schema.columns.values():
            if serving and column.role == "target":
                continue
            required = not (serving and column.role == "timestamp")
            check, code = _record_check(column)
            self._fields.append((column.name, required, column.nullable, check, code))

    def validate(self, record: dict[str, Any]) -> list[Problem]:
        """Every problem of ``record``; an empty list when it is valid."""
        problems: list[Problem] = []
        for name, required, nullable, check, _ in self._fields:
            if name not in record:
                if required:
                    problems.append(_problem(name, "missing_column", f"field {name!r} is missing"))
                continue
            value = record[name]
            if value is None or (isinstance(value, float) and value != value):
                if not nullable:
                    problems.append(_problem(name, "null", f"field {name!r} is null"))
                continue
            message = check(value)
            if message is not None:
                problems.append(_record_problem(name, message, value))
        for name in self._targets:
            if name in record:
                problems.append(
                    _problem(name, "target_present", f"the target field {name!r} is in the record")
                )
        return problems


def _record_problem(name: str, message: str, value: Any) -> Problem:
    code, _, text = message.partition(":")
    return _problem(name, code, text, value=value)


def _record_check(column: ColumnSchema) -> tuple[_Check, str]:
    if column.dtype in ("int", "float"):
        return _number_check(column), "wrong_type"
    if column.dtype == "bool":
        return _bool_check, "wrong_type"
    if column.dtype == "category" and column.categories is not None:
        return _category_check(column), "unseen_category"
    if column.dtype == "timestamp":
        return _timestamp_check, "wrong_type"
    return _any_check, "wrong_type"


def _number_check(column: ColumnSchema) -> _Check:
    ranged = column.role != "id"  # ids outside the reference's range are new ids, not errors
    low = -math.inf if column.min is None or not ranged else float(column.min)
    high = math.inf if column.max is None or not ranged else float(column.max)
    integer = column.dtype == "int"
    kinds = (int, float, np.integer, np.floating)
    bounds = f"[{column.min}, {column.max}]"

    def check(value: Any) -> str | None:
        if value.__class__ is bool or not isinstance(value, kinds) or isinstance(value, np.bool_):
            return f"wrong_type:{value!r} is not a number"
        if integer and value.__class__ is not int and not float(value).is_integer():
            return f"wrong_type:{value!r} is not an integer"
        if value < low or value > high:
            return f"out_of_range:{value!r} is outside the range {bounds} of the reference"
        return None

    return check


def _bool_check(value: Any) -> str | None:
    if isinstance(value, bool | np.bool_):
        return None
    return f"wrong_type:{value!r} is not a boolean"


def _category_check(column: ColumnSchema) -> _Check:
    known = frozenset(column.categories or ())
    size = len(known)

    def check(value: Any) -> str | None:
        text = value if value.__class__ is str else str(value)
        if text in known:
            return None
        return f"unseen_category:{value!r} is not one of the {size} categories of the reference"

    return check


def _timestamp_check(value: Any) -> str | None:
    if isinstance(value, datetime):
        return None if value.tzinfo is not None else f"wrong_type:{value!r} has no time zone"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return f"wrong_type:{value!r} is not an ISO timestamp"
        return None if parsed.tzinfo is not None else f"wrong_type:{value!r} has no time zone"
    return f"wrong_type:{value!r} is not a timestamp"


def _any_check(value: Any) -> str | None:
    return None

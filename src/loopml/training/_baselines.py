"""Baselines every training run fits first; a candidate must beat the best of them.

* ``PriorBaseline``: the class prior (classification) or the training mean (regression).
* ``HeuristicBaseline``: a rule the user declares, e.g. ``"amount > 5 * amount_mean_7d"``.
  For classification the score is the positive rate of training rows where the rule held
  (and where it did not); for regression a boolean rule gives the mean target on each side
  and a numeric expression is the prediction itself. Expressions are parsed into a small,
  safe grammar (columns, numbers, arithmetic, comparisons, ``and``/``or``/``not``,
  ``abs``/``log``/``sqrt``): nothing else is evaluated.
* ``LastValueBaseline``: for time-ordered data, the last target seen in training, per entity
  when an entity column is given ("tomorrow looks like today").

All three are plain JSON when stored.

>>> import numpy as np, pandas as pd
>>> frame = pd.DataFrame({"amount": [1.0, 50.0, 2.0, 60.0], "mean7d": [2.0, 3.0, 2.0, 4.0]})
>>> y = np.array([0, 1, 0, 0])
>>> rule = HeuristicBaseline("amount > 5 * mean7d", task="binary_classification").fit(frame, y)
>>> rule.predict(frame).tolist()
[0.0, 0.5, 0.0, 0.5]
"""

from __future__ import annotations

import ast
import operator
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ConfigError, SchemaError

__all__ = [
    "Baseline",
    "HeuristicBaseline",
    "LastValueBaseline",
    "PriorBaseline",
    "baseline_from_json",
]


def _n_classes(task: str, y: np.ndarray) -> int:
    if task == "binary_classification":
        return 2
    return int(y.max()) + 1 if len(y) else 1


def _target_summary(task: str, y: np.ndarray, n_classes: int) -> list[float]:
    """Mean target (regression), P(positive) (binary) or class shares (multiclass)."""
    if len(y) == 0:
        return [float("nan")]
    if task == "multiclass_classification":
        shares = np.bincount(y.astype(np.int64), minlength=n_classes) / len(y)
        return [float(v) for v in shares]
    return [float(np.mean(y))]


def _broadcast(task: str, value: list[float], n: int) -> np.ndarray:
    if task == "multiclass_classification":
        return np.tile(np.asarray(value), (n, 1))
    return np.full(n, value[0])


class Baseline:
    """Common interface: ``fit(frame, y)``, ``predict(frame)``, ``to_json()``."""

    kind = "baseline"
    name = "baseline"
    task = "regression"

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> Baseline:
        raise NotImplementedError

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


class PriorBaseline(Baseline):
    """The constant model: class prior or mean target.

    >>> import numpy as np, pandas as pd
    >>> PriorBaseline("binary_classification").fit(pd.DataFrame(index=range(4)),
    ...     np.array([0, 0, 0, 1])).predict(pd.DataFrame(index=range(2))).tolist()
    [0.25, 0.25]
    """

    kind = "prior"

    def __init__(self, task: str, name: str = "prior") -> None:
        self.task, self.name = task, name
        self.value_: list[float] = []

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> PriorBaseline:
        self.value_ = _target_summary(self.task, y, _n_classes(self.task, y))
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return _broadcast(self.task, self.value_, len(frame))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "task": self.task, "value": self.value_}


# -- safe expressions --------------------------------------------------------------------

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}
_COMPARE = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FUNCTIONS = {"abs": np.abs, "log": np.log, "log1p": np.log1p, "sqrt": np.sqrt}


def parse_expression(expression: str) -> ast.expr:
    """Parse and check a rule; anything outside the small grammar is a ConfigError."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError as error:
        raise ConfigError(
            f"The heuristic {expression!r} is not a valid expression: {error.msg}",
            hint="write it like 'amount > 5 * amount_mean_7d'",
        ) from None
    for node in ast.walk(tree):
        allowed = (
            ast.BinOp,
            ast.Compare,
            ast.BoolOp,
            ast.UnaryOp,
            ast.Name,
            ast.Constant,
            ast.Call,
            ast.Load,
            ast.And,
            ast.Or,
            ast.Not,
            ast.USub,
            ast.UAdd,
            *_BINARY,
            *_COMPARE,
        )
        bad_call = isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords
        )
        bad_constant = isinstance(node, ast.Constant) and not isinstance(
            node.value, int | float | bool | str
        )
        if not isinstance(node, allowed) or bad_call or bad_constant:
            raise ConfigError(
                f"The heuristic {expression!r} uses {type(node).__name__}, which rules may not.",
                hint="use columns, numbers, + - * / **, comparisons, and/or/not, abs/log/sqrt",
            )
    return tree


def columns_of(expression: str) -> list[str]:
    """The column names a rule reads."""
    tree = parse_expression(expression)
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in calls]
    return sorted(set(names))


def evaluate_expression(expression: str, frame: pd.DataFrame) -> np.ndarray:
    """Evaluate a rule over a frame, vectorised."""
    tree = parse_expression(expression)
    missing = [c for c in columns_of(expression) if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"the heuristic {expression!r} reads column(s) {', '.join(missing)}, "
            "which the data does not have",
            hint=f"available columns: {', '.join(map(str, frame.columns))}",
        )
    return np.asarray(_eval(tree, frame)) * np.ones(len(frame))


def _eval(node: ast.expr, frame: pd.DataFrame) -> Any:
    if isinstance(node, ast.Name):
        series = frame[node.id]
        if pd.api.types.is_numeric_dtype(series.dtype):
            return series.to_numpy(dtype=np.float64, na_value=np.nan)
        return series.astype(object).to_numpy()
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, frame), _eval(node.right, frame))
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, frame)
        if isinstance(node.op, ast.Not):
            return ~np.asarray(value, dtype=bool)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BoolOp):
        values = [np.asarray(_eval(v, frame), dtype=bool) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        out = values[0]
        for value in values[1:]:
            out = combine(out, value)
        return out
    if isinstance(node, ast.Compare):
        left, out = _eval(node.left, frame), np.asarray(True)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, frame)
            out = np.logical_and(out, _COMPARE[type(op)](left, right))
            left = right
        return out
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return _FUNCTIONS[node.func.id](*[_eval(a, frame) for a in node.args])


class HeuristicBaseline(Baseline):
    """A rule from the config, calibrated on the training rows (see the module docstring)."""

    kind = "heuristic"

    def __init__(self, expression: str, *, task: str, name: str = "heuristic") -> None:
        parse_expression(expression)
        self.expression, self.task, self.name = expression, task, name
        self.when_true_: list[float] = []
        self.when_false_: list[float] = []
        self.numeric_ = False

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> HeuristicBaseline:
        value = evaluate_expression(self.expression, frame)
        self.numeric_ = self.task == "regression" and value.dtype != bool
        if self.numeric_:
            return self
        fired = value.astype(bool)
        n_classes = _n_classes(self.task, y)
        prior = _target_summary(self.task, y, n_classes)
        self.when_true_ = _target_summary(self.task, y[fired], n_classes) if fired.any() else prior
        self.when_false_ = (
            _target_summary(self.task, y[~fired], n_classes) if (~fired).any() else prior
        )
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        value = evaluate_expression(self.expression, frame)
        if self.numeric_:
            return value.astype(np.float64)
        fired = value.astype(bool)
        true = _broadcast(self.task, self.when_true_, len(frame))
        false = _broadcast(self.task, self.when_false_, len(frame))
        mask = fired[:, None] if true.ndim == 2 else fired
        return np.where(mask, true, false)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "task": self.task,
            "expression": self.expression,
            "numeric": self.numeric_,
            "when_true": self.when_true_,
            "when_false": self.when_false_,
        }


class LastValueBaseline(Baseline):
    """The last target seen in training (per entity when ``entity`` is given).

    >>> import numpy as np, pandas as pd
    >>> frame = pd.DataFrame({"t": [1, 2, 3], "card": ["a", "b", "a"]})
    >>> base = LastValueBaseline("regression", timestamp="t", entity="card")
    >>> base.fit(frame, np.array([1.0, 2.0, 3.0])).predict(
    ...     pd.DataFrame({"card": ["a", "b", "z"]})).tolist()
    [3.0, 2.0, 3.0]
    """

    kind = "last_value"

    def __init__(
        self, task: str, *, timestamp: str, entity: str | None = None, name: str = "last_value"
    ) -> None:
        self.task, self.timestamp, self.entity, self.name = task, timestamp, entity, name
        self.last_: list[float] = []
        self.by_entity_: dict[str, list[float]] = {}

    def _summary(self, value: float, n_classes: int) -> list[float]:
        if self.task == "multiclass_classification":
            return [float(v) for v in np.eye(n_classes)[int(value)]]
        return [float(value)]

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> LastValueBaseline:
        times = frame[self.timestamp].reset_index(drop=True)
        order = times.sort_values(kind="stable").index.to_numpy()  # fast for tz-aware times
        n_classes = _n_classes(self.task, y)
        self.last_ = self._summary(y[order[-1]], n_classes)
        if self.entity is not None:
            keys = frame[self.entity].astype(str).to_numpy()[order]
            last = pd.Series(y[order]).groupby(keys, sort=False).last()
            self.by_entity_ = {str(k): self._summary(v, n_classes) for k, v in last.items()}
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.entity is None or self.entity not in frame.columns:
            return _broadcast(self.task, self.last_, len(frame))
        keys = frame[self.entity].astype(str).to_numpy()
        rows = [self.by_entity_.get(k, self.last_) for k in keys]
        out = np.asarray(rows, dtype=np.float64).reshape(len(frame), -1)
        return out if self.task == "multiclass_classification" else out[:, 0]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "task": self.task,
            "timestamp": self.timestamp,
            "entity": self.entity,
            "last": self.last_,
            "by_entity": self.by_entity_,
        }


def baseline_from_json(data: dict[str, Any]) -> Baseline:
    """Rebuild a fitted baseline from :meth:`Baseline.to_json`.

    >>> base = baseline_from_json({"kind": "prior", "name": "prior",
    ...     "task": "regression", "value": [2.0]})
    >>> base.predict(pd.DataFrame(index=range(2))).tolist()
    [2.0, 2.0]
    """
    kind = data.get("kind")
    baseline: Baseline
    if kind == "prior":
        baseline = PriorBaseline(data["task"], name=data["name"])
        baseline.value_ = list(data["value"])
    elif kind == "heuristic":
        baseline = HeuristicBaseline(data["expression"], task=data["task"], name=data["name"])
        baseline.numeric_ = bool(data["numeric"])
        baseline.when_true_, baseline.when_false_ = data["when_true"], data["when_false"]
    elif kind == "last_value":
        baseline = LastValueBaseline(
            data["task"], timestamp=data["timestamp"], entity=data["entity"], name=data["name"]
        )
        baseline.last_, baseline.by_entity_ = data["last"], data["by_entity"]
    else:
        raise ConfigError(f"unknown baseline kind {kind!r} in a stored model")
    return baseline

"""Result objects shared by the drift statistics: plain, frozen, JSON-ready."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DriftTestResult", "clean_float"]


def clean_float(value: float | None) -> float | None:
    """A float for JSON: NaN becomes ``None``, infinities stay as the string-free max.

    >>> clean_float(float("nan")) is None, clean_float(1.5)
    (True, 1.5)
    """
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return 1e308 if value > 0 else -1e308
    return value


@dataclass(frozen=True)
class DriftTestResult:
    """One statistic comparing a reference with a current sample.

    ``score`` is the raw statistic, ``p_value`` is set for hypothesis tests, ``threshold``
    is what the score (or the p-value, for tests) was compared with and ``reason`` says
    why in words. ``method`` is ``"exact"`` (from both samples) or ``"profile"``
    (from the reference's persisted summary, see the documentation for the error bound).

    >>> result = DriftTestResult("psi", 0.3, None, 0.2, True, "PSI 0.3 >= 0.2", "exact", 10, 10)
    >>> result.to_dict()["test"], result.drifted
    ('psi', True)
    """

    test: str
    score: float
    p_value: float | None
    threshold: float
    drifted: bool
    reason: str
    method: str = "exact"
    n_reference: int = 0
    n_current: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (NaN becomes ``None``)."""
        data = asdict(self)
        data["score"] = clean_float(self.score)
        data["p_value"] = clean_float(self.p_value)
        return data

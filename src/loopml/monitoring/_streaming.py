"""Streaming concept-drift detectors over a model's error stream (River).

Each detector watches a stream where ``1`` means the model was wrong and ``0`` right.
River's detectors do not agree on their input: ADWIN and Page-Hinkley take any number (we
give the error), HDDM-A and HDDM-W take 1 = error, and FHDDM's code treats 1 as *correct*
(its docstring says the opposite); ``StreamingDetector`` feeds each one what its code
expects, and a test pins every convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopml.core import ConfigError

__all__ = ["DETECTORS", "StreamingDetector", "detect_changes", "score_detections"]

DETECTORS = ("adwin", "page_hinkley", "hddm_a", "hddm_w", "fhddm")
_INVERTED = {"fhddm"}


def _make(name: str, params: dict[str, Any]) -> Any:
    try:
        from river import drift
        from river.drift import binary
    except ModuleNotFoundError:
        raise ConfigError(
            "the streaming detectors need the 'river' package",
            hint="pip install 'river>=0.21' (it is in loopml's dev extra)",
        ) from None

    factories: dict[str, Any] = {
        "adwin": drift.ADWIN,
        "page_hinkley": lambda **kw: drift.PageHinkley(**({"mode": "up"} | kw)),
        "hddm_a": binary.HDDMA,
        "hddm_w": binary.HDDMW,
        "fhddm": binary.FHDDM,
    }
    if name not in factories:
        raise ConfigError(
            f"The 'detector' parameter must be one of {list(DETECTORS)}. Got {name!r} instead."
        )
    try:
        return factories[name](**params)
    except TypeError as error:
        raise ConfigError(f"bad parameters for detector '{name}': {error}") from None


class StreamingDetector:
    """A River detector behind one convention: ``update(error)`` with 1 = wrong.

    >>> detector = StreamingDetector("hddm_w")
    >>> rng = np.random.default_rng(0)
    >>> stream = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.4].astype(int)
    >>> changes = [i for i, e in enumerate(stream) if detector.update(int(e))]
    >>> 2000 <= changes[0] < 2300
    True
    """

    def __init__(self, name: str = "adwin", **params: Any) -> None:
        self.name = name
        self.params = params
        self._detector = _make(name, params)

    def update(self, error: float) -> bool:
        """Feed one error (1 = wrong, 0 = right); ``True`` when a change is detected now."""
        value = 1 - error if self.name in _INVERTED else error
        self._detector.update(int(value) if self.name in ("hddm_a", "hddm_w", "fhddm") else value)
        return bool(self._detector.drift_detected)


def detect_changes(errors: Any, detector: str = "adwin", **params: Any) -> list[int]:
    """Positions in the error stream where the detector fires.

    >>> rng = np.random.default_rng(1)
    >>> stream = np.r_[rng.random(3000) < 0.2, rng.random(3000) < 0.4].astype(int)
    >>> hits = detect_changes(stream, "adwin")
    >>> any(3000 <= h < 3600 for h in hits)
    True
    """
    watcher = StreamingDetector(detector, **params)
    return [
        i for i, value in enumerate(np.asarray(errors, dtype=np.float64)) if watcher.update(value)
    ]


@dataclass(frozen=True)
class DetectionScore:
    """Delays to each true change, repeated detections and false alarms."""

    delays: list[int | None]
    false_alarms: int
    repeats: int
    detections: list[int] = field(default_factory=list)

    @property
    def all_found(self) -> bool:
        """Every true change was followed by a detection within the tolerance."""
        return all(delay is not None for delay in self.delays)


def score_detections(
    detections: list[int], changes: list[int], *, tolerance: int
) -> DetectionScore:
    """Match detections to true change points.

    The first detection within ``tolerance`` rows after a change gives its delay; further
    detections in that span are repeats; a detection in no such span is a false alarm.

    >>> score_detections([5, 120, 150, 530], [100, 500], tolerance=200)
    DetectionScore(delays=[20, 30], false_alarms=1, repeats=1, detections=[5, 120, 150, 530])
    """
    delays: list[int | None] = []
    inside: set[int] = set()
    for change in changes:
        hits = [d for d in detections if change <= d < change + tolerance]
        delays.append(hits[0] - change if hits else None)
        inside.update(hits)
    found = sum(delay is not None for delay in delays)
    false_alarms = sum(d not in inside for d in detections)
    return DetectionScore(delays, false_alarms, len(inside) - found, list(detections))

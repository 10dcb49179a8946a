"""Streaming detectors: each one's input convention pinned, and SEA's concept changes found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError
from loopml.monitoring import DETECTORS, StreamingDetector, detect_changes, score_detections


def _error_stream(seed: int, before: float = 0.1, after: float = 0.4, n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.random(n) < before, rng.random(n) < after].astype(int)


@pytest.mark.parametrize("name", DETECTORS)
def test_every_detector_finds_a_rise_in_errors_through_one_convention(name: str) -> None:
    found = 0
    for seed in range(5):
        hits = detect_changes(_error_stream(seed), name)
        found += any(3000 <= h < 4000 for h in hits)
        assert sum(h < 3000 for h in hits) <= 1, f"{name} false alarms before the change: {hits}"
    assert found >= 4, f"{name} found the 0.1 -> 0.4 error rise in {found} of 5 streams"


def test_river_fhddm_reads_one_as_correct_despite_its_docstring() -> None:
    from river.drift import binary

    errors = _error_stream(0)
    raw = binary.FHDDM()
    fired_on_errors = []
    for i, e in enumerate(errors):  # the docstring's convention: 1 = error
        raw.update(int(e))
        if raw.drift_detected:
            fired_on_errors.append(i)
    assert not any(3000 <= h < 4000 for h in fired_on_errors)  # it misses the rise...
    assert any(3000 <= h < 4000 for h in detect_changes(errors, "fhddm"))  # ...our wrapper does not


@pytest.mark.parametrize("name", ["hddm_a", "hddm_w"])
def test_river_hddm_reads_one_as_error(name: str) -> None:
    from river.drift import binary

    raw = binary.HDDMA() if name == "hddm_a" else binary.HDDMW()
    hits = []
    for i, e in enumerate(_error_stream(1)):
        raw.update(int(e))
        if raw.drift_detected:
            hits.append(i)
    assert any(3000 <= h < 4000 for h in hits)


def test_unknown_detector_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'detector'"):
        StreamingDetector("adwinn")
    with pytest.raises(ConfigError, match="bad parameters"):
        StreamingDetector("adwin", delt=0.1)


def _prequential(x: np.ndarray, y: np.ndarray, name: str, retrain_after: int = 1000) -> list[int]:
    """A logistic model, retrained on the next ``retrain_after`` rows after each detection."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(x[:1000], y[:1000])
    predicted = model.predict(x)
    detector, detections, retrain_at = StreamingDetector(name), [], None
    for i in range(1000, len(y)):
        if detector.update(int(predicted[i] != y[i])):
            detections.append(i)
            retrain_at = i + retrain_after
        if i == retrain_at:
            model = LogisticRegression().fit(x[i - retrain_after:i], y[i - retrain_after:i])
            predicted, detector, retrain_at = model.predict(x), StreamingDetector(name), None
    return detections


@pytest.mark.parametrize("name", ["adwin", "page_hinkley", "hddm_a", "hddm_w"])
def test_sea_concept_changes_are_found(name: str, datasets_dir: Path) -> None:
    sea = pd.read_csv(datasets_dir / "sea" / "sea.csv")
    changes = [12500, 25000, 37500]
    assert np.flatnonzero(np.diff(sea["concept"].to_numpy())).tolist() == [c - 1 for c in changes]
    detections = _prequential(sea[["f1", "f2", "f3"]].to_numpy(), sea["label"].to_numpy(), name)
    score = score_detections(detections, changes, tolerance=12_500)
    print(f"\nSEA {name}: delays {score.delays}, false alarms {score.false_alarms}, "
          f"repeats {score.repeats}, detections {detections}")
    assert score.all_found, f"{name} missed a concept change: {score}"
    assert score.false_alarms <= 1, score
    if name in ("adwin", "page_hinkley"):
        assert max(d for d in score.delays if d is not None) <= 2500, score

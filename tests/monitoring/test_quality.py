"""Model quality with delayed labels, and CBPE whose error is measured against real labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from loopml.core import ConfigError, DataError
from loopml.monitoring import CBPE, classification_metrics, quality_over_windows, time_windows

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def test_classification_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(int)
    metrics = classification_metrics(y, p)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5))
    assert metrics["f1"] == pytest.approx(f1_score(y, p >= 0.5))
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    with pytest.raises(DataError, match="row 1"):
        classification_metrics([0, 2], [0.1, 0.2])


def test_cbpe_estimates_track_realized_metrics_under_covariate_shift() -> None:
    # A miscalibrated model (scores = p ** 0.5) on a validation set; CBPE learns the
    # calibration there, then estimates 12 windows whose score distribution moves.
    rng = np.random.default_rng(1)
    def window(a: float, b: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        p = rng.beta(a, b, n)
        return np.sqrt(p), (rng.random(n) < p).astype(int)
    scores, labels = window(2, 2, 20_000)
    cbpe = CBPE().fit(scores, labels)
    errors = {"accuracy": [], "f1": [], "roc_auc": []}
    for a in np.linspace(1, 5, 12):
        s, y = window(a, 2, 3000)
        estimate, real = cbpe.estimate(s), classification_metrics(y, s)
        for name in errors:
            errors[name].append(estimate[name] - real[name])
    for name, values in errors.items():
        # the sampling error of a metric on 3,000 rows is ~0.009 (accuracy); allow 3 sd on the mean
        assert abs(np.mean(values)) < 0.01, (name, values)
        assert np.max(np.abs(values)) < 0.04, (name, values)
    # without calibration the same estimates are biased: the learned map matters
    raw = CBPE(calibrate=False).fit(scores, labels)
    s, y = window(3, 2, 3000)
    assert abs(raw.estimate(s)["accuracy"] - classification_metrics(y, s)["accuracy"]) > 0.03


def test_cbpe_needs_fitting_and_a_valid_threshold() -> None:
    with pytest.raises(ConfigError, match="not fitted"):
        CBPE().estimate([0.2])
    with pytest.raises(ConfigError, match="threshold"):
        CBPE(threshold=1.5).fit([0.1, 0.9], [0, 1])


def _logs(rng: np.random.Generator, days: int, per_day: int, delay_hours: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    times = T0 + pd.to_timedelta(np.sort(rng.uniform(0, days * 86400, days * per_day)), unit="s")
    p = rng.beta(2, 2, len(times))
    labels = (rng.random(len(times)) < p).astype(int)
    ids = [f"r{i}" for i in range(len(times))]
    predictions = pd.DataFrame({"request_id": ids, "time": times, "prediction": p})
    arrival = times + pd.to_timedelta(rng.exponential(delay_hours, len(times)), unit="h")
    feedback = pd.DataFrame({"request_id": ids, "time": arrival, "label": labels})
    return predictions, feedback


def test_quality_waits_for_the_label_delay() -> None:
    rng = np.random.default_rng(2)
    predictions, feedback = _logs(rng, days=5, per_day=400, delay_hours=12)
    windows = time_windows(T0, T0 + timedelta(days=5), "1d")
    now = T0 + timedelta(days=5)
    cbpe = CBPE().fit(*(lambda p: (p, (rng.random(p.size) < p).astype(int)))(rng.beta(2, 2, 5000)))
    table = quality_over_windows(predictions, feedback, windows, now=now, label_delay="2d",
                                 estimator=cbpe)
    assert table["status"].tolist() == ["scored"] * 3 + ["waiting for labels"] * 2
    assert table.loc[:2, "accuracy"].notna().all() and table.loc[3:, "accuracy"].isna().all()
    assert table["estimated_accuracy"].notna().all()
    assert (table.loc[:2, "error_accuracy"].abs() < 0.06).all()
    # labels arrive late: the last window has only a fraction of its labels by now
    assert table.loc[4, "label_coverage"] < 0.9 <= table.loc[0, "label_coverage"]


def test_labels_after_now_are_not_used() -> None:
    rng = np.random.default_rng(3)
    predictions, feedback = _logs(rng, days=2, per_day=200, delay_hours=30)
    windows = time_windows(T0, T0 + timedelta(days=2), "1d")
    early = quality_over_windows(predictions, feedback, windows, now=T0 + timedelta(days=2))
    later = quality_over_windows(predictions, feedback, windows, now=T0 + timedelta(days=30))
    assert early.loc[0, "n_labelled"] < later.loc[0, "n_labelled"] == later.loc[0, "n_predictions"]

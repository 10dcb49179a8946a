"""Calibration: reliability diagrams and calibrators chosen only when they help."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from loopml.evaluation._metrics import expected_calibration_error, log_loss

__all__ = ["Calibrator", "choose_calibrator", "reliability_diagram"]

FloatArray = npt.NDArray[np.float64]


def reliability_diagram(
    y: npt.ArrayLike, score: npt.ArrayLike, *, bins: int = 10
) -> dict[str, list[float]]:
    """Per equal-width bin: mean predicted probability, observed frequency and count.

    >>> reliability_diagram([0, 1, 1], [0.05, 0.95, 0.9], bins=2)["observed"]
    [0.0, 1.0]
    """
    y_arr = np.asarray(y, dtype=np.float64)
    s_arr = np.asarray(score, dtype=np.float64)
    index = np.minimum((s_arr * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    used = counts > 0
    mean_score = np.bincount(index, weights=s_arr, minlength=bins)[used] / counts[used]
    observed = np.bincount(index, weights=y_arr, minlength=bins)[used] / counts[used]
    return {
        "predicted": [float(v) for v in mean_score],
        "observed": [float(v) for v in observed],
        "count": [int(v) for v in counts[used]],
    }


@dataclass
class Calibrator:
    """A fitted map from raw scores to calibrated probabilities (Platt or isotonic)."""

    method: Literal["none", "platt", "isotonic"]
    params: dict[str, Any]

    def transform(self, score: npt.ArrayLike) -> FloatArray:
        s = np.asarray(score, dtype=np.float64)
        if self.method == "platt":
            z = self.params["a"] * _logit(s) + self.params["b"]
            return np.asarray(1 / (1 + np.exp(-z)), dtype=np.float64)
        if self.method == "isotonic":
            return np.asarray(np.interp(s, self.params["x"], self.params["y"]), dtype=np.float64)
        return s

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        return cls(data["method"], dict(data["params"]))


def _logit(s: FloatArray) -> FloatArray:
    p = np.clip(s, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)), dtype=np.float64)


def _fit_platt(y: FloatArray, s: FloatArray) -> Calibrator:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6).fit(_logit(s).reshape(-1, 1), y)
    return Calibrator("platt", {"a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])})


def _fit_isotonic(y: FloatArray, s: FloatArray) -> Calibrator:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, y)
    return Calibrator(
        "isotonic",
        {
            "x": [float(v) for v in model.X_thresholds_],
            "y": [float(v) for v in model.y_thresholds_],
        },
    )


def choose_calibrator(
    y: npt.ArrayLike, score: npt.ArrayLike, *, seed: int = 0
) -> tuple[Calibrator, dict[str, dict[str, float]]]:
    """Fit Platt and isotonic on half the calibration split; keep one only if it helps.

    Each calibrator is fitted on one half and scored on the other (held-out) half; the one
    with the lowest held-out log loss wins, and "none" wins unless a calibrator beats it.
    The winner is refitted on the whole calibration split. Returns it with every candidate's
    held-out log loss and ECE.
    """
    y_arr = np.asarray(y, dtype=np.float64)
    s_arr = np.asarray(score, dtype=np.float64)
    rng = np.random.default_rng(seed)
    fit_half = rng.random(len(y_arr)) < 0.5
    hold = ~fit_half
    results: dict[str, dict[str, float]] = {}
    fitted: dict[str, Calibrator] = {"none": Calibrator("none", {})}
    if len(np.unique(y_arr[fit_half])) == 2:
        fitted["platt"] = _fit_platt(y_arr[fit_half], s_arr[fit_half])
        fitted["isotonic"] = _fit_isotonic(y_arr[fit_half], s_arr[fit_half])
    for name, calibrator in fitted.items():
        calibrated = calibrator.transform(s_arr[hold])
        results[name] = {
            "held_out_log_loss": log_loss(y_arr[hold], calibrated),
            "held_out_ece": expected_calibration_error(y_arr[hold], calibrated),
        }
    best = min(results, key=lambda name: results[name]["held_out_log_loss"])
    if best == "platt":
        return _fit_platt(y_arr, s_arr), results
    if best == "isotonic":
        return _fit_isotonic(y_arr, s_arr), results
    return fitted["none"], results

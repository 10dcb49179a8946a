"""evaluate() end to end with a real LightGBM model; slices, calibration, behaviour, gates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml import evaluation
from loopml.core import ConfigError, DataError, EvaluateConfig, GateConfig


def _data(n: int, seed: int, weak_region: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, n),
            "age": rng.integers(18, 80, n),
            "country": rng.choice(["FR", "DE", "US", "BR"], n),
            "group": rng.choice(["a", "b"], n),
        }
    )
    logit = 0.03 * (frame["amount"] - 30) - 0.02 * (frame["age"] - 50)
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    if weak_region:  # labels in BR are pure noise: a model cannot do well there
        br = frame["country"] == "BR"
        frame.loc[br, "y"] = rng.integers(0, 2, int(br.sum()))
    return frame


def _true_model(frame: pd.DataFrame) -> np.ndarray:
    logit = 0.03 * (frame["amount"] - 30) - 0.02 * (frame["age"] - 50)
    return 1 / (1 + np.exp(-logit.to_numpy()))


def test_worst_slice_discovery_finds_the_planted_slice() -> None:
    test = _data(8000, 0, weak_region=True)
    y = test["y"].to_numpy(float)
    found = evaluation.find_worst_slices(
        test.drop(columns="y"), y, _true_model(test), task="binary_classification"
    )
    assert found, "the planted weak slice was not found"
    assert found[0].slice.startswith("country") and "BR" in found[0].value


def test_worst_slice_discovery_reports_nothing_on_clean_data() -> None:
    false_findings = 0
    for seed in range(10):
        test = _data(4000, 100 + seed)
        y = test["y"].to_numpy(float)
        found = evaluation.find_worst_slices(
            test.drop(columns="y"), y, _true_model(test), task="binary_classification"
        )
        false_findings += bool(found)
    # Holm at 0.05 across all slices searched: at most ~5% of datasets may show a finding.
    assert false_findings <= 2


def test_calibrator_is_chosen_only_when_it_helps() -> None:
    rng = np.random.default_rng(8)
    p = rng.random(20_000)
    y = (rng.random(20_000) < p).astype(float)
    chosen, scores = evaluation.choose_calibrator(y, p**3)
    assert chosen.method in {"platt", "isotonic"}
    assert scores[chosen.method]["held_out_log_loss"] < scores["none"]["held_out_log_loss"]
    assert evaluation.expected_calibration_error(y, chosen.transform(p**3)) < 0.04
    already, scores = evaluation.choose_calibrator(y, p)
    best = min(scores.values(), key=lambda s: s["held_out_log_loss"])["held_out_log_loss"]
    assert scores["none"]["held_out_log_loss"] - best < 1e-3  # nothing to gain


def test_behaviour_tests_catch_what_they_should() -> None:
    test = _data(2000, 9).drop(columns="y")

    def fair(f: pd.DataFrame) -> np.ndarray:
        return _true_model(f)

    def unfair(f: pd.DataFrame) -> np.ndarray:
        return np.clip(_true_model(f) + 0.2 * (f["group"] == "b").to_numpy(), 0, 1)

    assert evaluation.invariance_test(fair, test, column="group").passed
    result = evaluation.invariance_test(unfair, test, column="group")
    assert not result.passed and result.failing_examples
    assert result.summary["max_abs_change"] == pytest.approx(0.2, abs=0.01)
    assert evaluation.directional_test(fair, test, column="amount", direction="increasing").passed
    wrong = evaluation.directional_test(fair, test, column="age", direction="increasing")
    assert not wrong.passed and wrong.summary["share_failing"] > 0.9
    stable = evaluation.perturbation_test(fair, test, scale=0.01)
    assert stable.passed and stable.summary["stability"] > 0.95


def test_fairness_and_churn_and_simpson() -> None:
    report = evaluation.fairness_report(
        ["a"] * 4 + ["b"] * 4,
        [1, 1, 0, 0] * 2,
        [0.9, 0.8, 0.7, 0.1, 0.9, 0.2, 0.1, 0.1],
        min_size=1,
    )
    assert report["groups"]["a"]["selection_rate"] == 0.75
    assert report["groups"]["b"]["tpr"] == 0.5
    assert report["demographic_parity_difference"] == 0.5
    assert report["equalized_odds_difference"] == 0.5
    assert evaluation.prediction_churn([0.9, 0.1], [0.9, 0.1])["churn"] == 0.0


def test_evaluate_with_lightgbm_end_to_end(tmp_path: Path) -> None:
    import lightgbm as lgb

    train, test = _data(6000, 10), _data(3000, 11)
    features = ["amount", "age"]
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 0},
        lgb.Dataset(train[features], train["y"]),
        num_boost_round=60,
    )

    class Model:
        def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
            p = booster.predict(frame[features], num_threads=1)
            return np.c_[1 - p, p]

    prior = train["y"].mean()
    config = EvaluateConfig(
        slices=["country", "country*group"],
        sensitive=["group"],
        directional={"amount": "increasing"},
        bootstrap=200,
        gates=[
            GateConfig(metric="roc_auc", beats="baseline", by=0.05),
            GateConfig(metric="expected_calibration_error", at_most=0.05),
            GateConfig(metric="roc_auc", slice="country", at_least=0.6),
            GateConfig(metric="average_precision", beats="champion", by=0.5),
        ],
    )
    result = evaluation.evaluate(
        Model(),
        test,
        target="y",
        baselines={"prior": lambda f: np.full(len(f), prior)},
        champion=lambda f: _true_model(f) * 0.9,
        config=config,
        calibration_frame=_data(3000, 12),
    )
    assert (
        result.metrics["roc_auc"].low
        < result.metrics["roc_auc"].value
        < result.metrics["roc_auc"].high
    )
    assert result.differences["prior"]["roc_auc"].low > 0.1
    assert set(result.slices["slice"]) == {"country", "country*group"}
    passed = {g.gate: g.passed for g in result.gates}
    assert passed["roc_auc beats baseline by 0.05"]
    assert not passed["average_precision beats champion by 0.5"] and not result.passed
    assert any(b.kind == "invariance" and b.passed for b in result.behaviour)
    assert "group" in result.fairness
    assert result.champion is not None and 0 <= result.champion["churn"]["churn"] <= 1
    assert "calibrator" in result.calibration

    shap = evaluation.tree_shap(booster, test[features].iloc[:100])
    raw = booster.predict(test[features].iloc[:100], raw_score=True)
    np.testing.assert_allclose(shap.sum(axis=1).to_numpy(), raw, rtol=1e-6, atol=1e-6)
    top = evaluation.explain_one(booster, test[features].iloc[[0]])
    assert {row["feature"] for row in top} >= {"amount", "age", "(bias)"}

    paths = evaluation.write_report(result, tmp_path / "report", name="fraud", version="3")
    page = paths["html"].read_text()
    assert "<svg" in page and "Gates" in page and "FAILED" in page
    assert 'src="http' not in page and "<script src" not in page  # self-contained
    data = json.loads(paths["json"].read_text())
    assert data["passed"] is False and data["metrics"]["roc_auc"]["value"] == pytest.approx(
        result.metrics["roc_auc"].value
    )
    card = paths["card_md"].read_text()
    assert "# Model card: fraud (version 3)" in card and "Limitations and caveats" in card


def test_gate_on_a_metric_not_measured_fails() -> None:
    results = evaluation.check_gates([GateConfig(metric="ndcg", at_least=0.5)], {"metrics": {}})
    assert not results[0].passed and "not measured" in results[0].reason


def test_bad_input_is_named() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [1.0, None]})
    with pytest.raises(DataError, match="target column 'y' has 1 missing"):
        evaluation.evaluate(lambda f: np.zeros(len(f)), frame, target="y")
    with pytest.raises(DataError, match="no target column 'label'"):
        evaluation.evaluate(lambda f: np.zeros(len(f)), frame, target="label")
    with pytest.raises(ConfigError, match="slices names columns"):
        evaluation.evaluate(
            lambda f: np.full(len(f), 0.5),
            frame.fillna(0),
            target="y",
            config=EvaluateConfig(slices=["nope"], bootstrap=0),
        )


def test_latency_gate_reads_single_row_p99() -> None:
    frame = _data(500, 13)
    fast = evaluation.evaluate(
        _true_model,
        frame,
        target="y",
        config=EvaluateConfig(
            bootstrap=0, gates=[GateConfig(metric="latency_p99_ms", at_most=1000.0)]
        ),
    )
    assert fast.latency["p99_ms"] > 0 and fast.passed

    def slow(f: pd.DataFrame) -> np.ndarray:
        import time

        time.sleep(0.002)
        return _true_model(f)

    result = evaluation.evaluate(
        slow,
        frame,
        target="y",
        config=EvaluateConfig(
            bootstrap=0, gates=[GateConfig(metric="latency_p99_ms", at_most=1.0)]
        ),
    )
    assert not result.passed and "latency_p99_ms" in result.gates[0].reason

"""The whole loop of `loopml demo` on the card-fraud scenario, checked against its ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from loopml.continual import LOOP_STEPS
from loopml.datasets import DEMO_STEPS, DemoResult, run_demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoResult]:
    folder = tmp_path_factory.mktemp("demo")
    yield run_demo(folder, days=90, seed=0, steps=[*DEMO_STEPS, *LOOP_STEPS])


def test_every_loop_step_ran(demo: DemoResult) -> None:
    assert [s.name for s in demo.steps][-4:] == ["train", "evaluate", "replay", "report"]


def test_a_gated_champion_with_a_model_card(demo: DemoResult) -> None:
    from loopml import registry

    assert demo.workspace is not None
    champion = registry.get_model_version("card-fraud", alias="champion",
                                          tracking_uri=demo.workspace.tracking_uri)
    assert champion.version == 1
    evaluated = demo.extra["evaluation"]
    assert evaluated.passed
    assert evaluated.metrics["average_precision"].low > evaluated.baselines["prior"]["average_precision"]
    card = Path(demo.files["model_card"]).read_text()
    assert "Model card: card-fraud (version 1)" in card


def test_replay_detects_the_planted_shift_and_retrains(demo: DemoResult) -> None:
    assert demo.world is not None
    simulated = demo.extra["simulation"]
    shift = demo.world.ground_truth.spending_shift_at
    timeline = simulated.timeline
    flagged = timeline.loc[timeline["drift_alert"], "start"]
    assert (flagged >= shift).any() and flagged[flagged >= shift].iloc[0] - shift <= pd.Timedelta(days=2)
    retrains = [e for e in simulated.events if e["kind"] == "retrained"]
    assert any("drift alert" in e["reasons"] for e in retrains)
    assert any(e["kind"] == "rollout_started" for e in simulated.events)
    assert simulated.prequential["loopml"] >= simulated.prequential["never_retrained"] - 0.01


def test_every_served_transaction_is_in_the_prediction_log(demo: DemoResult) -> None:
    from loopml.data import prediction_log

    assert demo.workspace is not None
    served = int(demo.extra["simulation"].timeline["rows"].sum())
    logged = prediction_log(demo.workspace).read(columns=["request_id", "shadow"])
    assert int((~logged["shadow"].astype(bool)).sum()) == served


def test_the_timeline_report_is_one_self_contained_page(demo: DemoResult) -> None:
    page = Path(demo.files["report"]).read_text()
    assert "<svg" in page and "spending shift" in page and "<script" not in page

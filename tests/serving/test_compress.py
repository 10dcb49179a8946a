"""Compression: pruned and distilled variants, measured overall and per slice."""

from __future__ import annotations

import numpy as np
import pytest
from tests.serving.conftest import Registered, training_frame

from loopml.core import ConfigError, Workspace
from loopml.evaluation import compute_metrics
from loopml.serving import compress, load_registered, prune_trees


def test_compression_report_shows_who_pays(registered: Registered) -> None:
    loaded = load_registered(
        "fraud@champion", tracking_uri=Workspace.open(registered.root).tracking_uri
    )
    train, test = training_frame(4_000, seed=21), training_frame(6_000, seed=22)
    report = compress(
        loaded,
        train,
        test,
        target="y",
        slices=["country"],
        metric="log_loss",
        keep_iterations=(0.5,),
        keep_features=(1 / 6,),
        distill_leaves=(4,),
        distill_rounds=30,
    )
    table = report.variants.set_index("kind")
    assert list(report.variants["kind"]) == ["original", "prune_trees", "prune_features", "distill"]
    total = loaded.booster.num_trees()
    assert table.loc["prune_trees", "trees"] == round(total * 0.5)
    assert table.loc["prune_trees", "size_ratio"] < 0.7
    assert table.loc["prune_features", "features"] == 1
    assert table.loc["distill", "trees"] == 30
    # the overall figure is the evaluation package's own log loss on the held-out rows
    X = loaded.model.encoder.transform(test)
    want = compute_metrics(test["y"], loaded.booster.predict(X), task="binary_classification")
    assert table.loc["original", "log_loss"] == pytest.approx(want["log_loss"])
    assert (report.variants["single_row_us"] > 0).all()
    # known effect: y depends on x0 and on country == FR; the one-feature model keeps x0 and
    # drops country, so the FR slice pays more than the model as a whole
    pruned = report.slices[report.slices["variant"] == table.loc["prune_features", "variant"]]
    by_country = pruned.set_index("value")
    assert by_country.loc["FR", "excess_loss"] > 0
    assert by_country["excess_loss"].idxmax() == "FR"
    assert np.isclose(
        by_country.loc["FR", "change"],
        by_country.loc["FR", "log_loss"] - by_country.loc["FR", "original"],
    )
    assert "### Slices losing the most" in report.to_markdown()


def test_pruning_bad_parameters(registered: Registered) -> None:
    loaded = load_registered(
        "fraud@champion", tracking_uri=Workspace.open(registered.root).tracking_uri
    )
    with pytest.raises(ConfigError, match="iterations"):
        prune_trees(loaded.booster, 0)
    with pytest.raises(ConfigError, match="target column 'label'"):
        compress(loaded, training_frame(200), training_frame(200), target="label")

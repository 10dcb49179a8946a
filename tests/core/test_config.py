"""loopml.yaml: strict keys with line numbers and suggestions; durations parsed once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from loopml.core import Config, ConfigError, dump_config, load_config, parse_config, parse_duration

FULL = """\
project: card-fraud
sources:
  transactions: {path: data/transactions.parquet, timestamp: event_time}
  chargebacks:  {path: data/chargebacks.parquet,  timestamp: reported_at}
entities:
  card: {key: card_id}
features:
  card_activity:
    entity: card
    source: transactions
    ttl: 30d
    aggregations:
      - {column: amount, functions: [sum, mean, count, max], windows: [1h, 1d, 7d]}
labels: {source: chargebacks, target: is_fraud, entity: card, feedback_window: 30d}
task: binary_classification
split: {by: time, validation: 7d, test: 14d, gap: 1d}
train:
  candidates: [baseline, logistic_regression, lightgbm]
  tune: {trials: 30, metric: average_precision}
evaluate:
  slices: [merchant_category, country]
  gates:
    - {metric: average_precision, beats: baseline, by: 0.05}
    - {metric: expected_calibration_error, at_most: 0.05}
serve: {features: [card_activity], fallback: baseline, latency_budget_ms: 50}
monitor: {window: 1d, drift: {alpha: 0.01}}
continual:
  retrain: {every: 7d, on_drift: true, mode: stateful}
  rollout: {shadow: 1d, canary: {steps: [5, 25, 50, 100], every: 1h}}
"""


def test_the_blueprint_config_is_valid() -> None:
    config = parse_config(FULL)
    assert config.features["card_activity"].ttl == timedelta(days=30)
    windows = config.features["card_activity"].aggregations[0].windows
    assert windows == [timedelta(hours=1), timedelta(days=1), timedelta(days=7)]
    assert config.split.test == timedelta(days=14)
    assert config.continual.rollout.canary is not None
    assert config.continual.rollout.canary.every == timedelta(hours=1)


def test_round_trip_through_yaml() -> None:
    config = parse_config(FULL)
    again = parse_config(dump_config(config))
    assert again == config
    assert "ttl: 30d" in dump_config(config)


def test_typo_names_file_line_key_and_closest_key(tmp_path: Path) -> None:
    path = tmp_path / "loopml.yaml"
    path.write_text(FULL.replace("  tune: {trials", "  tunning: {trials"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"{path}:19" in message
    assert "unknown key 'train.tunning'" in message
    assert "did you mean 'tune'?" in message
    assert caught.value.exit_code == 2


def test_typo_inside_a_mapping_of_models() -> None:
    text = FULL.replace("    ttl: 30d", "    tll: 30d")
    with pytest.raises(
        ConfigError,
        match=r"loopml.yaml:11: unknown key 'features.card_activity.tll'; did you mean 'ttl'",
    ):
        parse_config(text)


def test_typo_inside_a_list_of_models() -> None:
    text = FULL.replace(
        "{metric: expected_calibration_error, at_most",
        "{metric: expected_calibration_error, at_mots",
    )
    with pytest.raises(ConfigError, match=r"evaluate.gates.1.at_mots'; did you mean 'at_most'"):
        parse_config(text)


def test_bad_duration_names_the_field() -> None:
    with pytest.raises(
        ConfigError, match=r"loopml.yaml:11: 'features.card_activity.ttl'.*duration like '7d'"
    ):
        parse_config(FULL.replace("ttl: 30d", "ttl: thirty days"))


def test_unknown_reference_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown source 'transaction'"):
        parse_config(FULL.replace("    source: transactions", "    source: transaction"))


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"loopml.yaml:2: not valid YAML"):
        parse_config("project: x\n  bad: [\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        parse_config("- a\n- b\n")
    with pytest.raises(ConfigError, match="run `loopml init`"):
        load_config(tmp_path / "missing.yaml")


def test_source_needs_exactly_one_location() -> None:
    with pytest.raises(ConfigError, match="exactly one of 'path', 'query' or 'url'"):
        Config.model_validate  # noqa: B018 - keep the name used below
        parse_config("project: x\nsources:\n  t: {path: a.csv, query: 'select 1'}\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("250ms", timedelta(milliseconds=250)),
        (90, timedelta(seconds=90)),
        (" 1h ", timedelta(hours=1)),
    ],
)
def test_durations(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "7", "7 days", "-1d", "1y", True, None, -5])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ConfigError, match="must be a duration like '7d'"):
        parse_duration(bad)  # type: ignore[arg-type]

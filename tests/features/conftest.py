"""A small card-fraud workspace: transactions, a card profile table and chargeback labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.core import Workspace, parse_config

T0 = pd.Timestamp("2024-03-01", tz="UTC")

CONFIG = """
project: cards
sources:
  transactions: {path: data/transactions.parquet, timestamp: event_time}
  profiles: {path: data/profiles.parquet, timestamp: updated_at, created_timestamp: loaded_at}
  chargebacks: {path: data/chargebacks.parquet, timestamp: reported_at}
entities:
  card: {key: card_id}
features:
  card_profile:
    entity: card
    source: profiles
    columns: [limit, country]
    ttl: 30d
  card_spend:
    entity: card
    source: transactions
    aggregations:
      - {column: amount, functions: [count, sum, max], windows: [1h, 1d]}
  card_big:
    entity: card
    source: transactions
    sql: "SELECT card_id, event_time, amount > 100 AS big_purchase FROM source"
labels: {source: chargebacks, target: is_fraud, entity: card}
"""


def make_data(seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = 400
    transactions = pd.DataFrame({
        "card_id": rng.integers(1, 21, n),
        "event_time": T0 + pd.to_timedelta(np.sort(rng.integers(0, 10 * 86_400, n)), unit="s"),
        "amount": rng.gamma(2.0, 40.0, n).round(2),
    })
    profiles = pd.DataFrame({
        "card_id": np.repeat(np.arange(1, 21), 2),
        "updated_at": T0 + pd.to_timedelta(np.tile([0, 5], 20), unit="D"),
        "limit": np.arange(40) * 100,
        "country": ["FR", "DE"] * 20,
    })
    profiles["loaded_at"] = profiles["updated_at"] + pd.Timedelta(minutes=5)
    chargebacks = pd.DataFrame({
        "card_id": rng.integers(1, 23, 60),
        "reported_at": T0 + pd.to_timedelta(rng.integers(0, 12 * 86_400, 60), unit="s"),
        "is_fraud": rng.integers(0, 2, 60),
    })
    return {"transactions": transactions, "profiles": profiles, "chargebacks": chargebacks}


@pytest.fixture
def cards(tmp_path: Path) -> Workspace:
    """A workspace whose three sources are Parquet files under ``data/``."""
    workspace = Workspace.create(tmp_path / "cards", parse_config(CONFIG))
    (workspace.root / "data").mkdir()
    for name, frame in make_data().items():
        frame.to_parquet(workspace.root / "data" / f"{name}.parquet", index=False)
    return workspace



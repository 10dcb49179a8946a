"""``loopml features ...`` on a real workspace."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from loopml.cli import main
from loopml.core import Workspace
from loopml.features import feature_log_entries, get_online_features, log_features

from .conftest import T0


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_build_materialize_get(cards: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    where = str(cards.root)
    code, out, _ = _run(capsys, "features", "list", "--dir", where)
    assert code == 0 and "card_spend  [aggregations]  keys=card_id" in out
    assert "amount_sum_1d" in out and "ttl=30d" in out
    code, out, _ = _run(capsys, "features", "build", "--dir", where)
    assert code == 0 and "60 rows" in out and "card_profile @ " in out
    end = (T0 + pd.Timedelta(days=9)).isoformat()
    code, out, _ = _run(capsys, "features", "materialize", "--dir", where, "--end", end)
    assert code == 0 and "card_profile: 20 rows" in out and "(full)" in out
    code, out, _ = _run(capsys, "features", "get", "--entity", "card_id=3", "--dir", where,
                        "-v", "card_profile")
    assert code == 0
    got = json.loads(out)["card_profile"]
    # materialised as of day 9 with a 30d TTL, read now: more than 30 days later
    assert got["status"] in {"present", "outside_ttl"} and got["event_time"].startswith("2024")


def test_check_skew_exit_codes(cards: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    where = str(cards.root)
    at = T0 + pd.Timedelta(days=8)
    assert _run(capsys, "features", "materialize", "--dir", where, "--end",
                (T0 + pd.Timedelta(days=2)).isoformat())[0] == 0
    records = get_online_features(cards, {"card_id": 4}, ["card_profile"],
                                  now=at.to_pydatetime())
    log_features(cards, feature_log_entries(request_id="r", model_version="1",
                                            entity={"card_id": 4}, records=records,
                                            requested_at=at.to_pydatetime()))
    code, out, err = _run(capsys, "features", "check-skew", "--dir", where, "-v", "card_profile")
    assert code == 1 and "SKEW FOUND" in out and "skew found" in err
    code, out, _ = _run(capsys, "features", "check-skew", "--dir", where, "-v", "card_profile",
                        "--since", "2025-01-01T00:00:00Z")
    assert code == 0 and "no logged feature values" in out


def test_bad_options_are_usage_errors(cards: Workspace, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    where = str(cards.root)
    code, _, err = _run(capsys, "features", "get", "--entity", "card_id:3", "--dir", where)
    assert code == 2 and "must look like card_id=42" in err
    code, _, err = _run(capsys, "features", "materialize", "--dir", where, "--end", "2024-01-01")
    assert code == 2 and "needs a time zone" in err
    code, _, err = _run(capsys, "features", "build", "--dir", where, "-v", "nope")
    assert code == 2 and "no feature view 'nope'" in err

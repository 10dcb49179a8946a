"""`loopml demo`: run through the real command line, then check what it produced on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from loopml.cli import main
from loopml.core import Workspace
from loopml.data import get_snapshot, list_snapshots, load_snapshot
from loopml.datasets import card_fraud, run_demo
from loopml.datasets._demo import STEPS

DAYS, SEED = 20, 5


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "loopml-demo"
    code = main(["demo", "--dir", str(folder), "--days", str(DAYS), "--seed", str(SEED)])
    assert code == 0
    return folder


def _summary(folder: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((folder / ".loopml" / "reports" / "demo.json").read_text())


def test_every_step_ran_and_reported(demo_dir: Path) -> None:
    summary = _summary(demo_dir)
    names = [step["name"] for step in summary["steps"]]
    assert names == [step.__name__.removeprefix("step_") for step in STEPS]
    assert names[:7] == ["generate", "write", "workspace", "ingest", "profile", "labels",
                         "validate"]
    assert all(step["message"] for step in summary["steps"])


def test_snapshots_hold_the_generated_data(demo_dir: Path) -> None:
    world = card_fraud(n_days=DAYS, seed=SEED)  # regenerated independently of the demo
    as_of = world.ground_truth.end - pd.Timedelta(days=1)
    workspace = Workspace.open(demo_dir)
    assert workspace.config.project == "card-fraud-demo"
    assert workspace.config.task == "binary_classification"
    assert set(workspace.config.sources) == {"transactions", "chargebacks", "cards", "merchants"}
    summary = _summary(demo_dir)
    expected = {
        "transactions": world.transactions[world.transactions["event_time"] < as_of],
        "chargebacks": world.chargebacks_as_of(as_of),
        "cards": world.cards,
        "merchants": world.merchants,
    }
    for table, frame in expected.items():
        snapshot = get_snapshot(workspace, table)
        assert snapshot.data_path.is_file()
        assert snapshot.rows == len(frame) == summary["snapshots"][table]["rows"]
        assert snapshot.version == summary["snapshots"][table]["version"]
    stored = load_snapshot(workspace, "transactions")
    assert stored["transaction_id"].tolist() == expected["transactions"]["transaction_id"].tolist()
    assert stored["amount"].sum() == pytest.approx(expected["transactions"]["amount"].sum())
    assert str(stored["event_time"].dt.tz) == "UTC"
    fresh = pd.read_parquet(next((demo_dir / "data").glob("transactions-*.parquet")))
    assert len(fresh) + len(stored) == len(world.transactions)
    assert fresh["event_time"].min() >= as_of


def test_summary_numbers_match_the_data(demo_dir: Path) -> None:
    facts = _summary(demo_dir)["facts"]
    tx = pd.read_parquet(demo_dir / "data" / "transactions.parquet")
    cb = pd.read_parquet(demo_dir / "data" / "chargebacks.parquet")
    labels = pd.read_parquet(demo_dir / "truth" / "labels.parquet")
    labels = labels[labels["transaction_id"].isin(tx["transaction_id"])]
    assert facts["transactions"] == len(tx)
    assert facts["fraud_true"] == labels["is_fraud"].sum()
    assert facts["fraud_rate_true"] == pytest.approx(labels["is_fraud"].mean())
    assert facts["fraud_reported"] == len(cb) < facts["fraud_true"]
    joined = cb.merge(tx, on="transaction_id")
    delay = (joined["reported_at"] - joined["event_time"]).dt.total_seconds() / 86_400
    assert facts["label_delay_days"]["median"] == pytest.approx(delay.median())
    assert facts["label_delay_days"]["max"] == pytest.approx(delay.max())
    assert facts["label_delay_days"]["min"] >= 1.0
    truth = json.loads((demo_dir / "truth" / "ground_truth.json").read_text())
    assert truth["seed"] == SEED and truth["new_fraud_pattern_at"] == facts["new_fraud_pattern_at"]


def test_validation_finds_every_planted_problem(demo_dir: Path) -> None:
    validation = _summary(demo_dir)["validation"]
    assert validation["fresh"]["ok"], validation["fresh"]
    planted = validation["planted"]
    found = {(p["column"], p["row"]): p["problem"] for p in validation["corrupted"]["problems"]}
    assert found[("amount", planted["amount"])] == "out_of_range"
    assert found[("country", planted["country"])] == "unseen_category"
    assert found[("card_id", planted["card_id"])] == "null"
    assert len(found) == 3


def test_profile_and_schema_are_persisted(demo_dir: Path) -> None:
    from loopml.data import Profile, Schema

    summary = _summary(demo_dir)
    profile = Profile.load(summary["profile"])
    assert profile.rows == summary["facts"]["transactions"]
    assert profile["device"].nulls > 0
    schema = Schema.load(summary["schema"])
    assert set(schema["merchant_category"].categories or ()) >= {"grocery", "jewelry"}


def test_rerun_is_idempotent(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {(s.table, s.version) for s in list_snapshots(Workspace.open(demo_dir))}
    code = main(["demo", "--dir", str(demo_dir), "--days", str(DAYS), "--seed", str(SEED)])
    assert code == 0
    out = capsys.readouterr().out
    assert "unchanged" in out and "summary" in out
    after = {(s.table, s.version) for s in list_snapshots(Workspace.open(demo_dir))}
    assert after == before
    assert not any(s["new"] for s in _summary(demo_dir)["snapshots"].values())


def test_another_seed_adds_new_versions(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    first = run_demo(folder, days=6, seed=1)
    second = run_demo(folder, days=6, seed=2)
    assert first.snapshots["transactions"].version != second.snapshots["transactions"].version
    assert len(list_snapshots(Workspace.open(folder), "transactions")) == 2
    assert second.new_versions["transactions"]
    assert len(list((folder / "data").glob("transactions-*.parquet"))) == 1
    third = run_demo(folder, days=7, seed=2)  # another length: another fresh day, old one gone
    assert [p.name for p in (folder / "data").glob("transactions-*.parquet")] == [
        third.files["fresh"].name
    ]


def test_refuses_another_project_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "theirs"
    (folder / "data").mkdir(parents=True)
    (folder / "loopml.yaml").write_text("project: payroll\n")
    (folder / "data" / "payroll.csv").write_text("id,amount\n1,2\n")
    (folder / ".loopml" / "lake" / "payroll").mkdir(parents=True)
    assert main(["demo", "--dir", str(folder), "--days", "5"]) == 2
    err = capsys.readouterr().err
    assert "project 'payroll'" in err and "--force" in err
    assert (folder / "loopml.yaml").read_text() == "project: payroll\n"
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["payroll.csv"]
    assert main(["demo", "--dir", str(folder), "--days", "5", "--force"]) == 0
    assert Workspace.open(folder).config.project == "card-fraud-demo"
    assert not (folder / ".loopml" / "lake" / "payroll").exists()
    assert (folder / "data" / "payroll.csv").read_text() == "id,amount\n1,2\n"


def test_bad_days_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["demo", "--dir", str(tmp_path / "x"), "--days", "1"]) == 2
    assert not (tmp_path / "x").exists()
    from loopml.core import ConfigError

    with pytest.raises(ConfigError, match="'days' parameter of run_demo"):
        run_demo(tmp_path / "y", days=0, force=True)
    assert not (tmp_path / "y").exists()


def test_a_file_as_the_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert main(["demo", "--dir", str(target), "--days", "3"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "keep me"

"""The command line: train from loopml.yaml, list and show runs, register and alias models,
reproduce a run."""

from __future__ import annotations

import json
import shutil

import pytest

from loopml.cli import main
from loopml.core import Config, Workspace


@pytest.fixture
def project(tmp_path, _template_db, make_binary) -> Workspace:  # type: ignore[no-untyped-def]
    from loopml.data import ingest

    frame = make_binary(n=1_500)
    frame.to_parquet(tmp_path / "tx.parquet")
    config = Config.model_validate(
        {
            "project": "cards",
            "task": "binary_classification",
            "sources": {"tx": {"path": str(tmp_path / "tx.parquet"), "timestamp": "ts"}},
            "labels": {"source": "tx", "target": "y"},
            "train": {
                "candidates": ["baseline", "lightgbm"],
                "tune": {"trials": 0},
                "heuristics": {"big_x1": "x1 > 1"},
            },
        }
    )
    workspace = Workspace.create(tmp_path / "ws", config)
    shutil.copy(_template_db, workspace.mlflow_db_path)  # skip MLflow's schema migrations
    ingest(workspace, "tx")
    return workspace


def test_train_register_list_show_alias_reproduce(project, capsys) -> None:  # type: ignore[no-untyped-def]
    ws = str(project.root)
    assert main(["train", "--dir", ws, "--register", "fraud"]) == 0
    out = capsys.readouterr().out
    assert "big_x1" in out and "lightgbm" in out and "registered fraud version 1" in out
    assert main(["runs", "list", "--dir", ws, "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)
    assert run["best"] == "lightgbm" and run["beats_baseline"]
    assert main(["runs", "show", run["run_id"], "--dir", ws]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["tags"]["loopml.lineage.snapshot.tx"]  # the snapshot version trained on
    assert {c["name"] for c in shown["children"]} == {"prior", "big_x1", "last_value", "lightgbm"}
    assert (
        main(["models", "register", run["run_id"], "fraud", "--dir", ws, "--alias", "challenger"])
        == 0
    )
    assert main(["models", "alias", "fraud", "champion", "1", "--dir", ws]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--dir", ws, "--json"]) == 0
    [model] = json.loads(capsys.readouterr().out)
    assert model == {
        "name": "fraud",
        "versions": [1, 2],
        "aliases": {"champion": 1, "challenger": 2},
    }
    assert main(["models", "show", "fraud", "--dir", ws]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == 1 and "model.txt" in shown["artifacts_verified"]
    assert main(["train", "--dir", ws, "--reproduce", run["run_id"]]) == 0
    assert "REPRODUCED" in capsys.readouterr().out


def test_cli_errors_exit_with_codes(project, capsys) -> None:  # type: ignore[no-untyped-def]
    ws = str(project.root)
    assert main(["models", "show", "nothing", "--dir", ws]) == 2
    assert "no model named 'nothing'" in capsys.readouterr().err
    assert main(["runs", "show", "0" * 32, "--dir", ws]) == 2
    assert main(["models", "alias", "fraud", "bad alias!", "1", "--dir", ws]) == 2
    config = project.config.model_copy(update={"task": None})
    project.save_config(config)
    assert main(["train", "--dir", ws]) == 2
    assert "has no `task:`" in capsys.readouterr().err

"""End to end: the prediction log through run_monitor, alerts to real sinks, the CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.cli import main
from loopml.core import Config, ConfigError, DataError, StateStore, Workspace
from loopml.data import EventLog
from loopml.monitoring import AlertManager, AlertRule, load_run, run_monitor

T0 = datetime(2024, 6, 1, tzinfo=UTC)


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def _day(rng: np.random.Generator, day: int, shift: float, n: int = 600) -> tuple[pd.DataFrame, pd.DataFrame]:
    times = T0 + timedelta(days=day) + pd.to_timedelta(np.sort(rng.uniform(0, 86_000, n)), unit="s")
    x = rng.normal(shift, 1, n)
    y_feature = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(x + y_feature)))
    ids = [f"d{day}-{i}" for i in range(n)]
    predictions = pd.DataFrame({
        "request_id": ids, "time": times, "model_version": "3", "arm": "champion",
        "prediction": p, "latency_ms": rng.lognormal(1.5, 0.2, n), "fallback": rng.random(n) < 0.01,
        "f_x": x, "f_y": y_feature, "f_c": rng.choice(["a", "b", "c"], size=n),
    })
    labels = (rng.random(n) < p).astype(int)
    feedback = pd.DataFrame({"request_id": ids, "time": times + timedelta(hours=6), "label": labels})
    return predictions, feedback


def _workspace(root: Path, hook: str) -> Workspace:
    config = Config.model_validate({
        "project": "shop", "task": "binary_classification",
        "monitor": {"window": "1d", "label_delay": "1d", "alerts": [
            {"name": "drift", "metric": "drift.share_drifted", "threshold": 0.2, "for_windows": 2,
             "sinks": ["log", "file", f"webhook:{hook}"]},
            {"name": "slow", "metric": "ops.latency_p99_ms", "threshold": 1000.0},
        ]},
    })
    return Workspace.create(root, config)


def _log(workspace: Workspace, days: range, shift_from: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for day in days:
        predictions, feedback = _day(rng, day, 1.0 if day >= shift_from else 0.0)
        EventLog(workspace.predictions_log_dir).append(predictions)
        EventLog(workspace.feedback_log_dir).append(feedback)


def test_monitor_run_alerts_once_then_resolves(tmp_path: Path, receiver: tuple[str, type[_Receiver]]) -> None:
    hook, handler = receiver
    workspace = _workspace(tmp_path / "ws", hook)
    _log(workspace, range(6), shift_from=3, seed=0)
    run = run_monitor(workspace, now=T0 + timedelta(days=6))
    drifted = [w.drift.drifted_columns if w.drift else None for w in run.windows]
    assert drifted == [None, [], [], ["f_x"], ["f_x"], ["f_x"]]
    assert [w.metrics.get("quality.accuracy") is not None for w in run.windows] == [True] * 5 + [False]
    assert all("estimated.accuracy" in w.metrics for w in run.windows)
    assert [(e.rule, e.status, e.at[:10]) for e in run.alert_events] == [("drift", "firing", "2024-06-06")]
    assert run.alert_events[0].deliveries == {"log": "ok", "file": "ok", f"webhook:{hook}": "ok"}
    assert [m["status"] for m in handler.received] == ["firing"]
    lines = (workspace.reports_dir / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(line)["rule"] for line in lines] == ["drift"]
    # a second run over the same period changes nothing and notifies no one
    again = run_monitor(workspace, now=T0 + timedelta(days=6))
    assert again.alert_events == [] and len(handler.received) == 1
    # drift goes away: the alert resolves, once
    rng = np.random.default_rng(5)
    for day in (6, 7):
        predictions, feedback = _day(rng, day, 0.0)
        EventLog(workspace.predictions_log_dir).append(predictions)
        EventLog(workspace.feedback_log_dir).append(feedback)
    later = run_monitor(workspace, now=T0 + timedelta(days=8))
    assert [(e.rule, e.status) for e in later.alert_events] == [("drift", "resolved")]
    assert [m["status"] for m in handler.received] == ["firing", "resolved"]
    # the saved report is self-contained
    saved = load_run(workspace)
    html = (Path(saved["path"]) / "report.html").read_text()
    assert "<svg" in html and "f_x" in html and "resolved" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert saved["windows"][3]["drift"]["drifted_columns"] == ["f_x"]
    import re
    import xml.etree.ElementTree as ElementTree

    charts = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(charts) > 10
    for chart in charts:
        ElementTree.fromstring(chart)  # every inline chart is well-formed SVG


def test_cli_run_report_alerts(tmp_path: Path, receiver: tuple[str, type[_Receiver]],
                               capsys: pytest.CaptureFixture[str]) -> None:
    hook, _ = receiver
    workspace = _workspace(tmp_path / "ws", hook)
    _log(workspace, range(5), shift_from=2, seed=1)
    root = str(workspace.root)
    assert main(["monitor", "run", "--dir", root, "--now", "2024-06-07T00:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "ALERT drift firing" in out and "report:" in out
    assert main(["monitor", "alerts", "--dir", root]) == 0
    assert "drift: firing" in capsys.readouterr().out
    assert main(["monitor", "report", "--dir", root, "--format", "json"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert json.loads(path.read_text())["project"] == "shop"
    assert main(["monitor", "run", "--dir", root, "--start", "yesterday"]) == 2
    assert "'start' option" in capsys.readouterr().err
    assert main(["monitor", "report", "--dir", root, "nope"]) == 2


def test_empty_log_and_bad_rules(tmp_path: Path) -> None:
    workspace = Workspace.create(tmp_path / "ws", Config(project="empty"))
    with pytest.raises(DataError, match="no predictions"):
        run_monitor(workspace)
    assert main(["monitor", "run", "--dir", str(workspace.root)]) == 1
    with pytest.raises(ConfigError, match="did you mean 'drift.share_drifted'"):
        AlertRule("x", "drift.shar_drifted", 0.1)
    with pytest.raises(ConfigError, match="webhook:URL"):
        AlertRule("x", "ops.error_rate", 0.1, sinks=("slack",))
    store = StateStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    with pytest.raises(ConfigError, match="unique"):
        AlertManager([AlertRule("a", "ops.error_rate", 0.1)] * 2, store)


def test_a_failing_webhook_is_recorded_not_raised(tmp_path: Path, receiver: tuple[str, type[_Receiver]]) -> None:
    hook, handler = receiver
    handler.status = 500
    store = StateStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    manager = AlertManager([AlertRule("e", "ops.error_rate", 0.1, sinks=(f"webhook:{hook}",))], store)
    (event,) = manager.evaluate({"ops.error_rate": 0.5}, T0)
    assert event.deliveries[f"webhook:{hook}"].startswith("failed: HTTPStatusError")
    assert manager.state("e").status == "firing"


def _state_machine(store: StateStore) -> None:
    rule = AlertRule("p99", "ops.latency_p99_ms", 100.0, for_windows=2, for_duration=timedelta(hours=2), sinks=())
    manager = AlertManager([rule], store)
    hour = timedelta(hours=1)
    steps = [(0, 150.0), (1, 160.0), (2, 170.0), (3, 180.0), (4, 50.0), (5, 60.0), (6, 200.0), (7, 210.0), (8, 220.0)]
    seen = []
    for h, value in steps:
        events = manager.evaluate({"ops.latency_p99_ms": value}, T0 + h * hour)
        seen.append((h, manager.state("p99").status, [e.status for e in events]))
    assert seen == [
        (0, "pending", []), (1, "pending", []),  # 2 windows but only 1 h held
        (2, "firing", ["firing"]), (3, "firing", []),  # no re-fire
        (4, "resolved", ["resolved"]), (5, "resolved", []),
        (6, "pending", []), (7, "pending", []), (8, "firing", ["firing"]),
    ]
    assert manager.evaluate({"ops.latency_p99_ms": 10.0}, T0 + 8 * hour) == []  # same window again
    assert manager.evaluate({}, T0 + 9 * hour) == []  # no data: no change
    assert manager.state("p99").status == "firing"
    assert [e["status"] for e in manager.events()] == ["firing", "resolved", "firing"]


def test_state_machine_on_sqlite(tmp_path: Path) -> None:
    _state_machine(StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}"))


@pytest.mark.services
def test_state_machine_on_postgresql(postgres_url: str) -> None:
    import sqlalchemy as sa

    store = StateStore(postgres_url)
    with store._engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM loopml_records WHERE kind = 'monitor.alert'"))
        connection.execute(sa.text("DELETE FROM loopml_events WHERE kind = 'monitor.alert'"))
    _state_machine(store)


def test_training_profile_and_previous_window_references(tmp_path: Path) -> None:
    from loopml.data import profile

    workspace = Workspace.create(tmp_path / "ws", Config(project="p", monitor={"window": "1d"}))
    _log(workspace, range(4), shift_from=2, seed=3)
    rng = np.random.default_rng(9)
    training = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(size=5000),
                             "c": rng.choice(["a", "b", "c"], size=5000)})
    profile(training).save(workspace.root / "train_profile.json")
    run = run_monitor(workspace, reference="train_profile.json", save=False)
    assert run.reference == "profile train_profile.json"
    assert [w.drift.drifted_columns for w in run.windows if w.drift] == [[], [], ["f_x"], ["f_x"]]
    assert any("multivariate tests need reference rows" in n for n in run.windows[0].notes)
    previous = run_monitor(workspace, reference="previous_window", save=False)
    # against the previous day the shift shows once, when it happens
    assert [w.drift.drifted_columns for w in previous.windows if w.drift] == [[], ["f_x"], []]
    fixed = run_monitor(workspace, reference="2024-06-01T00:00:00Z/2024-06-03T00:00:00Z", save=False)
    assert fixed.reference.startswith("period")
    assert [w.drift.drifted_columns for w in fixed.windows] == [[], [], ["f_x"], ["f_x"]]
    with pytest.raises(DataError, match="holds no predictions"):
        run_monitor(workspace, reference="2020-01-01T00:00:00Z/2020-01-02T00:00:00Z", save=False)
    with pytest.raises(Exception, match="neither 'first_window'"):
        run_monitor(workspace, reference="missing.json", save=False)


def test_training_serving_skew_finds_a_unit_change() -> None:
    from loopml.monitoring import training_serving_skew

    rng = np.random.default_rng(0)
    ids = np.arange(1000)
    served = pd.DataFrame({"request_id": ids, "amount": rng.gamma(2, 50, 1000),
                           "country": rng.choice(["fr", "de"], 1000)})
    offline = served.copy()
    offline.loc[offline.index < 100, "amount"] /= 100  # cents vs euros for 10% of rows
    result = training_serving_skew(served, offline.iloc[:900])
    assert result.skewed == ["amount"]
    assert result.features.set_index("feature").loc["amount", "mismatch_rate"] == pytest.approx(100 / 900)
    assert (result.matched, result.only_served, result.only_offline) == (900, 100, 0)


def test_run_estimates_label_shift_from_validation_outputs(tmp_path: Path) -> None:
    workspace = Workspace.create(tmp_path / "ws", Config(project="p", task="binary_classification",
                                                         monitor={"drift": {"multivariate": False}}))
    rng = np.random.default_rng(12)

    def sample(n: int, prior: float) -> tuple[np.ndarray, np.ndarray]:
        y = (rng.random(n) < prior).astype(int)
        x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)  # P(x | y) fixed: pure label shift
        return 1 / (1 + np.exp(-2 * x)), y

    priors = [0.5, 0.5, 0.2, 0.8]
    for day, prior in enumerate(priors):
        score, _ = sample(4000, prior)
        times = T0 + timedelta(days=day) + pd.to_timedelta(rng.uniform(0, 86_000, 4000), unit="s")
        EventLog(workspace.predictions_log_dir).append(pd.DataFrame(
            {"request_id": [f"{day}-{i}" for i in range(4000)], "time": times, "prediction": score}))
    validation = sample(20_000, 0.5)
    run = run_monitor(workspace, calibration=validation, save=False)
    estimated = [w.metrics["label_shift.positive_prior"] for w in run.windows]
    assert np.allclose(estimated, priors, atol=0.04), estimated
    p_values = [w.metrics["label_shift.p_value"] for w in run.windows]
    assert p_values[2] < 1e-6 and p_values[3] < 1e-6 and p_values[1] > 0.001, p_values

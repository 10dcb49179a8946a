"""Serving benchmark: loopml serve vs mlflow models serve vs a minimal FastAPI app.

The same 20-feature LightGBM model (binary, 100 trees, trained on generated data) is served
by three HTTP servers on 127.0.0.1, one after another, and loaded by ``wrk`` (a separate
process) with one-row ``dataframe_split`` requests at concurrency 1, 8 and 32 for a fixed
time each, on 1 and 2 worker processes:

* ``loopml serve NAME@champion`` from a workspace registry, with validation against the
  model's schema, routing, metrics and the prediction log on (every request is logged);
* ``mlflow models serve --env-manager local`` (full mlflow in its own virtual environment,
  ``/tmp/loopml-bench-venvs/mlflow``, made on first use);
* a minimal FastAPI app that parses the body and calls ``booster.predict(X,
  num_threads=1)``, each worker on its own SO_REUSEPORT socket: the practical limit here.

Then, in process: the overhead of ``PredictionService.predict`` (parse, validate, route,
log) over the model's own single-row predict; batch throughput Parquet -> Parquet against
``booster.predict`` on the same rows in memory; and a fixed-rate load against
``loopml serve`` (default 5 minutes) with the prediction log counted row by row.

``--quick`` (CI): loopml only, in-process overhead, a 2-second HTTP run and a small batch.
Everything printed is measured in this run, on this machine; nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

N_FEATURES = 20
VENV = Path("/tmp/loopml-bench-venvs/mlflow")
HERE = Path(__file__).resolve()


# -- data and model ------------------------------------------------------------------------
def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(N_FEATURES)})
    logit = frame["f0"] - 0.7 * frame["f1"] + 0.5 * frame["f2"] * frame["f3"]
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def train_booster(frame: pd.DataFrame) -> Any:
    import lightgbm

    X = frame[[f"f{i}" for i in range(N_FEATURES)]].to_numpy()
    params = {
        "objective": "binary",
        "verbose": -1,
        "num_leaves": 31,
        "seed": 0,
        "num_threads": 2,
        "deterministic": True,
    }
    return lightgbm.train(params, lightgbm.Dataset(X, frame["y"]), num_boost_round=100)


def registered_workspace(root: Path, frame: pd.DataFrame) -> Any:
    """A loopml workspace whose registry holds ``bench`` (alias champion)."""
    from loopml.core import Config, TrainConfig, Workspace
    from loopml.registry import register_model
    from loopml.training import train

    workspace = Workspace.create(root, Config(project="bench"))
    result = train(
        frame,
        target="y",
        task="binary_classification",
        config=TrainConfig(candidates=["lightgbm"]),
        tracking_uri=workspace.tracking_uri,
        artifact_root=str(workspace.artifacts_dir),
        keep_data=False,
        seed=0,
    )
    register_model(result, "bench", tracking_uri=workspace.tracking_uri, alias="champion")
    return workspace


def request_body(frame: pd.DataFrame) -> str:
    columns = [f"f{i}" for i in range(N_FEATURES)]
    row = [round(float(v), 6) for v in frame[columns].iloc[0]]
    return json.dumps({"dataframe_split": {"columns": columns, "data": [row]}})


# -- servers -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {_log_tail(process)}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def launch(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server with its output in a file: a pipe nobody reads fills up (64 KB) and
    blocks a server that logs every request (mlflow's access log does)."""
    with tempfile.NamedTemporaryFile(
        prefix="loopml-bench-server-", suffix=".log", delete=False
    ) as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = log.name  # type: ignore[attr-defined]
    return process


def _log_tail(process: subprocess.Popen[bytes]) -> str:
    path = Path(process.log_path)  # type: ignore[attr-defined]
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    tail = _log_tail(process)
    Path(process.log_path).unlink(missing_ok=True)  # type: ignore[attr-defined]
    return tail


def start_loopml(root: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    code = "import sys; from loopml.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "LOOPML_ADMIN_TOKEN": "bench-token"}
    process = launch(
        [
            sys.executable,
            "-c",
            code,
            "serve",
            "bench@champion",
            "--dir",
            str(root),
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--poll",
            "5",
        ],
        env=env,
    )
    wait_ready(f"http://127.0.0.1:{port}/ready", process)
    return process


def start_minimal(model_file: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    process = launch(
        [sys.executable, str(HERE), "--serve-minimal", str(model_file), str(port), str(workers)],
    )
    wait_ready(f"http://127.0.0.1:{port}/health", process)
    return process


def start_mlflow(model_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}",
    }
    process = launch(
        [
            str(VENV / "bin" / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--env-manager",
            "local",
            "--workers",
            str(workers),
        ],
        env=env,
    )
    wait_ready(f"http://127.0.0.1:{port}/ping", process)
    return process


def ensure_mlflow_venv() -> None:
    if (VENV / "bin" / "mlflow").exists():
        return
    print(f"creating {VENV} (full mlflow 3.17 + lightgbm) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(VENV / "bin" / "pip"), "install", "-q", "mlflow==3.17.*", "lightgbm"], check=True
    )


def save_mlflow_model(model_file: Path, target: Path) -> None:
    script = (
        "import sys, lightgbm, mlflow.lightgbm\n"
        "booster = lightgbm.Booster(model_file=sys.argv[1])\n"
        "mlflow.lightgbm.save_model(booster, sys.argv[2], pip_requirements=['lightgbm'])\n"
    )
    subprocess.run(
        [str(VENV / "bin" / "python"), "-c", script, str(model_file), str(target)],
        check=True,
        env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"},
    )


# -- load ----------------------------------------------------------------------------------
def wrk(url: str, body: str, connections: int, seconds: float) -> dict[str, float]:
    """Closed-loop load with wrk; req/s, p50/p99 in ms, errors (non-2xx + socket errors)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = [==[{body}]==]\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    threads = 1
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    answered = re.search(r"(\d+) requests in", out)
    if answered is None or int(answered.group(1)) == 0:
        print(f"    wrk got no responses from {url}:\n" + out[-600:])
        return {
            "rps": 0.0,
            "p50": float("nan"),
            "p99": float("nan"),
            "errors": float("nan"),
            "requests": 0.0,
        }
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "errors": float(errors),
        "requests": float(answered.group(1)),
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def fixed_rate_load(
    url: str, body: dict[str, Any], rate: float, seconds: float, threads: int = 8
) -> tuple[list[str], int, float]:
    """Send ``rate`` requests/s on a schedule; returns (ids answered 200, errors, achieved rate)."""
    import httpx

    ok: list[str] = []
    errors = [0]
    total = int(rate * seconds)
    start = time.monotonic() + 0.1

    def worker(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            for i in range(offset, total, threads):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                request_id = f"fixed-{i}"
                try:
                    response = http.post("/predict", json={**body, "request_id": request_id})
                    if response.status_code == 200:
                        ok.append(request_id)
                    else:
                        errors[0] += 1
                except httpx.HTTPError:
                    errors[0] += 1

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - start
    return ok, errors[0], total / elapsed


# -- in-process measurements ---------------------------------------------------------------
def timeit_us(call: Any, repeats: int) -> float:
    for _ in range(200):
        call()
    times = np.empty(repeats)
    for i in range(repeats):
        begin = time.perf_counter()
        call()
        times[i] = time.perf_counter() - begin
    return float(np.median(times) * 1e6)


def in_process_overhead(
    booster: Any, loaded: Any, body: dict[str, Any], log_dir: Path, repeats: int
) -> dict[str, float]:
    """Median µs of the model's own predict and of ``PredictionService.predict``."""
    from loopml.data import EventLog
    from loopml.serving import (
        Deployment,
        PredictionLogWriter,
        PredictionService,
        ServedModel,
        constant_model,
        validator_for,
    )

    model = (
        ServedModel.from_loaded(loaded)
        if loaded is not None
        else ServedModel.from_booster(
            booster, [{"name": f"f{i}", "kind": "numeric"} for i in range(N_FEATURES)], version="1"
        )
    )
    X = np.asarray([body["dataframe_split"]["data"][0]], dtype=np.float64)
    records = [
        dict(
            zip(body["dataframe_split"]["columns"], body["dataframe_split"]["data"][0], strict=True)
        )
    ]
    out = {
        "booster.predict(X, num_threads=1)": timeit_us(
            lambda: booster.predict(X, num_threads=1), repeats
        ),
        "single-row C path (model's own predict)": timeit_us(
            lambda: model.score_matrix(X), repeats
        ),
        "encode + predict (ServedModel)": timeit_us(
            lambda: model.predict_records(records), repeats
        ),
    }
    validator = validator_for(loaded) if loaded is not None else None
    for enforce in (False, True):
        writer = PredictionLogWriter(EventLog(log_dir / f"log-{enforce}"))
        service = PredictionService(  # a wide budget: time the normal path, not fallbacks
            Deployment.single(model, validator=validator, fallback=constant_model(0.5)),
            log_writer=writer,
            enforce_budget=enforce,
            latency_budget_ms=1_000,
        )
        label = "PredictionService.predict" + (" (budget thread)" if enforce else " (inline)")
        out[label] = timeit_us(lambda s=service: s.predict(body), repeats)
        service.close()
    return out


def batch_throughput(
    loaded: Any, booster: Any, frame: pd.DataFrame, folder: Path, runs: int = 2
) -> dict[str, Any]:
    """In memory, then Parquet -> Parquet, ``runs`` times alternating: the first run of
    each in a process pays for touching fresh memory (seconds of page faults on this VM)."""
    from loopml.serving import predict_parquet

    source = folder / "batch.parquet"
    frame.drop(columns="y").assign(row_id=np.arange(len(frame))).to_parquet(
        source, row_group_size=100_000
    )
    X = frame[[f"f{i}" for i in range(N_FEATURES)]].to_numpy()
    memory, parquet = [], []
    for _ in range(runs):
        begin = time.perf_counter()
        booster.predict(X)
        memory.append(len(frame) / (time.perf_counter() - begin))
        result = predict_parquet(loaded, source, folder / "scored.parquet", batch_size=100_000)
        parquet.append(result.rows_per_second)
    return {"rows": float(len(frame)), "in_memory": memory, "parquet": parquet}


# -- minimal app (its own process per worker) --------------------------------------------------
MINIMAL_APP = """
import json, sys, numpy as np, lightgbm, uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
booster = lightgbm.Booster(model_file=sys.argv[1])
app = FastAPI()

@app.get("/health")
async def health():
    return {"status": "ok"}

@app.post("/predict")
async def predict(request: Request) -> Response:
    body = json.loads(await request.body())
    X = np.asarray(body["dataframe_split"]["data"], dtype=np.float64)
    return JSONResponse({"predictions": booster.predict(X, num_threads=1).tolist()})
"""


def serve_minimal(model_file: str, port: int, workers: int) -> None:
    """Each worker binds its own SO_REUSEPORT socket (see loopml.serving.bind_socket)."""
    import multiprocessing

    processes = [
        multiprocessing.get_context("spawn").Process(
            target=_minimal_worker, args=(model_file, port)
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.start()

    def shutdown(*_: Any) -> None:
        for process in processes:
            process.terminate()

    signal.signal(signal.SIGTERM, shutdown)
    for process in processes:
        process.join()


def _minimal_worker(model_file: str, port: int) -> None:
    import uvicorn

    from loopml.serving import bind_socket

    namespace: dict[str, Any] = {}
    sys.argv = ["minimal", model_file]
    exec(MINIMAL_APP, namespace)  # noqa: S102 - our own constant source
    sock = bind_socket("127.0.0.1", port)
    uvicorn.Server(
        uvicorn.Config(namespace["app"], log_level="warning", access_log=False, lifespan="off")
    ).run(sockets=[sock])


# -- the run -------------------------------------------------------------------------------
def http_matrix(
    name: str,
    start: Any,
    workers_list: list[int],
    body: str,
    seconds: float,
    concurrencies: list[int],
) -> list[dict[str, Any]]:
    rows = []
    for workers in workers_list:
        port = free_port()
        begin = time.monotonic()
        process = start(port, workers)
        started = time.monotonic() - begin
        try:
            url = f"http://127.0.0.1:{port}/" + ("invocations" if name == "mlflow" else "predict")
            wrk(url, body, 8, 1)  # warm-up
            for connections in concurrencies:
                cpu_before = server_cpu_seconds(process.pid)
                # the target's point (c=8) three times: one 5-second p99 on two shared cores
                # swings 2-3x from run to run; the median of three is reported, all printed
                repeats = [
                    wrk(url, body, connections, seconds)
                    for _ in range(3 if connections == 8 else 1)
                ]
                cpu = server_cpu_seconds(process.pid) - cpu_before
                result = dict(repeats[0])
                for key in ("rps", "p50", "p99"):
                    result[key] = float(np.median([r[key] for r in repeats]))
                result["requests"] = sum(r["requests"] for r in repeats)
                result["errors"] = sum(r["errors"] for r in repeats)
                result["cpu_us"] = 1e6 * cpu / max(result["requests"], 1.0)
                if len(repeats) > 1:
                    print(
                        f"  {name:8s} workers={workers} c={connections:2d}: runs "
                        + ", ".join(f"{r['rps']:.0f} req/s p99 {r['p99']:.2f} ms" for r in repeats)
                    )
                rows.append(
                    {"server": name, "workers": workers, "concurrency": connections, **result}
                )
                print(
                    f"  {name:8s} workers={workers} c={connections:2d}: "
                    f"{'median ' if len(repeats) > 1 else ''}{result['rps']:8.0f} req/s  p50 {result['p50']:7.2f} ms  "
                    f"p99 {result['p99']:7.2f} ms  errors {result['errors']:.0f}  "
                    f"server CPU {result['cpu_us']:6.0f} µs/request",
                    flush=True,
                )
        finally:
            stop(process)
        print(f"  ({name} with {workers} worker(s) took {started:.1f} s to start)")
    return rows


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a server process and all its workers so far.

    Throughput on a shared 2-core machine moves with whatever else runs; the server's CPU
    per answered request does not, so it is the fairer figure to compare servers by."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
    except psutil.NoSuchProcess:
        pass
    return total


def print_ratios(rows: list[dict[str, Any]]) -> None:
    table = pd.DataFrame(rows)
    if table.empty:
        return
    print("\nThroughput at concurrency 8 (req/s) and ratios:")
    at8 = table[table["concurrency"] == 8].pivot(index="workers", columns="server", values="rps")
    print(at8.round(0).to_string())
    if {"loopml", "minimal"} <= set(at8.columns):
        print(
            "loopml / minimal:",
            (at8["loopml"] / at8["minimal"]).round(2).to_dict(),
            "(target >= 0.8 on 1 worker)",
        )
    if {"loopml", "mlflow"} <= set(at8.columns):
        print(
            "loopml / mlflow:",
            (at8["loopml"] / at8["mlflow"]).round(1).to_dict(),
            "(target >= 10 on 1 worker)",
        )
    cpu = table[table["concurrency"] == 8].pivot(index="workers", columns="server", values="cpu_us")
    print("server CPU per request at concurrency 8 (µs):\n" + cpu.round(0).to_string())
    if {"loopml", "minimal"} <= set(cpu.columns):
        print(
            "minimal / loopml CPU per request:",
            (cpu["minimal"] / cpu["loopml"]).round(2).to_dict(),
            "(the throughput ratio a CPU-bound server reaches)",
        )
    p99 = table[table["concurrency"] == 8].pivot(index="workers", columns="server", values="p99")
    print("p99 at concurrency 8 (ms):\n" + p99.round(2).to_string(), "(target < 5 ms)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="loopml only, a few seconds")
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk time per point")
    parser.add_argument("--load-minutes", type=float, default=5.0, help="fixed-rate load")
    parser.add_argument("--load-rate", type=float, default=200.0, help="requests/s")
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--servers",
        default="loopml,minimal,mlflow",
        help="which HTTP servers to load (comma-separated)",
    )
    parser.add_argument("--skip-load", action="store_true", help="skip the fixed-rate load")
    parser.add_argument("--serve-minimal", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_minimal:
        serve_minimal(args.serve_minimal[0], int(args.serve_minimal[1]), int(args.serve_minimal[2]))
        return 0
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
        "(other processes share these cores; figures are what this run measured)"
    )
    root = Path(tempfile.mkdtemp(prefix="loopml-bench-serving-"))
    try:
        return run(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(args: argparse.Namespace, root: Path) -> int:
    frame = make_frame(20_000)
    booster = train_booster(frame)
    body = request_body(frame)
    body_dict = json.loads(body)
    model_file = root / "model.txt"
    booster.save_model(str(model_file))
    if args.quick:
        overhead = in_process_overhead(booster, None, body_dict, root, repeats=2_000)
        report_overhead(overhead)
        quick_http(booster, body, root)
        quick_batch(booster, make_frame(100_000, seed=1), root)
        return 0
    print("training and registering the model in a loopml workspace ...", flush=True)
    workspace = registered_workspace(root / "ws", frame)
    from loopml.serving import load_registered

    loaded = load_registered("bench@champion", tracking_uri=workspace.tracking_uri)
    served = loaded.booster  # the registered model is the one every server serves
    served.save_model(str(model_file))
    report_overhead(in_process_overhead(served, loaded, body_dict, root, repeats=5_000))
    rows: list[dict[str, Any]] = []
    concurrencies = [1, 8, 32]
    print(f"\nHTTP, one-row requests, wrk {args.seconds:g} s per point:")
    servers = set(args.servers.split(","))
    if "loopml" in servers:
        rows += http_matrix(
            "loopml",
            lambda p, w: start_loopml(workspace.root, p, w),
            [1, 2],
            body,
            args.seconds,
            concurrencies,
        )
    if "minimal" in servers:
        rows += http_matrix(
            "minimal",
            lambda p, w: start_minimal(model_file, p, w),
            [1, 2],
            body,
            args.seconds,
            concurrencies,
        )
    if "mlflow" in servers:
        ensure_mlflow_venv()
        save_mlflow_model(model_file, root / "mlflow-model")
        rows += http_matrix(
            "mlflow",
            lambda p, w: start_mlflow(root / "mlflow-model", p, w),
            [1, 2],
            body,
            args.seconds,
            concurrencies,
        )
    print_ratios(rows)
    if args.batch_rows > 0:
        batch = batch_throughput(loaded, served, make_frame(args.batch_rows, seed=1), root)
        print(f"\nbatch, {batch['rows']:,.0f} rows x {N_FEATURES} features, rows/s:")
        for run, (memory, parquet) in enumerate(
            zip(batch["in_memory"], batch["parquet"], strict=True)
        ):
            print(
                f"  run {run + 1}: in memory {memory:,.0f}, Parquet -> Parquet {parquet:,.0f} "
                f"(ratio {parquet / memory:.2f})"
            )
        best = max(batch["parquet"]) / max(batch["in_memory"])
        print(f"  best of each: ratio {best:.2f} (target >= 0.8)")
    if not args.skip_load:
        long_load(workspace, body_dict, args.load_rate, args.load_minutes * 60)
    return 0


def report_overhead(times: dict[str, float]) -> None:
    print("\nIn-process, one row, median of repeated calls (µs):")
    for name, value in times.items():
        print(f"  {name:45s} {value:8.1f}")
    own = times["single-row C path (model's own predict)"]
    inline = times["PredictionService.predict (inline)"]
    print(
        f"  overhead of parse+encode+validate+route+log over the model's own predict: "
        f"{inline - own:.1f} µs (target < 100 µs); over booster.predict: "
        f"{inline - times['booster.predict(X, num_threads=1)']:.1f} µs"
    )


def quick_http(booster: Any, body: str, root: Path) -> None:
    """--quick: an in-process service on uvicorn in this process, 2 s of wrk (or httpx)."""
    import uvicorn

    from loopml.data import EventLog
    from loopml.serving import (
        Deployment,
        PredictionLogWriter,
        PredictionService,
        ServedModel,
        bind_socket,
        create_app,
    )

    spec = [{"name": f"f{i}", "kind": "numeric"} for i in range(N_FEATURES)]
    service = PredictionService(
        Deployment.single(ServedModel.from_booster(booster, spec, version="1")),
        log_writer=PredictionLogWriter(EventLog(root / "quick-log")),
        enforce_budget=False,
    )
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}/predict"
    if shutil.which("wrk"):
        result = wrk(url, body, 8, 2)
        print(
            f"\nHTTP (in-process uvicorn, 1 worker, c=8, 2 s): {result['rps']:.0f} req/s, "
            f"p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms, errors "
            f"{result['errors']:.0f}"
        )
    else:
        ok, errors, rate = fixed_rate_load(f"http://127.0.0.1:{port}", json.loads(body), 100, 2)
        print(f"\nHTTP (no wrk; httpx at 100 req/s for 2 s): {len(ok)} ok, {errors} errors")
    server.should_exit = True
    thread.join(timeout=10)
    service.close()
    logged = len(EventLog(root / "quick-log").read())
    if shutil.which("wrk"):
        print(
            f"prediction log rows: {logged}; requests wrk counted as answered: "
            f"{result['requests']:.0f} (wrk does not count those in flight when it stops)"
        )
    else:
        print(f"prediction log rows: {logged}; answered 200: {len(ok)}")


def quick_batch(booster: Any, frame: pd.DataFrame, root: Path) -> None:
    """--quick: the batch path on an unregistered model (same encoder and scorer classes)."""
    from types import SimpleNamespace

    from loopml.training import FeatureEncoder, TrainedModel

    columns = [f"f{i}" for i in range(N_FEATURES)]
    model = TrainedModel(
        "lightgbm", "binary_classification", FeatureEncoder.fit(frame, columns), booster, [0, 1]
    )
    loaded = SimpleNamespace(model=model, name="bench", version=1)
    batch = batch_throughput(loaded, booster, frame, root, runs=1)
    memory, parquet = batch["in_memory"][0], batch["parquet"][0]
    print(
        f"batch, {batch['rows']:,.0f} rows: in memory {memory:,.0f} rows/s, "
        f"Parquet -> Parquet {parquet:,.0f} rows/s (ratio {parquet / memory:.2f})"
    )


def long_load(workspace: Any, body: dict[str, Any], rate: float, seconds: float) -> None:
    from loopml.data import EventLog

    port = free_port()
    process = start_loopml(workspace.root, port, 2)
    print(
        f"\nfixed-rate load: {rate:g} req/s for {seconds:g} s against loopml serve (2 workers) ...",
        flush=True,
    )
    try:
        ok, errors, achieved = fixed_rate_load(f"http://127.0.0.1:{port}", body, rate, seconds)
    finally:
        stop(process)
    logged = EventLog(workspace.predictions_log_dir).read(columns=["request_id"])
    ids = set(logged["request_id"])
    lost = len([rid for rid in ok if rid not in ids])
    extra = len([rid for rid in ids if rid.startswith("fixed-")]) - (len(ok) - lost)
    print(
        f"  sent {int(rate * seconds)}, answered 200: {len(ok)}, errors: {errors}, "
        f"achieved {achieved:.1f} req/s; log rows for them: {len(ok) - lost}, lost: {lost}, "
        f"logged but not acknowledged: {extra}"
    )


if __name__ == "__main__":
    sys.exit(main())

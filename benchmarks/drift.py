"""Drift report: loopml vs Evidently 0.7 ``DataDriftPreset``, side by side, same data.

Reference and current tables of N rows x 25 columns (18 numeric of five shapes, 7
categorical with 3 to 200 categories). Six columns drift clearly (mean +0.5 sd, scale x2,
a lognormal shift, mean +1 sd, reversed category shares, a new category at 30 %), one drifts
by 0.1 sd (borderline: reported, not scored), the other 18 are stable. Each tool runs in
its own subprocess (Evidently in its own virtual environment with pandas < 3), so the peak
memory printed is the whole process's.

loopml is timed twice: from the persisted reference profile (the normal case: the profile
is written when the model is trained; its cost is printed separately), and from the raw
reference Parquet, profiled in the same run (the same inputs Evidently gets).

    python benchmarks/drift.py            # 1M rows vs Evidently, then 10M rows (loopml only)
    python benchmarks/drift.py --quick    # 10k rows, Evidently skipped (seconds; CI runs this)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DATA_ROOT = Path(os.environ.get("LOOPML_BENCH_DATA", "/tmp/loopml-bench-data"))
VENV = Path("/tmp/loopml-bench-venvs/evidently")
NUMERIC = [f"num_{i}" for i in range(18)]
CATEGORICAL = [f"cat_{i}" for i in range(7)]
DRIFTED = ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]
BORDERLINE = ["num_4"]
STABLE = [c for c in NUMERIC + CATEGORICAL if c not in DRIFTED + BORDERLINE]
CHUNK = 1_000_000


# -- data --------------------------------------------------------------------------------------
def _chunk(rng: Any, n: int, current: bool) -> Any:
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        shape = i % 5
        if shape == 0:
            values = rng.normal(10, 2, n)
        elif shape == 1:
            values = rng.lognormal(0, 0.7, n)
        elif shape == 2:
            values = rng.uniform(-5, 5, n)
        elif shape == 3:
            values = rng.poisson(4, n).astype(float)
        else:
            values = np.where(rng.random(n) < 0.4, 0.0, rng.exponential(3, n))
        data[name] = values
    if current:
        data["num_0"] = data["num_0"] + 0.5 * 2  # +0.5 sd
        data["num_1"] = rng.lognormal(0, 1.4, n)  # scale change
        data["num_2"] = rng.uniform(-5, 8, n)  # range moves
        data["num_3"] = rng.poisson(6, n).astype(float)  # +1 sd
        data["num_4"] = np.where(rng.random(n) < 0.4, 0.0, rng.exponential(3, n)) + 0.1 * 2.75  # sd 2.75
    sizes = [3, 5, 12, 30, 60, 120, 200]
    for name, size in zip(CATEGORICAL, sizes, strict=True):
        weights = 1.0 / np.arange(1, size + 1)
        weights = weights / weights.sum()
        if current and name == "cat_0":
            weights = weights[::-1]
        codes = rng.choice(size, p=weights, size=n)
        labels = np.array([f"{name}_v{k}" for k in range(size)] + ["brand_new"], dtype=object)
        if current and name == "cat_1":
            codes = np.where(rng.random(n) < 0.3, size, codes)
        data[name] = pd.Categorical.from_codes(codes, categories=labels)
    return pd.DataFrame(data)


def make_data(rows: int, seed: int = 0) -> Path:
    """Write ref.parquet and cur.parquet of ``rows`` rows (reused when already there)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = DATA_ROOT / f"drift-{rows}-{seed}"
    if (folder / "cur.parquet").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name, current in (("ref", False), ("cur", True)):
        rng = np.random.default_rng(seed + (1 if current else 0))
        tmp = folder / f".{name}.parquet.tmp"
        writer = None
        for start in range(0, rows, CHUNK):
            table = pa.Table.from_pandas(_chunk(rng, min(CHUNK, rows - start), current),
                                         preserve_index=False)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()
        tmp.rename(folder / f"{name}.parquet")
    return folder


# -- workers (each runs in its own process) ----------------------------------------------------
def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_profile(folder: Path) -> dict[str, Any]:
    from loopml.data import profile

    start = time.perf_counter()
    result = profile(folder / "ref.parquet")
    result.save(folder / "ref.profile.json")
    return {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb()}


def worker_loopml(folder: Path, raw: bool) -> dict[str, Any]:
    from loopml.data import Profile, profile
    from loopml.monitoring import drift_report, reference_from_profile

    start, cpu = time.perf_counter(), time.process_time()
    current = folder / "cur.parquet"  # read one column at a time by drift_report
    read = 0.0
    if raw:
        reference = reference_from_profile(profile(folder / "ref.parquet"))
    else:
        reference = reference_from_profile(Profile.load(folder / "ref.profile.json"))
    report = drift_report(reference, current)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds, "read_seconds": read, "peak_mb": _peak_mb(),
        "cpu_seconds": time.process_time() - cpu,
        "drifted": {c.column: c.drifted for c in report.columns},
        "effect": {c.column: c.effect for c in report.columns},
    }


def worker_evidently(folder: Path) -> dict[str, Any]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    start, cpu = time.perf_counter(), time.process_time()
    reference = pd.read_parquet(folder / "ref.parquet")
    current = pd.read_parquet(folder / "cur.parquet")
    read = time.perf_counter() - start
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = time.perf_counter() - start
    drifted, scores, methods = {}, {}, {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        method, value, threshold = config["method"], float(metric["value"]), config["threshold"]
        is_test = "p_value" in method or "test" in method.lower()
        drifted[config["column"]] = value < threshold if is_test else value >= threshold
        scores[config["column"]], methods[config["column"]] = value, method
    return {"seconds": seconds, "read_seconds": read, "peak_mb": _peak_mb(),
            "cpu_seconds": time.process_time() - cpu,
            "drifted": drifted, "effect": scores, "methods": methods}


# -- driver ------------------------------------------------------------------------------------
def _spawn(python: str, worker: str, folder: Path, *extra: str) -> dict[str, Any]:
    command = [python, __file__, "--worker", worker, "--data", str(folder), *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{worker} worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ensure_evidently() -> str:
    python = VENV / "bin" / "python"
    if not python.is_file():
        print(f"creating {VENV} (evidently==0.7.23, pandas<3) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "evidently==0.7.23", "pandas<3"],
                       check=True)
    return str(python)


def _decisions(name: str, result: dict[str, Any]) -> tuple[int, int, list[str]]:
    wrong = [c for c in DRIFTED if not result["drifted"][c]] + [
        c for c in STABLE if result["drifted"][c]]
    right = len(DRIFTED) + len(STABLE) - len(wrong)
    return right, len(DRIFTED) + len(STABLE), wrong


def run_scale(rows: int, with_evidently: bool) -> None:
    started = time.perf_counter()
    folder = make_data(rows)
    print(f"\n== {rows:,} rows x 25 columns (reference and current each); data in {folder} "
          f"(generated/reused in {time.perf_counter() - started:.1f}s)")
    prof = _spawn(sys.executable, "profile", folder)
    print(f"reference profile (DuckDB, written once at training time): {prof['seconds']:.2f}s, "
          f"peak {prof['peak_mb']:.0f} MB")
    results = {"loopml (persisted profile)": _spawn(sys.executable, "loopml", folder),
               "loopml (raw reference, profiled in-run)": _spawn(sys.executable, "loopml", folder, "--raw")}
    if with_evidently:
        results["Evidently 0.7.23 DataDriftPreset"] = _spawn(_ensure_evidently(), "evidently", folder)
    peer = results.get("Evidently 0.7.23 DataDriftPreset")
    print(f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'tool':42} {'seconds':>8} {'CPU s':>7} {'peak MB':>8} {'x faster':>9} {'x less CPU':>10} "
          f"{'mem ratio':>9} {'decisions':>9}")
    for name, result in results.items():
        right, total, wrong = _decisions(name, result)
        speed = f"{peer['seconds'] / result['seconds']:.1f}x" if peer else "-"
        memory = f"{result['peak_mb'] / peer['peak_mb']:.2f}" if peer else "-"
        cpu = f"{peer['cpu_seconds'] / result['cpu_seconds']:.1f}x" if peer else "-"
        print(f"{name:42} {result['seconds']:8.2f} {result['cpu_seconds']:7.2f} "
              f"{result['peak_mb']:8.0f} {speed:>9} {cpu:>10} {memory:>9} {right:>4}/{total}"
              + (f"  wrong: {wrong}" if wrong else ""))
    if peer:
        ours = results["loopml (persisted profile)"]
        agree = [c for c in DRIFTED + STABLE if ours["drifted"][c] == peer["drifted"][c]]
        print(f"same decision as Evidently on {len(agree)}/{len(DRIFTED) + len(STABLE)} clearly "
              "drifted / clearly stable columns")
    for column in BORDERLINE:
        line = ", ".join(f"{name.split(' (')[0] if 'loopml' not in name else name}: "
                         f"{'drift' if r['drifted'][column] else 'stable'} "
                         f"(effect {r['effect'][column]:.3f})" for name, r in results.items())
        print(f"borderline {column} (+0.1 sd shift): {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k rows, no Evidently")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--no-big", action="store_true")
    parser.add_argument("--worker", choices=["profile", "loopml", "evidently"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--raw", action="store_true")
    args = parser.parse_args()
    if args.worker:
        run = {"profile": lambda: worker_profile(args.data),
               "loopml": lambda: worker_loopml(args.data, args.raw),
               "evidently": lambda: worker_evidently(args.data)}[args.worker]
        print(json.dumps(run()))
        return
    print(f"drift benchmark on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          "each tool in its own process ('x faster' compares wall-clock seconds)")
    if args.quick:
        run_scale(10_000, with_evidently=False)
        return
    run_scale(args.rows, with_evidently=not args.no_evidently)
    if not args.no_big:
        run_scale(args.big_rows, with_evidently=False)


if __name__ == "__main__":
    main()

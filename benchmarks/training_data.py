"""Benchmark of loopml.trainingdata: leakage checks at scale, and reservoir sampling.

1. Leakage checks: every check of ``check_leakage`` on a generated training set of N rows x 30
   columns (26 floats, 2 integer counts, 2 categoricals) plus a timestamp, an id and a binary
   label, against a test set of N/5 later rows (a clean time split: no check should fire).
   Target: 1M + 200k rows in under 20 s on 2 cores. Prints the time of each check so the
   dominant ones are visible.
2. Reservoir sampling of a stream of M items (fed in batches of 1M) into k = 1000 slots:
   Algorithm L (geometric skips) against Algorithm R (one random number per item), by the
   count of random draws and the wall time; and the weighted reservoir (A-ExpJ, log keys)
   against A-Res's one draw per item.

    python benchmarks/training_data.py            # 1M x 30 + 200k; 10M-item stream
    python benchmarks/training_data.py --quick    # 20k x 30 + 4k; 200k-item stream
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time

import numpy as np
import pandas as pd

from loopml.trainingdata import ReservoirSampler, WeightedReservoirSampler, check_leakage


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(rows: int, seed: int = 0) -> pd.DataFrame:
    """Rows with 30 feature columns, a timestamp, an id and a label that depends on 3 floats."""
    rng = np.random.default_rng(seed)
    floats = rng.normal(size=(rows, 26)).astype(np.float64)
    frame = pd.DataFrame(floats, columns=[f"f{i}" for i in range(26)])
    frame["n_orders"] = rng.poisson(3, rows)
    frame["n_days_active"] = rng.integers(0, 365, rows)
    frame["country"] = pd.Categorical(rng.choice([f"c{i}" for i in range(30)], rows))
    frame["device"] = pd.Categorical(rng.choice(["ios", "android", "web"], rows))
    logit = floats[:, 0] + 0.5 * floats[:, 1] - 0.5 * floats[:, 2] - 1.5
    frame["y"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    frame["event_time"] = start + pd.to_timedelta(np.sort(rng.uniform(0, 365, rows)), unit="D")
    frame["event_id"] = np.arange(rows, dtype=np.int64)
    return frame


def bench_leakage(train_rows: int) -> dict[str, float]:
    test_rows = train_rows // 5
    frame = generate(train_rows + test_rows)
    train, test = frame.iloc[:train_rows], frame.iloc[train_rows:]
    print(
        f"\n== leakage checks: train {len(train):,} x 30 features, test {len(test):,} rows "
        "(clean time split) =="
    )
    started, cpu = time.perf_counter(), time.process_time()
    report = check_leakage(
        train,
        test,
        target="y",
        timestamp="event_time",
        id_columns=["event_id"],
        label_horizon="0s",
        seed=0,
    )
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"  {'check':32s} {'wall s':>8s} {'share':>7s} {'CPU s':>7s}")
    for name, seconds in sorted(report.timings.items(), key=lambda kv: -kv[1]):
        skipped = f"  (skipped: {report.skipped[name]})" if name in report.skipped else ""
        print(
            f"  {name:32s} {seconds:8.2f} {seconds / total:7.1%} "
            f"{report.cpu_timings[name]:7.2f}{skipped}"
        )
    print(f"  {'total':32s} {total:7.2f} s   (target < 20 s: {total / 20:.2f}x of the limit)")
    print(
        f"  process CPU time {cpu:.2f} s; load average of the machine during the run "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other jobs share them)"
    )
    print(
        f"  findings: {len(report.findings)} "
        f"({', '.join(f.check for f in report.findings) or 'none, as expected'})"
    )
    print(f"  peak RSS so far: {_peak_rss_mb():,.0f} MB")
    return {"total_s": total, **report.timings}


def _stream(sampler: ReservoirSampler, items: int, batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, items, batch):
        sampler.update(np.arange(start, min(start + batch, items)))
    return time.perf_counter() - started


def bench_reservoir(items: int, k: int = 1000) -> None:
    print(f"\n== reservoir sampling: {items:,} items in batches of 1M, k = {k} ==")
    batch = 1_000_000
    results = {}
    for method in ("L", "R"):
        sampler = ReservoirSampler(k, method=method, seed=0)  # type: ignore[arg-type]
        seconds = _stream(sampler, items, batch)
        results[method] = (sampler.draws_, seconds)
        assert len(sampler.sample()) == k and sampler.seen_ == items
    expected = 3 * k * (1 + math.log(items / k))
    for method, (draws, seconds) in results.items():
        print(f"  Algorithm {method}: {draws:>12,} random draws  {seconds:7.3f} s")
    ratio_draws = results["R"][0] / results["L"][0]
    ratio_time = results["R"][1] / results["L"][1]
    print(
        f"  L draws {ratio_draws:,.0f}x fewer numbers than R (theory 3k(1+ln(N/k)) = "
        f"{expected:,.0f}) and runs {ratio_time:.1f}x faster"
    )
    print(
        "  (R is vectorised with NumPy here: one draw per item, in C; a pure-Python R would "
        "be far slower)"
    )
    weighted = WeightedReservoirSampler(k, seed=0)
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    for start in range(0, items, batch):
        size = min(batch, items - start)
        weighted.update(np.arange(start, start + size), rng.uniform(0.1, 10.0, size))
    seconds = time.perf_counter() - started
    print(
        f"  weighted A-ExpJ: {weighted.draws_:>12,} random draws  {seconds:7.3f} s "
        f"(A-Res would draw {items:,}: {items / weighted.draws_:,.0f}x more)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest scale, seconds")
    parser.add_argument("--rows", type=int, default=None, help="training rows (default 1M)")
    args = parser.parse_args()
    rows = args.rows or (20_000 if args.quick else 1_000_000)
    items = 200_000 if args.quick else 10_000_000
    bench_leakage(rows)
    bench_reservoir(items)


if __name__ == "__main__":
    main()

"""Benchmark of loopml's label models against Snorkel 0.10, side by side, in one run.

1. YouTube spam (WRENCH; 10 real labeling functions, gold labels; fit on train, scored on
   the 250 test rows): accuracy on all rows (ties and uncovered rows broken at random, mean
   over 10 tie seeds) and on the rows at least one LF covers, and the median fit time, of
   MajorityVote, DawidSkene, MatrixCompletion and Triplet, with defaults and "tuned"
   (class balance measured on the 120 valid rows; MatrixCompletion also picks its ``l2``
   toward ``prior_accuracy=0.7`` from a small grid by log-loss on those valid rows), next to
   Snorkel's ``LabelModel`` (defaults; tuned = 500 epochs + class balance from valid) and
   ``MajorityLabelVoter``. Every model's probabilities go through the same tie rule. The
   "train" column scores the first seed's labels of the 1,686 train rows against their gold
   labels, which no model sees: a second, larger check than the 250 test rows.
2. Seeds: 20 seeds of each seeded model on YouTube; a "flip" is test accuracy < 0.5.
3. Scale: a synthetic 1,000,000 x 50 label matrix (accuracies 0.55-0.95, coverages
   0.05-0.3, conditionally independent): fit time of each loopml model and Snorkel's
   LabelModel (defaults), plus how far each estimate is from the true LF accuracies.

Snorkel runs in its own virtual environment (``/tmp/loopml-bench-venvs/snorkel``, made on
first use with ``pip install torch==2.13.0 snorkel==0.10.0``: the CPU build of torch, not
the 5.5 GB CUDA one) in a subprocess. Fit times exclude imports in both.

    python benchmarks/label_models.py            # everything (a few minutes)
    python benchmarks/label_models.py --quick    # YouTube, loopml models only, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from loopml.trainingdata.labeling import (
    DawidSkene,
    LabelModel,
    MajorityVote,
    MatrixCompletion,
    Triplet,
    synthetic_label_matrix,
)
from loopml.trainingdata.labeling._base import predict_from_proba

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LOOPML_DATASETS", ROOT.parent / "shared" / "datasets"))
VENV = Path("/tmp/loopml-bench-venvs/snorkel")
TIE_SEEDS = range(10)
PRIOR_ACCURACY = 0.7  # Snorkel's prec_init
L2_GRID = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0)
THREADS = 1  # torch threads for Snorkel; loopml's moment products also run on one BLAS thread

SNORKEL_SCRIPT = r"""
import json, sys, time
import numpy as np
import torch
from snorkel.labeling.model import LabelModel, MajorityLabelVoter

torch.set_num_threads(int(sys.argv[3]))

data = np.load(sys.argv[1])
task = json.loads(sys.argv[2])
out = {}
def fit(L, seed, **kw):
    model = LabelModel(cardinality=2, verbose=False)
    start = time.perf_counter()
    model.fit(L, seed=seed, progress_bar=False, **kw)
    return model, time.perf_counter() - start
if task["youtube"]:
    L, test, balance = data["L_train"], data["L_test"], data["balance"]
    first = {}
    configs = {"defaults": {}, "tuned": {"n_epochs": 500, "class_balance": balance}}
    for name, kw in configs.items():
        times, probas = [], []
        for seed in range(task["seeds"]):
            model, seconds = fit(L, seed, **kw)
            times.append(seconds)
            probas.append(model.predict_proba(test).tolist())
            if seed == 0:
                first[name] = model.predict_proba(L).tolist()
        own = model.predict(test, tie_break_policy="random")
        out[name] = {"times": times, "probas": probas, "own_predict": own.tolist(),
                     "mu": model.mu.detach().numpy().tolist(), "train": first[name]}
    voter = MajorityLabelVoter(cardinality=2)
    out["majority"] = {"probas": [voter.predict_proba(test).tolist()], "times": [0.0],
                       "train": voter.predict_proba(L).tolist()}
if task["scale"]:
    big = data["L_big"]
    model, seconds = fit(big, 0)
    out["scale"] = {"time": seconds,
                    "accuracy": float((model.predict(big, tie_break_policy="random")
                                       == data["y_big"]).mean())}
print(json.dumps(out))
"""


def load_youtube() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder = DATASETS / "youtube_spam_wrench"
    if not folder.is_dir():
        sys.exit(f"the YouTube data is not at {folder} (set LOOPML_DATASETS)")
    splits = {}
    for split in ("train", "valid", "test"):
        rows = list(json.loads((folder / f"{split}.json").read_text("utf-8")).values())
        splits[split] = (
            np.array([r["weak_labels"] for r in rows], dtype=np.int8),
            np.array([r["label"] for r in rows]),
        )
    return splits


def accuracies(proba: np.ndarray, L: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Mean accuracy over tie seeds: all rows, and rows at least one LF covers; then the
    exact expectation on all rows over every random tie draw (no tie-seed luck)."""
    covered = (L != -1).any(axis=1)
    all_rows, on_covered = [], []
    for seed in TIE_SEEDS:
        predicted = predict_from_proba(proba, "random", seed)
        all_rows.append(np.mean(predicted == y))
        on_covered.append(np.mean(predicted[covered] == y[covered]))
    tied = proba >= proba.max(axis=1, keepdims=True) - 1e-9  # predict_from_proba's tolerance
    expected = np.mean(tied[np.arange(len(y)), y] / tied.sum(axis=1))
    return float(np.mean(all_rows)), float(np.mean(on_covered)), float(expected)


def loopml_models() -> dict[str, LabelModel]:
    return {
        "MajorityVote": MajorityVote(),
        "DawidSkene": DawidSkene(),
        "MatrixCompletion": MatrixCompletion(),
        "Triplet": Triplet(),
    }


def youtube_loopml(data: dict[str, Any], seeds: int) -> list[dict[str, Any]]:
    (L, y), (_, y_valid), (L_test, y_test) = data["train"], data["valid"], data["test"]
    balance = np.bincount(y_valid, minlength=2) / len(y_valid)
    rows = []
    for name, model in loopml_models().items():
        for config, class_balance in (("defaults", None), ("tuned", balance)):
            if config == "tuned" and isinstance(model, MatrixCompletion):
                model = pick_l2(L, data["valid"], balance)
            model.fit(L, class_balance=class_balance, seed=0)  # warm-up: imports
            times, scores = [], []
            for seed in range(seeds):
                start = time.perf_counter()
                model.fit(L, class_balance=class_balance, seed=seed)
                times.append(time.perf_counter() - start)
                scores.append(accuracies(model.predict_proba(L_test), L_test, y_test))
                if seed == 0:
                    train = accuracies(model.predict_proba(L), L, y)[0]
            label = (
                f"{name} l2={model.l2:g}"
                if config == "tuned" and name == "MatrixCompletion"
                else name
            )
            rows.append(_row(f"loopml {label}", config, scores, times, train))
    return rows


def pick_l2(
    L: np.ndarray, valid: tuple[np.ndarray, np.ndarray], balance: np.ndarray
) -> MatrixCompletion:
    """MatrixCompletion's l2 toward prior_accuracy, chosen by log-loss on the valid rows."""
    L_valid, y_valid = valid

    def log_loss(l2: float) -> float:
        model = MatrixCompletion(l2=l2, prior_accuracy=PRIOR_ACCURACY)
        proba = model.fit(L, class_balance=balance, seed=0).predict_proba(L_valid)
        return float(-np.mean(np.log(np.clip(proba[np.arange(len(y_valid)), y_valid], 1e-12, 1))))

    losses = {l2: log_loss(l2) for l2 in L2_GRID}
    best = min(losses, key=lambda l2: losses[l2])
    shown = ", ".join(f"{l2:g}: {loss:.3f}" for l2, loss in losses.items())
    print(f"MatrixCompletion tuned: valid log-loss by l2 ({shown}); picked l2={best:g}")
    return MatrixCompletion(l2=best, prior_accuracy=PRIOR_ACCURACY)


def _row(
    name: str,
    config: str,
    scores: list[tuple[float, float, float]],
    times: list[float],
    train: float = float("nan"),
) -> Any:
    first = scores[0]
    all_rows = [s[0] for s in scores]
    return {
        "model": name,
        "config": config,
        "all": first[0],
        "covered": first[1],
        "expected": first[2],
        "train": train,
        "fit_s": float(np.median(times)),
        "seed_min": min(all_rows),
        "seed_max": max(all_rows),
        "flips": sum(a < 0.5 for a in all_rows),
        "seeds": len(scores),
    }


def ensure_snorkel_venv() -> Path:
    python = VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {VENV} (torch 2.13.0 CPU + snorkel 0.10.0; several minutes)", flush=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0", "snorkel==0.10.0"], check=True)
    return python


def run_snorkel(arrays: dict[str, np.ndarray], task: dict[str, Any]) -> dict[str, Any]:
    python = ensure_snorkel_venv()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npz"
        np.savez(path, **arrays)
        done = subprocess.run(
            [str(python), "-c", SNORKEL_SCRIPT, str(path), json.dumps(task), str(THREADS)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        sys.exit(f"snorkel failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def youtube_snorkel(data: dict[str, Any], seeds: int) -> list[dict[str, Any]]:
    (L, y), (_, y_valid), (L_test, y_test) = data["train"], data["valid"], data["test"]
    balance = np.bincount(y_valid, minlength=2) / len(y_valid)
    out = run_snorkel(
        {"L_train": L, "L_test": L_test, "balance": balance},
        {"youtube": True, "scale": False, "seeds": seeds},
    )
    print_objectives(L, balance, np.array(out["tuned"]["mu"]))
    rows = []
    for key, name in (
        ("defaults", "LabelModel"),
        ("tuned", "LabelModel"),
        ("majority", "MajorityLabelVoter"),
    ):
        scores = [accuracies(np.array(p), L_test, y_test) for p in out[key]["probas"]]
        config = "defaults" if key == "majority" else key
        train = accuracies(np.array(out[key]["train"]), L, y)[0]
        rows.append(_row(f"snorkel {name}", config, scores, out[key]["times"], train))
        if "own_predict" in out[key]:
            own = np.array(out[key]["own_predict"])
            rows[-1]["own_predict"] = float(np.mean(own == y_test))
    return rows


def print_objectives(L: np.ndarray, balance: np.ndarray, snorkel_mu: np.ndarray) -> None:
    """Snorkel's own objective (its ``_loss_mu`` without l2) at its solution and at ours."""
    from loopml.trainingdata.labeling._matrix import vote_moments
    from loopml.trainingdata.labeling._matrix_completion import _mask

    overlaps = vote_moments(L, 2).overlaps
    mask = _mask(L.shape[1], 2, ()).astype(bool)

    def loss(mu: np.ndarray) -> float:
        fitted = (mu * balance) @ mu.T
        return float(
            np.sum((overlaps - fitted)[mask] ** 2) + np.sum((mu @ balance - np.diag(overlaps)) ** 2)
        )

    ours = MatrixCompletion().fit(L, class_balance=balance, seed=0)
    mu = ours.confusion_[:, 1:, :].reshape(-1, 2)
    print(
        f"Snorkel's objective on YouTube train (tuned, last seed): Snorkel's solution "
        f"{loss(snorkel_mu):.3e}, loopml MatrixCompletion's {loss(mu):.3e}"
    )


def print_youtube(rows: list[dict[str, Any]], data: dict[str, Any]) -> None:
    (L, _), (L_test, _) = data["train"], data["test"]
    print(
        f"\nYouTube spam, test split ({len(L_test)} rows, {(L_test != -1).any(axis=1).sum()} "
        f"covered; fit on {L.shape[0]:,} train rows x {L.shape[1]} LFs)"
    )
    print(
        f"{'model':<36}{'config':<10}{'all rows':>9}{'covered':>9}{'train':>7}{'fit s':>9}"
        f"{'seeds':>7}{'min..max (all rows)':>22}{'flips':>7}"
    )
    for r in rows:
        print(
            f"{r['model']:<36}{r['config']:<10}{r['all']:>9.3f}{r['covered']:>9.3f}"
            f"{r['train']:>7.3f}{r['fit_s']:>9.4f}{r['seeds']:>7}{r['seed_min']:>12.3f}..{r['seed_max']:.3f}"
            f"{r['flips']:>7}"
            + (f"   (snorkel's own predict: {r['own_predict']:.3f})" if "own_predict" in r else "")
        )
    best = max((r for r in rows if r["model"].startswith("loopml")), key=lambda r: r["all"])
    tuned = [r for r in rows if r["model"] == "snorkel LabelModel" and r["config"] == "tuned"]
    if tuned:
        t = tuned[0]
        print(
            f"best loopml: {best['model']} ({best['config']}) {best['all']:.3f} / "
            f"{best['covered']:.3f} vs Snorkel tuned {t['all']:.3f} / {t['covered']:.3f} "
            f"(difference {best['all'] - t['all']:+.3f} / {best['covered'] - t['covered']:+.3f}); "
            f"on the train rows' gold {best['train']:.3f} vs {t['train']:.3f}; all test rows, "
            f"exact expectation over tie draws {best['expected']:.3f} vs {t['expected']:.3f}"
        )


def scale(n: int, m: int, with_snorkel: bool) -> None:
    rng = np.random.default_rng(0)
    acc, cov = rng.uniform(0.55, 0.95, m), rng.uniform(0.05, 0.3, m)
    data = synthetic_label_matrix(n, acc, cov, seed=1)
    votes = int((data.L != -1).sum())
    print(f"\nSynthetic {n:,} x {m} label matrix ({votes:,} votes), fit time on this machine")
    print(f"{'model':<26}{'fit s':>9}{'accuracy':>10}{'max |acc err|':>15}")
    times = {}
    for name, model in loopml_models().items():
        model.fit(data.L[:1000], seed=0)  # warm-up: imports
        start = time.perf_counter()
        model.fit(data.L, seed=0)
        times[name] = time.perf_counter() - start
        accuracy = model.score(data.L, data.y, tie_break="random", seed=0)
        error = float(np.nanmax(np.abs(model.lf_accuracies_ - acc)))
        print(f"{'loopml ' + name:<26}{times[name]:>9.2f}{accuracy:>10.3f}{error:>15.3f}")
    if not with_snorkel:
        return
    out = run_snorkel({"L_big": data.L, "y_big": data.y}, {"youtube": False, "scale": True})
    snorkel = out["scale"]["time"]
    print(f"{'snorkel LabelModel':<26}{snorkel:>9.2f}{out['scale']['accuracy']:>10.3f}{'n/a':>15}")
    for name in ("MatrixCompletion", "DawidSkene", "Triplet", "MajorityVote"):
        verdict = "meets" if times[name] < 10 and snorkel / times[name] >= 10 else "misses"
        print(
            f"  {name}: {snorkel / times[name]:.1f}x faster than Snorkel; target "
            f"(< 10 s and >= 10x): {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="YouTube, loopml only, 3 seeds")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lfs", type=int, default=50)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="Snorkel's torch threads (1: on a shared machine more threads made it slower)",
    )
    args = parser.parse_args()
    seeds = 3 if args.quick else args.seeds
    data = load_youtube()
    global THREADS
    THREADS = args.torch_threads
    rows = youtube_loopml(data, seeds)
    print(f"loopml YouTube runs done ({seeds} seeds each)", flush=True)
    if not args.quick:
        rows += youtube_snorkel(data, seeds)
    print_youtube(rows, data)
    if not args.quick:
        scale(args.rows, args.lfs, with_snorkel=True)


if __name__ == "__main__":
    main()

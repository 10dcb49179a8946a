"""Fast model backends, each admitted only through a parity gate on held-out rows.

========== =================================================================================
backend    what it is
========== =================================================================================
lightgbm   the native Booster, ``predict(X, num_threads=1)`` (always available; the reference)
tl2cgen    the trees compiled to C by ``tl2cgen`` and built with gcc into a shared library
           (extra ``loopml[compile]``); float64 thresholds and sums, so it should be exact
onnx       ONNX Runtime on the model converted by ``onnxmltools`` (optional); ONNX's
           tree ensembles compare **float32** features with **float32** thresholds, so a
           value that lies between a float64 threshold and its float32 rounding goes the
           other way down the tree and the score moves by a whole leaf value (0.015 on one
           model here)
========== =================================================================================

The gate: score the held-out rows with the candidate and with the native Booster, and
admit the candidate only if ``max |candidate - native| <= tolerance``. The default
tolerances and why:

* ``tl2cgen``: ``1e-9``. Everything is float64; only the order of summing the trees may
  differ, which costs about ``n_trees * 2**-52`` relative, far below ``1e-9``. Anything
  larger means a different path through a tree.
* ``onnx``: ``1e-5``. Summing a few hundred leaf values in float32 costs about
  ``n_trees * 2**-24 * |leaf|`` (about ``2e-6`` for 300 trees with leaves near 0.1), and
  the sigmoid only shrinks it (slope at most 0.25). A flipped float32 threshold moves the
  score by a leaf value (``1e-3`` to ``1e-1``), which this tolerance catches.

A compiled artifact is stored with ``parity.json`` (the measured difference, the gate's
verdict, the SHA-256 of the library); ``find_compiled`` hands out a scorer only when the
gate passed and the file's hash still matches, since loading a shared library runs its code.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.core import ConfigError, GateFailed, atomic_dir, get_logger, sha256_file

__all__ = ["BACKENDS", "DEFAULT_TOLERANCE", "ParityReport", "compile_model", "find_compiled"]

_log = get_logger("serving.backends")
FloatArray = npt.NDArray[np.float64]
Scorer = Callable[[FloatArray], FloatArray]
BACKENDS = ("lightgbm", "tl2cgen", "onnx")
DEFAULT_TOLERANCE = {"lightgbm": 0.0, "tl2cgen": 1e-9, "onnx": 1e-5}
_FILES = {"tl2cgen": "model.so", "onnx": "model.onnx"}


@dataclass(frozen=True)
class ParityReport:
    """What the parity gate measured for one backend of one model version."""

    model: str
    version: int
    backend: str
    rows: int
    max_abs_diff: float
    tolerance: float
    passed: bool
    single_row_us: float
    native_single_row_us: float
    artifact: str
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(
            f"The 'backend' parameter must be one of {', '.join(BACKENDS)}. "
            f"Got {backend!r} instead."
        )


def compile_model(
    loaded: Any,
    rows: pd.DataFrame,
    *,
    backend: str,
    out_dir: str | Path,
    tolerance: float | None = None,
) -> ParityReport:
    """Build ``backend`` for a registered LightGBM model and run the parity gate on ``rows``.

    The artifact and its ``parity.json`` are written atomically to
    ``out_dir/<name>/<version>/<backend>/``; a failed gate is written too (so the figure is
    on record) and raises ``GateFailed``; ``find_compiled`` never serves it.
    """
    _check_backend(backend)
    if loaded.booster is None:
        raise ConfigError(
            f"model {loaded.name!r} version {loaded.version} is a {loaded.model.name} model; "
            "compiled backends exist for LightGBM models only"
        )
    if len(rows) == 0:
        raise ConfigError("The parity gate needs held-out rows. Got an empty frame instead.")
    tolerance = DEFAULT_TOLERANCE[backend] if tolerance is None else float(tolerance)
    matrix = loaded.model.encoder.transform(rows)
    native = _native_scorer(loaded.booster)
    target = Path(out_dir) / loaded.name / str(loaded.version) / backend
    if target.exists():
        shutil.rmtree(target)
    with atomic_dir(target) as folder:
        artifact = _build(backend, loaded.booster, folder)
        scorer = _scorer(backend, folder / artifact) if artifact else native
        diff = float(np.max(np.abs(scorer(matrix) - native(matrix))))
        report = ParityReport(
            loaded.name,
            int(loaded.version),
            backend,
            len(matrix),
            diff,
            tolerance,
            bool(diff <= tolerance),
            _single_row_us(scorer, matrix),
            _single_row_us(native, matrix),
            artifact,
            sha256_file(folder / artifact) if artifact else "",
        )
        (folder / "parity.json").write_text(json.dumps(report.to_json(), indent=2))
    if not report.passed:
        raise GateFailed(
            f"{backend} differs from the native model by up to {diff:.3g} on {len(matrix)} "
            f"held-out rows (tolerance {tolerance:g}); it will not be served",
            hint="serve the native LightGBM backend, or raise --tolerance if you accept it",
        )
    return report


def find_compiled(
    out_dir: str | Path, loaded: Any, backend: str = "auto"
) -> tuple[Scorer, str] | None:
    """The scorer of a compiled backend that passed its gate, or None.

    ``backend="auto"`` takes the fastest passing one.
    """
    base = Path(out_dir) / loaded.name / str(loaded.version)
    names = [b for b in BACKENDS if b != "lightgbm"] if backend == "auto" else [backend]
    reports = []
    for name in names:
        path = base / name / "parity.json"
        if path.is_file():
            report = json.loads(path.read_text())
            if report["passed"] and report["artifact"]:
                reports.append(report)
    for report in sorted(reports, key=lambda r: r["single_row_us"]):
        artifact = base / report["backend"] / report["artifact"]
        if not artifact.is_file() or sha256_file(artifact) != report["sha256"]:
            _log.warning("%s changed since its parity gate; not loading it", artifact)
            continue
        return _scorer(report["backend"], artifact), report["backend"]
    return None


# -- building and loading --------------------------------------------------------------
def _native_scorer(booster: Any) -> Scorer:
    def score(matrix: FloatArray) -> FloatArray:
        return np.asarray(booster.predict(matrix, num_threads=1), dtype=np.float64)

    return score


def _build(backend: str, booster: Any, folder: Path) -> str:
    if backend == "lightgbm":
        return ""
    if backend == "tl2cgen":
        try:
            import tl2cgen
            import treelite
        except ImportError as error:
            raise ConfigError(
                f"the tl2cgen backend needs tl2cgen ({error})",
                hint="pip install 'loopml[compile]' (and a C compiler: gcc)",
            ) from None
        model = treelite.frontend.from_lightgbm(booster)
        tl2cgen.export_lib(
            model,
            toolchain="gcc",
            libpath=str(folder / _FILES[backend]),
            params={"parallel_comp": 2},
            nthread=2,
            verbose=False,
        )
        return _FILES[backend]
    try:
        import onnxmltools
        from onnxmltools.convert.common import data_types
    except ImportError as error:
        raise ConfigError(
            f"the onnx backend needs onnxmltools and onnxruntime ({error})",
            hint="pip install onnxmltools onnxruntime",
        ) from None
    features = booster.num_feature()
    onnx_model = onnxmltools.convert_lightgbm(
        booster,
        initial_types=[("input", data_types.FloatTensorType([None, features]))],
        zipmap=False,
        target_opset=15,
    )
    (folder / _FILES[backend]).write_bytes(onnx_model.SerializeToString())
    return _FILES[backend]


def _scorer(backend: str, path: Path) -> Scorer:
    if backend == "tl2cgen":
        import tl2cgen

        predictor = tl2cgen.Predictor(str(path), nthread=1)

        def score_compiled(matrix: FloatArray) -> FloatArray:
            out = predictor.predict(tl2cgen.DMatrix(matrix, dtype="float64"))
            out = np.asarray(out, dtype=np.float64).reshape(len(matrix), -1)
            return out[:, 0] if out.shape[1] == 1 else out

        return score_compiled
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    wanted = "probabilities" if "probabilities" in outputs else outputs[-1]

    def score_onnx(matrix: FloatArray) -> FloatArray:
        out = session.run([wanted], {"input": matrix.astype(np.float32)})[0]
        out = np.asarray(out, dtype=np.float64).reshape(len(matrix), -1)
        if wanted == "probabilities" and out.shape[1] == 2:
            return out[:, 1]
        return out[:, 0] if out.shape[1] == 1 else out

    return score_onnx


def _single_row_us(scorer: Scorer, matrix: FloatArray, repeats: int = 300) -> float:
    rows = [matrix[i : i + 1] for i in range(min(len(matrix), 50))]
    for row in rows:
        scorer(row)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        scorer(rows[i % len(rows)])
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)

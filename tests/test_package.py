"""Package-level contracts: fast import, public names, version."""

from __future__ import annotations

import json
import subprocess
import sys

import loopml
from loopml import core

HEAVY = [
    "sklearn", "lightgbm", "mlflow", "dask", "fastapi", "optuna", "scipy",
    "pandas", "duckdb", "pyarrow", "redis", "skops", "typer",
]


def test_import_loopml_loads_no_heavy_module() -> None:
    code = (
        "import sys, json, time; t=time.perf_counter(); import loopml, loopml.core; "
        "print(json.dumps({'s': time.perf_counter()-t, 'mods': sorted(sys.modules)}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    loaded = {m.split(".")[0] for m in result["mods"]}
    assert not loaded & set(HEAVY), f"import loopml loaded {sorted(loaded & set(HEAVY))}"


def test_core_all_matches_public_names() -> None:
    public = {n for n in vars(core) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(core, n)).__name__ == "module"}
    assert sorted(core.__all__) == sorted(public - modules)
    assert core.__all__ == sorted(core.__all__, key=lambda n: (not n.isupper(), n))


def test_version_and_lazy_stages() -> None:
    assert loopml.__version__ == "0.1.0"
    assert loopml.core is core

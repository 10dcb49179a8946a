"""The public surface of loopml.data and its import cost."""

from __future__ import annotations

import json
import subprocess
import sys

from loopml import data


def test_all_matches_public_names_and_is_sorted() -> None:
    public = {n for n in vars(data) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(data, n)).__name__ == "module"}
    assert sorted(data.__all__) == sorted(public - modules)
    assert data.__all__ == sorted(data.__all__, key=lambda n: (not n.isupper(), n))
    for name in data.__all__:
        assert getattr(data, name).__doc__, f"{name} has no docstring"


def test_import_loads_no_heavy_ml_library() -> None:
    code = "import sys, json; import loopml.data; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    heavy = {"sklearn", "lightgbm", "mlflow", "scipy", "sqlalchemy", "dask", "redis", "rich"}
    assert not loaded & heavy, sorted(loaded & heavy)

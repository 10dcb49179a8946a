"""The package's public names and its import cost."""

from __future__ import annotations

import json
import subprocess
import sys

from loopml import trainingdata


def test_all_is_sorted_and_every_name_resolves() -> None:
    names = trainingdata.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert getattr(trainingdata, name) is not None


def test_import_loads_no_heavy_library() -> None:
    code = (
        "import sys, json; import loopml.trainingdata; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"sklearn", "lightgbm", "scipy", "imblearn", "mlflow", "dask"}

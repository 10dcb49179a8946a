"""The subpackage's public names and import cost."""

from __future__ import annotations

import json
import subprocess
import sys

from loopml.trainingdata import labeling


def test_all_matches_public_names() -> None:
    public = {n for n in vars(labeling) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(labeling, n)).__name__ == "module"}
    assert sorted(labeling.__all__) == sorted(public - modules)
    assert labeling.__all__ == sorted(labeling.__all__, key=lambda n: (not n.isupper(), n))


def test_import_does_not_load_scipy_or_sklearn() -> None:
    code = (
        "import sys, json; import loopml.trainingdata.labeling; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"scipy", "sklearn", "threadpoolctl"}, loaded & {"scipy", "sklearn"}

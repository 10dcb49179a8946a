"""loopml: the whole production loop of a supervised ML model.

Stages are subpackages, imported on first use so that ``import loopml`` stays fast::

    >>> import loopml
    >>> loopml.__version__
    '0.1.0'
    >>> from loopml import core
    >>> core.parse_duration("1h").total_seconds()
    3600.0
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_STAGES = (
    "cli",
    "continual",
    "core",
    "data",
    "datasets",
    "evaluation",
    "experiments",
    "features",
    "monitoring",
    "registry",
    "serving",
    "training",
    "trainingdata",
)

__all__ = ["__version__", *_STAGES]


def __getattr__(name: str) -> Any:
    if name in _STAGES:
        return importlib.import_module(f"loopml.{name}")
    raise AttributeError(f"module 'loopml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

"""The model registry: versions, aliases, lineage, safe artifacts and integrity hashes.

>>> from loopml import registry
>>> callable(registry.load_model)
True
"""

from loopml.registry._registry import (
    LoadedModel,
    ModelVersion,
    delete_alias,
    get_model_version,
    list_models,
    load_model,
    register_model,
    set_alias,
)

__all__ = [
    "LoadedModel",
    "ModelVersion",
    "delete_alias",
    "get_model_version",
    "list_models",
    "load_model",
    "register_model",
    "set_alias",
]

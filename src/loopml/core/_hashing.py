"""Content hashes and short identifiers."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = ["new_id", "sha256_bytes", "sha256_file", "sha256_json", "short_hash"]

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``.

    >>> sha256_bytes(b"loopml")[:12]
    '4c5c0f86a243'
    """
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(value: Any) -> str:
    """Hex SHA-256 of a JSON value written canonically (sorted keys, no spaces).

    >>> sha256_json({"b": 1, "a": 2}) == sha256_json({"a": 2, "b": 1})
    True
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(text.encode())


def short_hash(hex_digest: str, length: int = 12) -> str:
    """The first ``length`` characters of a hex digest, used as a version."""
    return hex_digest[:length]


def new_id(prefix: str = "") -> str:
    """A random 16-hex-digit id, optionally prefixed (``"req_3f9a..."``)."""
    token = secrets.token_hex(8)
    return f"{prefix}_{token}" if prefix else token

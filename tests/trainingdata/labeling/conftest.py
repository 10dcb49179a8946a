"""The real YouTube spam data (WRENCH): 10 labeling functions' votes and gold labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def load_youtube_split(datasets_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    path = datasets_dir / "youtube_spam_wrench" / f"{split}.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    rows = list(json.loads(path.read_text(encoding="utf-8")).values())
    L = np.array([r["weak_labels"] for r in rows], dtype=np.int8)
    y = np.array([r["label"] for r in rows])
    texts = [r["data"]["text"] for r in rows]
    return L, y, texts


@pytest.fixture
def youtube(datasets_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    return {s: load_youtube_split(datasets_dir, s) for s in ("train", "valid", "test")}


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Many tiny fits: on a shared 2-core machine BLAS threads make them 7x slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield

"""The registry tests use the shared tracking fixtures, plus a model name per test."""

from __future__ import annotations

import pytest


@pytest.fixture
def tracking(tracking: dict[str, str]) -> dict[str, str]:
    """The shared fixture's database and experiment, and a registered-model name of its own."""
    return {**tracking, "name": "model_" + tracking["experiment"].removeprefix("test_")}

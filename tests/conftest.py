"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One base-model cache folder for the session: each warm-started base model is built once."""
    return tmp_path_factory.mktemp("base-model-cache")

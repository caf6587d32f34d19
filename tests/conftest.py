"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One base-model cache folder for the run: each warm-started base model is built once. Under
    pytest-xdist the workers share it (one folder above each worker's own); `ensure_base_model` makes a
    worker that asks for a model another is training wait for it."""
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent
    folder = root / "base-model-cache"
    folder.mkdir(exist_ok=True)
    return folder

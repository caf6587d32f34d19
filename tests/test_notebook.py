"""notebooks/curriculum.ipynb runs top to bottom on a simulator run and shows its figures."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from conf_helpers import CONF_DIR, compose_config
from nbclient import NotebookClient

from gdro.config import parse_run_config
from gdro.train.loop import train

NOTEBOOK = CONF_DIR.parent / "notebooks" / "curriculum.ipynb"


def test_curriculum_notebook_executes_and_shows_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = compose_config(
        ["policy=sim", "logger=none", "sampler=prompt_gdro", "allocator=rollout_gdro", "trainer.steps=200"]
    )
    train(parse_run_config(config), tmp_path / "run", config, progress=False)
    monkeypatch.setenv("GDRO_RUN_DIRS", str(tmp_path / "run"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute(env=dict(os.environ))

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 10, f"only {len(images)} images in the notebook's outputs"
    assert str(tmp_path / "run") in "".join(output.get("text", "") for output in outputs)

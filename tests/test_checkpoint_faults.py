"""Corrupt checkpoints: each fault is found by the manifest before anything is loaded, `resume: auto` falls
back to the checkpoint before it (renaming the bad one aside, with a warning) and the run ends with the
metrics of a run resumed from that checkpoint; `resume: PATH` names the bad file; a checkpoint written
before manifests still loads, with a warning.

The broken variant these tests reject is the loader before manifests: it read the truncated policy.pt
and died with torch's "failed finding central directory", naming no path, although the checkpoint
before it was intact; a bit flip in the optimizer's moments or the JSON state it loaded without a word.
"""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from conf_helpers import compose_config

from gdro.config import parse_run_config
from gdro.train.io.checkpoint import LATEST, CheckpointError, resolve_resume
from gdro.train.io.manifest import MANIFEST_FILE
from gdro.train.io.metrics import read_metrics
from gdro.train.loop import train

SIM = ["policy=sim", "logger=none", "policy.num_prompts=256", "trainer.save_every=2"]
MODEL = ["debug=quick", "trainer.save_every=1"]


def without_times(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


def train_into(run_dir: Path, overrides: list[str]) -> list[dict]:
    """train.py's loop in this process, into `run_dir`; the whole metrics.jsonl afterwards."""
    config = compose_config(overrides)
    train(parse_run_config(config), run_dir, config, progress=False)
    return read_metrics(run_dir / "metrics.jsonl")


def resumed_from(base: Path, run_dir: Path, checkpoint: str, overrides: list[str]) -> list[dict]:
    """The reference: a copy of `base` whose `latest` names `checkpoint` (the newer ones removed), resumed."""
    shutil.copytree(base, run_dir)
    root = run_dir / "checkpoints"
    for entry in root.iterdir():
        if entry.name not in (checkpoint, LATEST):
            shutil.rmtree(entry)
    (root / LATEST).write_text(checkpoint + "\n")
    return train_into(run_dir, overrides)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_bit(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0x10
    path.write_bytes(bytes(data))


def flip_in_optimizer_state(path: Path) -> None:
    """Flip a bit inside the last tensor record of policy.pt, one of the optimizer's moments (saved after
    the model's weights): the file stays a readable zip with the same weights; only a moment changes."""
    before = torch.load(path, weights_only=True)
    with zipfile.ZipFile(path) as archive:
        record = max(
            (info for info in archive.infolist() if "/data/" in info.filename),
            key=lambda info: int(info.filename.rsplit("/", 1)[1]),
        )
    header = path.read_bytes()[record.header_offset : record.header_offset + 30]  # the local file header
    start = (
        record.header_offset
        + 30
        + int.from_bytes(header[26:28], "little")
        + int.from_bytes(header[28:30], "little")
    )
    flip_bit(path, start + record.file_size // 2)
    after = torch.load(path, weights_only=True)  # still loads: only the manifest tells
    assert all(torch.equal(after["model"][k], v) for k, v in before["model"].items())
    assert after["optimizer"]["state"].keys() == before["optimizer"]["state"].keys()
    assert any(
        not torch.equal(after["optimizer"]["state"][k][m], v)
        for k, moments in before["optimizer"]["state"].items()
        for m, v in moments.items()
    )


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """policy=sim, 4 steps with checkpoints at 2 and 4; and the reference: resumed from step 2 to step 6."""
    root = tmp_path_factory.mktemp("sim")
    train_into(root / "base", [*SIM, "trainer.steps=4"])
    reference = resumed_from(root / "base", root / "reference", "step_000002", [*SIM, "trainer.steps=6"])
    return root / "base", reference


@pytest.mark.parametrize(
    ("name", "fault", "kind"),
    [
        ("state.json", truncate, "size"),
        ("state.json", flip_bit, "digest"),
        ("simulator.json", flip_bit, "digest"),
        (MANIFEST_FILE, truncate, "manifest"),
    ],
    ids=["state_truncated", "state_bit_flip", "simulator_bit_flip", "manifest_truncated"],
)
def test_resume_auto_falls_back_past_a_corrupt_checkpoint(
    sim_run: tuple[Path, list[dict]], tmp_path: Path, caplog: pytest.LogCaptureFixture, name, fault, kind
) -> None:
    base, reference = sim_run
    run_dir = tmp_path / "run"
    shutil.copytree(base, run_dir)
    fault(run_dir / "checkpoints" / "step_000004" / name)
    with caplog.at_level(logging.WARNING):
        records = train_into(run_dir, [*SIM, "trainer.steps=6"])
    assert without_times(records) == without_times(reference)
    aside = run_dir / "checkpoints" / f"step_000004.bad-{kind}"
    assert (aside / name).is_file(), "the bad checkpoint is kept for inspection"
    assert f"skipping checkpoint step_000004: {run_dir / 'checkpoints' / 'step_000004'}" in caplog.text
    assert "resuming from" in caplog.text and "step_000002" in caplog.text
    assert (run_dir / "checkpoints" / LATEST).read_text().strip() == "step_000006"


def test_none_verifies_lists_each_and_resume_path_names_the_file(
    sim_run: tuple[Path, list[dict]], tmp_path: Path
) -> None:
    base, _ = sim_run
    run_dir = tmp_path / "run"
    shutil.copytree(base, run_dir)
    root = run_dir / "checkpoints"
    flip_bit(root / "step_000004" / "simulator.json")
    with pytest.raises(CheckpointError, match=r"simulator.json: its SHA-256 differs"):
        resolve_resume(str(root / "step_000004"), run_dir)  # resume=PATH: no fallback, nothing renamed
    assert (root / "step_000004").is_dir()
    truncate(root / "step_000002" / "state.json")
    with pytest.raises(CheckpointError) as error:
        resolve_resume("auto", run_dir)
    message = str(error.value)
    assert "step_000004: " in message and "simulator.json" in message and "bad-digest" in message
    assert "step_000002: " in message and "state.json holds" in message and "bad-size" in message
    assert sorted(p.name for p in root.iterdir()) == [
        LATEST,
        "step_000002.bad-size",
        "step_000004.bad-digest",
    ]
    with pytest.raises(CheckpointError, match="step_000004: .* not a checkpoint folder"):
        resolve_resume("auto", run_dir)  # a rerun does not start over silently


def test_a_checkpoint_written_before_manifests_loads_with_a_warning(
    sim_run: tuple[Path, list[dict]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = sim_run
    run_dir = tmp_path / "run"
    shutil.copytree(base, run_dir)
    for checkpoint in ("step_000002", "step_000004"):
        (run_dir / "checkpoints" / checkpoint / MANIFEST_FILE).unlink()
    with caplog.at_level(logging.WARNING):
        assert resolve_resume("auto", run_dir) == run_dir / "checkpoints" / "step_000004"
    assert "unverified: written before manifests" in caplog.text


@pytest.fixture(scope="module")
def model_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, list[dict]]:
    """debug=quick, 2 steps with checkpoints at 1 and 2; and the reference: resumed from step 1 to step 3."""
    root = tmp_path_factory.mktemp("model")
    overrides = [*MODEL, f"cache_dir={cache_dir}"]
    train_into(root / "base", [*overrides, "trainer.steps=2"])
    reference = resumed_from(
        root / "base", root / "reference", "step_000001", [*overrides, "trainer.steps=3"]
    )
    return root / "base", reference


@pytest.mark.parametrize(
    ("fault", "kind"),
    [(truncate, "size"), (flip_in_optimizer_state, "digest")],
    ids=["weights_truncated", "optimizer_state_bit_flip"],
)
def test_a_model_run_falls_back_past_a_corrupt_policy_file(
    model_run: tuple[Path, list[dict]], tmp_path: Path, cache_dir: Path, fault, kind
) -> None:
    base, reference = model_run
    run_dir = tmp_path / "run"
    shutil.copytree(base, run_dir)
    fault(run_dir / "checkpoints" / "step_000002" / "policy.pt")
    records = train_into(run_dir, [*MODEL, f"cache_dir={cache_dir}", "trainer.steps=3"])
    assert without_times(records) == without_times(reference)
    assert (run_dir / "checkpoints" / f"step_000002.bad-{kind}" / "policy.pt").is_file()
    assert json.loads((run_dir / "hf" / "final" / "export.json").read_text())["step"] == 3

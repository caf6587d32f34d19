"""Where step records go besides metrics.jsonl: Weights & Biases (offline by default) or nowhere."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gdro.config import LoggerConfig
from gdro.train.io.storage import storage_errors

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Logger(Protocol):
    """A sink for step records."""

    def log(self, record: dict[str, Any]) -> None: ...

    def log_figures(self, step: int, figures: dict[str, Figure]) -> None: ...

    def finish(self) -> None: ...


class NoLogger:
    """`logger=none`: metrics.jsonl only."""

    def log(self, record: dict[str, Any]) -> None:
        """Nothing to do."""

    def log_figures(self, step: int, figures: dict[str, Figure]) -> None:
        """Nothing to do."""

    def finish(self) -> None:
        """Nothing to do."""


def flatten(record: dict[str, Any]) -> dict[str, float]:
    """Per-bin lists become `bins/share/<b>` etc.; None values are dropped (W&B wants numbers)."""
    flat: dict[str, float] = {}
    for key, value in record.items():
        if isinstance(value, list):
            flat.update({f"{key}/{b}": v for b, v in enumerate(value) if v is not None})
        elif value is not None and key != "step":
            flat[key] = value
    return flat


class WandbLogger:
    """A W&B run in the run folder; `mode: offline` needs no account (`wandb sync` it later).

    The run id is kept in `run_dir/wandb_run_id`, so a resumed run continues the same W&B run. A storage
    failure (`gdro.train.io.storage`) in starting or closing it names the folder; W&B's own writer process
    reports its failures in its log (`run_dir/wandb/`).
    """

    def __init__(self, config: LoggerConfig, run_dir: Path, run_config: dict[str, Any]) -> None:
        import wandb  # imported here: logger=none runs need no W&B at all

        id_file = run_dir / "wandb_run_id"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:8]
        os.environ.setdefault("WANDB_SILENT", "true")
        self.folder = run_dir / "wandb"
        with storage_errors(self.folder, "starting the W&B run in"):
            id_file.write_text(run_id + "\n")
            self.run = wandb.init(
                project=config.project,
                entity=config.entity,
                mode=config.mode,
                dir=str(run_dir),
                id=run_id,
                resume="allow",
                config=run_config,
            )

    def log(self, record: dict[str, Any]) -> None:
        """Log a record at its step."""
        self.run.log(flatten(record), step=record["step"])

    def log_figures(self, step: int, figures: dict[str, Figure]) -> None:
        """Figures as W&B images at `step` (through PNG bytes: wandb.Image(fig) needs pyplot figures)."""
        import wandb
        from PIL import Image

        images = {}
        for name, figure in figures.items():
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100)
            buffer.seek(0)
            images[name] = wandb.Image(Image.open(buffer))
        self.run.log(images, step=step)

    def finish(self) -> None:
        """Close the run (flushes the offline files)."""
        with storage_errors(self.folder, "closing the W&B run in"):
            self.run.finish()


def build_logger(config: LoggerConfig, run_dir: Path, run_config: dict[str, Any]) -> Logger:
    """The configured logger."""
    return WandbLogger(config, run_dir, run_config) if config.name == "wandb" else NoLogger()

"""HF-format bfloat16 exports of the trained weights, loadable with `from_pretrained`, for evaluation,
serving or the next training stage; the resume checkpoints (`checkpoints/`) stay fp32 and exact.

- `hf/final`: the weights after step T, written before step T's metrics record (so a run whose
  metrics.jsonl ends at T has it).
- `hf/best`: the weights at the evaluation with the highest pooled pass@k so far (step t >= 1, the
  earliest on a tie: the checkpoint the results tables call best), replaced at each new best.

Each folder holds the model (config dtype bfloat16), its generation config, the tokenizer and
`export.json` {step, metric, value}. It is written into `<name>.tmp`, then the previous export is
renamed to `<name>.old.tmp` and the new one into place: a crash mid-write leaves the previous export
whole (in its place, or for an instant between the two renames, under `.old.tmp`). A failed write (full
disk: `gdro.train.io.storage`) raises a `StorageError` naming the path and the free space, and removes
`<name>.tmp`; `recover_exports` puts a `.old.tmp` left alone back in place and removes the rest.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gdro.train.io.storage import storage_errors

EXPORT_DIR = "hf"
FINAL = "final"
BEST = "best"
EXPORT_DTYPE = torch.bfloat16
STAGING_SUFFIX = ".tmp"  # <name>.tmp: an export being written
RETIRED_SUFFIX = ".old.tmp"  # <name>.old.tmp: the previous export, between the two renames

log = logging.getLogger(__name__)


def best_metric_key(eval_samples: int) -> str:
    """The pooled pass@k that picks the best export (the evaluator's key for both task kinds)."""
    return f"eval/pass@{eval_samples}"


def best_so_far(records: Iterable[Mapping[str, Any]], key: str) -> float | None:
    """The highest `key` over the records of steps >= 1 (a resumed run's kept history), or None."""
    values = [float(r[key]) for r in records if r["step"] >= 1 and key in r]
    return max(values, default=None)


def bf16_state(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """name -> CPU bfloat16 copy; names that share one tensor (a tied output head) share the copy.

    Sharing is told by storage address while the first tensor is still alive: a stream of transient
    tensors (ZeRO-3's gathered copies, freed one by one) reuses addresses, and equal shapes there are
    different weights."""
    copies: dict[tuple[int, tuple[int, ...], tuple[int, ...]], tuple[weakref.ref, torch.Tensor]] = {}
    state = {}
    for name, tensor in named_tensors:
        key = (tensor.data_ptr() if tensor.numel() else id(tensor), tuple(tensor.shape), tensor.stride())
        seen = copies.get(key)
        if seen is None or seen[0]() is None:  # a new tensor, or a freed one's address reused
            seen = copies[key] = (weakref.ref(tensor), tensor.detach().to("cpu", EXPORT_DTYPE))
        state[name] = seen[1]
    return state


def write_export(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    state: dict[str, torch.Tensor],
    directory: Path,
    metadata: Mapping[str, Any],
) -> None:
    """`model.save_pretrained` of `state` (from `bf16_state`) with dtype bfloat16 in its config, the
    tokenizer and export.json, into `directory`, replacing what it held only once all is written."""
    staging = directory.with_name(directory.name + STAGING_SUFFIX)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with storage_errors(staging, "writing the export"):
            model.save_pretrained(staging, state_dict=state)
            config_path = staging / "config.json"
            config = json.loads(config_path.read_text())
            config["dtype"] = "bfloat16"  # save_pretrained records the live model's dtype (fp32 on CPU)
            config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
            tokenizer.save_pretrained(staging)
            (staging / "export.json").write_text(json.dumps(dict(metadata), indent=2) + "\n")
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # a partial export must not keep a full disk full
        raise
    retired = directory.with_name(directory.name + RETIRED_SUFFIX)
    shutil.rmtree(retired, ignore_errors=True)
    if directory.exists():
        os.replace(directory, retired)
    os.replace(staging, directory)
    shutil.rmtree(retired, ignore_errors=True)


def recover_exports(export_dir: Path) -> list[Path]:
    """After a killed or failed export: rename each `<name>.old.tmp` whose `<name>` is missing back into
    place, and remove every other temporary of `export_dir`; returns what was removed."""
    removed = []
    for entry in sorted(export_dir.iterdir()) if export_dir.is_dir() else ():
        if entry.name.endswith(RETIRED_SUFFIX):
            restored = entry.with_name(entry.name.removesuffix(RETIRED_SUFFIX))
            if not restored.exists():
                os.replace(entry, restored)
                log.warning("restored %s from %s, left by a killed export", restored, entry.name)
                continue
        if entry.name.endswith(STAGING_SUFFIX):
            shutil.rmtree(entry)
            removed.append(entry)
    return removed

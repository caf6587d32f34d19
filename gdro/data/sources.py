"""Read one split of a dataset from the hub, a local folder, or a single data file.

Everything goes through `datasets.load_dataset`, so the three cases share one code path:
- a hub id ("open-r1/DAPO-Math-17k-Processed") with its config name ("en");
- a local folder laid out like the hub repository (a `git clone` or `snapshot_download` of it).
  A config name is resolved through the folder's README.md `configs:` block, as on the hub:
  `load_dataset(folder, "en")` reads `en/train-*.parquet` only if README.md maps "en" there;
  without that block the folder has a single "default" config and a name other than None fails.
  Its Arrow cache lives under a folder named by a hash of its files' paths, sizes and times
  (`folder_cache_dir`): datasets' own key for a folder with a `configs:` block is the folder's name
  and the config alone, so another copy of the folder, or the same one rewritten, was served the
  rows first read from it;
- a single .parquet, .json/.jsonl or .csv file, read with the matching builder. A file is one
  config already, so `name` is ignored, and its rows are the split `split`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import datasets

log = logging.getLogger(__name__)

FILE_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}


def load_split(path: str, name: str | None, split: str) -> datasets.Dataset:
    """The rows of `split` of the dataset at `path` (hub id, folder or file; see the module docstring)."""
    builder = FILE_BUILDERS.get(Path(path).suffix.lower())
    if builder is not None and Path(path).is_file():
        if name is not None:
            log.info("%s is a single file: config name %r does not apply", path, name)
        return datasets.load_dataset(builder, data_files={split: path}, split=split)
    if Path(path).is_dir():
        return datasets.load_dataset(path, name, split=split, cache_dir=folder_cache_dir(Path(path)))
    return datasets.load_dataset(path, name, split=split)


def folder_cache_dir(folder: Path) -> str:
    """datasets' cache folder for a local dataset folder: HF_DATASETS_CACHE/local/<hash of the path, size
    and modification time of each file outside dot-folders such as .git>."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    stamp = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    digest = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]
    return str(Path(datasets.config.HF_DATASETS_CACHE) / "local" / digest)

"""Durable writes: fsync a finished folder and its entries before it is renamed into place, so that a crash
(or a node lost) right after the rename cannot leave a name pointing at data that never reached the disk."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder under `folder`, then `folder` itself."""
    for path in folder.rglob("*"):
        if path.is_dir():
            fsync_directory(path)
        else:
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
    fsync_directory(folder)


def fsync_directory(folder: Path) -> None:
    """Make the folder's entries (creations, renames, deletions) durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

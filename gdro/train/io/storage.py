"""A failed write of the run folder said plainly: which path, which operation, how much space is left.

Shared storage fills up (ENOSPC), runs over a quota (EDQUOT), fails (EIO) or turns read-only (EROFS).
Python reports these as an OSError with that errno; torch's writer as a RuntimeError from its C++ stream
("[enforce fail at inline_container.cc] unexpected pos", "basic_ios::clear: iostream error"), without
path or errno; safetensors (HF exports) as a SafetensorError ending in "(os error N)". `storage_errors`
turns each into a `StorageError` that names the path, the operation and the free space of its file
system, measured at the failure (before any cleanup frees space); other exceptions pass unchanged.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})
# torch.save's C++ writer: its messages carry neither errno nor path.
TORCH_WRITE_FAILURES = ("inline_container.cc", "iostream error", "PytorchStreamWriter")
# safetensors (Rust): "... I/O error: No space left on device (os error 28)".
RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")
# torch's failures name no errno: below this many free bytes the file system is taken to be full.
NEARLY_FULL_BYTES = 1 << 20


class StorageError(OSError):
    """A write the run needs failed for a reason of the file system; `errno` is set when known."""


def free_bytes(path: Path) -> tuple[int, int] | None:
    """(free, total) bytes of the file system holding `path` (or its nearest existing parent)."""
    for folder in (path, *path.parents):
        if folder.exists():
            usage = shutil.disk_usage(folder)
            return usage.free, usage.total
    return None


def describe_failure(path: Path, operation: str, code: int | None, cause: str) -> str:
    """`<operation> <path> failed: <reason>; <free> bytes free of <total> on its file system`."""
    space = free_bytes(path)
    if code is None and space is not None and space[0] < NEARLY_FULL_BYTES:
        code = errno.ENOSPC  # torch's stream failed with the file system (nearly) full
    reason = "no space left on the device" if code == errno.ENOSPC else os.strerror(code) if code else cause
    where = f"{space[0]} bytes free of {space[1]} on its file system" if space else "free space unknown"
    return f"{operation} {path} failed: {reason} ({cause}); {where}"


def _storage_failure(error: BaseException) -> tuple[bool, int | None]:
    """Whether `error` is a storage failure, and its errno (None when the failure names none)."""
    if isinstance(error, OSError):
        return error.errno in STORAGE_ERRNOS, error.errno
    rust = RUST_OS_ERROR.search(str(error))
    if rust is not None:
        return int(rust[1]) in STORAGE_ERRNOS, int(rust[1])
    torch_write = isinstance(error, RuntimeError) and any(m in str(error) for m in TORCH_WRITE_FAILURES)
    return torch_write, None


@contextmanager
def storage_errors(path: Path, operation: str) -> Iterator[None]:
    """Raise a `StorageError` naming `path`, `operation` and the free space for a storage failure of the
    block (module docstring); any other exception passes unchanged."""
    try:
        yield
    except StorageError:
        raise
    except Exception as error:  # torch and safetensors raise their own types: told apart by message
        failed, code = _storage_failure(error)
        if not failed:
            raise
        storage_error = StorageError(describe_failure(path, operation, code, str(error).strip()))
        storage_error.errno = code
        raise storage_error from error

"""JSON-safe encoding of the state that controllers checkpoint.

Every `state_dict()` in `gdro.core` returns plain dicts, lists, strings, numbers and booleans, so a
checkpoint is a JSON file (no pickle). Arrays are stored exactly (dtype, shape and raw bytes in
base64), so a restored run is bit-identical.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """Encode an array exactly as {"dtype", "shape", "data" (base64 of its little-endian bytes)}."""
    contiguous = np.ascontiguousarray(array)
    little_endian = contiguous.astype(contiguous.dtype.newbyteorder("<"), copy=False)
    return {
        "dtype": contiguous.dtype.str.lstrip("<>|="),
        "shape": list(contiguous.shape),
        "data": base64.b64encode(little_endian.tobytes()).decode("ascii"),
    }


def decode_array(encoded: dict[str, Any]) -> np.ndarray:
    """Inverse of `encode_array`: a fresh, writable array."""
    dtype = np.dtype("<" + encoded["dtype"]) if encoded["dtype"][0] in "iufc" else np.dtype(encoded["dtype"])
    raw = base64.b64decode(encoded["data"])
    return np.frombuffer(raw, dtype=dtype).reshape(encoded["shape"]).astype(dtype.newbyteorder("="))


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The bit generator's state: a dict of ints and strings (PCG64's 128-bit ints are JSON-safe)."""
    return rng.bit_generator.state


def restore_rng(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Set `rng` to a state produced by `rng_state`."""
    rng.bit_generator.state = state

"""Type checking of composed config values against dataclass fields, with errors that name the key."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal


class ConfigError(ValueError):
    """A configuration value or combination that cannot run; the message names the key and the fix."""


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    """`value` converted to `annotation` (int -> float allowed), or a ConfigError naming `key`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}={value!r}: expected {annotation}")
    if annotation is type(None):
        if value is not None:
            raise ConfigError(f"{key}={value!r}: expected null")
        return None
    if origin is Literal:
        if value not in typing.get_args(annotation):
            raise ConfigError(f"{key}={value!r}: use one of {typing.get_args(annotation)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}={value!r}: expected a list")
        (item,) = typing.get_args(annotation)[:1]
        return [_check_type(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}={value!r}: expected a number")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r}: expected an integer")
        return value
    if annotation in (bool, str):
        if not isinstance(value, annotation):
            raise ConfigError(f"{key}={value!r}: expected {annotation.__name__}")
        return value
    if dataclasses.is_dataclass(annotation):
        return build_dataclass(annotation, value, key)
    raise ConfigError(f"{key}: unsupported type {annotation}")


def build_dataclass(cls: type, values: dict[str, Any] | None, prefix: str) -> Any:
    """An instance of dataclass `cls` from `values`, each checked against the field's type hint."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]} is not a setting of {prefix}; known: {', '.join(names)}")
    checked = {name: _check_type(value, hints[name], f"{prefix}.{name}") for name, value in values.items()}
    try:
        instance = cls(**checked)
        if hasattr(instance, "validate"):
            instance.validate()
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(str(error)) from error
    return instance

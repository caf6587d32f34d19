"""Type checking of composed config values against dataclass fields, with errors that name the key."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

MISSING_VALUE = "???"
"""OmegaConf's mandatory value: what a stored schema holds for a field without a default."""


def _is_required(field: dataclasses.Field) -> bool:
    """A dataclass field without a default."""
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def defaults_of(cls: type) -> dict[str, Any]:
    """The fields of dataclass `cls` with their defaults (nested dataclasses as dicts), `???` where none."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if _is_required(field):
            values[field.name] = MISSING_VALUE
        else:
            default = (
                field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
            )
            values[field.name] = dataclasses.asdict(default) if dataclasses.is_dataclass(default) else default
    return values


class ConfigError(ValueError):
    """A configuration value or combination that cannot run; the message names the key and the fix."""


def describe_type(annotation: Any) -> str:
    """A field type in words: `one of ('a', 'b')` for a Literal, `an integer or null` for `int | None`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(option) for option in typing.get_args(annotation))
    if origin is Literal:
        return f"one of {typing.get_args(annotation)}"
    if origin in (list, tuple):
        return f"a list of {describe_type(typing.get_args(annotation)[0])}"
    words = {type(None): "null", int: "an integer", float: "a number", bool: "bool", str: "str"}
    return words.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    """`value` converted to `annotation` (int -> float allowed), or a ConfigError naming `key`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}={value!r}: expected {describe_type(annotation)}")
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
    required = [f.name for f in dataclasses.fields(cls) if _is_required(f)]
    for name in required:
        if values.get(name, MISSING_VALUE) == MISSING_VALUE:
            raise ConfigError(f"{prefix}.{name} must be set: {cls.__name__} has no default for it")
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

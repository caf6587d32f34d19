"""docs/reference.md, generated: every config group with its choices and every field with its type, default
and help, then the `metrics.jsonl` contract. `make reference` (scripts/make_reference.py) writes it; a test
fails when the file differs from what `render_reference()` gives.

A field's help is its docstring: the string literal right below the field in the dataclass's source (read
with `ast`, as Sphinx and editors read attribute docstrings). A choice's description is the first sentence
of its YAML file's header comment.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import textwrap
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from gdro.config.checking import MISSING_VALUE, defaults_of
from gdro.config.metrics_contract import METRICS
from gdro.config.presets import CONF_DIR
from gdro.config.run import RunConfig
from gdro.config.store import CONTROLLERS, SHARED, schemas

TOP_LEVEL = ("seed", "resume", "cache_dir")
"""The keys of conf/config.yaml outside any group (fields of `RunConfig`)."""

HYDRA_GROUPS = ("hydra/launcher",)
"""Groups of Hydra's own settings, listed by choice after the run's groups."""


@cache
def field_help(cls: type) -> dict[str, str]:
    """The docstring of each field of dataclass `cls` (and of the dataclasses it extends), as one line."""
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        (node,) = ast.parse(textwrap.dedent(inspect.getsource(klass))).body
        assert isinstance(node, ast.ClassDef)
        for field, following in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(field, ast.AnnAssign)
                and isinstance(field.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                helps[field.target.id] = " ".join(following.value.value.split())
    return helps


def type_name(annotation: Any) -> str:
    """A field type as the reference prints it: `int`, `'a' \\| 'b'`, `list[int]`, `float \\| null`."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(repr(word) for word in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(option) for option in typing.get_args(annotation))
    if origin in (list, tuple):
        return f"list[{type_name(typing.get_args(annotation)[0])}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _value(value: Any) -> str:
    """A default as YAML would write it."""
    if value == MISSING_VALUE:
        return "required"
    return f"`{json.dumps(value)}`" if not isinstance(value, str) else f"`{value}`"


def field_rows(cls: type, prefix: str = "") -> list[str]:
    """Table rows `| key | type | default | help |` of dataclass `cls`, nested dataclasses as dotted keys."""
    hints, helps, defaults = typing.get_type_hints(cls), field_help(cls), defaults_of(cls)
    rows = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            rows += field_rows(hint, f"{prefix}{field.name}.")
            continue
        help_text = helps.get(field.name, "")
        rows.append(
            f"| `{prefix}{field.name}` | {type_name(hint)} | {_value(defaults[field.name])} | {help_text} |"
        )
    return rows


def _table(cls: type) -> list[str]:
    return ["| key | type | default | help |", "|---|---|---|---|", *field_rows(cls), ""]


def choice_description(path: Path) -> str:
    """The first sentence of a conf/ file's header comment."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if not text.startswith(("@package", "Table row")):
            lines.append(text)
    paragraph = " ".join(lines)
    return re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0]


def _choices(conf_dir: Path, group: str) -> list[str]:
    files = sorted((conf_dir / group).glob("*.yaml"))
    return [f"- `{group}={path.stem}`: {choice_description(path)}" for path in files] + [""]


def _group_order(conf_dir: Path) -> list[str]:
    """The groups in the order of conf/config.yaml's defaults list."""
    defaults = yaml.safe_load((conf_dir / "config.yaml").read_text())["defaults"]
    keys = [next(iter(entry)) for entry in defaults if isinstance(entry, dict)]
    return [key.removeprefix("optional ").removeprefix("override ") for key in keys]


def render_reference(conf_dir: Path = CONF_DIR) -> str:
    """The text of docs/reference.md."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `make reference` (gdro/config/reference.py) from the config dataclasses' field",
        "docstrings and the files of conf/; edit those, not this file. -->",
        "",
        "Pick a choice of a group with `group=choice`, change a field with `group.key=value`:",
        "`python train.py sampler=prompt_gdro sampler.eta=1.0 trainer.steps=100`. `python train.py --cfg job`",
        "prints the composed config. A choice's file states only the fields it changes from its schema's",
        "defaults below; a value out of range or of the wrong type is refused before anything is built.",
        "",
        "## Top-level keys",
        "",
        "| key | type | default | help |",
        "|---|---|---|---|",
    ]
    top = yaml.safe_load((conf_dir / "config.yaml").read_text())
    hints, helps = typing.get_type_hints(RunConfig), field_help(RunConfig)
    for key in TOP_LEVEL:
        out.append(f"| `{key}` | {type_name(hints[key])} | {_value(top[key])} | {helps[key]} |")
    out.append("")
    all_schemas = schemas()
    for group in [*_group_order(conf_dir), *HYDRA_GROUPS]:  # experiment, method: choices only
        out += [f"## `{group}`", ""]
        out += _choices(conf_dir, group)
        if group not in all_schemas:
            continue
        if group in CONTROLLERS:
            registry = CONTROLLERS[group]
            out.append(
                f"Each registered {group} (`gdro.core.registry`) is a schema `base_<name>`; its settings follow."
            )
            out.append("")
            if group in SHARED:
                out += [
                    f"Settings every {group} takes (`{SHARED[group].__name__}`):",
                    "",
                    *_table(SHARED[group]),
                ]
            for name in registry:
                entry = registry[name]
                where = f"`{entry.build.__module__}.{entry.build.__qualname__}`"
                if entry.config is None:
                    out += [f"### `{name}` ({where}): no settings", ""]
                else:
                    out += [
                        f"### `{name}` ({where}, settings `{entry.config.__name__}`)",
                        "",
                        *_table(entry.config),
                    ]
            continue
        for kind, cls in all_schemas[group].items():
            out += [f"### schema `base_{kind}` (`{cls.__module__}.{cls.__name__}`)", "", *_table(cls)]
    out += [
        "## `metrics.jsonl`",
        "",
        "One JSON object per line, written by rank 0 into the run folder: a step record for each training",
        "step t >= 1, and an eval record for step 0 (the evaluation before the first update) and every",
        "`trainer.eval_every` steps and the last, merged into that step's record. Per-bin lists are indexed",
        "by group: bin 0 hardest, the excluded group last when `classifier.exclude_extremes`; null where a",
        "value is undefined (an absent bin, no shadow price).",
        "",
        "| key | record | meaning |",
        "|---|---|---|",
        *(f"| `{key}` | {record} | {meaning} |" for key, record, meaning in METRICS),
        "",
    ]
    return "\n".join(out)

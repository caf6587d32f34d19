"""The methods compared: each a file of conf/method/, named by what its runs' configs hold.

A run's method is `method_key(config)`, "sampler[ [resample]] + allocator[ + filter]" from its resolved
config (the filter only when it is not `none`; a config without a filter has none), so
run folders from any sweep (Hydra multirun or `gdro.analysis.results.sweep`) group the same way. The paper
presets (`method=prompt_gdro_paper`, `method=rollout_gdro_paper`) also set the classifier's window; their
sampler or allocator name tells them apart.

`METHODS` is read from conf/method/: each file's `# Table row N: <name>` line gives its place in the
tables and the name they print, its defaults list (`override /sampler: ...`, `override /allocator: ...`,
`override /filter: ...`) and any `sampler.mode` its key. A new method is a new file there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

METHOD_DIR = Path(__file__).resolve().parents[3] / "conf" / "method"
"""The repository's conf/method/."""

TABLE_ROW = re.compile(r"^# Table row (\d+): (.+)$", re.MULTILINE)
"""The line of a conf/method/ file that places it in the tables and names it."""


@dataclass(frozen=True)
class Method:
    """key: `method_key` of its runs; name: as the tables print it; choice: its file in conf/method/, which
    sets the sampler and the allocator over any experiment's."""

    key: str
    name: str
    choice: str

    @property
    def overrides(self) -> tuple[str, ...]:
        """The Hydra override that selects it."""
        return (f"method={self.choice}",)

    @property
    def slug(self) -> str:
        return method_slug(self.key)


def method_key(config: dict[str, Any]) -> str:
    """E.g. "prompt_gdro [resample] + rollout_gdro" or "uniform + fixed + dynamic_sampling", from a
    resolved run config."""
    sampler = config["sampler"]["name"]
    if config["sampler"].get("mode") == "resample":
        sampler += " [resample]"
    key = f"{sampler} + {config['allocator']['name']}"
    group_filter = config.get("filter", {}).get("name", "none")
    return key if group_filter == "none" else f"{key} + {group_filter}"


def method_slug(key: str) -> str:
    """A file-name-safe form of a method key: "prompt_gdro [resample] + fixed" -> "prompt_gdro_resample-fixed"."""
    return "-".join(re.sub(r"[^a-z0-9]+", "_", part.lower()).strip("_") for part in key.split(" + "))


def read_method(path: Path) -> tuple[int, Method]:
    """A conf/method/ file's table row and method. Its sampler and allocator choices are named as their
    files (each conf/sampler/ and conf/allocator/ file sets `name` to its file name)."""
    text = path.read_text()
    row = TABLE_ROW.search(text)
    if row is None:
        raise ValueError(f"{path}: no '# Table row N: <name>' line, which names the method in the tables")
    values = yaml.safe_load(text)
    choices = {
        key.removeprefix("override /"): choice
        for entry in values["defaults"]
        for key, choice in entry.items()
    }
    sampler = {"name": choices["sampler"], **values.get("sampler", {})}
    group_filter = {"name": choices.get("filter", "none")}
    key = method_key(
        {"sampler": sampler, "allocator": {"name": choices["allocator"]}, "filter": group_filter}
    )
    return int(row.group(1)), Method(key, row.group(2).strip(), path.stem)


def read_methods(method_dir: Path = METHOD_DIR) -> tuple[Method, ...]:
    """Every method of `method_dir`, in table order; two files on one row or with one key are refused."""
    rows = sorted(read_method(path) for path in method_dir.glob("*.yaml"))
    for values, what in (
        ([row for row, _ in rows], "table row"),
        ([m.key for _, m in rows], "method key (sampler + allocator + filter)"),
    ):
        if len(set(values)) != len(values):
            raise ValueError(f"{method_dir}: two methods share a {what}: {values}")
    return tuple(method for _, method in rows)


METHODS = read_methods()
GRPO = next(method for method in METHODS if method.choice == "grpo")
METHOD_NAMES = {method.key: method.name for method in METHODS}

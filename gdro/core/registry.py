"""Controllers by name: one registry per family, filled where each controller's code lives.

A controller registers itself once, with the dataclass of its settings (none for a choice without options):

    @SAMPLERS.register("prompt_gdro", config=PromptGDROConfig)
    class PromptGDROSampler: ...

Everything else reads the registry: the config schemas Hydra stores (`gdro.config.store`, one
`conf/<family>/base_<name>` node per entry), the type check of a composed config (`gdro.config.run`) and
the builders below. Named presets (`prompt_gdro_paper`, ...) are YAML files in `conf/<family>/` that
extend a registered entry's node and state the fields that differ.

Where entries come from: a family imports its in-tree package (`gdro.core.samplers`, ...) and every module
in it the first time it is read, then every module listed in the environment variable `GDRO_PLUGINS` (comma-separated module
names, importable from `PYTHONPATH`), so a controller kept outside this repository registers before any
config is composed. A new family is one more `Registry(...)` line here.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from gdro.core.allocators.base import Allocator
    from gdro.core.allocators.budget import BudgetConfig
    from gdro.core.filters.base import GroupFilter
    from gdro.core.samplers.base import Sampler

PLUGINS_VARIABLE = "GDRO_PLUGINS"
"""Environment variable: comma-separated modules imported before a registry is first read."""

T = TypeVar("T")


@dataclass(frozen=True)
class Registered:
    """One entry: `build` (the class, or a factory) and `config`, the dataclass of its settings (None: the
    choice takes no options)."""

    name: str
    build: Callable[..., Any]
    config: type | None


def import_plugins() -> None:
    """Import each module named in `GDRO_PLUGINS` (their registrations run on import)."""
    for module in os.environ.get(PLUGINS_VARIABLE, "").split(","):
        if module.strip():
            importlib.import_module(module.strip())


class Registry:
    """Entries of one family by name; `builtin` is the package whose import registers the in-tree ones."""

    def __init__(self, family: str, builtin: str) -> None:
        self.family = family
        self.builtin = builtin
        self._entries: dict[str, Registered] = {}
        self._loaded = False

    def register(self, name: str, config: type | None = None) -> Callable[[T], T]:
        """Decorator: register the decorated class (or factory) as `name`, with its settings dataclass."""

        def add(build: T) -> T:
            self.add(name, build, config)
            return build

        return add

    def add(self, name: str, build: Callable[..., Any], config: type | None = None) -> None:
        """Register `build` as `name`; a second, different entry under one name is refused."""
        known = self._entries.get(name)
        if known is not None and (known.build, known.config) != (build, config):
            raise ValueError(f"{self.family} {name!r} is registered twice: {known.build} and {build}")
        self._entries[name] = Registered(name, build, config)

    def _load(self) -> None:
        """Import the in-tree package and every module in it (a new module registers by being there, with no
        import to add to the package's `__init__`), then the plugins, once."""
        if not self._loaded:
            self._loaded = True
            package = importlib.import_module(self.builtin)
            for module in pkgutil.iter_modules(package.__path__, prefix=f"{self.builtin}."):
                importlib.import_module(module.name)
            import_plugins()

    def __getitem__(self, name: str) -> Registered:
        self._load()
        if name not in self._entries:
            raise ValueError(f"{self.family}={name!r} is not registered; known: {sorted(self._entries)}")
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(sorted(self._entries))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


SAMPLERS = Registry("sampler", builtin="gdro.core.samplers")
"""Data samplers: built as `cls(num_prompts, num_groups[, config][, seed=seed])` (see `build_sampler`)."""

ALLOCATORS = Registry("allocator", builtin="gdro.core.allocators")
"""Rollout allocators: built as `cls(num_groups, budget[, config][, seed=seed])` (see `build_allocator`)."""

FILTERS = Registry("filter", builtin="gdro.core.filters")
"""Group filters of the generation rounds: built as `cls([config])` (see `build_filter`)."""


def _build(entry: Registered, args: tuple[Any, ...], config: object | None, seed: int) -> Any:
    """`entry.build(*args, [config], [seed=seed])`: the config only for an entry with settings, the seed only
    for a controller that draws random numbers (its constructor takes `seed`)."""
    if (config is None) != (entry.config is None) or (
        config is not None and type(config) is not entry.config
    ):
        expected = "no options" if entry.config is None else entry.config.__name__
        raise ValueError(f"{entry.name} takes {expected}, got {type(config).__name__}")
    options = {} if config is None else {"config": config}
    if "seed" in inspect.signature(entry.build).parameters:
        options["seed"] = seed
    return entry.build(*args, **options)


def build_sampler(
    name: str, config: object | None, num_prompts: int, num_groups: int, seed: int = 0
) -> Sampler:
    """The sampler registered as `name` with its settings `config` (None for one without options)."""
    return _build(SAMPLERS[name], (num_prompts, num_groups), config, seed)


def build_allocator(
    name: str, config: object | None, num_groups: int, budget: BudgetConfig, seed: int = 0
) -> Allocator:
    """The allocator registered as `name` with its settings `config` and the batch's rollout `budget`."""
    return _build(ALLOCATORS[name], (num_groups, budget), config, seed)


def build_filter(name: str, config: object | None) -> GroupFilter:
    """The group filter registered as `name` with its settings `config` (None for one without options)."""
    return _build(FILTERS[name], (), config, seed=0)

"""docs/reference.md is generated: it is up to date, every config field has its one-line help, and the
`metrics.jsonl` contract names every key the loop writes."""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from pathlib import Path

from conf_helpers import CONF_DIR, compose_config, load_script

from gdro.config import parse_run_config
from gdro.config.metrics_contract import METRICS
from gdro.config.reference import field_help, render_reference
from gdro.config.run import RunConfig
from gdro.config.store import SHARED, schemas
from gdro.core.curriculum import BIN_SERIES
from gdro.core.curriculum_metrics import CURRICULUM_MEASURES
from gdro.train.loop import train

REFERENCE = CONF_DIR.parent / "docs" / "reference.md"


def _records(path: Path) -> list[dict]:
    """The records of a metrics.jsonl, one JSON object a line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_docs_reference_is_up_to_date() -> None:
    assert REFERENCE.read_text() == render_reference(), (
        "docs/reference.md is out of date: run `make reference`"
    )
    assert load_script("make_reference").main(["--check"]) == 0


def _config_classes() -> set[type]:
    """Every dataclass a config group holds, nested ones included."""
    found: set[type] = set()
    pending = [cls for kinds in schemas().values() for cls in kinds.values() if cls is not None]
    pending += list(SHARED.values())
    while pending:
        cls = pending.pop()
        found.add(cls)
        pending += [hint for hint in typing.get_type_hints(cls).values() if dataclasses.is_dataclass(hint)]
    return found


def test_every_config_field_has_a_one_line_help() -> None:
    classes = _config_classes()
    assert len(classes) >= 19  # 16 schemas, the budget, policy.vllm, model.warm_start
    for cls in classes:
        helps = field_help(cls)
        for field in dataclasses.fields(cls):
            assert helps.get(field.name), f"{cls.__name__}.{field.name} has no docstring (its help)"
    for key in ("seed", "resume", "cache_dir"):
        assert field_help(RunConfig)[key]


def test_a_field_docstring_is_its_help() -> None:
    @dataclasses.dataclass
    class Example:
        width: int = 3
        """Columns, in characters."""
        depth: int = 1

    assert field_help(Example) == {"width": "Columns, in characters."}


def _pattern(key: str) -> re.Pattern[str]:
    """A contract key with its `<placeholders>` as wildcards."""
    return re.compile(
        "".join(".+" if part.startswith("<") else re.escape(part) for part in re.split(r"(<[^>]+>)", key))
    )


def test_the_metrics_contract_names_every_key_the_loop_writes(tmp_path: Path) -> None:
    overrides = [
        "policy=sim",
        "logger=none",
        "trainer.steps=2",
        "trainer.eval_every=2",
        "allocator=rollout_gdro",
        "filter=dynamic_sampling",  # and the filter's keys
    ]
    config = compose_config(overrides)
    train(parse_run_config(config), tmp_path, config, progress=False)
    written = {key for record in _records(tmp_path / "metrics.jsonl") for key in record}
    patterns = [_pattern(key) for key, _, _ in METRICS]
    assert [key for key in sorted(written) if not any(p.fullmatch(key) for p in patterns)] == []
    documented = {key for key, _, _ in METRICS}
    assert {f"bins/{name}" for name in BIN_SERIES} <= documented
    assert {f"curriculum/{name}" for name in CURRICULUM_MEASURES} <= documented

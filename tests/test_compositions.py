"""Every composition that users, scripts, plans and tests run resolves to the config recorded in
tests/fixtures/resolved_configs.json, in full and in key order: reorganising conf/ leaves every run what it was.

A composition is recorded under its key, the overrides that spelled it when it was recorded, joined by
spaces ("" is the default config). When conf/ changes how a composition is spelled, NEW_SPELLING maps its
key to today's overrides, so the record proves the new spelling resolves to what the old one did. The config
is the one `python train.py OVERRIDES --cfg job --resolve` prints (tests/conf_helpers.compose_config), with
the environment variables that conf/ reads (ENVIRONMENT) unset.

After an intentional change of a resolved config, rewrite the record and review its diff:

    GDRO_REGENERATE_COMPOSITIONS=1 python -m pytest tests/test_compositions.py

It re-resolves every recorded key (through NEW_SPELLING) and records every composition below that no key
spells yet: each `group=choice` of conf/, the plans' cells and the override lists of TEST_RUNS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conf_helpers import CONF_DIR, compose_config

from gdro.analysis.results.plan import load_plan

GOLDEN = Path(__file__).parent / "fixtures" / "resolved_configs.json"
REGENERATE = "GDRO_REGENERATE_COMPOSITIONS"
ENVIRONMENT = ("GDRO_TORCH_THREADS", "GDRO_CACHE")  # read by conf/ through ${oc.env:...}
PLANS = sorted((CONF_DIR.parent / "experiments").glob("*.yaml"))
# Groups whose choices compose with the synthetic task's defaults only together.
TOGETHER = (
    ["dataset=dapo_math", "reward=math_verify", "eval=math_benchmarks"],
    ["dataset=dapo_math", "reward=dapo", "eval=math_benchmarks"],
)
# What the tests and scripts compose besides single choices: a method over the frontier experiment
# (make reproduce-embedded) and over the simulator (make reproduce-sim); the small embedded run of
# test_train_hf (QUICK, with the steps its runs set), its learning run (LEARNING), and the lists built on them.
QUICK = [
    "logger=none",
    "dataset.num_train=256",
    "dataset.num_eval_per_level=2",
    "model.warm_start.steps=40",
    "model.warm_start.batch_size=32",
    "trainer.prompts_per_step=8",
    "trainer.max_new_tokens=48",
    "trainer.eval_samples=2",
]
LEARNING = [
    "logger=none",
    "dataset.level_steps=[1,2]",
    "dataset.num_train=8",
    "dataset.num_eval_per_level=2",
    "model.warm_start.steps=300",
    "model.warm_start.batch_size=32",
    "trainer.prompts_per_step=8",
    "allocator.nbar=8",
    "allocator.n_max=16",
    "trainer.max_new_tokens=16",
    "trainer.eval_samples=2",
    "trainer.lr=0.0005",
    "trainer.warmup_steps=0",
    "trainer.ppo_mini_batches=1",
    "trainer.steps=40",
    "trainer.eval_every=1000",
]
EMBEDDED_TINY = [
    "model.warm_start.steps=40",
    "model.warm_start.batch_size=32",
    "dataset.num_train=64",
    "dataset.num_eval_per_level=2",
    "trainer.steps=2",
    "trainer.prompts_per_step=4",
    "trainer.eval_every=1",
    "trainer.save_every=1",
    "trainer.max_new_tokens=48",
    "trainer.eval_samples=2",
]
TEST_RUNS = (
    [*QUICK, "trainer.steps=2"],
    [*QUICK, "sampler=prompt_gdro_paper", "allocator=rollout_gdro_paper", "trainer.steps=2"],
    [*QUICK, "trainer.steps=4", "trainer.eval_every=1", "trainer.save_every=1", "trainer.keep_checkpoints=4"],
    [
        *QUICK,
        "trainer.backend=deepspeed",
        "trainer.save_every=2",
        "trainer.eval_every=2",
        "trainer.steps=4",
        "allocator=rollout_gdro",
        "trainer.torch_threads=1",
        "trainer.lr=0.001",
        "trainer.warmup_steps=0",
    ],
    LEARNING,
    [*LEARNING, "seed=1", "policy.engine=vllm", f"policy.vllm.kv_cache_memory_bytes={64 << 20}"],
    [
        *LEARNING,
        "policy.engine=vllm",
        f"policy.vllm.kv_cache_memory_bytes={64 << 20}",
        "trainer.steps=6",
        "trainer.eval_every=6",
    ],
    ["experiment=frontier", "logger=none", "trainer.torch_threads=1", *EMBEDDED_TINY, "method=grpo"],
)
# Key -> today's overrides, for the compositions that conf/ spells differently since they were recorded.
NEW_SPELLING: dict[str, list[str]] = {}


def spelling(key: str) -> list[str]:
    """Today's overrides of the composition recorded under `key`."""
    return NEW_SPELLING.get(key, key.split())


def resolved(overrides: list[str]) -> dict[str, Any]:
    """The config `train.py OVERRIDES` resolves, with conf/'s environment variables unset."""
    saved = {name: os.environ.pop(name) for name in ENVIRONMENT if name in os.environ}
    try:
        return compose_config(overrides)
    finally:
        os.environ.update(saved)


def choices() -> Iterator[list[str]]:
    """`group=choice` for every file of every group of conf/ (Hydra's own hydra/ aside)."""
    for group in sorted(p for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra"):
        for path in sorted(group.glob("*.yaml")):
            yield [f"{group.name}={path.stem}"]


def plan_cells() -> Iterator[list[str]]:
    """The composed overrides of every cell of every plan (experiments/*.yaml)."""
    for path in PLANS:
        plan = load_plan(path)
        for scale in plan.scales.values():
            for method in plan.methods.values():
                overrides = [*plan.common, *method.overrides_for(scale)]
                yield [o for o in overrides if not o.startswith(("hydra.", "hydra/"))]


def wanted() -> Iterator[list[str]]:
    """Every composition the record must hold."""
    yield []
    yield from choices()
    yield from TOGETHER
    methods = [f"method={p.stem}" for p in sorted((CONF_DIR / "method").glob("*.yaml"))]
    for method in methods:
        yield ["experiment=frontier", method]
        yield ["policy=sim", method]
    yield from plan_cells()
    yield from TEST_RUNS


def load_golden() -> dict[str, dict[str, Any]]:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


def regenerate() -> dict[str, dict[str, Any]]:
    """Re-resolve every recorded key, add every wanted composition that no key spells, write the record
    (one composition per line) and return it."""
    golden = load_golden()
    keys = list(golden)
    spelled = {tuple(spelling(key)) for key in keys}
    keys += [" ".join(o) for o in wanted() if tuple(o) not in spelled and " ".join(o) not in keys]
    record = {key: resolved(spelling(key)) for key in dict.fromkeys(keys)}
    lines = [f"{json.dumps(key)}: {json.dumps(config)}" for key, config in record.items()]
    GOLDEN.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    return record


GOLDEN_CONFIGS = regenerate() if os.environ.get(REGENERATE) == "1" else load_golden()


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    return {k: v for key, value in tree.items() for k, v in _flat(value, f"{prefix}{key}.").items()}


@pytest.mark.parametrize("key", list(GOLDEN_CONFIGS))
def test_each_recorded_composition_resolves_as_recorded(key: str) -> None:
    config, recorded = resolved(spelling(key)), GOLDEN_CONFIGS[key]
    now, then = _flat(config), _flat(recorded)
    differences = {k: (then.get(k, "<absent>"), now.get(k, "<absent>")) for k in now.keys() | then.keys()}
    assert {k: d for k, d in differences.items() if d[0] != d[1]} == {}, f"{spelling(key)} (recorded, now)"
    assert json.dumps(config) == json.dumps(recorded), "same keys and values, in another order"


def test_every_wanted_composition_is_recorded() -> None:
    """Each choice of conf/, each plan cell and each test run is spelled by a recorded key: a new one fails
    here until the record is regenerated (module docstring)."""
    spelled = {tuple(spelling(key)) for key in GOLDEN_CONFIGS}
    missing = [" ".join(o) for o in wanted() if tuple(o) not in spelled]
    assert missing == [], f"not recorded; regenerate with {REGENERATE}=1"

"""Every composition that users, scripts, plans and tests run resolves to the config recorded in
tests/fixtures/resolved_configs.json, in full and in key order: reorganising conf/ leaves every run what it was.

A composition is recorded under its key, the overrides that spelled it when it was recorded, joined by
spaces ("" is the default config). When conf/ changes how a composition is spelled, NEW_SPELLING maps its
key to today's overrides, so the record proves the new spelling resolves to what the old one did. The config
is the one `python train.py OVERRIDES --cfg job --resolve` prints (tests/conf_helpers.compose_config), with
the environment variables that conf/ reads (ENVIRONMENT) unset.

A new choice in conf/ (or plan cell) fails `test_every_wanted_composition_is_recorded` until it is recorded;
`new` records what no key spells yet (each `group=choice` of conf/, a method over the frontier experiment and
over the simulator, the plans' cells, TEST_RUNS) and leaves the recorded configs as they are. After an
intentional change of a resolved config, `all` also re-resolves every recorded key (through NEW_SPELLING).
Review the record's diff either way:

    GDRO_REGENERATE_COMPOSITIONS=new python -m pytest tests/test_compositions.py
    GDRO_REGENERATE_COMPOSITIONS=all python -m pytest tests/test_compositions.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conf_helpers import CONF_DIR, compose_config

from gdro.analysis.results.plan import cell_overrides, composed, load_plan

GOLDEN = Path(__file__).parent / "fixtures" / "resolved_configs.json"
REGENERATE = "GDRO_REGENERATE_COMPOSITIONS"
ENVIRONMENT = ("GDRO_TORCH_THREADS", "GDRO_CACHE")  # read by conf/ through ${oc.env:...}
PLANS = sorted((CONF_DIR.parent / "experiments").glob("*.yaml"))
# Groups whose choices compose with the synthetic task's defaults only together.
TOGETHER = (
    ["dataset=dapo_math", "reward=math_verify", "eval=math_benchmarks"],
    ["dataset=dapo_math", "reward=dapo", "eval=math_benchmarks"],
)
# The override lists the tests spelled out before conf/debug/: the small embedded run of test_train_hf (QUICK,
# now debug=quick with its 2 steps), its learning run (LEARNING, now debug=overfit) and the small run of
# test_reproduce_embedded (EMBEDDED_TINY, now debug=quick and four settings).
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
VLLM = ["policy.engine=vllm", f"policy.vllm.kv_cache_memory_bytes={64 << 20}"]
DISTRIBUTED = [
    "trainer.backend=deepspeed",
    "trainer.save_every=2",
    "trainer.eval_every=2",
    "trainer.steps=4",
    "allocator=rollout_gdro",
    "trainer.torch_threads=1",
    "trainer.lr=0.001",
    "trainer.warmup_steps=0",
]
EXPORT = ["trainer.steps=4", "trainer.eval_every=1", "trainer.save_every=1", "trainer.keep_checkpoints=4"]
PAPER_PRESETS = ["sampler=prompt_gdro_paper", "allocator=rollout_gdro_paper", "trainer.steps=2"]
FRONTIER = ["experiment=frontier", "logger=none", "trainer.torch_threads=1"]
TEST_RUNS = {
    (*QUICK, "trainer.steps=2"): ["debug=quick"],
    (*QUICK, *PAPER_PRESETS[:2], "trainer.steps=2"): ["debug=quick", *PAPER_PRESETS],
    (*QUICK, *EXPORT): ["debug=quick", *EXPORT],
    (*QUICK, *DISTRIBUTED): ["debug=quick", *DISTRIBUTED],
    tuple(LEARNING): ["debug=overfit"],
    (*LEARNING, "seed=1", *VLLM): ["debug=overfit", "seed=1", *VLLM],
    (*LEARNING, *VLLM, "trainer.steps=6", "trainer.eval_every=6"): [
        "debug=overfit",
        *VLLM,
        "trainer.steps=6",
        "trainer.eval_every=6",
    ],
    (*FRONTIER, *EMBEDDED_TINY, "method=grpo"): [
        *FRONTIER,
        "debug=quick",
        "dataset.num_train=64",
        "trainer.prompts_per_step=4",
        "trainer.eval_every=1",
        "trainer.save_every=1",
        "method=grpo",
    ],
}
# The paper's runs, one experiment file per scale and method until conf/experiment/paper.yaml composed them with
# `model=` and `method=` (the plans' cells the same, with the plans' common overrides), and the ablations'
# methods, once the GRPO experiment and the method's sampler or allocator, now a method of conf/method/.
SCALES = ("1.7b", "4b", "8b")
PAPER_METHODS = {"grpo": "grpo", "prompt_gdro": "prompt_gdro_paper", "rollout_gdro": "rollout_gdro_paper"}
ABLATION_METHODS = {
    ("sampler=prompt_gdro",): "prompt_gdro",
    ("sampler=prompt_gdro", "sampler.mode=resample"): "prompt_gdro_resample",
    ("allocator=rollout_gdro",): "rollout_gdro",
    ("allocator=sqrt_optimal",): "sqrt_optimal",
    ("sampler=prompt_gdro", "allocator=rollout_gdro"): "prompt_rollout_gdro",
}
PLAN_COMMON = ["trainer.backend=deepspeed", "policy.engine=vllm"]


def _new_spelling() -> dict[str, list[str]]:
    """Recorded key -> today's overrides, for every composition whose spelling changed."""
    spellings = {" ".join(old): new for old, new in TEST_RUNS.items()}
    spellings["experiment=paper_prompt_gdro"] = ["method=prompt_gdro_paper"]
    spellings["experiment=paper_rollout_gdro"] = ["method=rollout_gdro_paper"]
    for scale in SCALES:
        paper = f"experiment=paper_{scale}_"
        model = f"model=qwen3_{scale}"
        for method, choice in PAPER_METHODS.items():
            spellings[paper + method] = ["experiment=paper", model, f"method={choice}"]
            cell = ["experiment=paper", *PLAN_COMMON, model, f"method={choice}"]
            spellings[" ".join([*PLAN_COMMON, paper + method])] = cell
        for overrides, choice in ABLATION_METHODS.items():
            cell = ["experiment=paper", *PLAN_COMMON, model, f"method={choice}"]
            spellings[" ".join([*PLAN_COMMON, paper + "grpo", *overrides])] = cell
    return spellings


# Key -> today's overrides, for the compositions that conf/ spells differently since they were recorded.
NEW_SPELLING = _new_spelling()


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
                yield [o for o in cell_overrides(plan, scale, method) if composed(o)]


def unrecorded(keys: list[str]) -> list[list[str]]:
    """The compositions that the record must hold and that no key in `keys` spells: the default, each
    `group=choice` of conf/ (held by any spelling that names it), TOGETHER, each method over the frontier
    experiment and over the simulator, each plan cell and each test run."""
    spelled = {tuple(spelling(key)) for key in keys}
    named = {override for overrides in spelled for override in overrides}
    methods = [f"method={p.stem}" for p in sorted((CONF_DIR / "method").glob("*.yaml"))]
    compositions = [
        [],
        *TOGETHER,
        *(["experiment=frontier", method] for method in methods),
        *(["policy=sim", method] for method in methods),
        *plan_cells(),
        *TEST_RUNS.values(),
    ]
    missing = [c for c in compositions if tuple(c) not in spelled]
    return missing + [c for c in choices() if c[0] not in named]


def load_golden() -> dict[str, dict[str, Any]]:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


def regenerate(everything: bool) -> dict[str, dict[str, Any]]:
    """Record every composition of `unrecorded` under its overrides, and re-resolve the recorded ones when
    `everything`; write the record (one composition per line) and return it."""
    record = load_golden()
    if everything:
        record = {key: resolved(spelling(key)) for key in record}
    for overrides in unrecorded(list(record)):
        record[" ".join(overrides)] = resolved(overrides)
    lines = [f"{json.dumps(key)}: {json.dumps(config)}" for key, config in record.items()]
    GOLDEN.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    return record


if os.environ.get(REGENERATE, "") not in ("", "new", "all"):
    raise ValueError(f"{REGENERATE}={os.environ[REGENERATE]!r}: use new or all")
GOLDEN_CONFIGS = regenerate(os.environ[REGENERATE] == "all") if os.environ.get(REGENERATE) else load_golden()


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
    assert unrecorded(list(GOLDEN_CONFIGS)) == [], f"not recorded; record them with {REGENERATE}=new"


def test_the_paper_experiment_alone_is_grpo_at_1_7b() -> None:
    """`experiment=paper` defaults to model=qwen3_1.7b and GRPO; a command-line `model=` wins over it."""
    grpo_1_7b = GOLDEN_CONFIGS["experiment=paper_1.7b_grpo"]
    assert json.dumps(resolved(["experiment=paper"])) == json.dumps(grpo_1_7b)
    assert resolved(["model=qwen3_8b", "experiment=paper"])["model"]["name"] == "qwen3_8b"

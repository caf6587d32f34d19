"""One registry per controller family: a controller kept outside the repository (its module and its YAML
file, nothing else) trains through `train.py`, and the lists that name controllers read the registries.

The toy sampler is the recipe of CONTRIBUTING.md ("Add a sampler"), read from it and run as a user would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conf_helpers import CONF_DIR, compose_config
from sim_helpers import build_sim_run

from gdro.analysis.results.methods import read_methods
from gdro.config import ConfigError, parse_run_config
from gdro.config.store import schema_nodes
from gdro.core.registry import ALLOCATORS, PLUGINS_VARIABLE, SAMPLERS

REPO_ROOT = CONF_DIR.parent

CONTRIBUTING = CONF_DIR.parent / "CONTRIBUTING.md"


def _records(path: Path) -> list[dict]:
    """The records of a metrics.jsonl, one JSON object a line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def recipe_files(heading: str) -> dict[str, str]:
    """The files of a CONTRIBUTING.md recipe: each fenced block under `heading` whose first line is a
    comment naming its path, e.g. `# conf/sampler/first_prompts_heavy.yaml`."""
    section = CONTRIBUTING.read_text().split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    files = {}
    for block in re.findall(r"```(?:python|yaml)\n(.*?)```", section, flags=re.DOTALL):
        block = textwrap.dedent(block)
        first = block.splitlines()[0]
        if first.startswith("# ") and "/" in first:
            files[first[2:].strip()] = block
    return files


def _repo_state() -> str:
    """`git status` of the repository: modified and untracked files."""
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_a_sampler_outside_the_repository_trains_through_train_py(tmp_path: Path) -> None:
    files = recipe_files("Add a sampler")  # the recipe as CONTRIBUTING.md states it
    assert sorted(files) == ["conf/sampler/first_prompts_heavy.yaml", "toy_samplers/first_prompts.py"]
    package = tmp_path / "plugins" / "toy_samplers"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "first_prompts.py").write_text(files["toy_samplers/first_prompts.py"])
    conf = tmp_path / "conf" / "sampler"
    conf.mkdir(parents=True)
    (conf / "first_prompts_heavy.yaml").write_text(files["conf/sampler/first_prompts_heavy.yaml"])
    before = _repo_state()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(tmp_path / "plugins"), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
        ),
        PLUGINS_VARIABLE: "toy_samplers.first_prompts",
    }
    run_dir = tmp_path / "run"
    overrides = [
        "policy=sim",
        "logger=none",
        "sampler=first_prompts_heavy",
        "trainer.steps=3",
        "trainer.prompts_per_step=16",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        f"hydra.run.dir={run_dir}",
    ]
    result = subprocess.run(
        [sys.executable, "train.py", *overrides],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    records = [record for record in _records(run_dir / "metrics.jsonl") if "advantage/weight_max" in record]
    assert [record["step"] for record in records] == [1, 2, 3]
    for record in records:  # the toy's batch and weights, not the uniform sampler's
        assert record["advantage/weight_max"] == 2.5
        assert {score for score in record["bins/score"] if score is not None} == {2.5}
    config = (run_dir / "config.json").read_text()
    assert '"_schema_": "first_prompts"' in config and '"name": "first_prompts_heavy"' in config
    assert _repo_state() == before  # nothing written into the repository


def test_a_module_in_the_builtin_package_registers_without_an_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-tree, a new controller is its module and its YAML: the package's `__init__` imports nothing, yet
    reading the family finds the module's entry. Control: before the first read nothing is registered."""
    package = tmp_path / "toy_family"
    package.mkdir()
    (package / "__init__.py").write_text('"""A package whose __init__ imports none of its modules."""\n')
    (package / "lonely.py").write_text(
        "import toy_family_registry\n"
        "@toy_family_registry.FAMILY.register('lonely')\n"
        "class Lonely:\n"
        "    pass\n"
    )
    (tmp_path / "toy_family_registry.py").write_text(
        "from gdro.core.registry import Registry\nFAMILY = Registry('toy', builtin='toy_family')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(PLUGINS_VARIABLE, raising=False)
    import toy_family_registry

    assert toy_family_registry.FAMILY._entries == {}
    assert list(toy_family_registry.FAMILY) == ["lonely"]
    assert toy_family_registry.FAMILY["lonely"].build.__module__ == "toy_family.lonely"


def test_the_stored_controller_nodes_are_the_registered_entries() -> None:
    controllers = sorted(name for group, name in schema_nodes() if group in ("sampler", "allocator"))
    assert controllers == [
        "base_fixed",
        "base_prompt_gdro",
        "base_rollout_gdro",
        "base_sqrt_optimal",
        "base_uniform",
    ]


def test_the_reward_name_is_checked_against_the_registry() -> None:
    config = compose_config(["reward=dapo"])
    config["reward"]["name"] = "exact"
    with pytest.raises(
        ConfigError,
        match=r"reward\.name='exact': use one of \['dapo', 'gpqa', 'integer_match', 'math_verify'\]",
    ):
        parse_run_config(config)


def test_a_new_method_is_one_file_of_conf_method(tmp_path: Path) -> None:
    for path in (CONF_DIR / "method").glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "sqrt_prompt_gdro.yaml").write_text(
        "# @package _global_\n# Table row 99: Prompt-GDRO + sqrt-optimal\n"
        "defaults:\n  - override /sampler: prompt_gdro\n  - override /allocator: sqrt_optimal\n"
    )
    methods = read_methods(tmp_path)
    assert (methods[-1].key, methods[-1].name, methods[-1].choice) == (
        "prompt_gdro + sqrt_optimal",
        "Prompt-GDRO + sqrt-optimal",
        "sqrt_prompt_gdro",
    )
    assert [method.choice for method in methods[:2]] == ["grpo", "prompt_gdro"]
    (tmp_path / "unnamed.yaml").write_text("# @package _global_\ndefaults:\n  - override /sampler: uniform\n")
    with pytest.raises(ValueError, match="no '# Table row N: <name>' line"):
        read_methods(tmp_path)


@pytest.mark.parametrize(
    ("sampler", "allocator"), [*((s, "fixed") for s in SAMPLERS), *(("uniform", a) for a in ALLOCATORS)]
)
def test_every_registered_controller_keeps_the_batch_and_the_budget_over_a_run(
    sampler: str, allocator: str
) -> None:
    """Each registered controller, from its own conf/ file, on the simulator: M distinct prompts with
    finite positive advantage weights, and exactly nbar * M rollouts within [n_min, n_max], every step."""
    simulator, curriculum = build_sim_run(sampler, allocator, seed=1, num_prompts=256)
    for _ in range(30):
        plan = curriculum.plan(32)
        assert len(np.unique(plan.prompt_ids)) == 32
        assert np.all(np.isfinite(plan.advantage_weights)) and np.all(plan.advantage_weights > 0)
        assert plan.rollouts_per_prompt.sum() == 4 * 32
        assert plan.rollouts_per_prompt.min() >= 2 and plan.rollouts_per_prompt.max() <= 12
        correct, surrogate = simulator.step(plan.prompt_ids, plan.rollouts_per_prompt, plan.advantage_weights)
        curriculum.observe(plan, correct, surrogate_loss=surrogate)

"""Structured configs: each default is written once (in a dataclass or a preset), `conf/` files extend the
stored schemas, and a new model or preset is a new YAML file with no code change."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from conf_helpers import CONF_DIR, compose_config

from gdro.config import ConfigError, PretrainedModelConfig, parse_run_config
from gdro.config.checking import MISSING_VALUE, build_dataclass, defaults_of
from gdro.config.store import CONTROLLERS, SCHEMA_KEY, SHARED, schema_nodes, schemas
from gdro.core.samplers import PromptGDROSampler
from gdro.train.build import build_curriculum

GROUP_FILES = sorted(path for group in schemas() for path in (CONF_DIR / group).glob("*.yaml"))


def _base_of(path: Path) -> tuple[dict, dict]:
    """The file's own values and the stored node its defaults list extends."""
    values = yaml.safe_load(path.read_text())
    defaults = values.pop("defaults")
    assert defaults[-1] == "_self_" and len(defaults) == 2, f"{path}: defaults must be [base_..., _self_]"
    return values, schema_nodes()[path.parent.name, defaults[0]]


@pytest.mark.parametrize("path", GROUP_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_group_files_state_only_what_differs_from_their_schema(path: Path) -> None:
    values, base = _base_of(path)
    for key, value in values.items():
        assert key in base, f"{path}: {key} is not a setting of its schema"
        assert value != base[key], f"{path}: {key}={value!r} repeats the schema's default; delete the line"


@pytest.mark.parametrize("path", GROUP_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_choice_is_named_after_its_file(path: Path) -> None:
    values, base = _base_of(path)
    if "name" in base:
        assert {**base, **values}["name"] == path.stem


@pytest.mark.parametrize(("group", "name"), sorted(schema_nodes()))
def test_every_stored_node_validates_as_its_defaults(group: str, name: str) -> None:
    node = dict(schema_nodes()[group, name])
    kind = node.pop(SCHEMA_KEY)
    schema = schemas()[group][kind]
    if group in CONTROLLERS:  # a registered controller: named after its entry
        assert node.pop("name") == kind and name == f"base_{kind}"
        if group in SHARED:
            shared = {field: node.pop(field) for field in defaults_of(SHARED[group])}
            assert build_dataclass(SHARED[group], shared, group) == SHARED[group]()
        if schema is None:
            assert node == {}
            return
    missing = [key for key, value in node.items() if value == MISSING_VALUE]
    if not missing:
        assert schema is not None and build_dataclass(schema, node, group) == schema()
        return
    # a field without a default is OmegaConf's mandatory `???`: refused, by name, until a file sets it
    with pytest.raises(ConfigError, match=re.escape(f"{group}.{missing[0]} must be set")):
        build_dataclass(schema, node, group)


def _conf_copy(tmp_path: Path, files: dict[str, str]) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    for relative, text in files.items():
        (conf / relative).write_text(text)
    return conf


def test_a_new_model_is_one_yaml_file(tmp_path: Path) -> None:
    conf = _conf_copy(
        tmp_path,
        {
            "model/qwen3_0.6b.yaml": "defaults: [base_pretrained, _self_]\nname: qwen3_0.6b\nhf_id: Qwen/Qwen3-0.6B-Base\n"
        },
    )
    run = parse_run_config(
        compose_config(["model=qwen3_0.6b", "dataset=dapo_math", "eval=math_benchmarks"], conf)
    )
    assert run.model == PretrainedModelConfig(name="qwen3_0.6b", hf_id="Qwen/Qwen3-0.6B-Base")


def test_a_new_sampler_preset_is_one_yaml_file_and_acts(tmp_path: Path) -> None:
    conf = _conf_copy(
        tmp_path,
        {"sampler/eager_gdro.yaml": "defaults: [base_prompt_gdro, _self_]\nname: eager_gdro\neta: 2.0\n"},
    )
    run = parse_run_config(compose_config(["sampler=eager_gdro", "policy=sim"], conf))
    assert run.sampler == "eager_gdro" and run.sampler_config.eta == 2.0
    sampler = build_curriculum(run, num_prompts=run.num_prompts).sampler
    assert isinstance(sampler, PromptGDROSampler) and sampler.config.eta == 2.0


def test_a_file_that_extends_no_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    conf = _conf_copy(tmp_path, {"model/bare.yaml": "name: bare\nhf_id: some/model\n"})
    message = "model: _schema_=None names no schema; a conf/model/ file must extend one of ['base_pretrained', 'base_qwen3_shape', 'base_random', 'base_tiny']"
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_run_config(compose_config(["model=bare", "dataset=dapo_math", "eval=math_benchmarks"], conf))


def test_a_model_file_without_its_hub_id_is_refused_by_name(tmp_path: Path) -> None:
    conf = _conf_copy(
        tmp_path, {"model/unnamed.yaml": "defaults: [base_pretrained, _self_]\nname: unnamed\n"}
    )
    with pytest.raises(ConfigError, match=re.escape("model.hf_id must be set")):
        parse_run_config(compose_config(["model=unnamed", "dataset=dapo_math", "eval=math_benchmarks"], conf))

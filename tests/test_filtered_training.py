"""`train.py` with a group filter (DAPO dynamic sampling, PRIME's accuracy band): the rounds' compute
adds up, every trained group passes, the classifier records every generated group, resume is exact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conf_helpers import SOME_GROUPS_MIXED, compose_config

from gdro.config import parse_run_config
from gdro.core.allocators import FixedAllocator
from gdro.core.curriculum import Curriculum, GeneratedGroups
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.samplers import UniformSampler
from gdro.train.io.metrics import read_metrics
from gdro.train.loop import train


def _run(run_dir: Path, overrides: list[str]) -> list[dict]:
    config = compose_config(["logger=none", *overrides])
    train(parse_run_config(config), run_dir, config, progress=False)
    return read_metrics(run_dir / "metrics.jsonl")


def _assert_compute_adds_up(records: list[dict], round_rollouts: int, batch_rollouts: int) -> None:
    """Fixed allocator: a round generates `round_rollouts`, a full step trains `batch_rollouts`."""
    for record in records[1:]:
        rounds = record["compute/gen_batches"]
        assert record["compute/rollouts_generated"] == rounds * round_rollouts
        assert record["compute/rollouts_generated"] >= record["rollouts/total"]
        if record["filter/exhausted"]:
            assert record["rollouts/total"] < batch_rollouts
            assert record["filter/kept_groups"] == record["rollouts/prompts"]
        else:
            assert record["rollouts/total"] == batch_rollouts
            assert record["filter/kept_groups"] >= record["rollouts/prompts"]
        tokens = record["compute/tokens_generated"]
        assert tokens is None or tokens >= record["tokens/generated"]
    totals = np.cumsum([r["compute/rollouts_generated"] for r in records[1:]])
    assert [r["compute/rollouts_generated_total"] for r in records[1:]] == totals.tolist()


def test_dynamic_sampling_on_the_simulator_trains_only_informative_groups(tmp_path: Path) -> None:
    records = _run(tmp_path / "sim", ["policy=sim", "method=dapo_dynamic_sampling", "trainer.steps=6"])
    _assert_compute_adds_up(records, round_rollouts=64 * 4, batch_rollouts=64 * 4)
    steps = records[1:]
    assert all(r["rollouts/informative_fraction"] == 1.0 for r in steps)  # no all-equal group trained
    assert all(r["rollouts/zero_variance_groups"] == 0 for r in steps)
    assert any(r["compute/gen_batches"] > 1 for r in steps)  # some compute was thrown away


def test_accuracy_band_on_the_simulator_resumes_bit_identically(tmp_path: Path) -> None:
    common = ["policy=sim", "method=accuracy_band", "filter.gen_batch_size=96", "trainer.save_every=3"]
    straight = _run(tmp_path / "straight", [*common, "trainer.steps=6"])
    _assert_compute_adds_up(straight, round_rollouts=96 * 4, batch_rollouts=64 * 4)
    _run(tmp_path / "split", [*common, "trainer.steps=3"])
    resumed = _run(tmp_path / "split", [*common, "trainer.steps=6", "resume=latest"])

    def strip(records: list[dict]) -> list[dict]:  # the split run's last step 3 also evaluated
        return [{k: v for k, v in r.items() if not k.startswith(("time/", "eval/"))} for r in records]

    assert strip(resumed) == strip(straight)


def test_the_round_limit_with_on_exhausted_train_trains_on_what_it_kept(tmp_path: Path) -> None:
    records = _run(
        tmp_path / "sim",
        [
            "policy=sim",
            "method=accuracy_band",
            "filter.low=0.45",
            "filter.high=0.55",
            "filter.max_gen_batches=1",
            "filter.on_exhausted=train",
            "trainer.steps=3",
        ],
    )
    _assert_compute_adds_up(records, round_rollouts=64 * 4, batch_rollouts=64 * 4)
    assert all(r["filter/exhausted"] == 1.0 for r in records[1:])  # a narrow band: never 64 of 64


def test_the_classifier_records_every_generated_group_the_sampler_only_the_trained() -> None:
    def curriculum_of_six() -> Curriculum:
        classifier = DifficultyClassifier(6)
        groups = classifier.num_groups
        return Curriculum(classifier, UniformSampler(6, groups), FixedAllocator(groups))

    curriculum = curriculum_of_six()
    plan = curriculum.plan(2)
    discarded = np.setdiff1d(np.arange(6), plan.prompt_ids)[:1]
    generated = GeneratedGroups(
        prompt_ids=np.r_[discarded, plan.prompt_ids],
        rollouts_per_prompt=np.r_[plan.rollouts_per_prompt[:1], plan.rollouts_per_prompt],
        correct_per_prompt=np.r_[4, 1, 2],
    )
    curriculum.observe(plan, np.array([1, 2]), generated=generated)
    seen = curriculum.classifier.success_rate(np.r_[discarded, plan.prompt_ids])
    assert seen.tolist() == [1.0, 0.25, 0.5]  # the discarded group is recorded too
    without = curriculum_of_six()
    without.observe(without.plan(2), np.array([1, 2]))
    assert np.isnan(without.classifier.success_rate(discarded)).all()


def test_the_method_keys_show_a_filter_only_when_there_is_one() -> None:
    from gdro.analysis.results.methods import METHOD_NAMES, method_key

    config = compose_config(["method=dapo_dynamic_sampling"])
    assert method_key(config) == "uniform + fixed + dynamic_sampling"
    assert METHOD_NAMES["uniform + fixed + dynamic_sampling"] == "DAPO dynamic sampling"
    assert METHOD_NAMES["uniform + fixed + accuracy_band"] == "Accuracy band (0.2-0.8)"
    assert method_key(compose_config([])) == "uniform + fixed"
    legacy = json.loads(json.dumps(compose_config([])))
    del legacy["filter"]  # a run folder written before filters existed
    assert method_key(legacy) == "uniform + fixed"


@pytest.mark.parametrize("method", ["dapo_dynamic_sampling", "accuracy_band"])
def test_each_filter_baseline_trains_the_tiny_model(method: str, tmp_path: Path, cache_dir: Path) -> None:
    rounds = ["filter.gen_batch_size=12", "filter.max_gen_batches=3", "filter.on_exhausted=train"]
    overrides = ["debug=quick", *SOME_GROUPS_MIXED, f"cache_dir={cache_dir}", f"method={method}", *rounds]
    records = _run(tmp_path / method, overrides)
    _assert_compute_adds_up(records, round_rollouts=12 * 4, batch_rollouts=8 * 4)
    for record in records[1:]:
        assert record["compute/tokens_generated"] >= record["tokens/generated"] > 0
        assert math.isfinite(record["loss/total"])
    assert any(record["compute/gen_batches"] > 1 for record in records[1:])

"""The on-policy shortcut of the GRPO step: the first update takes pi_old from its own forward instead of a
pass of its own, and every loss, gradient, metric and parameter stays bitwise what the separate pass gives.

Two learners built alike (the `debug=quick` model and task) run the same plans, one with the shortcut and
one without; after every step their outcomes, parameters and last gradients are compared with exact
equality, at one torch thread, for ppo_mini_batches in {1, 2} x ppo_epochs in {1, 2}.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conf_helpers import compose_config

from gdro.analysis.bench.step_phases import PHASES, measure_step_phases
from gdro.config import parse_run_config
from gdro.core.curriculum import StepPlan
from gdro.train.build import build_learner
from gdro.train.grpo_step import grpo_step

STEPS = 2


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def plan(step: int) -> StepPlan:
    """8 prompts with groups of unequal size and unequal advantage weights."""
    prompt_ids = np.arange(8) * 7 + step
    return StepPlan(
        prompt_ids=prompt_ids,
        bins=np.zeros(8, dtype=np.int64),
        rollouts_per_prompt=np.array([4, 2, 6, 4, 3, 5, 4, 4]),
        advantage_weights=np.linspace(0.5, 1.5, 8),
        bin_weights=np.ones(1),
    )


def parity_rewards(texts: list[str], answers: list[str]) -> np.ndarray:
    return np.array([1.0 if len(text) % 2 else -1.0 for text in texts])


@pytest.mark.parametrize("epochs", [1, 2])
@pytest.mark.parametrize("mini_batches", [1, 2])
def test_the_shortcut_changes_no_bit_of_the_step(
    cache_dir: Path, one_thread: None, mini_batches: int, epochs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = [
        "debug=quick",
        f"cache_dir={cache_dir}",
        f"trainer.ppo_mini_batches={mini_batches}",
        f"trainer.ppo_epochs={epochs}",
    ]
    learners = {on: build_learner(parse_run_config(compose_config(overrides))) for on in (True, False)}
    passes = dict.fromkeys(learners, 0)
    for on, learner in learners.items():
        scoring = learner.actor.logprobs

        def counted(*args, model=None, on=on, scoring=scoring):  # noqa: ANN001, ANN202
            passes[on] += model is None  # the policy's own passes, not the reference's
            return scoring(*args, model=model)

        monkeypatch.setattr(learner.actor, "logprobs", counted)
        # the warm-started model of `debug=quick` solves nothing: a reward of the text's parity gives
        # every group mixed rewards, hence advantages and gradients
        monkeypatch.setattr(learner.task.reward, "rewards", parity_rewards)
    for step in range(STEPS):
        outcomes = {}
        for on, learner in learners.items():
            torch.manual_seed(step)  # the HF engine samples from the global RNG, which the loop seeds
            outcomes[on] = grpo_step(learner, plan(step), on_policy_shortcut=on)
        fast, slow = outcomes[True], outcomes[False]
        assert fast.metrics == slow.metrics and fast.generated_tokens == slow.generated_tokens
        for field in ("correct_per_prompt", "surrogate_loss", "tokens_per_prompt"):
            assert np.array_equal(getattr(fast, field), getattr(slow, field)), field
        assert fast.metrics["loss/grad_norm"] > 0
        models = [learner.actor.model for learner in learners.values()]
        for (name, a), b in zip(models[0].named_parameters(), models[1].parameters(), strict=True):
            assert torch.equal(a, b), name
            assert (a.grad is None) == (b.grad is None) and (a.grad is None or torch.equal(a.grad, b.grad)), (
                name
            )
    # the shortcut saves the first mini-batch's pass every step
    assert passes == {True: STEPS * (mini_batches - 1), False: STEPS * mini_batches}
    for learner in learners.values():
        learner.close()


def test_the_side_by_side_benchmark_times_every_phase_of_both(cache_dir: Path, one_thread: None) -> None:
    result = measure_step_phases(["debug=quick", f"cache_dir={cache_dir}"], rounds=1, warmup=0)
    assert set(result["median_seconds"]) == {"on", "off"}
    for medians in result["median_seconds"].values():
        assert set(medians) == {"step", "cpu", *PHASES}
        assert all(medians[phase] > 0 for phase in ("generate", "update")) and medians["step"] > 0
    # debug=quick has 2 mini-batches: both variants score the second's pi_old, the off one the first's too
    assert result["median_seconds"]["on"]["old"] > 0 and result["step_ratio_off_over_on"] > 0
    assert result["paired_cpu_ratio_median"] > 0 and result["against"] == []

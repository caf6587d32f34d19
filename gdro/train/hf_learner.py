"""The learner of a transformers causal LM: its parts, and what the loop asks of it besides the step.

`HFLearner` holds the actor (`gdro.train.actor`) and its training backend (`gdro.train.parallel.backends`:
torch, or DeepSpeed ZeRO), the rollout engine (HF `generate` on the actor, or vLLM), the learning-rate
schedule, the task and the evaluator. `train_step` is the GRPO step of `gdro.train.grpo_step` (and
`generate_round` / `update` its halves, for a filter's rounds);
saving and loading are the backend's (with the schedule, the skipped-update counts and the prompts'
fingerprint beside them), the weights for the engine's sync and for exports too. A `NonFiniteError`
raised in a step or an evaluation leaves with the step it happened at (`gdro.train.nonfinite`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gdro.config import TrainerConfig
from gdro.core.curriculum import StepPlan
from gdro.engines.base import RolloutEngine
from gdro.engines.hf import HFEngine
from gdro.errors import NonFiniteError
from gdro.train.actor import Actor, ActorConfig
from gdro.train.evaluator import Evaluator
from gdro.train.grpo_step import generate_round, grpo_step, update
from gdro.train.io.export import bf16_state, write_export
from gdro.train.learner import GeneratedRound, StepOutcome
from gdro.train.nonfinite import NonFiniteGuard, all_finite, optimizer_tensors
from gdro.train.parallel.backends import TorchBackend, TrainingBackend
from gdro.train.parallel.world import World
from gdro.train.schedule import WarmupSchedule
from gdro.train.task import TaskData, check_fingerprint

TASK_FILE = "task.json"  # the prompts' fingerprint, checked on resume


class HFLearner:
    """A transformers policy trained by GRPO: the rollout engine generates, the actor trains, the evaluator
    validates."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        task: TaskData,
        settings: TrainerConfig,
        reference: PreTrainedModel | None = None,
        generation_batch_size: int = 256,
        stop_token_ids: tuple[int, ...] = (),
        engine: RolloutEngine | None = None,
        seed: int = 0,
        backend: TrainingBackend | None = None,
        world: World | None = None,
    ) -> None:
        """`backend`: a `DeepSpeedBackend` around `model` (default: `TorchBackend` with torch's AdamW);
        `world`: the ranks."""
        if settings.kl_coef > 0 and reference is None:
            raise ValueError("trainer.kl_coef > 0 needs the frozen reference model")
        self.model = model
        self.tokenizer = tokenizer
        self.reference = reference
        self.task = task
        self.settings = settings
        self.num_prompts = task.num_prompts
        self.rollout_sampling = settings.rollout_sampling(stop_token_ids)
        self.seed = seed
        self.engine = engine if engine is not None else HFEngine(model, tokenizer, generation_batch_size)
        self.world = world if world is not None else World()
        self.backend = (
            backend
            if backend is not None
            else TorchBackend(
                model,
                torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay),
                settings.grad_clip,
            )
        )
        self.scheduler = WarmupSchedule(self.backend.optimizer, settings.lr, settings.warmup_steps)
        self.guard = NonFiniteGuard(settings.max_nonfinite_skips)
        actor_config = ActorConfig.from_trainer(
            settings,
            max_tokens_per_microbatch=settings.max_tokens_per_microbatch,
            logprob_chunk_tokens=settings.logprob_chunk_tokens,
        )
        self.actor = Actor(model, None, actor_config, self.backend, self.world)
        # With eval_at_rollout_temperature the held-out prompts are also sampled like rollouts
        # (eval_rollout/...): RL first improves the distribution it samples from, which the
        # near-greedy validation sampling (temperature 0.6, top-p 0.8) can hide.
        samplings = [("eval", settings.eval_sampling(stop_token_ids))]
        if settings.eval_at_rollout_temperature:
            samplings.append(("eval_rollout", self.rollout_sampling))
        self.evaluator = Evaluator(
            self.engine, task.eval_sets, settings.eval_samples, samplings, world=self.world
        )
        if self.backend.partitions_parameters:  # ZeRO-3: the engine generates on a whole copy of its own,
            self.engine.sync_weights(self.backend.weights())  # which starts from the actor's weights

    def train_step(self, plan: StepPlan) -> StepOutcome:
        """One GRPO step on the plan's prompts (`gdro.train.grpo_step`)."""
        try:
            return grpo_step(self, plan)
        except NonFiniteError as error:
            raise error.at(self.steps_done + 1, self.guard.last_finite_loss) from error

    def generate_round(self, plan: StepPlan, round_index: int) -> GeneratedRound:
        """One generation round of a filtered step (`gdro.train.grpo_step.generate_round`)."""
        try:
            return generate_round(self, plan, round_index)
        except NonFiniteError as error:
            raise error.at(self.steps_done + 1, self.guard.last_finite_loss) from error

    def update(self, plan: StepPlan, rounds: list[GeneratedRound], chosen: list[np.ndarray]) -> StepOutcome:
        """The PPO update on the groups kept from the rounds (`gdro.train.grpo_step.update`)."""
        try:
            return update(self, plan, rounds, chosen)
        except NonFiniteError as error:
            raise error.at(self.steps_done + 1, self.guard.last_finite_loss) from error

    def evaluate(self) -> dict[str, float]:
        """mean@k and pass@k of every held-out set (docs/algorithm.md §6): eval/... (and eval_rollout/...)."""
        try:
            return self.evaluator.evaluate()
        except NonFiniteError as error:
            raise error.at(self.steps_done, self.guard.last_finite_loss) from error

    @property
    def steps_done(self) -> int:
        """Training steps taken so far (the schedule's count, restored on resume)."""
        return self.scheduler.last_epoch

    def ensure_finite(self) -> None:
        """Raise `NonFiniteError` unless the weights and the optimizer state are finite on every rank (each
        checks its own: under ZeRO its partitions); called before a checkpoint or an export is written."""
        if self.world.max(int(not all_finite(optimizer_tensors(self.backend.optimizer)))):
            raise NonFiniteError(
                "the weights or the optimizer state are", self.steps_done, self.guard.last_finite_loss
            )

    def save(self, directory: Path) -> None:
        """The backend's state (model and optimizer, exact, for resume) with the schedule's and the
        skipped-update counts, and the prompts' fingerprint. Under DeepSpeed every rank writes its shards,
        rank 0 the rest."""
        self.backend.save(
            directory, {"scheduler": self.scheduler.state_dict(), "nonfinite": self.guard.state_dict()}
        )
        if self.world.is_main:
            (directory / TASK_FILE).write_text(json.dumps({"fingerprint": self.task.fingerprint}))

    def load(self, directory: Path) -> None:
        """Restore what `save` wrote, after checking the prompts are the ones the checkpoint saw."""
        check_fingerprint(
            json.loads((directory / TASK_FILE).read_text())["fingerprint"], self.task.fingerprint
        )
        extra = self.backend.load(directory)
        self.scheduler.load_state_dict(extra["scheduler"])
        if "nonfinite" in extra:  # checkpoints written before skipped updates were counted have none
            self.guard.load_state_dict(extra["nonfinite"])
        self.engine.sync_weights(self.backend.weights())

    def close(self) -> None:
        """Stop the rewards' worker processes."""
        self.task.close()

    def export(self, directory: Path, metadata: dict[str, Any]) -> None:
        """The weights in bfloat16 with the tokenizer, `save_pretrained` style (`gdro.train.io.export`);
        rank 0 writes (under ZeRO-3 every rank takes part in gathering them). Weights or optimizer state
        that are not finite (also after rounding to bfloat16) raise `NonFiniteError`, and nothing is
        written."""
        self.ensure_finite()
        state = None
        if self.world.is_main:
            state = bf16_state(self.backend.weights())
        elif self.backend.partitions_parameters:
            for _ in self.backend.weights():  # this rank's part in each gather
                pass
        # the largest finite fp32 values round to inf in bfloat16; every rank stops if they did
        if not self.world.broadcast(state is None or all_finite(state.values())):
            raise NonFiniteError(
                "the weights rounded to bfloat16 for the export are",
                self.steps_done,
                self.guard.last_finite_loss,
            )
        if state is not None:
            write_export(self.model, self.tokenizer, state, directory, metadata)

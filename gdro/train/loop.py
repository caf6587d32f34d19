"""The training loop: one loop for every learner (transformers or the simulator).

eval (step 0) -> for t = 1..T:
    plan = curriculum.plan(M)             sampler picks/reweights, classifier bins, allocator sets n_i
    outcome = learner.train_step(plan)    generate, reward, advantages x w_i, PPO updates (grpo_step.py);
                                          with a filter, rounds of plan + generate until M groups pass,
                                          then the update on them (rounds.py)
    curriculum.observe(plan, outcome)     classifier records (every generated group); both adversaries update
    log; eval every `eval_every` and at T; checkpoint every `save_every` and at T (never of weights or
    optimizer state that are not finite: gdro.train.nonfinite)
    with a compute budget (gdro.train.budget) the run ends after the step whose generated total reaches
    it (T stays the cap), evaluating at the budget's fractions
    the run's generated rollouts and tokens are summed (`compute/*_total`) and kept in checkpoints; a
    checkpoint from before those totals resumes with them summed from the metrics.jsonl records it keeps
    weights in bf16 HF format: hf/best at each new best pooled pass@k, hf/final at T (gdro.train.io.export)
    on SIGUSR2 / SIGTERM (SLURM preemption, time limit, scancel): checkpoint, then exit or requeue (io/preemption.py)

With several ranks (torchrun) every rank runs this same loop: the curriculum decides the same plan on
every rank (same seed, same gathered outcomes: each learner step returns the WHOLE batch's outcome), the
learner splits the work, and rank 0 alone writes metrics.jsonl, W&B, plots and checkpoint metadata. At
each checkpoint the ranks compare digests of their controller state and stop if they ever differ.

A run folder that already holds this very run, finished (`gdro.train.io.run_folder.is_finished`: its
config.json equals this config but for `resume`, and its metrics.jsonl ends at step T), is left as it is
under `resume=auto`: nothing is built or trained, so a requeued job or a rerun sweep skips it in seconds.

Before it writes anything the run takes the run folder's lock (`gdro.train.io.run_lock`: one writer per folder),
then removes what failed or killed writes of earlier runs left (checkpoint temporaries, half-written
exports). `resume=auto` loads the newest checkpoint that verifies (`gdro.train.io.checkpoint`). A failed
write of the run folder stops the run with a `StorageError` naming the path and the free space.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from gdro.analysis.viz import CurriculumHistory, heatmap_figure, summary_table
from gdro.config import RunConfig
from gdro.core.compute import ComputeTotals
from gdro.train.budget import FRACTION_KEY as BUDGET_FRACTION
from gdro.train.budget import ComputeBudget
from gdro.train.build import build_curriculum, build_learner, build_rounds
from gdro.train.io.checkpoint import (
    AUTO,
    LATEST,
    curriculum_digest,
    load_checkpoint,
    remove_temporaries,
    resolve_resume,
    save_checkpoint,
    saved_compute_totals,
)
from gdro.train.io.export import BEST, EXPORT_DIR, FINAL, best_metric_key, best_so_far, recover_exports
from gdro.train.io.loggers import build_logger
from gdro.train.io.metrics import MetricsWriter, step_record
from gdro.train.io.preemption import StopSignals
from gdro.train.io.progress import Progress
from gdro.train.io.run_folder import CONFIG_FILE, METRICS_FILE, config_digest, is_finished
from gdro.train.io.run_lock import hold_run_folder
from gdro.train.io.storage import storage_errors
from gdro.train.learner import Learner
from gdro.train.parallel.world import World
from gdro.train.rng import isolated_rng

HEATMAPS = ("share", "weight", "rollouts_per_prompt", "reward_mean")

log = logging.getLogger(__name__)


def train(
    run: RunConfig,
    run_dir: Path,
    resolved_config: dict[str, Any],
    progress: bool = True,
    world: World | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) training into `run_dir`; returns the records written by this call (rank 0's)."""
    world = world if world is not None else World()
    finished = run.resume in (AUTO, LATEST) and is_finished(run_dir, resolved_config)
    if world.broadcast(finished if world.is_main else None):  # nothing is written, not even the lock
        log.info(
            "%s already holds this run, finished (trainer.steps or its budget): nothing to train", run_dir
        )
        return []
    with hold_run_folder(run_dir, run.trainer.lock_wait_s, world, enabled=run.trainer.run_lock):
        if world.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            _clear_failed_writes(run_dir)
            with storage_errors(run_dir / CONFIG_FILE, "writing"):
                (run_dir / CONFIG_FILE).write_text(json.dumps(resolved_config, indent=2))
        torch.set_num_threads(run.trainer.torch_threads)
        torch.manual_seed(run.seed + world.rank)  # each rank samples its own rollouts
        learner = build_learner(run, world)
        try:
            with StopSignals() as signals:  # SIGUSR2 / SIGTERM: checkpoint at the next step boundary
                return _train(
                    run, run_dir, resolved_config, learner, progress and world.is_main, world, signals
                )
        finally:
            learner.close()  # worker processes (math-verify) end with the run, also on an error


def _clear_failed_writes(run_dir: Path) -> None:
    """Remove the temporaries that failed or killed writes of earlier runs left, logging each."""
    for entry in [*remove_temporaries(run_dir / "checkpoints"), *recover_exports(run_dir / EXPORT_DIR)]:
        log.warning("removed %s, left by an earlier failed or killed write", entry)


def _train(
    run: RunConfig,
    run_dir: Path,
    resolved_config: dict[str, Any],
    learner: Learner,
    progress: bool,
    world: World,
    signals: StopSignals,
) -> list[dict[str, Any]]:
    """The loop of the module docstring on a built learner."""
    curriculum = build_curriculum(run, learner.num_prompts)
    rounds = build_rounds(run)
    main = world.is_main
    writer = MetricsWriter(run_dir / METRICS_FILE) if main else None
    logger = build_logger(run.logger, run_dir, resolved_config) if main else None
    records: list[dict[str, Any]] = []
    history = CurriculumHistory(resolved_config, run_dir)  # the figures draw from memory, not the file

    def emit(record: dict[str, Any]) -> None:
        if writer is None or logger is None:
            return
        writer.write(record)
        logger.log(record)
        records.append(record)
        history.append(record)

    best_key = best_metric_key(run.trainer.eval_samples)
    best: float | None = None  # the best export's pooled pass@k
    checkpoint = resolve_resume(run.resume, run_dir, world)  # verified; rank 0's choice on every rank
    start = 0
    totals = ComputeTotals()
    if checkpoint is not None:
        start = load_checkpoint(checkpoint, curriculum, learner, world, verified=True)
        kept: list[dict[str, Any]] = []
        if writer is not None:
            kept = writer.truncate_after(start)
            if kept and kept[-1]["step"] < start:
                raise RuntimeError(
                    f"{run_dir / METRICS_FILE} ends at step {kept[-1]['step']} but {checkpoint} is at step "
                    f"{start}: records were lost; resume from an earlier checkpoint, or start over with resume=null"
                )
            history.extend(kept)
        best = world.broadcast(best_so_far(kept, best_key) if main else None)
        saved = saved_compute_totals(checkpoint)
        if saved is None:  # written before the totals were saved: the records it keeps hold them
            saved = world.broadcast(ComputeTotals.from_records(kept).state_dict() if main else None)
        totals.load_state_dict(saved)
        log.info("resumed from %s at step %d", checkpoint, start)
    else:
        if writer is not None:
            writer.truncate_after(-1)
        with isolated_rng(run.seed, 0, "eval"):
            zero = {BUDGET_FRACTION: 0.0} if ComputeBudget.from_trainer(run.trainer) is not None else {}
            emit({"step": 0, **zero, **learner.evaluate()})

    trainer = run.trainer
    budget = ComputeBudget.from_trainer(trainer)
    progress_display = Progress(start, trainer.steps, enabled=progress)
    for step in range(start + 1, trainer.steps + 1):
        began = time.perf_counter()
        plan, outcome = rounds.step(curriculum, learner)  # the trained batch: one plan, or a filter's rounds
        report = curriculum.observe(
            plan,
            outcome.correct_per_prompt,
            outcome.surrogate_loss,
            outcome.tokens_per_prompt,
            generated=outcome.generated,
        )
        record = step_record(step, plan, outcome, report, pass_k=run.classifier.k)
        spent_before = budget.spent(totals.rollouts, totals.tokens) if budget is not None else 0
        rollouts_total, tokens_total = totals.add(
            record["compute/rollouts_generated"], record["compute/tokens_generated"]
        )
        record["compute/rollouts_generated_total"] = rollouts_total
        record["compute/tokens_generated_total"] = tokens_total
        record["time/step_seconds"] = time.perf_counter() - began
        evaluate, fraction, last = _schedule(trainer, budget, step, spent_before, totals)
        if evaluate:
            if fraction is not None:
                record[BUDGET_FRACTION] = fraction
            with isolated_rng(run.seed, step, "eval"):  # the training stream continues untouched
                record.update(learner.evaluate())
            value = record.get(best_key)
            if value is not None and (best is None or value > best):
                best = value
                learner.export(
                    run_dir / EXPORT_DIR / BEST, {"step": step, "metric": best_key, "value": value}
                )
        if last:  # before the record: metrics ending at the last step imply the export
            final = {"step": step, "metric": best_key, "value": record.get(best_key)}
            learner.export(run_dir / EXPORT_DIR / FINAL, final)
        emit(record)
        if logger is not None and (step % trainer.plot_every == 0 or last):
            run_so_far = history.run()
            logger.log_figures(
                step, {f"curriculum/{key}": heatmap_figure(run_so_far, key) for key in HEATMAPS}
            )
        progress_display.update(step, record["reward/mean"], record["pass/rollout_rate"])
        stop = world.max(int(signals.requested())) > 0  # preempted: every rank stops at this step
        if stop or step % trainer.save_every == 0 or last:
            _check_ranks_agree(world, curriculum, step)
            learner.ensure_finite()  # never a checkpoint of inf / NaN: latest keeps naming the last good one
            save_checkpoint(
                run_dir,
                step,
                curriculum,
                learner,
                keep=trainer.keep_checkpoints,
                world=world,
                config_digest=config_digest(resolved_config),
                compute=totals.state_dict(),
            )
        if stop:
            signals.hand_on(step)  # exit, or submitit's requeue (the rerun resumes from this checkpoint)
        if last:
            break
    progress_display.close()
    if logger is not None:
        logger.finish()
        log.info("summary of %s\n%s", run_dir, summary_table(history.run()))
    return records


def _schedule(
    trainer: Any, budget: ComputeBudget | None, step: int, spent_before: int, totals: ComputeTotals
) -> tuple[bool, float | None, bool]:
    """(evaluate, budget fraction, last) of a step: whether it is evaluated; the budget fraction its
    evaluation stands for (`gdro.train.budget`; None without a budget or an evaluation); whether the run
    ends after it (trainer.steps reached, or the budget)."""
    at_cap = step == trainer.steps
    if budget is None:
        return step % trainer.eval_every == 0 or at_cap, None, at_cap
    spent = budget.spent(totals.rollouts, totals.tokens)
    last = at_cap or budget.reached(spent)
    crossed = budget.crossing(spent_before, spent)
    if crossed is not None:
        return True, crossed, last
    on_steps = budget.eval_fraction is None and step % trainer.eval_every == 0
    return last or on_steps, (budget.fraction(spent) if last or on_steps else None), last


def _check_ranks_agree(world: World, curriculum: Any, step: int) -> None:
    """Every rank must hold the same controller state (classifier, sampler, allocator); stop if not."""
    if not world.distributed:
        return
    digests = world.gather(curriculum_digest(curriculum))
    if len(set(digests)) > 1:
        raise RuntimeError(
            f"step {step}: the ranks' curriculum states differ ({digests}); the run cannot go on"
        )

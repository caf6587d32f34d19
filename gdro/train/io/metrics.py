"""The per-step metrics record (the contract of `metrics.jsonl`) and its writer.

One JSON object per training step t >= 1 with at least: step, rollouts/total (sum n_i), rollouts/prompts
(M), tokens/generated, reward/mean, loss/total, alloc/mu (null without a shadow price); per-bin lists
indexed by bin (bin 0 hardest; the excluded group last when there is one): bins/share, bins/weight,
bins/score, bins/rollouts_per_prompt, bins/reward_mean, bins/success_rate (null where a bin is absent),
bins/tokens (completion tokens per bin; all null for the simulator), bins/lead_lag_gap (q(b) - qhat(b));
and the docs/algorithm.md §8 measures of `gdro.core.curriculum_metrics` as curriculum/<name>: mean_bin_share,
mean_bin_weight, mean_bin_gap, lead_lag_gap_l1, weight_entropy, effective_bins, wse, wse_uniform,
wse_reduction (null where undefined); the compute of `gdro.core.compute`: compute/rollouts_generated,
compute/tokens_generated (null for the simulator), compute/gen_batches, rollouts/informative_fraction,
rollouts/zero_variance_groups, bins/informative_fraction (the loop adds the run's totals,
compute/rollouts_generated_total and compute/tokens_generated_total). Eval steps add
eval/pass@k, eval/mean@k and their /level_<l> variants (model policies with
trainer.eval_at_rollout_temperature also add the same under eval_rollout/). The line with step 0 holds
the evaluation before the first update.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from gdro.core.compute import signal_stats
from gdro.core.curriculum import BIN_SERIES, BinReport, StepPlan
from gdro.core.curriculum_metrics import CURRICULUM_MEASURES
from gdro.core.pass_at_k import pass_at_k
from gdro.train.io.storage import storage_errors
from gdro.train.learner import StepOutcome


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _json_list(values: np.ndarray) -> list[float | None]:
    return [_json_number(v) for v in np.asarray(values, dtype=np.float64)]


def step_record(
    step: int, plan: StepPlan, outcome: StepOutcome, report: BinReport, pass_k: int
) -> dict[str, Any]:
    """The metrics of one training step."""
    rollouts = plan.rollouts_per_prompt
    correct = outcome.correct_per_prompt
    success = float(correct.sum() / rollouts.sum())
    enough = rollouts >= pass_k
    record: dict[str, Any] = {
        "step": step,
        "rollouts/total": int(rollouts.sum()),
        "rollouts/prompts": len(rollouts),
        "tokens/generated": outcome.generated_tokens,
        "reward/mean": 2.0 * success - 1.0,
        "pass/rollout_rate": success,
        "pass/any_correct": float((correct > 0).mean()),
        # Unbiased pass@k over the prompts that got at least k rollouts (docs/algorithm.md §2); null when none did.
        f"pass/at_{pass_k}": float(np.mean(pass_at_k(rollouts[enough], correct[enough], pass_k)))
        if enough.any()
        else None,
        "advantage/weight_max": float(plan.advantage_weights.max()),
        "alloc/mu": report.shadow_price,
    }
    record.update(outcome.metrics)
    for name in BIN_SERIES:
        record[f"bins/{name}"] = _json_list(getattr(report, name))
    record.update(_compute_record(plan, outcome, num_groups=len(report.share)))
    for name in CURRICULUM_MEASURES:
        record[f"curriculum/{name}"] = _json_number(getattr(report.measures, name))
    return record


def _compute_record(plan: StepPlan, outcome: StepOutcome, num_groups: int) -> dict[str, Any]:
    """What the step generated (trained plus discarded; tokens null where the learner counts none) and
    the share of its trained rollouts that carries signal (`gdro.core.compute`)."""
    rollouts = plan.rollouts_per_prompt
    stats = signal_stats(rollouts, outcome.correct_per_prompt, plan.bins, num_groups)
    counts_tokens = outcome.tokens_per_prompt is not None
    return {
        "compute/rollouts_generated": int(rollouts.sum()) + outcome.discarded_rollouts,
        "compute/tokens_generated": outcome.generated_tokens + outcome.discarded_tokens
        if counts_tokens
        else None,
        "compute/gen_batches": outcome.gen_batches,
        "rollouts/informative_fraction": _json_number(stats.informative_fraction),
        "rollouts/zero_variance_groups": stats.zero_variance_groups,
        "bins/informative_fraction": _json_list(stats.bin_informative_fraction),
    }


class MetricsWriter:
    """Appends records to `metrics.jsonl`; on resume, drops the lines after the checkpoint's step.

    A failed write raises a `StorageError` (`gdro.train.io.storage`) and leaves the file as it was: an
    append is cut back to the previous length, a rewrite goes through `metrics.jsonl.tmp` and a rename."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def truncate_after(self, step: int) -> list[dict[str, Any]]:
        """Keep only records with step <= `step` (a resumed run rewrites what follows); returns them."""
        if not self.path.exists():
            return []
        kept = [record for record in read_metrics(self.path) if record["step"] <= step]
        staging = self.path.with_name(self.path.name + ".tmp")
        try:
            with storage_errors(self.path, "rewriting"):
                staging.write_text("".join(json.dumps(record) + "\n" for record in kept))
                os.replace(staging, self.path)
        except OSError:
            staging.unlink(missing_ok=True)
            raise
        return kept

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a JSON line (unbuffered: a failure is seen here, and undone)."""
        remaining = memoryview((json.dumps(record) + "\n").encode())
        with storage_errors(self.path, "appending to"):
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                length = os.fstat(descriptor).st_size
                try:
                    while remaining:
                        remaining = remaining[os.write(descriptor, remaining) :]
                except OSError:
                    os.ftruncate(descriptor, length)  # no half line: the next run reads the file whole
                    raise
            finally:
                os.close(descriptor)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a `metrics.jsonl`."""
    return [json.loads(line) for line in path.read_text().splitlines() if line]

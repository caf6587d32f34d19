"""`train.py experiment=math_smoke`: the paper's stack at toy size on the CPU, end to end.

A random tiny Qwen3 on the ASCII byte tokenizer, the DAPO-Math fixture through `datasets.load_dataset`,
math-verify in its worker pool, MATH-500 and GPQA-Diamond fixtures as benchmarks, Prompt-GDRO +
Rollout-GDRO, token-budget micro-batches; then resume, and a resume on changed prompts that must refuse.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conf_helpers import compose_config

from gdro.config import parse_run_config
from gdro.train.io.metrics import read_metrics
from gdro.train.loop import train

REPO = Path(__file__).resolve().parents[1]
SMOKE = [
    "experiment=math_smoke",
    f"dataset.path={REPO / 'tests/fixtures/open-r1/DAPO-Math-17k-Processed'}",
    f"eval.local_root={REPO / 'tests/fixtures'}",
    "trainer.max_tokens_per_microbatch=300",  # several micro-batches per PPO mini-batch
]


def run_smoke(run_dir: Path, overrides: list[str]) -> list[dict]:
    config = compose_config([*SMOKE, *overrides])
    train(parse_run_config(config), run_dir, config, progress=False)
    return read_metrics(run_dir / "metrics.jsonl")


def _training_keys(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith(("time/", "eval"))}


def test_math_smoke_trains_evaluates_and_resumes_exactly(tmp_path: Path) -> None:
    straight = run_smoke(tmp_path / "straight", [])
    assert [r["step"] for r in straight] == [0, 1, 2, 3]
    for record in (straight[0], straight[3]):
        for key in ("eval/math500/mean@2", "eval/math500/pass@2", "eval/gpqa_diamond/pass@2", "eval/pass@2"):
            assert 0.0 <= record[key] <= 1.0, key
    for record in straight[1:]:
        assert record["rollouts/total"] == 16 and record["rollouts/prompts"] == 4
        for key in ("loss/total", "loss/policy", "loss/kl", "loss/grad_norm", "reward/mean"):
            assert math.isfinite(record[key]), key
        assert record["loss/microbatches"] > 1
        assert record["reward/timeouts"] == 0
        assert 0.0 <= record["rollout/truncation_rate"] <= 1.0
        assert sum(record["bins/tokens"]) == record["tokens/generated"] > 0

    resumed_dir = tmp_path / "resumed"
    run_smoke(resumed_dir, ["trainer.steps=2"])
    resumed = run_smoke(resumed_dir, ["trainer.steps=3", "resume=latest"])
    assert [_training_keys(r) for r in resumed[1:]] == [_training_keys(r) for r in straight[1:]]
    assert {k: v for k, v in resumed[3].items() if k.startswith("eval")} == {
        k: v for k, v in straight[3].items() if k.startswith("eval")
    }

    # A tighter length filter (drops the 151-token prompt) renumbers the prompts: resuming must refuse.
    with pytest.raises(ValueError, match="training prompt set changed"):
        run_smoke(resumed_dir, ["trainer.steps=4", "resume=latest", "dataset.max_prompt_tokens=150"])

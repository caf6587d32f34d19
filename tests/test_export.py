"""The bf16 HF exports of a run (`hf/final`, `hf/best`): what they hold, which step is best, and that
any transformers user can load them; plus the helpers' rules (ties, resume, atomic replacement)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train_hf import run_hf
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

from gdro.train.export import best_so_far, bf16_state, write_export


def test_best_so_far_skips_step_0_and_missing_evaluations() -> None:
    records = [
        {"step": 0, "eval/pass@8": 0.9},  # before training: never the best
        {"step": 1},
        {"step": 2, "eval/pass@8": 0.5},
        {"step": 4, "eval/pass@8": 0.7},
    ]
    assert best_so_far(records, "eval/pass@8") == 0.7
    assert best_so_far(records[:2], "eval/pass@8") is None


def test_tied_names_share_one_bf16_copy() -> None:
    weight = torch.randn(4, 3)
    state = bf16_state([("embed.weight", weight), ("head.weight", weight), ("norm.weight", torch.ones(3))])
    assert state["embed.weight"] is state["head.weight"]
    assert state["embed.weight"].dtype == torch.bfloat16
    assert torch.equal(state["embed.weight"], weight.to(torch.bfloat16))


def test_a_failed_export_leaves_the_previous_one_whole(tmp_path: Path, cache_dir: Path) -> None:
    records = run_hf(tmp_path / "run", cache_dir, ["trainer.steps=1"])
    final = tmp_path / "run" / "hf" / "final"
    before = json.loads((final / "export.json").read_text())
    assert before == {"step": 1, "metric": "eval/pass@2", "value": records[1]["eval/pass@2"]}
    model = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)
    state = bf16_state(model.state_dict().items())

    def failing_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    tokenizer.save_pretrained = failing_save  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        write_export(model, tokenizer, state, final, {"step": 99})
    assert json.loads((final / "export.json").read_text()) == before


def test_a_run_exports_its_final_and_best_weights_in_bf16(tmp_path: Path, cache_dir: Path) -> None:
    """4 steps with an evaluation every step: hf/best is the earliest step with the highest pooled
    pass@2, hf/final the weights of step 4; both load with from_pretrained and equal the checkpoint's
    fp32 weights rounded to bf16."""
    run_dir = tmp_path / "run"
    records = run_hf(
        run_dir,
        cache_dir,
        ["trainer.steps=4", "trainer.eval_every=1", "trainer.save_every=1", "trainer.keep_checkpoints=4"],
    )
    scores = {r["step"]: r["eval/pass@2"] for r in records if r["step"] >= 1}
    best_step = min(step for step, value in scores.items() if value == max(scores.values()))
    for name, step in (("final", 4), ("best", best_step)):
        folder = run_dir / "hf" / name
        assert json.loads((folder / "export.json").read_text()) == {
            "step": step,
            "metric": "eval/pass@2",
            "value": scores[step],
        }
        assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"
        model = AutoModelForCausalLM.from_pretrained(folder, dtype="auto")
        assert isinstance(model, Qwen3ForCausalLM) and isinstance(model.config, Qwen3Config)
        assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
        checkpoint = run_dir / "checkpoints" / f"step_{step:06d}" / "policy.pt"
        trained = torch.load(checkpoint, weights_only=True)["model"]
        exported = model.state_dict()
        assert set(exported) == set(trained)
        for key, value in trained.items():
            assert torch.equal(exported[key], value.to(torch.bfloat16)), key
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert tokenizer("1+2").input_ids  # the run's tokenizer, loaded by the generic loader
    assert not list((run_dir / "hf").glob("*.tmp"))

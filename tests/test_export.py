"""The bf16 HF exports of a run (`hf/final`, `hf/best`): what they hold, which step is best, and that
any transformers user can load them; plus the helpers' rules (ties, resume, atomic replacement)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from test_train_hf import run_hf
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

from gdro.models.tiny import build_tiny_qwen3
from gdro.train.io.export import best_so_far, bf16_state, write_export

TINY_SHAPE = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 64,
}


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


def test_transient_tensors_at_a_reused_address_keep_their_own_copies() -> None:
    """ZeRO-3's gathered weights are copies freed one after the other (`gathered_parameters`): a later
    copy can land at a freed one's address with the same shape, and must not be taken for a tied pair
    (before the fix, o_proj of layer 0 was exported with another matrix's values)."""
    model = build_tiny_qwen3(61, **TINY_SHAPE, seed=0)

    def gathered():
        for name, parameter in model.named_parameters():
            full = parameter.detach().clone()
            yield name, full

    state = bf16_state(gathered())
    for name, parameter in model.named_parameters():
        assert torch.equal(state[name], parameter.detach().to(torch.bfloat16)), name


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, list[dict]]:
    """4 steps with an evaluation and a checkpoint every step (all kept)."""
    run_dir = tmp_path_factory.mktemp("export") / "run"
    overrides = [
        "trainer.steps=4",
        "trainer.eval_every=1",
        "trainer.save_every=1",
        "trainer.keep_checkpoints=4",
    ]
    return run_dir, run_hf(run_dir, cache_dir, overrides)


def test_a_run_exports_its_final_and_best_weights_in_bf16(exported_run: tuple[Path, list[dict]]) -> None:
    """hf/best is the earliest step with the highest pooled pass@2, hf/final the weights of step 4; both
    load with from_pretrained and equal the checkpoint's fp32 weights rounded to bf16."""
    run_dir, records = exported_run
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


def test_a_failed_export_leaves_the_previous_one_whole(
    exported_run: tuple[Path, list[dict]], tmp_path: Path
) -> None:
    final = tmp_path / "final"
    shutil.copytree(exported_run[0] / "hf" / "final", final)
    before = json.loads((final / "export.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)

    def failing_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    tokenizer.save_pretrained = failing_save  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        write_export(model, tokenizer, bf16_state(model.state_dict().items()), final, {"step": 99})
    assert json.loads((final / "export.json").read_text()) == before

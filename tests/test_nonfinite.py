"""Updates that are not finite are skipped; weights that diverged stop the run before they are saved.

The fault (`nonfinite_faults.poison_updates`) makes every gradient of chosen updates NaN while their loss
stays finite. The broken variant these tests reject is the trainer before the guard: it applied a NaN
update (every weight NaN from then on), wrote it into `checkpoints/latest`, and died a step later in
torch's sampler ("probability tensor contains either inf, nan or element < 0"), as would every resume.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conf_helpers import compose_config
from nonfinite_faults import poison_updates
from test_train_hf import QUICK, run_hf

from gdro.config import parse_run_config
from gdro.engines.base import Decoding
from gdro.engines.hf import _FiniteLogits
from gdro.errors import NonFiniteError
from gdro.train.build import build_learner
from gdro.train.io.checkpoint import list_checkpoints
from gdro.train.io.metrics import read_metrics
from gdro.train.nonfinite import NonFiniteGuard

SETTINGS = ["trainer.steps=4", "trainer.save_every=1", "trainer.eval_every=1000"]  # 2 updates a step


def policy_state(checkpoint: Path) -> dict:
    return torch.load(checkpoint / "policy.pt", weights_only=True)


def assert_finite_checkpoint(checkpoint: Path) -> dict:
    """policy.pt's weights and Adam moments are finite; returns the state."""
    state = policy_state(checkpoint)
    assert all(torch.isfinite(value).all() for value in state["model"].values()), checkpoint
    for moments in state["optimizer"]["state"].values():
        assert all(torch.isfinite(value).all() for value in moments.values()), checkpoint
    return state


def test_skipped_updates_are_counted_and_the_third_in_a_row_stops_a_run_that_resumes(
    tmp_path: Path, cache_dir: Path
) -> None:
    """Updates 2 (alone) and 5, 6, 7 (in a row) poisoned: step 1 skips one and goes on, step 3 skips two,
    step 4's first update is the third in a row: the run stops there, `latest` names step 3 (finite, its
    Adam state advanced by the 3 applied updates only), and resume=auto trains step 4 and continues the
    count."""
    undo = poison_updates({2, 5, 6, 7})
    try:
        with pytest.raises(NonFiniteError, match=r"^step 4: .*3 updates in a row") as stopped:
            run_hf(tmp_path, cache_dir, SETTINGS)
    finally:
        undo()
    for setting in ("trainer.lr", "model.dtype", "trainer.clip_ratio_c", "trainer.grad_clip"):
        assert setting in str(stopped.value)
    assert stopped.value.last_finite_loss is not None and math.isfinite(stopped.value.last_finite_loss)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["optim/nonfinite_skips"] for r in records[1:]] == [1, 0, 2]
    assert [r["optim/nonfinite_skips_total"] for r in records[1:]] == [1, 1, 3]
    assert all(math.isfinite(r["loss/total"]) for r in records[1:])  # the loss stayed finite: the norm
    assert math.isnan(records[3]["loss/grad_norm"])
    root = tmp_path / "checkpoints"
    assert (root / "latest").read_text().strip() == "step_000003"
    for name in list_checkpoints(root):
        assert_finite_checkpoint(root / name)
    state = policy_state(root / "step_000003")
    assert state["nonfinite"] == {"total": 3, "consecutive": 2, "last_finite_loss": pytest.approx(
        stopped.value.last_finite_loss)}  # fmt: skip
    assert {float(m["step"]) for m in state["optimizer"]["state"].values()} == {3.0}  # 6 updates, 3 applied

    resumed = run_hf(tmp_path, cache_dir, [*SETTINGS, "resume=auto"])
    assert [r["step"] for r in resumed] == [0, 1, 2, 3, 4]
    assert resumed[4]["optim/nonfinite_skips"] == 0 and resumed[4]["optim/nonfinite_skips_total"] == 3
    assert_finite_checkpoint(root / "step_000004")


def test_a_diverged_learning_rate_ends_with_the_projects_error_and_finite_checkpoints(
    tmp_path: Path, cache_dir: Path
) -> None:
    """trainer.lr=1e38: one finite, enormous update, then every backward overflows; the run stops with
    NonFiniteError (not torch's sampler error) and every checkpoint it saved on the way is finite."""
    with pytest.raises(NonFiniteError, match=r"^step \d+: "):
        run_hf(tmp_path, cache_dir, ["trainer.lr=1e38", "trainer.steps=8", "trainer.save_every=1"])
    root = tmp_path / "checkpoints"
    assert list_checkpoints(root)
    for name in list_checkpoints(root):
        assert_finite_checkpoint(root / name)


def test_nan_weights_stop_generation_log_probs_checkpoints_and_exports(
    tmp_path: Path, cache_dir: Path
) -> None:
    """The engine's logits, the old log-probs and `ensure_finite` name the problem; nothing is exported."""
    learner = build_learner(parse_run_config(compose_config([*QUICK, f"cache_dir={cache_dir}"])))
    try:
        with torch.no_grad():
            next(learner.model.parameters()).fill_(float("nan"))
        prompt = learner.task.prompt_token_ids[0]
        with pytest.raises(NonFiniteError, match="rollout engine's next-token logits are not finite"):
            learner.engine.generate([prompt], [2], Decoding(temperature=1.0, max_new_tokens=4))
        with pytest.raises(NonFiniteError, match="^step 0: the rollout engine's"):
            learner.evaluate()  # the evaluation before step 1
        with pytest.raises(NonFiniteError, match="log-probs of the rollouts"):
            learner.actor.logprobs([prompt], [prompt[:3]])
        with pytest.raises(NonFiniteError, match="^step 0: the weights or the optimizer state"):
            learner.ensure_finite()
        with pytest.raises(NonFiniteError):
            learner.export(tmp_path / "hf" / "final", {"step": 0})
        assert not (tmp_path / "hf").exists()
    finally:
        learner.close()


def test_the_guard_resets_on_an_applied_update_and_continues_its_count_from_a_state() -> None:
    guard = NonFiniteGuard(max_consecutive=2)
    guard.observe(1, 1, 2, float("nan"), 1.0, skipped=True)
    guard.observe(1, 2, 2, 0.5, 1.0, skipped=False)
    guard.observe(2, 1, 2, 0.1, float("inf"), skipped=True)
    restored = NonFiniteGuard(max_consecutive=2)
    restored.load_state_dict(guard.state_dict())
    assert (restored.total, restored.consecutive, restored.last_finite_loss) == (2, 1, 0.5)
    with pytest.raises(NonFiniteError, match=r"^step 2: .*mini-batch 2 of 2.*last finite update loss: 0.5"):
        restored.observe(2, 2, 2, 0.1, float("nan"), skipped=True)


WORKER = Path(__file__).parent / "workers" / "nonfinite_ranks.py"


def finite_tree(value: object) -> bool:
    """Every floating-point tensor in a nest of dicts, lists and tuples is finite."""
    if torch.is_tensor(value):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    if isinstance(value, dict):
        return all(finite_tree(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(finite_tree(item) for item in value)
    return True


def test_two_deepspeed_ranks_skip_the_updates_one_rank_poisons_stop_and_resume(
    tmp_path: Path, cache_dir: Path
) -> None:
    """ZeRO-2 and ZeRO-3 on 2 ranks (one launch, `workers/nonfinite_ranks.py`), rank 1 alone poisoned:
    both ranks skip the same updates (the run's counts equal one process's), both stop at step 4 with
    the error, `latest` names step 3 whose shards (weights and optimizer partitions) are finite, and the
    unpoisoned rerun resumes from it to the end, continuing the count."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    result = subprocess.run(
        [*command, str(WORKER), str(tmp_path), str(cache_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for stage in (2, 3):
        for rank in (0, 1):
            report = json.loads((tmp_path / f"zero{stage}_rank{rank}.json").read_text())
            assert report["error"] is not None and report["error"].startswith("step 4: "), (stage, rank)
            assert "3 updates in a row" in report["error"]
            assert report["latest_after_stop"] == "step_000003"
        run_dir = tmp_path / f"zero{stage}"
        records = read_metrics(run_dir / "metrics.jsonl")
        assert [r["step"] for r in records] == [0, 1, 2, 3, 4]
        assert [r["optim/nonfinite_skips"] for r in records[1:]] == [1, 0, 2, 0]
        assert [r["optim/nonfinite_skips_total"] for r in records[1:]] == [1, 1, 3, 3]
        root = run_dir / "checkpoints"
        for name in list_checkpoints(root):
            for shard in (root / name / "deepspeed").glob("*.pt"):
                assert finite_tree(torch.load(shard, weights_only=False)), shard
        assert policy_state(root / "step_000004")["nonfinite"]["total"] == 3


def test_the_engines_logit_check_rejects_nan_plus_inf_and_rows_with_nothing_left() -> None:
    """Top-k / top-p set some scores to -inf on purpose: those pass; NaN, +inf, or a row all -inf do not."""
    inf = float("inf")
    check = _FiniteLogits()
    fine = torch.tensor([[1.0, -inf, 2.0], [0.5, 0.5, -inf]])
    assert check(None, fine) is fine
    for broken in ([[1.0, float("nan"), 2.0]], [[1.0, inf, 2.0]], [[-inf, -inf, -inf]]):
        with pytest.raises(NonFiniteError, match="next-token logits are not finite"):
            check(None, torch.tensor([[0.0, 1.0, 2.0], *broken]))

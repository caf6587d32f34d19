"""`torchrun --nproc_per_node=2 train.py trainer.backend=deepspeed` on the embedded task (CPU, gloo).

Two ranks split each step's prompt groups; every rank must hold the same controller state at each
checkpoint (the loop stops otherwise, so a divergence fails the run), rank 0 alone writes the run
folder, and resuming from a 2-rank checkpoint (DeepSpeed shards + every rank's RNG) gives the metrics
of the uninterrupted run, also past a newer checkpoint with a corrupt shard (`resume: auto` falls back);
rank 0 exports the final weights (hf/final). Under ZeRO-3 (the actor loaded partitioned, each rank
generating on a whole copy synced after every update) the run repeats ZeRO-2's records and exports the
weights its checkpoint shards hold.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from conf_helpers import SOME_GROUPS_MIXED, run_train_py
from test_train_hf import QUICK
from transformers import AutoModelForCausalLM

from gdro.train.io.checkpoint import load_checkpoint

SETTINGS = [
    *QUICK,  # the small embedded run of test_train_hf
    "trainer.backend=deepspeed",
    "trainer.save_every=2",
    "trainer.eval_every=2",
    "trainer.steps=4",
    "allocator=rollout_gdro",  # unequal n_i: the ranks' shares of rollouts differ
    "trainer.torch_threads=1",  # one per rank on 2 cores: oversubscribed ranks wait long in ZeRO-3's gathers
    # full rate from step 1: step 2 samples other tokens when the rollout copy misses the first update
    "trainer.lr=0.001",
    "trainer.warmup_steps=0",
]


def torchrun_train(run_dir: Path, cache: Path, extra: list[str]) -> list[dict]:
    """`torchrun --standalone --nproc_per_node=2 train.py ...`; the run's metrics.jsonl records."""
    return run_train_py(run_dir, [*SETTINGS, f"cache_dir={cache}", *extra], timeout=600, ranks=2)


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, list[dict]]:
    run_dir = tmp_path_factory.mktemp("two-ranks") / "straight"
    return run_dir, torchrun_train(run_dir, cache_dir, [])


def test_two_ranks_train_the_whole_batch_and_rank_0_writes(straight: tuple[Path, list[dict]]) -> None:
    run_dir, records = straight
    assert [r["step"] for r in records] == [0, 1, 2, 3, 4]
    for record in records[1:]:
        assert record["rollouts/total"] == 4 * 8  # nbar x M: both ranks' groups are in the outcome
        assert math.isfinite(record["loss/total"]) and record["tokens/generated"] > 0
    assert "eval/pass@2" in records[2] and "eval/pass@2" in records[4]
    checkpoint = run_dir / "checkpoints" / "step_000004"
    shards = sorted(p.name for p in (checkpoint / "deepspeed").iterdir())
    assert shards == [
        "mp_rank_00_model_states.pt",
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]
    # rank 0 exported the final weights in bf16: DeepSpeed's model states, rounded
    final = run_dir / "hf" / "final"
    assert json.loads((final / "export.json").read_text())["step"] == 4
    exported = AutoModelForCausalLM.from_pretrained(final, dtype="auto").state_dict()
    states = torch.load(checkpoint / "deepspeed" / "mp_rank_00_model_states.pt", weights_only=False)
    assert set(exported) == set(states["module"])
    for key, value in states["module"].items():
        assert torch.equal(exported[key], value.to(torch.bfloat16)), key


def test_resuming_past_a_corrupt_shard_gives_the_uninterrupted_metrics(
    straight: tuple[Path, list[dict]], tmp_path: Path, cache_dir: Path
) -> None:
    """A copy of the run whose step-4 checkpoint has a flipped bit in rank 1's optimizer shard, stopped
    before its last record: `resume: auto` (both ranks verifying a share of the files) skips step 4, keeps
    it aside and resumes from step 2's shards and every rank's RNG, to the uninterrupted metrics."""
    run_dir, records = straight
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed_dir)
    shard = (
        resumed_dir
        / "checkpoints"
        / "step_000004"
        / "deepspeed"
        / "zero_pp_rank_1_mp_rank_00_optim_states.pt"
    )
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x10
    shard.write_bytes(bytes(data))
    metrics = resumed_dir / "metrics.jsonl"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:-1]))
    resumed = torchrun_train(resumed_dir, cache_dir, [])
    assert [r["step"] for r in resumed] == [0, 1, 2, 3, 4]
    assert (resumed_dir / "checkpoints" / "step_000004.bad-digest" / "deepspeed" / shard.name).is_file()
    assert "at step 2" in (resumed_dir / "train.log").read_text()
    for expected, got in zip(records[3:], resumed[3:], strict=True):
        keys = [k for k in expected if not k.startswith("time/")]
        assert {k: got[k] for k in keys} == {k: expected[k] for k in keys}


def test_a_two_rank_checkpoint_is_refused_by_one_process(straight: tuple[Path, list[dict]]) -> None:
    run_dir, _ = straight
    with pytest.raises(ValueError, match="saved by 2 rank"):
        load_checkpoint(run_dir / "checkpoints" / "step_000002", curriculum=None, learner=None)  # type: ignore[arg-type]


def test_zero3_repeats_the_zero2_run_and_exports_its_shards(
    straight: tuple[Path, list[dict]], tmp_path: Path, cache_dir: Path
) -> None:
    """Same rollouts, rewards, curriculum and evaluations as ZeRO-2 over 2 steps; the losses and gradient
    norms agree to float32 reduction order (measured at lr 1e-3: 3e-6 relative, in loss/kl, which comes
    from the partitioned reference under ZeRO-3)."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    _, zero2 = straight
    run_dir = tmp_path / "zero3"
    records = torchrun_train(run_dir, cache_dir, ["deepspeed=zero3", "trainer.steps=2"])
    assert [r["step"] for r in records] == [0, 1, 2]
    for expected, got in zip(zero2, records, strict=False):
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            if key.startswith(("loss/", "signal/")):
                assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-9), key
            elif not key.startswith("time/"):
                assert got[key] == value, key
    checkpoint = run_dir / "checkpoints" / "step_000002"
    shards = sorted(p.name for p in (checkpoint / "deepspeed").iterdir())
    assert shards == [
        f"zero_pp_rank_{r}_mp_rank_00_{kind}_states.pt" for r in (0, 1) for kind in ("model", "optim")
    ]
    states = get_fp32_state_dict_from_zero_checkpoint(str(checkpoint), tag="deepspeed")
    exported = AutoModelForCausalLM.from_pretrained(run_dir / "hf" / "final", dtype="auto").state_dict()
    assert set(exported) == set(states)
    for key, value in states.items():
        assert torch.equal(exported[key], value.to(torch.bfloat16)), key


def test_two_ranks_keep_the_same_groups_under_dynamic_sampling(tmp_path: Path, cache_dir: Path) -> None:
    """Each rank generates its share of every round; both decide the kept groups from the gathered counts
    (a divergence would fail the controllers' digest check at the step-2 checkpoint), and each trains the
    kept groups it generated: the step still trains M groups, the discarded rest is counted."""
    rounds = ["filter.gen_batch_size=12", "filter.max_gen_batches=3", "filter.on_exhausted=train"]
    extra = [
        "method=dapo_dynamic_sampling",
        "allocator=fixed",
        "trainer.steps=2",
        *SOME_GROUPS_MIXED,
        *rounds,
    ]
    records = torchrun_train(tmp_path / "filtered", cache_dir, extra)
    assert [r["step"] for r in records] == [0, 1, 2]
    for record in records[1:]:
        assert record["compute/rollouts_generated"] == record["compute/gen_batches"] * 12 * 4
        trained = record["rollouts/prompts"]
        assert trained == 8 if not record["filter/exhausted"] else trained == record["filter/kept_groups"]
        assert record["rollouts/informative_fraction"] == 1.0 and math.isfinite(record["loss/total"])
    assert any(record["compute/gen_batches"] > 1 for record in records[1:])

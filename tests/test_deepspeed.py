"""DeepSpeed ZeRO-2 and ZeRO-3 on two CPU ranks (torchrun, gloo) against one process on the union of the data.

The worker (`tests/workers/zero_equivalence.py`) gives rank 0 three rows and rank 1 seven, cut into
different numbers of micro-batches, for every loss_agg mode; the pre-clip gradient norms must match the
single-process reference at every step (Adam and clipping would hide a normalisation error in the
parameters; the norm shows it: the unscaled control is off by 2x), as must the gathered parameters.
Both stages run in one 2-rank launch; under ZeRO-3 it also loads a saved model partitioned.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gdro.core.grpo import LOSS_AGGREGATIONS

WORKER = Path(__file__).parent / "workers" / "zero_equivalence.py"
PARAMETER_TOLERANCE = {2: 2e-6, 3: 2e-5}  # fp32; ZeRO-3 reduces in a different order


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 2-rank launch for both stages: the folder holding zero2.json and zero3.json."""
    folder = tmp_path_factory.mktemp("zero")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    result = subprocess.run(
        [*command, str(WORKER), str(folder)], capture_output=True, text=True, timeout=600, cwd=folder
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return folder


@pytest.fixture(params=[2, 3], ids=lambda stage: f"zero{stage}")
def report(request: pytest.FixtureRequest, reports: Path) -> dict:
    return json.loads((reports / f"zero{request.param}.json").read_text())


@pytest.mark.parametrize("loss_agg", LOSS_AGGREGATIONS)
def test_two_ranks_equal_one_process_on_the_union(report: dict, loss_agg: str) -> None:
    mode = report["modes"][loss_agg]
    assert report["world"] == 2
    assert mode["norms"] == pytest.approx(mode["reference_norms"], rel=1e-5)
    assert mode["moved"] > 0.01  # the updates did something ...
    assert mode["max_parameter_difference"] < PARAMETER_TOLERANCE[report["stage"]]  # ... and the same


def test_training_needs_no_compiled_shared_memory_op(report: dict) -> None:
    """DeepSpeed's CPU all-reduce op serves inference only; deepspeed_module() spares its g++ build."""
    assert report["shm_op_built"] is False


def test_a_missing_rank_scaling_shows_in_the_gradient_norm(report: dict) -> None:
    reference = report["modes"]["token-mean"]["reference_norms"]
    assert report["unscaled_norms"][0] == pytest.approx(reference[0] / 2, rel=1e-5)


def test_zero3_partitions_the_parameters_and_every_rank_gathers_the_same(report: dict) -> None:
    for mode in report["modes"].values():
        assert mode["digests"][0] == mode["digests"][1]
        expected_local = 0 if report["stage"] == 3 else mode["full_elements"]
        assert mode["local_elements"] == expected_local


def test_resume_from_a_deepspeed_checkpoint_equals_the_uninterrupted_run(report: dict) -> None:
    resume = report["resume"]
    assert resume["resumed_norms"] == resume["straight_norms"]
    assert resume["max_parameter_difference"] == 0.0


def test_zero3_loads_a_saved_model_partitioned(reports: Path) -> None:
    loading = json.loads((reports / "zero3.json").read_text())["partitioned_loading"]
    assert loading["local_elements"] == 0  # every parameter is a shard placeholder on this rank ...
    assert loading["digest"] == loading["saved_digest"]  # ... and the shards hold the saved weights
    assert loading["elements_after"] == loading["full_elements"]  # outside the context: whole again
    # the frozen reference stays partitioned on both ranks and scores rows as the whole model does
    assert loading["reference_local_elements"] == 0
    assert loading["reference_logprob_difference"] < 1e-6

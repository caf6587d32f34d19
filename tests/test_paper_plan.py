"""The reproduction plans (experiments/*.yaml) and `scripts/paper_grid.py`: the dry run of Table 1 at 1.7B
job by job, every cell of the ablation plan composes at every scale, broken plans fail before anything launches,
the GPU-hour model against values computed by hand, and the multiruns really launch into the plan's folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conf_helpers import CONF_DIR, compose_config, load_script
from hydra.errors import MissingConfigException

from gdro.analysis.results.cost import CostModel, estimate_gpu_hours, evaluations
from gdro.analysis.results.methods import method_key
from gdro.analysis.results.plan import load_plan, resolve_cells, select_methods, select_scales
from gdro.analysis.results.runs import load_result
from gdro.config import ConfigError

REPO = CONF_DIR.parent
TABLE1 = REPO / "experiments" / "paper_table1.yaml"
ABLATIONS = REPO / "experiments" / "paper_ablations.yaml"
BENCHMARK_PROMPTS = 500 + 30 + 30 + 40 + 272 + 675 + 198  # E = 1745, the seven benchmarks
# One 1.7B run of the paper setting, by hand: T = 256 x 4 x (250 + 1500) = 1,792,000 tokens per step;
# G = 1000 x 2 x 1.72e9 x T = 6.16448e18 FLOPs at 0.10 x 989e12 FLOP/s -> 62,330 s = 17.3140 GPU-h;
# U = 1000 x (2 + 2 + 6 + 2) x 1.72e9 x T = 3.698688e19 at 0.35 x 989e12 -> 106,852 s = 29.6812 GPU-h;
# Q = 21 evaluations x 1745 x 8 x 2 x 1.72e9 x 1750 = 1.7648232e18 at 0.10 x 989e12 -> 4.9568 GPU-h.
HAND_1_7B = {"generation": 17.3140, "training": 29.6812, "evaluation": 4.9568}
HAND_1_7B_TOTAL = 51.9520


paper_grid = load_script("paper_grid")


def _cost_model() -> CostModel:
    return load_plan(TABLE1).cost


def test_gpu_hours_by_hand() -> None:
    """The formula of gdro.analysis.results.cost on the paper's 1.7B setting, then with overrides that change each
    term: no KL and two PPO epochs give c = 2 + 0 + 2 (6 + 2) = 18 against 12, eval_every 300
    evaluates at 0, 300, 600, 900 and 1000 (V = 5, not the 4 of floor(K / eval_every) + 1)."""
    config = compose_config(["experiment=paper", "model=qwen3_1.7b"])
    cost = estimate_gpu_hours(config, 1.72e9, _cost_model())
    for phase, hours in HAND_1_7B.items():
        assert getattr(cost, phase) == pytest.approx(hours, abs=1e-4)
    assert cost.total == pytest.approx(HAND_1_7B_TOTAL, abs=1e-4)
    changed = compose_config(
        [
            "experiment=paper",
            "model=qwen3_1.7b",
            "trainer.kl_coef=0",
            "trainer.ppo_epochs=2",
            "trainer.eval_every=300",
        ]
    )
    other = estimate_gpu_hours(changed, 1.72e9, _cost_model())
    assert other.generation == pytest.approx(cost.generation)
    assert other.training == pytest.approx(cost.training * 18 / 12)
    assert other.evaluation == pytest.approx(cost.evaluation * 5 / 21)
    assert (evaluations(1000, 300), evaluations(1000, 50), evaluations(3, 3)) == (5, 21, 2)
    nbar = estimate_gpu_hours(
        compose_config(["experiment=paper", "model=qwen3_1.7b", "allocator.nbar=8"]), 1.72e9, _cost_model()
    )
    assert nbar.generation == pytest.approx(2 * cost.generation)
    assert nbar.evaluation == pytest.approx(cost.evaluation)


def test_dry_run_of_table1_at_1_7b_lists_every_job(capsys: pytest.CaptureFixture[str]) -> None:
    """`make paper-table1 SCALE=1.7b SEEDS=3 DRY=1`: 9 jobs, the hub id, the paper's sampler and
    allocator per method, 8 GPUs, the hand-computed GPU-hours, the totals and the three multiruns."""
    status = paper_grid.main(
        ["--plan", str(TABLE1), "--scale", "1.7b", "--seeds", "3", "--launcher", "slurm", "--dry"]
    )
    assert status == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    first = lines.index(next(line for line in lines if line.startswith("scale ")))
    jobs = [line.split() for line in lines[first + 1 : lines.index("", first)]]
    expected = {
        "GRPO": ("uniform", "fixed"),
        "Prompt-GDRO": ("prompt_gdro_paper", "fixed"),
        "Rollout-GDRO": ("uniform", "rollout_gdro_paper"),
    }
    assert [(job[1], int(job[2])) for job in jobs] == [(m, s) for m in expected for s in range(3)]
    for _, method, _, model, dataset, sampler, allocator, gpus, hours in jobs:
        assert (model, dataset) == ("Qwen/Qwen3-1.7B-Base", "open-r1/DAPO-Math-17k-Processed")
        assert (sampler, allocator) == expected[method]
        assert (gpus, hours) == ("8", f"{HAND_1_7B_TOTAL:.1f}")
    assert f"total 1.7b: 9 jobs, {9 * HAND_1_7B_TOTAL:.1f} GPU-h" in out
    assert (
        "  python train.py -m experiment=paper trainer.backend=deepspeed policy.engine=vllm model=qwen3_1.7b "
        "method=rollout_gdro_paper seed=0,1,2 "
        "hydra/launcher=slurm hydra.launcher.gpus_per_node=8 hydra.launcher.tasks_per_node=8 "
        "hydra.sweep.dir=outputs/paper_table1/1.7b/rollout_gdro"
    ) in out


def test_ablation_plan_composes_at_every_scale() -> None:
    """Every cell of the ablation plan composes, validates and trains its scale's model; each keeps the
    paper's Appendix A settings (the trainer and budget of the GRPO experiment) and differs in the method
    only."""
    expected = [
        "uniform + fixed",
        "prompt_gdro + fixed",
        "prompt_gdro [resample] + fixed",
        "uniform + rollout_gdro",
        "uniform + sqrt_optimal",
        "prompt_gdro + rollout_gdro",
    ]
    hub_ids = {"1.7b": "Qwen/Qwen3-1.7B-Base", "4b": "Qwen/Qwen3-4B-Base", "8b": "Qwen/Qwen3-8B-Base"}
    plan = load_plan(ABLATIONS)
    cells = resolve_cells(plan, select_scales(plan, "all"), select_methods(plan, None))
    assert [c.scale.name for c in cells] == [scale for scale in hub_ids for _ in expected]
    for scale in hub_ids:
        scale_cells = [c for c in cells if c.scale.name == scale]
        assert [method_key(c.config) for c in scale_cells] == expected
        grpo = scale_cells[0].config
        for cell in scale_cells:
            assert cell.config["model"]["hf_id"] == hub_ids[scale]
            assert (cell.config["trainer"], cell.config["classifier"]) == (
                grpo["trainer"],
                grpo["classifier"],
            )
            budget = {k: cell.config["allocator"][k] for k in ("nbar", "n_min", "n_max")}
            assert budget == {"nbar": 4, "n_min": 2, "n_max": 12}
            assert cell.cost.total == pytest.approx(scale_cells[0].cost.total)


def _write_plan(path: Path, **changes) -> Path:
    data = yaml.safe_load(TABLE1.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data))
    return path


def test_broken_plans_fail_the_dry_run(tmp_path: Path) -> None:
    """A group choice that does not exist fails with Hydra's composition error, a config that composes
    but does not validate with the config's error, a method of another model with the plan's check."""
    methods = yaml.safe_load(TABLE1.read_text())["methods"]
    argv = ["--scale", "1.7b", "--seeds", "3", "--dry"]
    broken = {
        **methods,
        "prompt_gdro": {"name": "P", "overrides": ["method=grpo", "sampler=nope"]},
    }
    with pytest.raises(MissingConfigException, match="nope"):
        paper_grid.main(["--plan", str(_write_plan(tmp_path / "a.yaml", methods=broken)), *argv])
    invalid = _write_plan(tmp_path / "b.yaml", common=["trainer.backend=gpu"])
    with pytest.raises(ConfigError, match="trainer.backend='gpu'"):
        paper_grid.main(["--plan", str(invalid), *argv])
    wrong = {**methods, "grpo": {"name": "GRPO", "overrides": ["model=qwen3_4b", "method=grpo"]}}
    with pytest.raises(ValueError, match="trains model 'qwen3_4b', the scale's is 'qwen3_1.7b'"):
        paper_grid.main(["--plan", str(_write_plan(tmp_path / "c.yaml", methods=wrong)), *argv])
    with pytest.raises(ValueError, match="baseline 'nope'"):
        load_plan(_write_plan(tmp_path / "d.yaml", baseline="nope"))


SIM_PLAN = {
    "name": "sim_plan",
    "title": "the simulator",
    "scales": {"sim": {"model": "tiny", "parameters": 1.0e6}},
    "methods": {
        "prompt_gdro": {"name": "Prompt-GDRO", "overrides": ["sampler=prompt_gdro"]},
        # composes (hydra.* only shapes the launch), but Hydra refuses the launch: the grid stops here
        "grpo": {"name": "GRPO", "overrides": ["hydra.launcher.no_such_key=1"]},
        "rollout_gdro": {"name": "Rollout-GDRO", "overrides": ["allocator=rollout_gdro"]},
    },
    "baseline": "grpo",
    "common": [
        "policy=sim",
        "logger=none",
        "policy.num_prompts=64",
        "trainer.steps=3",
        "trainer.eval_every=3",
    ],
    "gpus_per_job": 1,
    "paper": {},
    "cost": {
        "prompt_tokens": 10,
        "response_tokens": 20,
        "peak_flops": 1.0e12,
        "generation_utilization": 0.1,
        "train_utilization": 0.5,
        "eval_prompts": {},
    },
}


def test_the_grid_launches_its_multiruns_into_the_plan_folders(tmp_path: Path) -> None:
    """Without --dry: one Hydra multirun per cell (Hydra's basic launcher), each seed a finished run in
    ROOT/<scale>/<method>/<n> with the cell's config; the cell whose launch fails stops the grid, so the
    cell after it never starts."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(SIM_PLAN, sort_keys=False))
    root = tmp_path / "runs"
    argv = [
        "--plan",
        str(plan),
        "--scale",
        "sim",
        "--seeds",
        "2",
        "--launcher",
        "basic",
        "--sweep-root",
        str(root),
    ]
    assert paper_grid.main(argv) != 0
    config = compose_config([*SIM_PLAN["common"], "sampler=prompt_gdro"])
    for seed in (0, 1):
        run = load_result(root / "sim" / "prompt_gdro" / str(seed))
        assert (run.seed, run.steps, run.method) == (seed, 3, "prompt_gdro + fixed")
        assert run.config == {**config, "seed": seed}
    assert [p.name for p in (root / "sim").iterdir()] == ["prompt_gdro"]

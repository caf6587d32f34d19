"""gdro.analysis.results: Student-t intervals, gains paired by seed, the RESULTS.md tables on synthetic run folders
with known numbers, and `scripts/reproduce_sim.py` end to end at CI size (the pipeline of
`make reproduce-sim`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conf_helpers import compose_config, load_script

from gdro.analysis.results.methods import GRPO, METHODS, method_key
from gdro.analysis.results.report import Provenance, results_markdown, write_results
from gdro.analysis.results.runs import find_run_dirs, group_by_method, load_result
from gdro.analysis.results.stats import (
    Estimate,
    mean_interval,
    paired_gain,
    student_t_central_probability,
    student_t_quantile,
)
from gdro.analysis.results.sweep import (
    compose_run_config,
    plan_sweep,
    run_sweep,
    sim_budget_overrides,
    sim_overrides,
)
from gdro.analysis.results.table import checkpoint_values, format_estimate, summarize
from gdro.train.io.metrics import read_metrics

# Two-sided 95% quantiles t_{0.975, nu} from published tables (and t_{0.995, 10}, t_{0.9, 30}).
T_TABLE = {
    (0.975, 1): 12.706205,
    (0.975, 2): 4.302653,
    (0.975, 3): 3.182446,
    (0.975, 4): 2.776445,
    (0.975, 9): 2.262157,
    (0.975, 19): 2.093024,
    (0.995, 10): 3.169273,
    (0.9, 30): 1.310415,
    (0.975, 1000): 1.962339,
}


@pytest.mark.parametrize(("probability", "dof"), sorted(T_TABLE))
def test_t_quantile_matches_published_tables(probability: float, dof: int) -> None:
    """Rejects the normal quantile (1.959964 for every nu): off by 0.13 at nu = 19."""
    assert student_t_quantile(probability, dof) == pytest.approx(T_TABLE[probability, dof], abs=1e-6)
    assert student_t_quantile(1.0 - probability, dof) == pytest.approx(-T_TABLE[probability, dof], abs=1e-6)


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 5, 8, 19])
def test_t_central_probability_integrates_the_density(dof: int) -> None:
    """A(t | nu) against the trapezoid integral of the t density over [-t, t], odd and even nu."""
    x = np.linspace(-3.0, 3.0, 600_001)
    density = math.gamma((dof + 1) / 2) / (math.sqrt(dof * math.pi) * math.gamma(dof / 2))
    density = density * (1.0 + x**2 / dof) ** (-(dof + 1) / 2)
    assert student_t_central_probability(3.0, dof) == pytest.approx(np.trapezoid(density, x), abs=1e-9)


def test_mean_interval_and_paired_gain_by_hand() -> None:
    values = [0.5, 0.6, 0.7, 0.55, 0.65]  # mean 0.6, s^2 = 0.025 / 4
    estimate = mean_interval(values)
    assert estimate.mean == pytest.approx(0.6)
    assert estimate.half_width == pytest.approx(2.776445 * math.sqrt(0.025 / 4) / math.sqrt(5), abs=1e-6)
    assert (estimate.n, math.isnan(mean_interval([0.3]).half_width)) == (5, True)
    # Paired over the shared seeds {1, 2, 3} only: differences 0.05, 0.03, 0.04.
    gain = paired_gain({1: 0.55, 2: 0.63, 3: 0.74, 9: 0.0}, {0: 0.9, 1: 0.5, 2: 0.6, 3: 0.7})
    assert (gain.n, gain.mean) == (3, pytest.approx(0.04))
    assert gain.half_width == pytest.approx(4.302653 * 0.01 / math.sqrt(3), abs=1e-6)


def test_format_estimate() -> None:
    assert format_estimate(Estimate(0.61234, 0.01, 5), 4) == "0.6123 ± 0.0100"
    assert format_estimate(Estimate(-1e-6, 1e-7, 5), 3, signed=True) == "+0.000 ± 0.000"  # not -0.000
    assert format_estimate(Estimate(0.5, math.nan, 1), 3) == "0.500"
    assert format_estimate(Estimate(math.nan, math.nan, 0), 3) == "-"


# Synthetic runs: final pooled pass@8 per seed; step 10 reads final - 0.1, except GRPO seed 2 (0.75, its best).
GRPO_FINAL = [0.5, 0.6, 0.7, 0.55, 0.65]
PROMPT_GDRO_FINAL = [g + d for g, d in zip(GRPO_FINAL, [0.1, 0.12, 0.08, 0.1, 0.1], strict=True)]
ROLLOUT_GDRO_FINAL = [0.55, 0.63, 0.74]  # seeds 0-2 only: gains 0.05, 0.03, 0.04


def write_synthetic_run(run_dir: Path, overrides: list[str], seed: int, final: float, step_10: float) -> None:
    """20 steps of 256 rollouts, 100 (seed + 1) tokens and 0.5 s each; evals at 0, 10, 20 with pass@8
    pooled `final` at 20, level_0 = pooled + 0.2, level_1 = pooled - 0.2, and mean@8 = pass@8 - 0.3.
    Adversary activity at step t: largest w_i 1 + t / 10, per-bin mean n_i 4 and 4 + seed (bin 1 absent),
    mean |surrogate| 2e-4 t."""
    config = compose_config(
        ["policy=sim", "trainer.steps=20", "trainer.eval_every=10", f"seed={seed}", *overrides]
    )
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    pooled = {0: 0.3, 10: step_10, 20: final}
    records = []
    for step in range(21):
        record = {"step": step}
        if step >= 1:
            record.update(
                {
                    "rollouts/total": 256,
                    "tokens/generated": 100 * (seed + 1),
                    "time/step_seconds": 0.5,
                    "advantage/weight_max": 1.0 + step / 10,
                    "bins/rollouts_per_prompt": [4.0, None, 4.0 + seed],
                    "signal/surrogate_abs_mean": 2e-4 * step,
                }
            )
        if step in pooled:
            for metric, shift in (("pass@8", 0.0), ("mean@8", -0.3)):
                value = pooled[step] + shift
                record.update({f"eval/{metric}": value, f"eval/{metric}/level_0": value + 0.2})
                record[f"eval/{metric}/level_1"] = value - 0.2
            record["eval_rollout/pass@8"] = 0.0  # not read
        records.append(record)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module")
def synthetic_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for seed, final in enumerate(GRPO_FINAL):
        write_synthetic_run(root / "grpo" / str(seed), [], seed, final, 0.75 if seed == 2 else final - 0.1)
    for seed, final in enumerate(PROMPT_GDRO_FINAL):
        write_synthetic_run(root / "pg" / str(seed), ["sampler=prompt_gdro"], seed, final, final - 0.1)
    for seed, final in enumerate(ROLLOUT_GDRO_FINAL):
        write_synthetic_run(root / "rg" / str(seed), ["allocator=rollout_gdro"], seed, final, final - 0.1)
    return root


def test_tables_give_the_known_means_intervals_and_paired_gains(synthetic_runs: Path) -> None:
    """Rejects an unpaired gain (Welch's interval on the same numbers is +-0.10, not +-0.0176) and a best
    checkpoint read at the final step or at step 0."""
    groups = group_by_method(load_result(d) for d in find_run_dirs(synthetic_runs))
    assert list(groups) == [GRPO.key, "prompt_gdro + fixed", "uniform + rollout_gdro"]
    summaries = summarize(groups, GRPO.key, ["pass@8", "mean@8"])
    grpo, prompt_gdro, rollout_gdro = summaries
    t4 = 2.776445
    final = grpo.values["pass@8", "final"]
    assert final["pooled"].mean == pytest.approx(0.6)
    assert final["pooled"].half_width == pytest.approx(
        t4 * np.std(GRPO_FINAL, ddof=1) / math.sqrt(5), abs=1e-6
    )
    assert final[0].mean == pytest.approx(0.8) and final[1].mean == pytest.approx(0.4)
    best = [0.5, 0.6, 0.75, 0.55, 0.65]
    assert grpo.values["pass@8", "best"]["pooled"].mean == pytest.approx(np.mean(best))
    assert grpo.values["pass@8", "best"][1].mean == pytest.approx(np.mean(best) - 0.2)  # same step as pooled
    assert grpo.values["mean@8", "final"]["pooled"].mean == pytest.approx(0.3)
    gain = prompt_gdro.gains["pass@8", "final"]["pooled"]
    assert gain.mean == pytest.approx(0.1) and gain.half_width == pytest.approx(
        t4 * math.sqrt(0.0002) / math.sqrt(5)
    )
    best_gain = np.subtract(PROMPT_GDRO_FINAL, best)
    assert prompt_gdro.gains["pass@8", "best"]["pooled"].mean == pytest.approx(best_gain.mean())
    assert prompt_gdro.gains["pass@8", "best"]["pooled"].half_width == pytest.approx(
        t4 * best_gain.std(ddof=1) / math.sqrt(5)
    )
    paired = rollout_gdro.gains["pass@8", "final"][0]  # level 0, over seeds 0-2
    assert (paired.n, paired.mean) == (3, pytest.approx(0.04))
    assert paired.half_width == pytest.approx(4.302653 * 0.01 / math.sqrt(3), abs=1e-6)
    assert (
        grpo.rollouts.mean == 20 * 256 and grpo.tokens.mean == 20 * 100 * 3 and grpo.step_seconds.mean == 10.0
    )

    activity = {name: estimate.mean for name, estimate in rollout_gdro.activity.items()}
    assert activity == pytest.approx(
        {"weight_max": 3.0, "bin_rollouts_min": 4.0, "bin_rollouts_max": 5.0, "surrogate_abs": 2.1e-3}
    )
    assert grpo.activity["bin_rollouts_max"].mean == pytest.approx(6.0)  # seeds 0-4: 4 + mean seed

    origin = Provenance(
        "python scripts/make_results.py --runs R --out O", "abc123", "2026-01-01T00:00:00+00:00"
    )
    text = results_markdown(summaries, ["pass@8", "mean@8"], "Title", origin, "R", {}, synthetic_runs)
    assert "Generated by `scripts/make_results.py`" in text and "- commit: abc123" in text
    assert "| GRPO | 3.000 ± 0.000 | 4.00 ± 0.00 to 6.00 ± 1.96 | 2.1e-03 |" in text
    assert "| GRPO | 5 | 0.6000 ± 0.0982 | (baseline) | 0.6100 ± 0.1194 | (baseline) |" in text
    assert "| Prompt-GDRO (reweight) | 5 | 0.7000 ± 0.0917 | +0.1000 ± 0.0176 |" in text
    assert "| Rollout-GDRO | 3 | 0.6400 ± 0.2370 | +0.0400 ± 0.0248 |" in text
    assert "| GRPO | 5120 ± 0 | 6000 ± 3926 | 10.00 ± 0.00 |" in text


def test_best_checkpoint_ignores_step_0(synthetic_runs: Path) -> None:
    run = load_result(synthetic_runs / "grpo" / "0")
    run.evals["pass@8"].loc[0, "pooled"] = 0.99  # the base model scored highest
    assert checkpoint_values(run, "pass@8", "best")["pooled"] == pytest.approx(0.5)


def test_runs_of_one_method_must_share_their_config(synthetic_runs: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_synthetic_run(other, ["trainer.lr=0.1"], 7, 0.5, 0.4)
    results = [load_result(d) for d in find_run_dirs(synthetic_runs / "grpo")] + [load_result(other)]
    with pytest.raises(ValueError, match=r"differ in more than the seed: .* in trainer\.lr"):
        group_by_method(results)
    records = read_metrics(other / "metrics.jsonl")[:15]
    (other / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ValueError, match="unfinished: its last step is 14"):
        load_result(other)


def test_every_methods_overrides_compose_to_its_key() -> None:
    assert len({m.slug for m in METHODS}) == len(METHODS)
    for method in METHODS:
        assert method_key(compose_config(["policy=sim", *method.overrides])) == method.key


def test_a_planned_seed_equals_composing_that_seed() -> None:
    """The sweep composes each method once and sets `seed`; that must equal composing seed=3."""
    method = METHODS[-1]
    planned = plan_sweep(Path("runs"), [method], 4, sim_overrides(40))[3]
    assert planned.config == compose_run_config([*sim_overrides(40), *method.overrides, "seed=3"])


def test_reproduce_sim_end_to_end_at_ci_size(tmp_path: Path) -> None:
    """`make reproduce-sim` at CI size (3 methods x 2 seeds x 30 steps): every run trained, RESULTS.md and
    the figures written, its numbers those of the run folders; a rerun trains nothing, and a run cut
    short is trained again, alone, to the same records."""
    reproduce = load_script("reproduce_sim")
    argv = ["--seeds", "2", "--steps", "30", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]
    argv += ["--methods", "prompt_gdro", "rollout_gdro", "--records", str(tmp_path / "records")]
    results_path = reproduce.main(argv)
    run_dirs = find_run_dirs(tmp_path / "runs")
    assert len(run_dirs) == 6
    text = results_path.read_text()
    assert "`python scripts/reproduce_sim.py --seeds 2 --steps 30" in text
    grpo = [
        read_metrics(tmp_path / "runs" / "uniform-fixed" / f"seed_{s}" / "metrics.jsonl")[-1] for s in (0, 1)
    ]
    pooled = mean_interval([r["eval/pass@8"] for r in grpo])
    assert f"| GRPO | 2 | {pooled.mean:.4f} ± {pooled.half_width:.4f} | (baseline) |" in text
    assert "## At equal generated compute" in text and "### What each method spent" in text
    assert len(list((tmp_path / "records").rglob("seed_*.json.gz"))) == 6  # RESULTS.md read these alone
    for name in (
        "pass_at_8.png",
        "mean_at_8.png",
        "compute_pass_at_8.png",
        "curriculum/uniform-rollout_gdro/heatmap_rollouts.png",
    ):
        assert (tmp_path / "out" / name).stat().st_size > 1000

    cut = run_dirs[0] / "metrics.jsonl"
    original = cut.read_text()
    cut.write_text("".join(original.splitlines(keepends=True)[:10]))  # as if killed at step 9
    partial = write_results(tmp_path / "runs", tmp_path / "partial", "make it", "Partial").read_text()
    assert (
        f"- left out, unfinished (still running, or the sweep was stopped): {cut.parent.relative_to(tmp_path / 'runs')}"
        in partial
    )
    methods = [m for m in METHODS if m.slug in ("uniform-fixed", "prompt_gdro-fixed", "uniform-rollout_gdro")]
    trained = run_sweep(plan_sweep(tmp_path / "runs", methods, 2, sim_budget_overrides(30)))
    assert [run.run_dir for run in trained] == [run_dirs[0]]

    def without_time(text: str) -> list[dict]:
        return [
            {k: v for k, v in json.loads(line).items() if not k.startswith("time/")}
            for line in text.splitlines()
        ]

    assert without_time(cut.read_text()) == without_time(original)

    # On another machine: no run folders, the committed records: every folder restored, nothing trained.
    plan = plan_sweep(tmp_path / "elsewhere", methods, 2, sim_budget_overrides(30))
    assert run_sweep(plan, records_dir=tmp_path / "records") == []
    assert all((run.run_dir / "RESTORED_FROM_RECORD").exists() for run in plan)

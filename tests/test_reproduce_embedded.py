"""`make reproduce-embedded` at CI size, the `method` config group, and the frontier experiment's settings.

The sweep runs for real: two `train.py -m` processes side by side (Hydra's basic launcher), each a share of
the methods over every seed, on the tiny model warm-started for a few steps, then RESULTS.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conf_helpers import CONF_DIR, compose_config, load_script

from gdro.analysis.results.methods import METHODS, method_key
from gdro.analysis.results.multirun import RUN_SUBDIR, multirun_commands
from gdro.analysis.results.stats import mean_interval
from gdro.train.io.metrics import read_metrics

TINY = [
    "debug=quick",
    "dataset.num_train=64",
    "trainer.prompts_per_step=4",
    "trainer.eval_every=1",
    "trainer.save_every=1",
]


def test_every_method_file_is_a_compared_method_and_wins_over_an_experiment() -> None:
    assert sorted(m.choice for m in METHODS) == sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml"))
    for method in METHODS:
        frontier = compose_config(["experiment=frontier", *method.overrides])
        assert method_key(frontier) == method.key
        assert frontier["dataset"]["level_steps"] == [1, 2, 4, 6, 9, 12, 16, 20]
    smoke = compose_config(["experiment=math_smoke", "method=grpo"])
    assert (smoke["sampler"]["name"], smoke["dataset"]["name"]) == ("uniform", "dapo_math")
    assert compose_config(["method=rollout_gdro_paper"])["classifier"]["window"] == 50


def test_methods_are_dealt_to_the_processes_round_robin() -> None:
    commands = multirun_commands(METHODS[:5], 3, 2, Path("/runs"), ["experiment=frontier"])
    assert [c[-4:] for c in commands] == [
        [
            "seed=0,1,2",
            "method=grpo,prompt_gdro_resample,sqrt_optimal",
            "hydra.sweep.dir=/runs",
            RUN_SUBDIR,
        ],
        ["seed=0,1,2", "method=prompt_gdro,rollout_gdro", "hydra.sweep.dir=/runs", RUN_SUBDIR],
    ]
    assert commands[0][1:4] == ["train.py", "-m", "experiment=frontier"]
    with pytest.raises(ValueError, match="seeds >= 1"):
        multirun_commands(METHODS, 0, 2, Path("/runs"), [])


def test_reproduce_embedded_end_to_end_at_ci_size(tmp_path: Path) -> None:
    """2 methods x 2 seeds: every run in RUNS/<method>/seed_<s>, RESULTS.md from them; a rerun trains
    nothing and leaves every metrics.jsonl as it was."""
    runs, out = tmp_path / "runs", tmp_path / "out"
    argv = ["--seeds", "2", "--runs", str(runs), "--out", str(out), "--methods", "rollout_gdro"]
    argv += ["--records", str(tmp_path / "records"), "--"]
    argv += [*TINY, f"cache_dir={tmp_path / 'cache'}"]
    results_path = load_script("reproduce_embedded").main(argv)
    folders = sorted(p.parent.relative_to(runs).as_posix() for p in runs.rglob("metrics.jsonl"))
    assert folders == ["grpo/seed_0", "grpo/seed_1", "rollout_gdro/seed_0", "rollout_gdro/seed_1"]
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 1  # one base model for every run
    final = [read_metrics(runs / "grpo" / f"seed_{s}" / "metrics.jsonl")[-1] for s in (0, 1)]
    assert [r["step"] for r in final] == [2, 2]
    pooled = mean_interval([r["eval/pass@2"] for r in final])
    text = results_path.read_text()
    assert "`python scripts/reproduce_embedded.py --seeds 2" in text
    assert f"| GRPO | 2 | {pooled.mean:.4f} ± {pooled.half_width:.4f} | (baseline) |" in text
    assert "| Rollout-GDRO | 2 |" in text

    before = {p: p.read_bytes() for p in runs.rglob("metrics.jsonl")}
    load_script("reproduce_embedded").main(argv)
    assert {p: p.read_bytes() for p in runs.rglob("metrics.jsonl")} == before
    logs = "".join(p.read_text() for p in (runs / "logs").glob("*.log"))
    assert logs.count("nothing to train") == 4

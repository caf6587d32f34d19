"""Table 1 (`scripts/make_tables.py`, `gdro.analysis.results.paper_table`) from synthetic run folders with known
per-seed values, in the real config.json / metrics.jsonl format: means and stds over seeds, relative and
paired gains, the best checkpoint chosen by pooled pass@8 (every column read at its step), the paper's
numbers, Markdown and LaTeX; and the same table from W&B through a stand-in for its public API."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conf_helpers import CONF_DIR, compose_config, load_script

from gdro.analysis.results.paper_table import collect_wandb, latex_escape, write_tables
from gdro.analysis.results.plan import load_plan
from gdro.data.benchmarks.metrics import benchmark_metrics
from gdro.train.io.loggers import flatten

REPO = CONF_DIR.parent
SEVEN = ("math500", "aime24", "aime25", "amc23", "minerva", "olympiadbench", "gpqa_diamond")
TABLE_COLUMNS = ("math500", "aime", "amc23", "minerva", "olympiadbench", "gpqa_diamond")
# Pooled pass@8 per seed at eval steps 10 and 20 (step 0 reads 0.9, above all: it must never be best).
# GRPO best: seed 0 at 10, seed 1 at 20, seed 2 tied (0.48) -> the earlier, 10.
RUNS = {
    ("1.7b", "grpo"): ([], {10: [0.55, 0.40, 0.48], 20: [0.50, 0.52, 0.48]}),
    ("1.7b", "prompt_gdro"): ([], {10: [0.50, 0.50, 0.60], 20: [0.56, 0.57, 0.55]}),
    ("1.7b", "rollout_gdro"): ([], {10: [0.30, 0.30, 0.30], 20: [0.53, 0.57, 0.55]}),
    ("1.7b", "ours"): (["sampler=prompt_gdro"], {10: [0.10, 0.10], 20: [0.20, 0.30]}),  # not in the plan
    ("4b", "prompt_gdro"): ([], {10: [0.60], 20: [0.64]}),  # no GRPO at 4B: no gain
}


def bench_mean(pooled: float, step: int, column: int) -> float:
    """mean@8 of benchmark `column` (0..5): pooled pass@8 - 0.05 (column + 1), + 0.2 at step 10, so its own
    best step is always 10 and reading it there instead of at the pass@8-best step changes the table."""
    return pooled - 0.05 * (column + 1) + (0.2 if step == 10 else 0.0)


def eval_record(pooled: float, step: int) -> dict[str, float]:
    """The keys the math benchmarks evaluator writes, AIME the mean of aime24 and aime25."""
    record = {"eval/pass@8": pooled, "eval/mean@8": pooled - 0.3}
    for column, name in enumerate(TABLE_COLUMNS):
        value = bench_mean(pooled, step, column)
        members = ("aime24", "aime25") if name == "aime" else (name,)
        for member, shift in zip(members, (-0.01, 0.01) if name == "aime" else (0.0,), strict=True):
            record[f"eval/{member}/mean@8"] = value + shift
            record[f"eval/{member}/pass@8"] = pooled
        record[f"eval/{name}/mean@8"] = value
        record[f"eval/{name}/pass@8"] = pooled
    return record


def synthetic_runs() -> list[tuple[dict, list[dict]]]:
    """(config, metrics records) per run: 20 steps, evals at 0, 10 and 20, composed as the plan composes."""
    runs = []
    for (scale, method), (extra, pooled) in RUNS.items():
        choice = {"prompt_gdro": "prompt_gdro_paper", "rollout_gdro": "rollout_gdro_paper"}.get(
            method, "grpo"
        )
        paper = ["experiment=paper", "trainer.backend=deepspeed", f"model=qwen3_{scale}", f"method={choice}"]
        config = compose_config([*paper, *extra, "trainer.steps=20", "trainer.eval_every=10"])
        for seed in range(len(pooled[20])):
            records = [{"step": 0, **eval_record(0.9, 0)}]
            for step in range(1, 21):
                record = {
                    "step": step,
                    "rollouts/total": 1024,
                    "tokens/generated": 5000,
                    "time/step_seconds": 1.0,
                }
                if step in pooled:
                    record.update(eval_record(pooled[step][seed], step))
                records.append(record)
            runs.append(({**config, "seed": seed}, records))
    return runs


@pytest.fixture(scope="module")
def runs() -> list[tuple[dict, list[dict]]]:
    return synthetic_runs()


@pytest.fixture(scope="module")
def run_folders(runs: list[tuple[dict, list[dict]]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for index, (config, records) in enumerate(runs):
        run_dir = root / config["model"]["name"] / str(index)
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(json.dumps(config))
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


make_tables = load_script("make_tables")


def test_synthetic_records_use_the_evaluators_keys() -> None:
    written = set(eval_record(0.5, 10))
    produced = set(benchmark_metrics({name: np.zeros((2, 8), dtype=bool) for name in SEVEN}))
    assert written == produced


def _rows(text: str, section: str) -> dict[tuple[str, str], list[str]]:
    """The Markdown table under `## <section>...`, rows by (scale, method)."""
    block = text.split(f"## {section}")[1].split("\n## ")[0]
    rows = [line.strip("|").split(" | ") for line in block.splitlines() if line.startswith("| ")][1:]
    return {(row[0].strip(), row[1].strip()): [cell.strip() for cell in row[2:]] for row in rows}


@pytest.fixture(scope="module")
def tables(run_folders: Path) -> tuple[Path, Path]:
    """`python scripts/make_tables.py --runs RUNS --out RUNS/out`: the Markdown and LaTeX paths."""
    return make_tables.main(["--runs", str(run_folders), "--out", str(run_folders / "out")])


def test_table1_from_run_folders(run_folders: Path, tables: tuple[Path, Path]) -> None:
    """Rejects: a best checkpoint at step 0 or at the final step, mean@8 read at its own best step, the
    paired interval replaced by an unpaired one, the paper's gains misplaced."""
    out = run_folders / "out"
    markdown, latex = tables
    text = markdown.read_text()
    assert "Generated by `scripts/make_tables.py`" in text
    assert f"- command: `python scripts/make_tables.py --runs {run_folders} --out {out}`" in text
    assert "- commit: " in text and "- date: " in text
    assert f"- runs: `{run_folders}`, 12 runs; plan `experiments/paper_table1.yaml`" in text
    best, final = _rows(text, "Best checkpoint"), _rows(text, "Final checkpoint")
    assert list(best) == [
        ("1.7b", "GRPO"),
        ("1.7b", "Prompt-GDRO"),
        ("1.7b", "Rollout-GDRO"),
        ("1.7b", "prompt_gdro + fixed"),
        ("4b", "Prompt-GDRO"),
    ]
    # Final: pass@8 x100 GRPO [50, 52, 48], Prompt-GDRO [56, 57, 55] (paired 6, 5, 7), Rollout [53, 57, 55].
    t2 = 4.302653
    assert final["1.7b", "GRPO"][7:] == [
        "50.00 ± 2.00",
        "(baseline)",
        "(baseline)",
        "50.74",
        "(baseline)",
        "20, 20, 20",
    ]
    assert final["1.7b", "Prompt-GDRO"][7:] == [
        "56.00 ± 1.00",
        "+12.0%",
        f"+6.00 ± {t2 * 1 / math.sqrt(3):.2f}",
        "55.68",
        "+9.7%",
        "20, 20, 20",
    ]
    assert final["1.7b", "Rollout-GDRO"][7:10] == [
        "55.00 ± 2.00",
        "+10.0%",
        f"+5.00 ± {t2 * 2 / math.sqrt(3):.2f}",
    ]
    assert final["1.7b", "Rollout-GDRO"][10:12] == ["56.14", "+10.6%"]
    # Best: GRPO [55 @10, 52 @20, 48 @10 (tie)], Prompt-GDRO [56 @20, 57 @20, 60 @10] (paired 1, 5, 12).
    grpo_best, prompt_best = np.array([55.0, 52.0, 48.0]), np.array([56.0, 57.0, 60.0])
    assert (
        best["1.7b", "GRPO"][7] == f"{grpo_best.mean():.2f} ± {grpo_best.std(ddof=1):.2f}" == "51.67 ± 3.51"
    )
    assert best["1.7b", "GRPO"][-1] == "10, 20, 10"
    gain = 100 * (prompt_best.mean() / grpo_best.mean() - 1)
    paired = prompt_best - grpo_best
    assert best["1.7b", "Prompt-GDRO"][7:10] == [
        "57.67 ± 2.08",
        f"+{gain:.1f}%",
        f"+{paired.mean():.2f} ± {t2 * paired.std(ddof=1) / math.sqrt(3):.2f}",
    ]
    assert (gain, best["1.7b", "Prompt-GDRO"][-1]) == (pytest.approx(11.613, abs=1e-3), "20, 20, 10")
    # mean@8 per benchmark at the pass@8-best step: MATH-500 = pass - 0.05 (+ 0.2 at step 10), x100.
    math500 = [55 - 5 + 20, 52 - 5, 48 - 5 + 20]
    assert (
        best["1.7b", "GRPO"][1]
        == f"{np.mean(math500):.2f} ± {np.std(math500, ddof=1):.2f}"
        == "60.00 ± 11.79"
    )
    assert final["1.7b", "GRPO"][1:7] == [f"{50 - 5 * (c + 1):.2f} ± 2.00" for c in range(6)]
    assert final["1.7b", "Rollout-GDRO"][2] == "45.00 ± 2.00"  # AIME: (aime24 + aime25) / 2
    # Outside the plan: named by its key, no gain columns of the paper; 4B: one seed, no GRPO to compare.
    ours = np.array([20.0, 30.0]) - np.array([50.0, 52.0])  # paired over seeds 0 and 1 only
    t1 = 12.706205
    assert final["1.7b", "prompt_gdro + fixed"][7:] == [
        "25.00 ± 7.07",
        "-50.0%",
        f"{ours.mean():.2f} ± {t1 * ours.std(ddof=1) / math.sqrt(2):.2f}",
        "-",
        "-",
        "20, 20",
    ]
    assert final["4b", "Prompt-GDRO"][0] == "1"
    assert final["4b", "Prompt-GDRO"][7:] == ["64.00", "-", "-", "63.70", "+13.1%", "20"]

    tex = latex.read_text()
    assert "\\begin{tabular}{llrrrrrrrrrrrrl}" in tex and tex.count("\\begin{tabular}") == 2
    assert tex.count("\\toprule") == tex.count("\\bottomrule") == 2
    assert "% Generated by scripts/make_tables.py" in tex and "\\usepackage{booktabs}" in tex
    assert "scale & method & seeds & MATH-500 mean@8 & " in tex and "paired $\\Delta$ pass@8" in tex
    assert "1.7b & GRPO & 3 & 60.00 $\\pm$ 11.79 & " in tex
    assert "1.7b & prompt\\_gdro + fixed & 2 & " in tex and "& +11.6\\% & " in tex
    assert "4b & Prompt-GDRO & 1 & " in tex
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    assert "±" not in body and "Δ" not in body and "_" not in body.replace("\\_", "")
    assert (
        latex_escape("a_b & 5% {x} #1 $ ~^\\")
        == r"a\_b \& 5\% \{x\} \#1 \$ \textasciitilde{}\textasciicircum{}\textbackslash{}"
    )


class FakeWandbRun:
    """The part of `wandb.apis.public.Run` the table reads: id, config (a dict) and scan_history()."""

    def __init__(self, run_id: str, config: dict, records: list[dict]) -> None:
        self.id, self.config, self._records = run_id, config, records

    def scan_history(self):
        """One row per step as W&B keeps it: the step in `_step`, lists flattened, nothing for None."""
        for record in self._records:
            yield {"_step": record["step"], "_runtime": 1.0, **flatten(record)}


class FakeWandbApi:
    """`wandb.Api()`'s `runs(path, filters=...)`, over runs held here; it records the calls."""

    def __init__(self, runs: list[FakeWandbRun]) -> None:
        self._runs, self.calls = runs, []

    def runs(self, path: str, filters: dict | None = None) -> list[FakeWandbRun]:
        self.calls.append((path, filters))
        return self._runs


def test_table1_from_wandb_equals_the_run_folders(
    runs: list[tuple[dict, list[dict]]], tables: tuple[Path, Path], tmp_path: Path
) -> None:
    """The W&B source gives the same table (source line aside); a run whose history stops early is refused."""
    api = FakeWandbApi([FakeWandbRun(f"id{i}", config, records) for i, (config, records) in enumerate(runs)])
    results = collect_wandb("ent/proj", api=api, filters={"state": "finished"})
    assert api.calls == [("ent/proj", {"state": "finished"})]
    assert [r.run_dir for r in results][:2] == ["wandb:ent/proj/id0", "wandb:ent/proj/id1"]
    plan = load_plan(REPO / "experiments" / "paper_table1.yaml")
    from_wandb = write_tables(results, plan, tmp_path / "w", "cmd", "W&B")[0].read_text()
    local = tables[0].read_text()
    assert from_wandb.split("## Best")[1] == local.split("## Best")[1]
    config, records = runs[0]
    with pytest.raises(ValueError, match="unfinished: its last step is 15"):
        collect_wandb("ent/proj", api=FakeWandbApi([FakeWandbRun("cut", config, records[:16])]))

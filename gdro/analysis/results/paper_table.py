"""Table 1 from finished runs: per scale and method, mean@8 per benchmark and pooled pass@8 (x100) at the
best and at the final checkpoint, over seeds, with the gain over the baseline and the paper's numbers beside
ours; written as Markdown and as a LaTeX (booktabs) tabular.

Runs come from run folders (`collect_local`) or from W&B (`collect_wandb`). A run's scale is the plan's
scale whose model its config trains (else the model's name); its method is the plan's method whose composed
config has the same `method_key` (else that key). The runs of one cell must share their config but the seed.

Per run the checkpoint is one eval step t, and every column is read at it: final = the last eval step;
best = the step t >= 1 with the highest pooled pass@8, the earliest on a tie
(`gdro.analysis.results.table.checkpoint_values`). For the values x_1..x_n of a cell's seeds (x100):

    mean = (1/n) sum_s x_s,    std = sqrt(sum_s (x_s - mean)^2 / (n - 1))        (std only for n >= 2)
    gain = 100 (mean / mean_baseline - 1) %                 relative, of the mean pooled pass@8
    paired = mean_s (x_s - b_s) +- t_{0.975, n-1} s_d / sqrt(n)   over the seeds both have, in points
                                                             (`gdro.analysis.results.stats.paired_gain`)

The paper's gain is 100 (paper / paper_baseline - 1) % from its pass@8 numbers (one run per cell, best
validation checkpoint).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gdro.analysis.results.methods import method_key
from gdro.analysis.results.plan import Plan, resolve_cell
from gdro.analysis.results.report import Provenance, provenance
from gdro.analysis.results.runs import (
    RunResult,
    find_run_dirs,
    group_by_method,
    load_result,
    result_from_records,
)
from gdro.analysis.results.stats import paired_gain
from gdro.analysis.results.table import _table, checkpoint_values, format_estimate
from gdro.analysis.viz.run import records_from_wandb_history

MEAN_METRIC, PASS_METRIC = "mean@8", "pass@8"
# (column of the mean@8 table, header); "aime" is the evaluator's mean of aime24 and aime25.
BENCHMARKS = (
    ("math500", "MATH-500"),
    ("aime", "AIME 24/25"),
    ("amc23", "AMC23"),
    ("minerva", "Minerva"),
    ("olympiadbench", "OlympiadBench"),
    ("gpqa_diamond", "GPQA-D"),
)
CHECKPOINTS = {
    "best": "Best checkpoint (per run: the eval step >= 1 with the highest pooled pass@8)",
    "final": "Final checkpoint (per run: the last eval step)",
}
_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
}


def collect_local(roots: Iterable[str | Path]) -> list[RunResult]:
    """Every finished run folder under the roots (an unfinished one is a ValueError)."""
    return [load_result(run_dir) for root in roots for run_dir in find_run_dirs(root)]


def collect_wandb(path: str, api: Any = None, filters: Mapping[str, Any] | None = None) -> list[RunResult]:
    """The runs of the W&B project `path` ("entity/project") matching `filters` (W&B's run filters), through
    the public API (`wandb.Api()` unless `api` is given): `api.runs(path, filters=...)`, each run's `.config`
    (the resolved run config `gdro.train.io.loggers.WandbLogger` logged) and `.scan_history()` (every row,
    unsampled, the step in `_step`)."""
    if api is None:
        import wandb  # only this source needs it

        api = wandb.Api()
    results = []
    for run in api.runs(path, filters=dict(filters or {})):
        records = records_from_wandb_history(pd.DataFrame(list(run.scan_history())))
        results.append(result_from_records(records, dict(run.config), f"wandb:{path}/{run.id}"))
    return results


@dataclass
class CellResults:
    """The finished runs of one (scale, method), over its seeds. values: checkpoint -> column (a benchmark or PASS_METRIC) ->
    seed -> value x100; steps: checkpoint -> seed -> the eval step read."""

    scale: str
    method: str
    name: str
    runs: list[RunResult]
    values: dict[str, dict[str, dict[int, float]]]
    steps: dict[str, dict[int, int]]


def run_values(run: RunResult, checkpoint: str) -> tuple[int, dict[str, float]]:
    """The checkpoint's eval step and, at it, mean@8 per benchmark and pooled pass@8, x100."""
    for metric in (MEAN_METRIC, PASS_METRIC):
        if metric not in run.evals:
            raise ValueError(f"{run.run_dir} has no eval/{metric}: Table 1 needs trainer.eval_samples=8")
    step = int(checkpoint_values(run, PASS_METRIC, checkpoint).name)
    means = run.evals[MEAN_METRIC]
    missing = [key for key, _ in BENCHMARKS if key not in means.columns]
    if missing:
        raise ValueError(f"{run.run_dir} has no eval/<benchmark>/{MEAN_METRIC} for {missing}")
    values = {key: 100.0 * float(means.loc[step, key]) for key, _ in BENCHMARKS}
    values[PASS_METRIC] = 100.0 * float(run.evals[PASS_METRIC].loc[step, "pooled"])
    return step, values


def build_cells(results: Sequence[RunResult], plan: Plan) -> list[CellResults]:
    """The runs by scale and method, in the plan's order (scales and methods outside it after, sorted)."""
    scale_of = {scale.model: scale.name for scale in plan.scales.values()}
    by_scale: dict[str, list[RunResult]] = {}
    for run in results:
        model = run.config["model"]["name"]
        by_scale.setdefault(scale_of.get(model, model), []).append(run)
    order = [s for s in plan.scales if s in by_scale] + sorted(by_scale.keys() - plan.scales.keys())
    cells = []
    for scale in order:
        keys = plan_method_keys(plan, scale) if scale in plan.scales else {}
        groups = group_by_method(by_scale[scale])
        methods = [m for m in plan.methods if keys.get(m) in groups]
        methods += sorted(groups.keys() - {keys[m] for m in methods})
        for method in methods:
            runs = groups[keys.get(method, method)]
            name = plan.methods[method].name if method in keys else method
            cell = CellResults(scale, method, name, runs, {}, {})
            for checkpoint in CHECKPOINTS:
                read = {run.seed: run_values(run, checkpoint) for run in runs}
                cell.steps[checkpoint] = {seed: step for seed, (step, _) in read.items()}
                columns = next(iter(read.values()))[1]
                cell.values[checkpoint] = {
                    column: {seed: values[column] for seed, (_, values) in read.items()} for column in columns
                }
            cells.append(cell)
    return cells


def plan_method_keys(plan: Plan, scale: str) -> dict[str, str]:
    """Plan method -> the `method_key` its composed config has at `scale`; two methods with one key is a
    ValueError (their runs could not be told apart)."""
    keys = {
        m: method_key(resolve_cell(plan, plan.scales[scale], method).config)
        for m, method in plan.methods.items()
    }
    if len(set(keys.values())) != len(keys):
        raise ValueError(f"{plan.path}: methods share a method key at {scale}: {keys}")
    return keys


def mean_std(values: Mapping[int, float]) -> str:
    """ "55.68 ± 1.20" (mean ± std over seeds, ddof 1), "55.68" for one seed."""
    x = np.array(list(values.values()))
    return f"{x.mean():.2f}" if len(x) == 1 else f"{x.mean():.2f} ± {x.std(ddof=1):.2f}"


def relative_gain(value: float, baseline: float) -> str:
    """ "+9.7%": 100 (value / baseline - 1), one decimal."""
    return f"{100.0 * (value / baseline - 1.0):+.1f}%"


HEADER = (
    "scale",
    "method",
    "seeds",
    *(f"{title} mean@8" for _, title in BENCHMARKS),
    "pass@8",
    "gain",
    "paired Δ pass@8",
    "paper pass@8",
    "paper gain",
    "eval steps",
)


def table_rows(cells: Sequence[CellResults], plan: Plan, checkpoint: str) -> list[list[str]]:
    """One row per cell (columns: HEADER) at the checkpoint; gains against the plan's baseline."""
    baselines = {cell.scale: cell for cell in cells if cell.method == plan.baseline}
    rows = []
    for cell in cells:
        values = cell.values[checkpoint]
        passes = values[PASS_METRIC]
        base = baselines.get(cell.scale)
        if cell is base:
            gain = paired = "(baseline)"
        elif base is None:
            gain = paired = "-"
        else:
            base_passes = base.values[checkpoint][PASS_METRIC]
            gain = relative_gain(np.mean(list(passes.values())), np.mean(list(base_passes.values())))
            paired = format_estimate(paired_gain(passes, base_passes), 2, signed=True)
        paper = plan.paper.get(cell.scale, {})
        paper_pass = f"{paper[cell.method]:.2f}" if cell.method in paper else "-"
        paper_gain = "-"
        if cell.method == plan.baseline and cell.method in paper:
            paper_gain = "(baseline)"
        elif cell.method in paper and plan.baseline in paper:
            paper_gain = relative_gain(paper[cell.method], paper[plan.baseline])
        rows.append(
            [
                cell.scale,
                cell.name,
                str(len(cell.runs)),
                *(mean_std(values[key]) for key, _ in BENCHMARKS),
                mean_std(passes),
                gain,
                paired,
                paper_pass,
                paper_gain,
                ", ".join(str(step) for step in cell.steps[checkpoint].values()),
            ]
        )
    return rows


def latex_escape(text: str) -> str:
    """LaTeX's special characters escaped; ± and Δ in math mode."""
    return "".join(_LATEX.get(char, char) for char in text)


def _notes(plan: Plan) -> list[str]:
    baseline = plan.methods[plan.baseline].name
    return [
        "Cells read mean ± std over seeds, x100: mean@8 per benchmark (AIME: the mean of 2024 and 2025)",
        "and pass@8 pooled over the prompts of the seven benchmarks, all at the same eval step of each run.",
        f"gain: 100 (mean pass@8 / mean pass@8 of {baseline} - 1) %, at the same scale; paired Δ: the mean",
        f"per-seed difference to {baseline} in pass@8 points, ± the 95% Student-t half-width, over the",
        "seeds both have. paper: pooled pass@8 of the paper's best validation checkpoint (one run per",
        "cell) and its gain; eval steps: the step read from each seed's run.",
    ]


def table_markdown(cells: Sequence[CellResults], plan: Plan, origin: Provenance, source: str) -> str:
    """The Markdown file: title, provenance, how to read it, a table per checkpoint."""
    lines = [
        f"# {plan.title}",
        "",
        "Generated by `scripts/make_tables.py`: do not edit by hand; rerun the command instead.",
        "",
        f"- command: `{origin.command}`",
        f"- commit: {origin.commit}",
        f"- date: {origin.date}",
        f"- runs: {source}, {sum(len(c.runs) for c in cells)} runs; plan `{plan.path}`",
        "",
        *_notes(plan),
    ]
    for checkpoint, title in CHECKPOINTS.items():
        lines += ["", f"## {title}", "", *_table(HEADER, table_rows(cells, plan, checkpoint))]
    return "\n".join(lines) + "\n"


def table_latex(cells: Sequence[CellResults], plan: Plan, origin: Provenance, source: str) -> str:
    """The LaTeX file: provenance as comments, a booktabs tabular per checkpoint (a rule between scales)."""
    lines = [
        "% Generated by scripts/make_tables.py: do not edit by hand; rerun the command instead.",
        f"% command: {origin.command}",
        f"% commit: {origin.commit}",
        f"% date: {origin.date}",
        f"% runs: {source}; plan {plan.path}",
        "% needs \\usepackage{booktabs}",
        *(f"% {line}" for line in _notes(plan)),
    ]
    alignment = "ll" + "r" * (len(HEADER) - 3) + "l"
    for checkpoint, title in CHECKPOINTS.items():
        lines += ["", f"% {title}", f"\\begin{{tabular}}{{{alignment}}}", "\\toprule"]
        lines.append(" & ".join(latex_escape(h) for h in HEADER) + r" \\")
        lines.append("\\midrule")
        previous = None
        for cell, row in zip(cells, table_rows(cells, plan, checkpoint), strict=True):
            if previous is not None and cell.scale != previous:
                lines.append("\\midrule")
            previous = cell.scale
            lines.append(" & ".join(latex_escape(value) for value in row) + r" \\")
        lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_tables(
    results: Sequence[RunResult], plan: Plan, out_dir: Path, command: str, source: str, name: str = "table1"
) -> tuple[Path, Path]:
    """OUT/<name>.md and OUT/<name>.tex from the runs; returns both paths."""
    if not results:
        raise ValueError(f"no finished runs in {source}")
    cells = build_cells(results, plan)
    origin = provenance(command, Path(__file__).resolve().parents[3])
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, latex = out_dir / f"{name}.md", out_dir / f"{name}.tex"
    markdown.write_text(table_markdown(cells, plan, origin, source))
    latex.write_text(table_latex(cells, plan, origin, source))
    return markdown, latex

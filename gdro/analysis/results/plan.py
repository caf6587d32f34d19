"""Reproduction plans as data (`experiments/*.yaml`): scales x methods x seeds, resolved through the real
Hydra composition into jobs, each with its GPU-hours, and launched as one Hydra multirun per cell.

A plan file holds:

    name, title     the plan's name (its runs go to outputs/<name>/<scale>/<method>/<n>) and the tables' title
    scales          scale -> {model: the conf/model/ choice its jobs train, parameters: N of the cost model}
    methods         method -> {name: as the tables print it, overrides: its Hydra overrides, e.g. method=grpo}
    baseline        the method whose runs the others are compared with, scale by scale
    common          overrides of every job, before the scale's and the method's, e.g. experiment=paper
    gpus_per_job    GPUs of one job (one rank per GPU, one node)
    paper           scale -> method -> the paper's pooled pass@8 x100 ({} when the paper has none)
    cost            the cost model's assumptions (`gdro.analysis.results.cost.CostModel`)

A cell is (scale, method): its config is composed once from `common + [model=<the scale's model>] +
overrides + extra` as `train.py` composes it (a command-line `model=` wins over an experiment's), validated,
and must train the scale's model; a job is a cell and a seed, whose config is the
cell's with `seed` set (no key of conf/ interpolates it: `tests/test_results.py` checks the same shortcut).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gdro.analysis.results.cost import CostEstimate, CostModel, estimate_gpu_hours
from gdro.analysis.results.sweep import compose_run_config
from gdro.config import parse_run_config

# hydra/launcher choices: slurm and local (conf/hydra/launcher/, submitit) take the job's GPUs; basic is
# Hydra's own launcher, the jobs one after the other in one process (the tests use it).
LAUNCHERS = ("slurm", "local", "basic")
_FOLDER_NAME = re.compile(r"^[a-z0-9_.]+$")


@dataclass(frozen=True)
class Scale:
    """A model size: `name` as the plan spells it (1.7b), `model` its conf/model/ choice, `parameters` N."""

    name: str
    model: str
    parameters: float


@dataclass(frozen=True)
class PlanMethod:
    """A method of the plan: `key` (its run folders' name), `name` (the tables'), its overrides."""

    key: str
    name: str
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """A plan file, read by `load_plan` (module docstring)."""

    path: Path
    name: str
    title: str
    scales: dict[str, Scale]
    methods: dict[str, PlanMethod]
    baseline: str
    common: tuple[str, ...]
    gpus_per_job: int
    paper: dict[str, dict[str, float]]
    cost: CostModel


def load_plan(path: str | Path) -> Plan:
    """Read and check a plan file: the keys of the module docstring, folder-safe scale and method names,
    a baseline among the methods, paper numbers only for the plan's scales and methods."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    keys = {"name", "title", "scales", "methods", "baseline", "common", "gpus_per_job", "paper", "cost"}
    if set(data) != keys:
        raise ValueError(
            f"{path}: expected keys {sorted(keys)}; missing {sorted(keys - set(data))}, "
            f"unknown {sorted(set(data) - keys)}"
        )
    scales = {
        str(name): Scale(str(name), str(s["model"]), float(s["parameters"]))
        for name, s in data["scales"].items()
    }
    methods = {
        key: PlanMethod(key, str(m["name"]), tuple(m["overrides"])) for key, m in data["methods"].items()
    }
    for name in [data["name"], *scales, *methods]:
        if not _FOLDER_NAME.match(name):
            raise ValueError(
                f"{path}: {name!r} is used as a folder name: lower-case letters, digits, _ and ."
            )
    if data["baseline"] not in methods:
        raise ValueError(f"{path}: baseline {data['baseline']!r} is not one of the methods {sorted(methods)}")
    paper = {str(scale): dict(values) for scale, values in data["paper"].items()}
    for scale, values in paper.items():
        if scale not in scales or not set(values) <= set(methods):
            raise ValueError(
                f"{path}: paper numbers for {scale} {sorted(values)} name an unknown scale or method"
            )
    return Plan(
        path=path,
        name=data["name"],
        title=str(data["title"]),
        scales=scales,
        methods=methods,
        baseline=data["baseline"],
        common=tuple(data["common"]),
        gpus_per_job=int(data["gpus_per_job"]),
        paper=paper,
        cost=CostModel.from_dict(data["cost"]),
    )


@dataclass(frozen=True, eq=False)
class ResolvedCell:
    """One (scale, method) of a plan, resolved: the overrides that launch it, its config (seed 0) and the
    GPU-hours of one of its runs. Equal only to itself (its config is a dict)."""

    scale: Scale
    method: PlanMethod
    overrides: tuple[str, ...]
    config: dict[str, Any]
    cost: CostEstimate


@dataclass(frozen=True)
class Job:
    """One run: a cell and a seed."""

    cell: ResolvedCell
    seed: int

    @property
    def config(self) -> dict[str, Any]:
        return {**self.cell.config, "seed": self.seed}


def composed(override: str) -> bool:
    """Overrides of the run's config; `hydra.*` and `hydra/*` ones only shape the launch."""
    return not override.startswith(("hydra.", "hydra/"))


def cell_overrides(plan: Plan, scale: Scale, method: PlanMethod, extra: Sequence[str] = ()) -> list[str]:
    """`common`, `model=<the scale's model>`, the method's overrides, then `extra`."""
    return [*plan.common, f"model={scale.model}", *method.overrides, *extra]


def select_scales(plan: Plan, scale: str) -> list[Scale]:
    """One scale by name, or every scale of the plan for "all"."""
    if scale == "all":
        return list(plan.scales.values())
    if scale not in plan.scales:
        raise ValueError(f"{plan.path}: no scale {scale!r}; it has {sorted(plan.scales)} (or all)")
    return [plan.scales[scale]]


def select_methods(plan: Plan, keys: Sequence[str] | None) -> list[PlanMethod]:
    """The named methods in the plan's order (every method when `keys` is None)."""
    unknown = sorted(set(keys or ()) - set(plan.methods))
    if unknown:
        raise ValueError(f"{plan.path}: no methods {unknown}; it has {sorted(plan.methods)}")
    return [m for key, m in plan.methods.items() if keys is None or key in keys]


def resolve_cell(plan: Plan, scale: Scale, method: PlanMethod, extra: Sequence[str] = ()) -> ResolvedCell:
    """Compose and validate the cell's config as `train.py` would (a composition error propagates); a
    ValueError when it trains another model than the scale's (a method's own `model=` wins)."""
    overrides = tuple(cell_overrides(plan, scale, method, extra))
    config = compose_run_config([o for o in overrides if composed(o)])
    parse_run_config(config)
    if config["model"]["name"] != scale.model:
        raise ValueError(
            f"{plan.path}: {method.key} at {scale.name} trains model {config['model']['name']!r}, "
            f"the scale's is {scale.model!r}"
        )
    cost = estimate_gpu_hours(config, scale.parameters, plan.cost)
    return ResolvedCell(scale, method, overrides, config, cost)


def resolve_cells(
    plan: Plan, scales: Sequence[Scale], methods: Sequence[PlanMethod], extra: Sequence[str] = ()
) -> list[ResolvedCell]:
    """Every (scale, method), scale by scale, methods in the plan's order."""
    return [resolve_cell(plan, scale, method, extra) for scale in scales for method in methods]


def jobs_of(cells: Sequence[ResolvedCell], seeds: int) -> list[Job]:
    """Seeds 0..seeds-1 of every cell."""
    return [Job(cell, seed) for cell in cells for seed in range(seeds)]


def sweep_dir(root: Path, cell: ResolvedCell) -> Path:
    """ROOT/<scale>/<method>; Hydra writes the seeds' runs into its subfolders 0, 1, ... (job numbers)."""
    return root / cell.scale.name / cell.method.key


def multirun_command(cell: ResolvedCell, seeds: int, launcher: str, gpus: int, root: Path) -> list[str]:
    """`train.py -m OVERRIDES seed=0,..,S-1 hydra/launcher=L [GPUs] hydra.sweep.dir=...` (without the
    interpreter): one Hydra multirun of the cell's seeds. The submitit launchers get `gpus` GPUs and as
    many ranks (tasks) per job."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS}, got {launcher!r}")
    resources = (
        [f"hydra.launcher.gpus_per_node={gpus}", f"hydra.launcher.tasks_per_node={gpus}"]
        if launcher != "basic"
        else []
    )
    return [
        "train.py",
        "-m",
        *cell.overrides,
        f"seed={','.join(str(s) for s in range(seeds))}",
        f"hydra/launcher={launcher}",
        *resources,
        f"hydra.sweep.dir={sweep_dir(root, cell)}",
    ]


def _row(values: Sequence[Any], widths: Sequence[int]) -> str:
    return "  ".join(str(v).ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()


def dry_run_lines(jobs: Sequence[Job], gpus: int) -> list[str]:
    """One line per job (scale, method, seed, model hub id, dataset, sampler, allocator, GPUs, GPU-hours),
    a table of the GPU-hours per run by phase and per cell, and the totals per scale and overall."""
    widths = (6, 28, 4, 22, 31, 18, 18, 4, 8)
    header = ("scale", "method", "seed", "model", "dataset", "sampler", "allocator", "GPUs", "GPU-h")
    lines = [_row(header, widths)]
    for job in jobs:
        config = job.config
        lines.append(
            _row(
                (
                    job.cell.scale.name,
                    job.cell.method.name,
                    job.seed,
                    config["model"].get("hf_id", config["model"]["name"]),
                    config["dataset"].get("path", config["dataset"]["name"]),
                    config["sampler"]["name"],
                    config["allocator"]["name"],
                    gpus,
                    f"{job.cell.cost.total:.1f}",
                ),
                widths,
            )
        )
    cells = list(dict.fromkeys(job.cell for job in jobs))
    runs = {cell: sum(job.cell is cell for job in jobs) for cell in cells}
    widths = (6, 28, 4, 10, 8, 10, 8, 11, 8)
    lines += [
        "",
        "GPU-hours per run (generation + training + evaluation = run), wall-clock hours of a run on its "
        "GPUs, and per cell (all its seeds):",
        _row(
            ("scale", "method", "runs", "generation", "training", "evaluation", "run", "wall h", "cell"),
            widths,
        ),
    ]
    for cell in cells:
        cost = cell.cost
        values = (cost.generation, cost.training, cost.evaluation, cost.total, cost.total / gpus)
        numbers = [f"{v:.1f}" for v in values]
        lines.append(
            _row(
                (cell.scale.name, cell.method.name, runs[cell], *numbers, f"{cost.total * runs[cell]:.1f}"),
                widths,
            )
        )
    lines.append("")
    for scale in dict.fromkeys(cell.scale.name for cell in cells):
        scale_jobs = [job for job in jobs if job.cell.scale.name == scale]
        total = sum(job.cell.cost.total for job in scale_jobs)
        lines.append(f"total {scale}: {len(scale_jobs)} jobs, {total:.1f} GPU-h")
    lines.append(f"total: {len(jobs)} jobs, {sum(job.cell.cost.total for job in jobs):.1f} GPU-h")
    return lines

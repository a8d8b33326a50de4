"""Runs grouped by batch strategy, with each metric's mean and spread over seeds.

Runs (``params.runs``) that share a strategy and, for hybrid, an alpha are one group: the seeds
of one table row. For every dataset a group's statistics mirror the metrics document of one run
(``settings.<setting>.mean`` and ``settings.<setting>.per_language.<lang>``), but every metric is
a :data:`Stat` ``{"mean", "std", "n"}``: the mean over the group's runs, the sample standard
deviation (ddof = 1; ``None`` with a single run, where there is no spread to show) and the number
of runs. An optional zero-shot group (``report.baseline_results``) holds the metrics of the
unchanged encoder, one document per dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from hybrid_repro.config import Params
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import read_json

STRATEGY_ORDER = ("x-x-mono", "x-y", "hybrid")
Stat = dict  # {"mean": float | None, "std": float | None, "n": int}


@dataclass(frozen=True)
class RunGroup:
    """One table row: a strategy (and alpha) and its runs, or the zero-shot encoder (``strategy`` None)."""

    label: str
    strategy: str | None
    alpha: float | None
    mono_probability: float | None
    runs: tuple[str, ...]
    seeds: tuple[int, ...]
    run_dirs: tuple[Path, ...]
    """One results directory per run, holding ``<dataset>/metrics.json`` and ``per_query.parquet``."""
    statistics: Mapping[str, dict]
    """dataset -> setting -> {"mean": {metric: Stat}, "per_language": {lang: {metric: Stat}}}."""


def stat(values: Sequence[float | None]) -> Stat:
    """Mean, sample standard deviation and count of the values that are not ``None``."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(kept) / len(kept)
    std = math.sqrt(sum((v - mean) ** 2 for v in kept) / (len(kept) - 1)) if len(kept) > 1 else None
    return {"mean": mean, "std": std, "n": len(kept)}


def _metric_stats(blocks: Sequence[Mapping[str, float | None]]) -> dict[str, Stat]:
    return {key: stat([block.get(key) for block in blocks]) for key in blocks[0]}


def seed_statistics(documents: Sequence[dict]) -> dict:
    """Per setting: every mean and per-language metric of the documents as a :data:`Stat`."""
    statistics = {}
    for setting, first in documents[0]["settings"].items():
        blocks = [document["settings"][setting] for document in documents]
        statistics[setting] = {
            "mean": _metric_stats([block["mean"] for block in blocks]),
            "per_language": {
                lang: _metric_stats([block["per_language"].get(lang, {}) for block in blocks])
                for lang in first["per_language"]
            },
        }
    return statistics


def _load(run_dirs: Sequence[Path], datasets: Sequence[str]) -> dict[str, dict]:
    return {ds: seed_statistics([read_json(run_dir / ds / "metrics.json") for run_dir in run_dirs])
            for ds in datasets}


def _label(strategy: str, alpha: float | None) -> str:
    return strategy if alpha is None else f"{strategy} α={alpha:g}"


def pending_runs(params: Params) -> list[str]:
    """Runs of ``params`` without results for every dataset of ``evaluate.datasets`` yet (a grid is finished
    over several sittings; the report covers the finished runs and names these)."""
    return [name for name in params.runs
            if not all((params.evaluate.out_dir / name / ds / "metrics.json").is_file() for ds in params.evaluate.datasets)]


def strategy_groups(params: Params, pending: Sequence[str]) -> list[RunGroup]:
    """The runs of ``params`` other than ``pending`` (:func:`pending_runs`) grouped by (strategy, alpha): baselines
    first, then hybrid by alpha."""
    if len(pending) == len(params.runs):
        raise HybridReproError(f"no run has results in {params.evaluate.out_dir} yet: evaluate at least one of "
                               f"{', '.join(params.runs)} (`hybrid-repro evaluate --run NAME`) before the report")
    members: dict[tuple[str, float | None], list[str]] = {}
    for name, run in params.runs.items():
        if name not in pending:
            members.setdefault((run.strategy, run.alpha), []).append(name)
    groups = []
    for (strategy, alpha), runs in sorted(members.items(), key=lambda item: (
            STRATEGY_ORDER.index(item[0][0]), item[0][1] or 0.0)):
        seeds = tuple(params.run_seed(run) for run in runs)
        if len(set(seeds)) != len(seeds):
            raise HybridReproError(
                f"runs {', '.join(runs)} share strategy {_label(strategy, alpha)!r} and a seed: give each a "
                "different runs.<name>.seed, or they are the same run twice"
            )
        run_dirs = tuple(params.evaluate.out_dir / run for run in runs)
        groups.append(RunGroup(_label(strategy, alpha), strategy, alpha, params.runs[runs[0]].mono_probability,
                               tuple(runs), seeds, run_dirs, _load(run_dirs, params.evaluate.datasets)))
    return groups


def zero_shot_group(params: Params) -> RunGroup | None:
    """The unchanged encoder's results (``report.baseline_results``), or ``None`` when not configured."""
    directory = params.report.baseline_results
    if directory is None:
        return None
    missing = [ds for ds in params.evaluate.datasets if not (directory / ds / "metrics.json").is_file()]
    if missing:
        raise HybridReproError(
            f"report.baseline_results {directory} has no metrics.json for {', '.join(missing)}: evaluate the "
            "zero-shot encoder on every dataset of evaluate.datasets, or unset report.baseline_results"
        )
    return RunGroup(params.report.baseline_label, None, None, None, (), (), (directory,),
                    _load([directory], params.evaluate.datasets))

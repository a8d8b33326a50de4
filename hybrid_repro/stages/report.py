"""Stage ``report``: group every run by strategy over seeds, test the differences, write ``reports/``.

Written atomically into ``params.report.out_dir``: ``results.md`` (:func:`hybrid_repro.report.render_markdown`),
``summary.json`` (every group's statistics and every paired comparison), ``mean_map_by_setting.png``,
``rank_distance_by_language.png`` and, when the runs span an alpha sweep (both baselines and a
hybrid run), ``alpha_sweep.png``.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Sequence

from hybrid_repro.config import Params
from hybrid_repro.io import atomic_output_dir, write_json
from hybrid_repro.report import SETTINGS, render_markdown
from hybrid_repro.report_plots import (plot_alpha_sweep, plot_map_by_setting, plot_rank_distance_by_language,
                                       sweep_groups)
from hybrid_repro.seed_groups import RunGroup, pending_runs, strategy_groups, zero_shot_group
from hybrid_repro.significance import Comparison, compare, pool_seeds, query_average_precision, with_holm

ALPHA_SWEEP_PLOT = "alpha_sweep.png"


def paired_comparisons(groups: Sequence[RunGroup], datasets: Sequence[str], *, n_resamples: int,
                       seed: int) -> list[Comparison]:
    """Every pair of strategy groups on every dataset and setting, Holm-adjusted as one family."""
    if len(groups) < 2:
        return []
    comparisons = []
    settings = [setting for setting, _ in SETTINGS]
    for ds in datasets:
        per_run = {d: query_average_precision(d / ds / "per_query.parquet", settings) for g in groups for d in g.run_dirs}
        for setting in settings:
            pooled = {g.label: pool_seeds([per_run[d][setting] for d in g.run_dirs]) for g in groups}
            for first, second in itertools.combinations(groups, 2):
                comparisons.append(compare(ds, setting, (first.label, pooled[first.label]),
                                           (second.label, pooled[second.label]), n_resamples=n_resamples, seed=seed))
    return with_holm(comparisons)


def _summary(groups: Sequence[RunGroup], comparisons: Sequence[Comparison], level: float,
             pending: Sequence[str]) -> dict:
    return {
        "pending_runs": list(pending),
        "groups": [
            {"label": g.label, "strategy": g.strategy, "alpha": g.alpha, "runs": list(g.runs), "seeds": list(g.seeds),
             "statistics": g.statistics}
            for g in groups
        ],
        "significance": {"test": "paired sign-flip randomisation test on per-query AP, seeds pooled per query",
                         "statistic": "mean over queries of AP(first) - AP(second)",
                         "correction": "holm", "level": level,
                         "comparisons": [dataclasses.asdict(c) for c in comparisons]},
    }


def run_report(params: Params) -> None:
    config = params.report
    datasets = params.evaluate.datasets
    pending = pending_runs(params)
    trained = strategy_groups(params, pending)
    zero_shot = zero_shot_group(params)
    groups = ([zero_shot] if zero_shot else []) + trained
    comparisons = paired_comparisons(trained, datasets, n_resamples=config.permutations, seed=params.seed)
    sweep = sweep_groups(trained)
    with atomic_output_dir(config.out_dir) as out:
        plot_map_by_setting(groups, datasets, out / "mean_map_by_setting.png")
        plot_rank_distance_by_language(groups, datasets, out / "rank_distance_by_language.png")
        if sweep:
            plot_alpha_sweep(sweep, datasets, out / ALPHA_SWEEP_PLOT)
        markdown = render_markdown(groups, datasets, comparisons, level=config.significance_level,
                                   alpha_sweep=ALPHA_SWEEP_PLOT if sweep else None, pending=pending)
        (out / "results.md").write_text(markdown, encoding="utf-8")
        write_json(out / "summary.json", _summary(groups, comparisons, config.significance_level, pending))

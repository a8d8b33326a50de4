"""The report's plots: mean mAP per setting, rank distance per language, and the alpha sweep.

Each plot shows the strategy groups of :mod:`hybrid_repro.seed_groups` (means over seeds), with
the standard deviation over seeds as error bars where a group has several seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: reports are written by DVC stages and CI, never shown on screen
import matplotlib.pyplot as plt  # noqa: E402

from hybrid_repro.report import SETTINGS  # noqa: E402
from hybrid_repro.seed_groups import RunGroup, Stat  # noqa: E402


def _value(value: Stat) -> float:
    return float("nan") if value["mean"] is None else value["mean"]


def _spread(value: Stat) -> float:
    return 0.0 if value["std"] is None else value["std"]


def _grouped_bars(ax, categories: list[str], series: Mapping[str, list[Stat]], ylabel: str, title: str) -> None:
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        offsets = [c + (i - (len(series) - 1) / 2) * width for c in range(len(categories))]
        ax.bar(offsets, [_value(v) for v in values], width, yerr=[_spread(v) for v in values], capsize=2, label=name)
    ax.set_xticks(range(len(categories)), categories)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_map_by_setting(groups: Sequence[RunGroup], datasets: Sequence[str], path: Path) -> None:
    """Grouped bars: mean mAP per setting, one bar per group, one panel per dataset."""
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.8), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        series = {g.label: [g.statistics[ds][s]["mean"]["map"] for s, _ in SETTINGS] for g in groups}
        _grouped_bars(ax, [label for _, label in SETTINGS], series, "mAP", ds)
    _save(fig, path)


def plot_rank_distance_by_language(groups: Sequence[RunGroup], datasets: Sequence[str], path: Path) -> None:
    """Grouped bars: mean rank distance per query language (Mul.), one bar per group."""
    fig, axes = plt.subplots(len(datasets), 1, figsize=(9, 3.6 * len(datasets)), squeeze=False)
    for ax, ds in zip(axes[:, 0], datasets):
        languages = list(groups[0].statistics[ds]["mul"]["per_language"])
        series = {g.label: [g.statistics[ds]["mul"]["per_language"][lang]["rank_distance"] for lang in languages]
                  for g in groups}
        _grouped_bars(ax, languages, series, "mean rank distance", f"{ds}: language bias by query language (Mul.)")
    _save(fig, path)


def sweep_groups(groups: Sequence[RunGroup]) -> list[RunGroup]:
    """The groups of an alpha sweep, by alpha: both baselines (α = 0 and 1) and at least one hybrid.

    Empty when the runs do not span the sweep, so no plot is drawn.
    """
    trained = [g for g in groups if g.strategy]
    strategies = {g.strategy for g in trained}
    if not {"x-x-mono", "x-y", "hybrid"} <= strategies:
        return []
    return sorted(trained, key=lambda g: g.mono_probability)


def plot_alpha_sweep(groups: Sequence[RunGroup], datasets: Sequence[str], path: Path) -> None:
    """mAP per setting and Mul. rank distance against alpha (one row of panels per dataset).

    ``groups`` come from :func:`sweep_groups`; x-y sits at α = 0 and x-x-mono at α = 1.
    """
    alphas = [g.mono_probability for g in groups]
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.6 * len(datasets)), squeeze=False)
    for (map_ax, distance_ax), ds in zip(axes, datasets):
        for setting, label in SETTINGS:
            values = [g.statistics[ds][setting]["mean"]["map"] for g in groups]
            map_ax.errorbar(alphas, [_value(v) for v in values], yerr=[_spread(v) for v in values],
                            marker="o", capsize=3, label=label)
        distances = [g.statistics[ds]["mul"]["mean"]["rank_distance"] for g in groups]
        distance_ax.errorbar(alphas, [_value(v) for v in distances], yerr=[_spread(v) for v in distances],
                             marker="o", capsize=3, color="tab:red")
        map_ax.set(xlabel="α (share of monolingual batches)", ylabel="mAP", title=f"{ds}: mAP")
        map_ax.legend(fontsize="small")
        distance_ax.set(xlabel="α (share of monolingual batches)", ylabel="mean rank distance",
                        title=f"{ds}: Mul. rank distance (lower is better)")
    _save(fig, path)

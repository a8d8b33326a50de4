"""Tables in the shape of the paper's Tables 1 and 2, and the plots that go with them.

Input is the metrics JSON that the evaluation suite writes per run and dataset
(``settings.{mo,cr,mul}.{mean,per_language}``); output is markdown and PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")  # headless: reports are written by DVC stages and CI, never shown on screen
import matplotlib.pyplot as plt  # noqa: E402

from hybrid_repro.errors import HybridReproError  # noqa: E402

# run name -> dataset name -> metrics JSON
RunMetrics = Mapping[str, Mapping[str, dict]]

SETTINGS = (("mo", "Mo."), ("cr", "Cr."), ("mul", "Mul."))
RECALL_COLUMNS = (("mo", "r@1", "Mo. R@1"), ("cr", "r@1", "Cr. R@1"), ("mul", "r@10", "Mul. R@10"))


def _mean(metrics: dict, setting: str, key: str) -> float:
    try:
        return float(metrics["settings"][setting]["mean"][key])
    except KeyError as exc:
        raise HybridReproError(
            f"metrics for dataset {metrics.get('dataset', '?')!r} lack settings.{setting}.mean.{key}: "
            "re-run the evaluate stage"
        ) from exc


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def datasets_of(results: RunMetrics) -> list[str]:
    """Datasets present for every run, in first-seen order."""
    runs = list(results.values())
    return [name for name in runs[0] if all(name in run for run in runs)]


def map_table(results: RunMetrics) -> str:
    """Table 1: mean mAP per dataset and setting, one row per run."""
    datasets = datasets_of(results)
    header = ["Run"] + [f"{ds} {label}" for ds in datasets for _, label in SETTINGS]
    rows = [
        [run] + [f"{_mean(by_ds[ds], s, 'map'):.3f}" for ds in datasets for s, _ in SETTINGS]
        for run, by_ds in results.items()
    ]
    return _markdown_table(header, rows)


def recall_table(results: RunMetrics) -> str:
    """R@1 for Mo. and Cr., R@10 for Mul. (the paper's 'b' tables), one row per run."""
    datasets = datasets_of(results)
    header = ["Run"] + [f"{ds} {label}" for ds in datasets for *_, label in RECALL_COLUMNS]
    rows = [
        [run] + [f"{_mean(by_ds[ds], s, key):.3f}" for ds in datasets for s, key, _ in RECALL_COLUMNS]
        for run, by_ds in results.items()
    ]
    return _markdown_table(header, rows)


def rank_distance_table(results: RunMetrics) -> str:
    """Table 2: mean rank distance in the Mul. setting (lower is less language bias)."""
    datasets = datasets_of(results)
    rows = [[run] + [f"{_mean(by_ds[ds], 'mul', 'rank_distance'):.1f}" for ds in datasets]
            for run, by_ds in results.items()]
    return _markdown_table(["Run"] + datasets, rows)


def render_markdown(results: RunMetrics) -> str:
    """The whole report as markdown."""
    if not results:
        raise HybridReproError("no evaluation results to report: run the evaluate stages first")
    counts = {
        ds: next(iter(results.values()))[ds]["settings"]["mo"].get("n_queries", {})
        for ds in datasets_of(results)
    }
    parts = [
        "# Results",
        "",
        "Mean average precision, macro-averaged over query languages (Cr.: first over target languages).",
        "",
        map_table(results),
        "",
        "## Recall (R@1 for Mo. and Cr., R@10 for Mul.)",
        "",
        recall_table(results),
        "",
        "## Language bias: mean rank distance in the Mul. setting (lower is better)",
        "",
        rank_distance_table(results),
        "",
        "Queries per language (Mo.): "
        + "; ".join(f"{ds}: " + ", ".join(f"{k} {v}" for k, v in c.items()) for ds, c in counts.items()),
        "",
    ]
    return "\n".join(parts)


def _grouped_bars(ax, groups: list[str], series: Mapping[str, list[float]], ylabel: str, title: str) -> None:
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        offsets = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(offsets, values, width, label=name)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")


def plot_map_by_setting(results: RunMetrics, path: Path) -> None:
    """Grouped bars: mean mAP per setting, one bar per run, one panel per dataset."""
    datasets = datasets_of(results)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.8), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        series = {run: [_mean(by_ds[ds], s, "map") for s, _ in SETTINGS] for run, by_ds in results.items()}
        _grouped_bars(ax, [label for _, label in SETTINGS], series, "mAP", ds)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_rank_distance_by_language(results: RunMetrics, path: Path) -> None:
    """Grouped bars: mean rank distance per query language (Mul.), one bar per run."""
    datasets = datasets_of(results)
    fig, axes = plt.subplots(len(datasets), 1, figsize=(9, 3.6 * len(datasets)), squeeze=False)
    for ax, ds in zip(axes[:, 0], datasets):
        first = next(iter(results.values()))[ds]
        languages = list(first["settings"]["mul"]["per_language"])
        series = {
            run: [float(by_ds[ds]["settings"]["mul"]["per_language"][lang]["rank_distance"]) for lang in languages]
            for run, by_ds in results.items()
        }
        _grouped_bars(ax, languages, series, "mean rank distance", f"{ds}: language bias by query language (Mul.)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

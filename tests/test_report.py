"""Report markdown: cells over seeds, significance marks, the paper's rows only beside the paper's datasets."""

from pathlib import Path

from hybrid_repro.report import (MAP_COLUMNS, format_stat, per_language_table, render_markdown,
                                 significance_marks, summary_table)
from hybrid_repro.seed_groups import RunGroup, stat
from hybrid_repro.significance import Comparison

LANGS = ("aa", "bb")


def statistics(values_by_seed: list[float]) -> dict:
    """One dataset's statistics where every metric of every language takes ``values_by_seed``."""
    metrics = {key: stat(values_by_seed) for key in ("map", "r@1", "r@10", "rank_distance")}
    return {setting: {"mean": metrics, "per_language": {lang: metrics for lang in LANGS}}
            for setting in ("mo", "cr", "mul")}


def group(label: str, strategy: str | None, values: list[float], datasets=("ds",)) -> RunGroup:
    runs = tuple(f"{label}-{i}" for i in range(len(values))) if strategy else ()
    return RunGroup(label, strategy, None, None, runs, tuple(range(len(runs))), (Path("."),),
                    {ds: statistics(values) for ds in datasets})


def test_format_stat_shows_spread_only_with_several_seeds():
    assert format_stat(stat([0.5, 0.7]), 3) == "0.600 ± 0.141"
    assert format_stat(stat([0.5]), 3) == "0.500"
    assert format_stat(stat([None]), 3) == "–"


def test_summary_table_rows_and_paper_rows_only_for_paper_datasets():
    groups = [group("x-x-mono", "x-x-mono", [0.8, 0.8]), group("x-y", "x-y", [0.7])]
    table = summary_table(groups, ["ds"], MAP_COLUMNS, 3, paper=("1", 3)).splitlines()
    assert table[0] == "| Run | seeds | ds Mo. | ds Cr. | ds Mul. |"
    assert table[2] == "| x-x-mono | 2 | 0.800 ± 0.000 | 0.800 ± 0.000 | 0.800 ± 0.000 |"
    assert table[3] == "| x-y | 1 | 0.700 | 0.700 | 0.700 |" and len(table) == 4
    both = [group("x-y", "x-y", [0.7], datasets=("ds", "xquad-r"))]
    rows = summary_table(both, ["ds", "xquad-r"], MAP_COLUMNS, 3, paper=("1", 3)).splitlines()
    assert "| paper, XLM-R: x-x-mono | 1 | – | – | – | 0.792 | 0.674 | 0.547 |" in rows


def test_marks_name_the_baselines_a_strategy_significantly_differs_from():
    comparisons = [
        Comparison("ds", "mo", "x-x-mono", "x-y", 80, 0.1, 0.001, 0.003),
        Comparison("ds", "mo", "x-x-mono", "hybrid α=0.5", 80, 0.0, 0.9, 0.9),
        Comparison("ds", "mo", "x-y", "hybrid α=0.5", 80, -0.1, 0.001, 0.003),
        Comparison("ds", "mul", "x-y", "hybrid α=0.5", 80, -0.1, 0.04, 0.08),
    ]
    assert significance_marks(comparisons, 0.05) == {
        ("ds", "mo", "x-x-mono"): "‡", ("ds", "mo", "x-y"): "†", ("ds", "mo", "hybrid α=0.5"): "‡"}
    assert significance_marks(comparisons, 0.1)[("ds", "mul", "hybrid α=0.5")] == "‡"


def test_per_language_table_has_a_row_per_language_and_the_mean():
    groups = [group("x-y", "x-y", [0.7]), group("hybrid", "hybrid", [0.6, 0.8])]
    table = per_language_table(groups, "ds", MAP_COLUMNS, 3).splitlines()
    assert table[0].startswith("| Lang | Mo. x-y | Mo. hybrid | Cr. x-y |")
    assert [row.split(" | ")[0] for row in table[2:]] == ["| aa", "| bb", "| **Mean**"]


def test_render_markdown_states_the_spread_the_test_and_the_sweep():
    groups = [group("zero-shot encoder", None, [0.3]), group("x-y", "x-y", [0.7, 0.75])]
    comparisons = [Comparison("ds", "mo", "x-y", "hybrid", 80, 0.1, 0.001, 0.003)]
    markdown = render_markdown(groups, ["ds"], comparisons, level=0.05, alpha_sweep="alpha_sweep.png")
    assert "± the sample standard deviation over seeds" in markdown
    assert "Holm-adjusted over all 1 comparisons of this report, at level 0.05" in markdown
    assert "| zero-shot encoder | zero-shot | 0.300 |" in markdown
    assert "| ds | Mo. | x-y − hybrid | 80 | +0.1000 | 0.0010 | 0.0030 | yes |" in markdown
    assert "![alpha sweep](alpha_sweep.png)" in markdown
    assert "No significance test" in render_markdown(groups, ["ds"], [], level=0.05, alpha_sweep=None)

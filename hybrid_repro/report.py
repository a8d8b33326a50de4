"""The report as markdown: the paper's Tables 1-8 in shape, over seeds, with significance marks.

Input: the strategy groups of :mod:`hybrid_repro.seed_groups` (the zero-shot encoder first when
present), the datasets they were evaluated on, and the Holm-adjusted paired comparisons of
:mod:`hybrid_repro.significance`. A cell is ``mean ± sd`` over a group's seeds, or the mean alone
when the group has one seed. Where a dataset is one of the paper's (XQuAD-R, MLQA-R), the paper's
own means (:mod:`hybrid_repro.reference`) follow our rows, labelled as such.
"""

from __future__ import annotations

from typing import Sequence

from hybrid_repro.reference import paper_value
from hybrid_repro.seed_groups import RunGroup, Stat
from hybrid_repro.significance import Comparison

SETTINGS = (("mo", "Mo."), ("cr", "Cr."), ("mul", "Mul."))
MAP_COLUMNS = tuple((setting, "map", label) for setting, label in SETTINGS)
RECALL_COLUMNS = (("mo", "r@1", "Mo. R@1"), ("cr", "r@1", "Cr. R@1"), ("mul", "r@10", "Mul. R@10"))
RANK_DISTANCE_COLUMNS = (("mul", "rank_distance", "Mul. rank distance"),)
PAPER_DATASETS = ("xquad-r", "mlqa-r")
PAPER_MODELS = (("xlm-r", "XLM-R"), ("labse", "LaBSE"))
PAPER_STRATEGIES = ("x-x-mono", "x-y", "hybrid")
# Significance marks on a cell: the row's strategy differs from this baseline.
MARKS = (("x-x-mono", "†"), ("x-y", "‡"))
MISSING = "–"

Column = tuple[str, str, str]  # setting, metric, header label


def format_stat(value: Stat, digits: int) -> str:
    """``mean ± sd``, the mean alone without a spread, or a dash when nothing was scored."""
    if value["mean"] is None:
        return MISSING
    if value["std"] is None:
        return f"{value['mean']:.{digits}f}"
    return f"{value['mean']:.{digits}f} ± {value['std']:.{digits}f}"


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _seeds(group: RunGroup) -> str:
    return str(len(group.runs)) if group.strategy else "zero-shot"


def significance_marks(comparisons: Sequence[Comparison], level: float) -> dict[tuple[str, str, str], str]:
    """(dataset, setting, group label) -> marks of the baselines the group differs from at Holm level ``level``."""
    found: dict[tuple[str, str, str], set[str]] = {}
    for c in comparisons:
        if c.p_holm is None or c.p_holm > level:
            continue
        for baseline, mark in MARKS:
            for label, other in ((c.first, c.second), (c.second, c.first)):
                if other == baseline:
                    found.setdefault((c.dataset, c.setting, label), set()).add(mark)
    return {key: "".join(mark for _, mark in MARKS if mark in marks) for key, marks in found.items()}


def _paper_rows(datasets: Sequence[str], columns: Sequence[Column], table: str | None, digits: int) -> list[list[str]]:
    """The paper's printed means in our column layout (``table`` None: the 'b' tables' Mean rows)."""
    if not any(ds in PAPER_DATASETS for ds in datasets):
        return []
    def cell(model: str, strategy: str, dataset: str, setting: str, metric: str) -> str:
        if dataset not in PAPER_DATASETS:
            return MISSING
        value = paper_value(table, model=model, strategy=strategy, dataset=dataset, setting=setting, metric=metric,
                            aggregate="mean")
        return f"{value:.{digits}f}"

    return [
        [f"paper, {model_label}: {strategy}", "1"]
        + [cell(model, strategy, ds, setting, metric) for ds in datasets for setting, metric, _ in columns]
        for model, model_label in PAPER_MODELS for strategy in PAPER_STRATEGIES
    ]


def summary_table(groups: Sequence[RunGroup], datasets: Sequence[str], columns: Sequence[Column], digits: int,
                  *, paper: tuple[str | None, int], marks: dict | None = None) -> str:
    """Macro-averaged means: one row per group, ``columns`` per dataset, then the paper's rows.

    ``paper`` is the paper table the rows come from (None: the 'b' tables) and its printed decimals.
    """
    marks = marks or {}
    header = ["Run", "seeds"] + [f"{ds} {label}" for ds in datasets for *_, label in columns]
    rows = [
        [group.label, _seeds(group)]
        + [format_stat(group.statistics[ds][setting]["mean"][metric], digits)
           + marks.get((ds, setting, group.label), "")
           for ds in datasets for setting, metric, _ in columns]
        for group in groups
    ]
    return _markdown_table(header, rows + _paper_rows(datasets, columns, *paper))


def _language_stat(group: RunGroup, dataset: str, setting: str, lang: str, metric: str) -> Stat:
    return group.statistics[dataset][setting]["per_language"].get(lang, {}).get(metric, {"mean": None})


def per_language_table(groups: Sequence[RunGroup], dataset: str, columns: Sequence[Column], digits: int) -> str:
    """The paper's Tables 3-8 in shape: one row per query language, one column per setting and group."""
    languages: list[str] = []
    for group in groups:
        for setting, *_ in columns:
            languages += [lang for lang in group.statistics[dataset][setting]["per_language"] if lang not in languages]
    header = ["Lang"] + [f"{label} {group.label}" for *_, label in columns for group in groups]
    rows = [
        [lang] + [format_stat(_language_stat(group, dataset, setting, lang, metric), digits)
                  for setting, metric, _ in columns for group in groups]
        for lang in languages
    ]
    rows.append(["**Mean**"] + [format_stat(group.statistics[dataset][setting]["mean"][metric], digits)
                                for setting, metric, _ in columns for group in groups])
    return _markdown_table(header, rows)


def significance_table(comparisons: Sequence[Comparison], level: float) -> str:
    """Every paired test: mean AP difference, raw and Holm-adjusted p-values."""
    rows = [
        [c.dataset, dict(SETTINGS)[c.setting], f"{c.first} − {c.second}", str(c.n_queries),
         f"{c.mean_difference:+.4f}", f"{c.p_value:.4f}", f"{c.p_holm:.4f}",
         "yes" if c.p_holm is not None and c.p_holm <= level else "no"]
        for c in comparisons
    ]
    header = ["Dataset", "Setting", "A − B", "queries", "mean AP(A) − AP(B)", "p", "p (Holm)",
              f"p (Holm) ≤ {level:g}"]
    return _markdown_table(header, rows)


def _spread_note(groups: Sequence[RunGroup]) -> str:
    seeded = [group for group in groups if group.strategy]
    if seeded and all(len(group.runs) == 1 for group in seeded):
        return ("Every strategy has one seed, so no standard deviation over seeds can be given (n/a): each cell is "
                "that one run's value.")
    return ("Cells are the mean over a row's seeds (column `seeds`) ± the sample standard deviation over seeds; "
            "a row with one seed shows its value alone (standard deviation n/a).")


def _significance_note(groups: Sequence[RunGroup], comparisons: Sequence[Comparison], level: float) -> str:
    if not comparisons:
        return "No significance test: fewer than two strategies."
    note = (f"† differs from x-x-mono, ‡ differs from x-y: paired sign-flip randomisation test on per-query AP "
            f"(each query's AP averaged over seeds, Cr. over target languages), Holm-adjusted over all "
            f"{len(comparisons)} comparisons of this report, at level {level:g}. Recall and rank distance are "
            "not tested.")
    if any(len(group.runs) == 1 for group in groups if group.strategy):
        # The test resamples queries, not training runs: with one seed it cannot see seed-to-seed variation.
        note += (" A strategy with one seed is one trained model: a mark then says that model differs from the "
                 "other over these queries, not that the strategy would across training seeds.")
    return note


def _paper_note(datasets: Sequence[str]) -> list[str]:
    if not any(ds in PAPER_DATASETS for ds in datasets):
        return []
    return ["Rows `paper, …`: the paper's printed means (Tables 1-8; XLM-R / LaBSE fine-tuned on the paper's "
            "training data, one run each): compare the pattern, not the level. A dash: the paper has no such "
            "dataset.", ""]


def render_markdown(groups: Sequence[RunGroup], datasets: Sequence[str], comparisons: Sequence[Comparison],
                    *, level: float, alpha_sweep: str | None, pending: Sequence[str] = ()) -> str:
    """The whole report; ``alpha_sweep`` is the file name of the alpha-sweep plot, if one was drawn; ``pending``
    names the runs of the grid that have no results yet (stated at the top: the tables cover the others)."""
    marks = significance_marks(comparisons, level)
    parts = [
        "# Results", "",
        *([f"**Partial grid.** Not run yet: {', '.join(pending)}. Every table, test and plot below covers only "
           "the finished runs (the seeds column counts them).", ""] if pending else []),
        "Runs are grouped by batch strategy (and α for hybrid). " + _spread_note(groups), "",
        "## Mean mAP (macro-averaged over query languages; Cr.: first over target languages)", "",
        summary_table(groups, datasets, MAP_COLUMNS, 3, paper=("1", 3), marks=marks), "",
        _significance_note(groups, comparisons, level), "",
        *_paper_note(datasets),
        "## Recall (R@1 for Mo. and Cr., R@10 for Mul.)", "",
        summary_table(groups, datasets, RECALL_COLUMNS, 3, paper=(None, 4)), "",
        "## Language bias: mean rank distance in the Mul. setting (lower is better)", "",
        summary_table(groups, datasets, RANK_DISTANCE_COLUMNS, 1, paper=("2", 0)), "",
    ]
    for ds in datasets:
        parts += [
            f"## Per language: {ds}", "",
            "### mAP", "", per_language_table(groups, ds, MAP_COLUMNS, 3), "",
            "### Recall", "", per_language_table(groups, ds, RECALL_COLUMNS, 3), "",
            "### Mean rank distance (Mul.)", "", per_language_table(groups, ds, RANK_DISTANCE_COLUMNS, 1), "",
        ]
    if comparisons:
        parts += ["## Paired significance (per-query AP)", "", significance_table(comparisons, level), ""]
    if alpha_sweep:
        parts += ["## Alpha sweep", "",
                  "mAP per setting and Mul. rank distance against the share α of monolingual batches "
                  "(x-y is α = 0, x-x-mono α = 1); error bars: standard deviation over seeds where a point has "
                  "several.", "", f"![alpha sweep]({alpha_sweep})", ""]
    return "\n".join(parts)

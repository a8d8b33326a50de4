"""Stages ``fetch@<dataset>`` and ``baselines`` of ``pipelines/lareqa/dvc.yaml``.

``fetch@xquad-r`` / ``fetch@mlqa-r`` download the pinned LAReQA files into ``data/lareqa/<name>``
(from the directory in ``HYBRID_REPRO_DATA_MIRROR`` when it is set, checksums verified either way).

``baselines`` scores BM25 and a uniformly random ranker on each dataset with the same ranking and
metric code as the trained encoders and writes ``<out_dir>/{bm25,random}/<dataset>/`` in the layout
of the evaluate stage (:func:`hybrid_repro.stages.evaluate.write_dataset_outputs`); the random
ranker's metrics also carry their exact expectation (``expected``). It then renders the tables of
``docs/baselines.md`` from those metrics documents. Parameters: ``pipelines/lareqa/params.yaml``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal, Mapping

from pydantic import Field

from hybrid_repro.config import FETCHED_DATASETS, Section, load_params
from hybrid_repro.evaluation.baselines import (BM25_B, BM25_K1, Bm25Ranker, expected_random_result,
                                              random_score_rows)
from hybrid_repro.evaluation.download import verify_pinned_files
from hybrid_repro.evaluation.lareqa import load_lareqa
from hybrid_repro.evaluation.settings import SETTINGS, evaluate_score_rows
from hybrid_repro.io import atomic_output_dir, atomic_output_file
from hybrid_repro.paths import OutputPath
from hybrid_repro.stages.evaluate import LAREQA_DATA_DIR, summary_line, write_dataset_outputs

DEFAULT_BASELINES_PARAMS = Path("pipelines/lareqa/params.yaml")


class Bm25Params(Section):
    k1: float = Field(BM25_K1, gt=0)
    b: float = Field(BM25_B, ge=0, le=1)


class RandomParams(Section):
    seed: int = 0


class BaselinesConfig(Section):
    """The ``baselines`` section of ``pipelines/lareqa/params.yaml``."""

    datasets: tuple[Literal[FETCHED_DATASETS], ...] = FETCHED_DATASETS  # type: ignore[valid-type]
    candidate_text: Literal["sentence", "sentence+context"] = "sentence"
    bm25: Bm25Params = Bm25Params()
    random: RandomParams = RandomParams()
    out_dir: OutputPath = Path("baselines")
    doc_path: OutputPath = Path("docs/baselines.md")


class BaselinesParams(Section):
    baselines: BaselinesConfig


def load_baselines_params(path: str | Path = DEFAULT_BASELINES_PARAMS) -> BaselinesConfig:
    """Read and validate the baselines pipeline's params file."""
    return load_params(path, BaselinesParams).baselines


def run_fetch_lareqa(name: str, data_dir: Path = LAREQA_DATA_DIR) -> Path:
    """Download the pinned files of dataset ``name`` into ``data_dir/name`` (from the mirror in
    ``$HYBRID_REPRO_DATA_MIRROR`` when set); returns that directory."""
    from hybrid_repro.evaluation.download import fetch_lareqa

    out_dir = data_dir / name
    fetch_lareqa(name, out_dir)
    return out_dir


def _ranker_outputs(config: BaselinesConfig, name: str, out: Path, progress: bool) -> dict[str, dict]:
    """Evaluate both rankers on dataset ``name`` and write their output directories under ``out``."""
    directory = LAREQA_DATA_DIR / name
    if not directory.is_dir():
        directory = run_fetch_lareqa(name)
    verify_pinned_files(name, directory)
    dataset = load_lareqa(directory, candidate_text=config.candidate_text, name=name)
    bm25 = Bm25Ranker(dataset, k1=config.bm25.k1, b=config.bm25.b, progress=progress)
    bm25_result = evaluate_score_rows(dataset, bm25.score_rows, progress=progress)
    random_rows = random_score_rows(dataset, config.random.seed)
    random_result = evaluate_score_rows(dataset, random_rows, progress=progress)
    expected = expected_random_result(dataset)
    random_extra = {
        "ranker": {"ranker": "random", "scores": "iid uniform per query", "seed": config.random.seed},
        "expected": {setting: expected.setting_summary(setting)["mean"] for setting in SETTINGS},
    }
    return {
        "bm25": write_dataset_outputs(out / "bm25" / name, bm25_result, bm25.score_rows,
                                      {"ranker": bm25.settings}, run_tag="bm25", progress=progress),
        "random": write_dataset_outputs(out / "random" / name, random_result, random_rows, random_extra,
                                        run_tag="random", progress=progress),
    }


def run_baselines(config: BaselinesConfig, *, progress: bool = True) -> None:
    """Evaluate BM25 and random on every configured dataset; write ``config.out_dir`` and ``config.doc_path``."""
    started = time.perf_counter()
    results: dict[str, dict[str, dict]] = {}
    with atomic_output_dir(config.out_dir) as out:
        for name in config.datasets:
            results[name] = _ranker_outputs(config, name, out, progress)
    with atomic_output_file(config.doc_path) as handle:
        handle.write(render_baselines_markdown(results, config))
    for name, by_ranker in results.items():
        for ranker, metrics in by_ranker.items():
            print(summary_line(f"baselines {ranker} {name}", metrics))
    print(f"(wrote {config.out_dir} and {config.doc_path} in {time.perf_counter() - started:.1f}s)")


COLUMNS = (
    ("mo", "map", "Mo. mAP"), ("mo", "map@20", "Mo. mAP@20"), ("mo", "r@1", "Mo. R@1"),
    ("cr", "map", "Cr. mAP"), ("cr", "map@20", "Cr. mAP@20"), ("cr", "r@1", "Cr. R@1"),
    ("mul", "map", "Mul. mAP"), ("mul", "map@20", "Mul. mAP@20"), ("mul", "r@10", "Mul. R@10"),
    ("mul", "rank_distance", "Mul. rank distance"),
)


def format_cell(value: float, key: str) -> str:
    """A metric as the baseline tables print it: rank distance to 0.1, every other metric to 4 decimals."""
    return f"{value:.1f}" if key == "rank_distance" else f"{value:.4f}"


def _mean_rows(by_ranker: Mapping[str, Mapping]) -> list[str]:
    rows = []
    for label, means in (
        ("BM25", by_ranker["bm25"]["settings"]),
        ("random (measured)", by_ranker["random"]["settings"]),
        ("random (expected)", {s: {"mean": m} for s, m in by_ranker["random"]["expected"].items()}),
    ):
        cells = [format_cell(means[setting]["mean"][key], key) for setting, key, _ in COLUMNS]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return rows


def _bm25_language_rows(metrics: Mapping) -> list[str]:
    settings = metrics["settings"]
    rows = []
    for lang in settings["mul"]["per_language"]:
        values = [settings[s]["per_language"].get(lang, {}).get("map") for s in SETTINGS]
        cells = [f"{value:.4f}" if value is not None else "n/a" for value in values]
        rows.append(f"| {lang} | {settings['mul']['n_queries'][lang]} | " + " | ".join(cells) + " |")
    return rows


def render_baselines_markdown(results: Mapping[str, Mapping[str, Mapping]], config: BaselinesConfig) -> str:
    """``docs/baselines.md``: per dataset, the mean table of both rankers and BM25 per language."""
    lines = [
        "# LAReQA baselines: BM25 and random",
        "",
        "Generated by the `baselines` stage of `pipelines/lareqa/dvc.yaml` from",
        f"`{config.out_dir}/{{bm25,random}}/<dataset>/metrics.json`; do not edit by hand.",
        "Run it with `HYBRID_REPRO_DATA_MIRROR=<mirror> dvc repro pipelines/lareqa/dvc.yaml`.",
        "",
        f"* BM25: `bm25s` Lucene BM25, k1 = {config.bm25.k1}, b = {config.bm25.b}, one index over every "
        f"candidate of every language (candidate text: {config.candidate_text}); case-folded words, and "
        "grapheme unigrams + bigrams for scripts written without spaces (zh, th); see "
        "`hybrid_repro/evaluation/baselines.py`.",
        f"* Random: iid uniform scores per query (seed {config.random.seed}); *expected* is the exact expectation "
        "of each metric under a uniformly random ranking, averaged like the measured values.",
        "* Full-ranking mAP (LAReQA), mAP@20 (XTREME-R), R@1 (Mo., Cr.), R@10 (Mul.), rank distance (Mul., "
        "largest minus smallest rank of a query's relevant candidates); macro averages over query languages "
        "(Cr.: over target languages first), pessimistic ties.",
        "* BM25 scores 0 for every candidate that shares no token with the query (most candidates in other "
        "languages); under pessimistic ties these all share the last rank, which is why its Mul. rank "
        "distance can exceed the random ranker's.",
    ]
    for name, by_ranker in results.items():
        bm25 = by_ranker["bm25"]
        header = "| ranker | " + " | ".join(label for _, _, label in COLUMNS) + " |"
        cr_pairs = bm25["settings"]["cr"]["per_pair"]
        scored = [row["n_queries"] for row in cr_pairs.values()]
        lines += [
            "",
            f"## {name}",
            "",
            f"{len(bm25['settings']['mul']['per_language'])} languages; Cr. pairs scored: {len(cr_pairs)} "
            f"({min(scored)}-{max(scored)} queries per pair).",
            "",
            header,
            "|" + "---|" * (len(COLUMNS) + 1),
            *_mean_rows(by_ranker),
            "",
            f"BM25 mAP per query language ({name}):",
            "",
            "| language | queries | Mo. | Cr. | Mul. |",
            "|---|---|---|---|---|",
            *_bm25_language_rows(bm25),
        ]
    return "\n".join(lines) + "\n"

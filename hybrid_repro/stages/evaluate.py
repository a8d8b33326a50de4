"""Stage ``evaluate@RUN``: zero-shot LAReQA evaluation (Mo., Cr., Mul.) of one trained run.

For each dataset in ``params.evaluate.datasets`` the stage loads its language files, encodes
questions and candidates with the run's encoder (through the embedding cache in
``params.evaluate.cache_dir``), ranks exactly over the full candidate pools and writes, atomically,
``<evaluate.out_dir>/<run>/<dataset>/`` (the layout :func:`write_dataset_outputs` describes).

Dataset directories: ``synth-r`` is ``<translate.out_dir>/eval/synth-r`` (written by the
``translate`` stage); ``xquad-r`` and ``mlqa-r`` are ``data/lareqa/<name>`` (written by the
``fetch@<name>`` stage of ``pipelines/lareqa/dvc.yaml``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from hybrid_repro.config import Params
from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.encode import encode_dataset
from hybrid_repro.evaluation.heatmap import write_cr_heatmap
from hybrid_repro.evaluation.lareqa import load_lareqa
from hybrid_repro.evaluation.metrics import MAP_CUTOFF
from hybrid_repro.evaluation.ranking import ScoreRows, embedding_scorer
from hybrid_repro.evaluation.runfile import rankings_by_setting, write_run_file
from hybrid_repro.evaluation.settings import (SETTINGS, EvaluationResult, check_embeddings,
                                              evaluate_score_rows)
from hybrid_repro.io import atomic_output_dir, atomic_output_file, write_json

LAREQA_DATA_DIR = Path("data/lareqa")
FETCHED_DATASETS = ("xquad-r", "mlqa-r")
RUN_TOP_K = MAP_CUTOFF
"""Candidates per query kept in the run files: deep enough that mAP@20, R@10 and R@1 computed from a
run file are exact, small enough for XQuAD-R (about 17 MB per file; top-100 would be 85 MB). The
metrics documents themselves come from full rankings."""


def dataset_directory(params: Params, name: str) -> Path:
    """Where dataset ``name`` lives; a missing directory is an error naming the stage that writes it."""
    if name == "synth-r":
        directory = params.translate.out_dir / "eval" / "synth-r"
        producer = "`hybrid-repro translate` (or `dvc repro translate`)"
    elif name in FETCHED_DATASETS:
        directory = LAREQA_DATA_DIR / name
        producer = (f"`dvc repro pipelines/lareqa/dvc.yaml:fetch@{name}` or `hybrid-repro fetch-lareqa {name}` "
                    "(offline: set HYBRID_REPRO_DATA_MIRROR to a directory holding the pinned files)")
    else:
        raise HybridReproError(
            f"unknown evaluation dataset {name!r} in evaluate.datasets; known: synth-r, {', '.join(FETCHED_DATASETS)}"
        )
    if not directory.is_dir():
        raise HybridReproError(f"dataset {name} not found at {directory}: run {producer} first")
    return directory


def write_per_query(path: Path, rows: list[dict]) -> None:
    """Per-query rows (:meth:`EvaluationResult.per_query_rows`) as a Parquet table, atomically."""
    table = pa.Table.from_pylist(rows)
    with atomic_output_file(path, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")


def write_dataset_outputs(
    out_dir: Path,
    result: EvaluationResult,
    score_rows: ScoreRows,
    extra: Mapping[str, object],
    *,
    run_tag: str,
    progress: bool = True,
) -> dict:
    """Write one dataset's evaluation into ``out_dir`` and return its metrics document.

    Files: ``metrics.json`` (``result.to_metrics_json(extra)`` plus the run-file description),
    ``per_query.parquet`` (one row per scored setting/query/target, for paired tests),
    ``cr_heatmap.png`` (Cr. mAP per language pair, Mo. on the diagonal) and
    ``runs/{mo,cr,mul}.trec`` (TREC run files of the top :data:`RUN_TOP_K` candidates per query, all
    three from one scoring pass, see :func:`~hybrid_repro.evaluation.runfile.setting_rankings`;
    ``cr.trec`` ranks each question against all other languages together, so its list restricted to
    one target is that pair's ranking).
    """
    run_files = {}
    rankings = rankings_by_setting(result.dataset, score_rows, SETTINGS, top_k=RUN_TOP_K, progress=progress)
    for setting in SETTINGS:
        path = out_dir / "runs" / f"{setting}.trec"
        write_run_file(path, rankings[setting], tag=run_tag, top_k=RUN_TOP_K)
        run_files[setting] = str(path.relative_to(out_dir))
    metrics = result.to_metrics_json({**extra, "run_files": {"top_k": RUN_TOP_K, **run_files}})
    write_json(out_dir / "metrics.json", metrics)
    write_per_query(out_dir / "per_query.parquet", result.per_query_rows())
    write_cr_heatmap(out_dir / "cr_heatmap.png", metrics, title=f"{run_tag} on {result.dataset.name}: Cr. mAP (diagonal: Mo.)")
    return metrics


def summary_line(name: str, metrics: Mapping) -> str:
    """``name: Mo. x / Cr. y / Mul. z mAP`` from a metrics document."""
    means = {setting: metrics["settings"][setting]["mean"]["map"] for setting in SETTINGS}
    return f"{name}: mAP Mo. {means['mo']:.4f} / Cr. {means['cr']:.4f} / Mul. {means['mul']:.4f}"


def load_run_encoder(model_dir: Path):
    """The trained encoder in ``model_dir`` (the modeling stack is imported only when needed)."""
    from hybrid_repro.modeling.encoder import Encoder

    return Encoder.load(model_dir)


def run_evaluate(params: Params, run_name: str) -> None:
    """Evaluate run ``run_name`` on every dataset of ``params.evaluate`` and write its results."""
    started = time.perf_counter()
    params.run(run_name)
    config = params.evaluate
    model_dir = params.train.model_dir / run_name
    if not model_dir.is_dir():
        raise HybridReproError(
            f"no trained model for run {run_name!r} at {model_dir}: run `hybrid-repro train --run {run_name}` "
            f"(or `dvc repro train@{run_name}`) first"
        )
    directories = {name: dataset_directory(params, name) for name in config.datasets}
    encoder = load_run_encoder(model_dir)
    encoding = dataclasses.asdict(encoder.settings)
    lines = []
    with atomic_output_dir(config.out_dir / run_name) as out:
        for name, directory in directories.items():
            dataset = load_lareqa(directory, candidate_text=config.candidate_text, name=name)
            encoded = encode_dataset(
                encoder, dataset, batch_size=config.batch_size, cache_dir=config.cache_dir, settings=encoding
            )
            check_embeddings(dataset, encoded.queries, encoded.candidates)
            scorer = embedding_scorer(encoded.queries, encoded.candidates)
            result = evaluate_score_rows(dataset, scorer)
            extra = {
                "run": run_name,
                "model_fingerprint": encoded.settings["fingerprint"],
                "encoding": encoded.settings,
                "embedding_cache_hits": encoded.cache_hits,
            }
            metrics = write_dataset_outputs(out / name, result, scorer, extra, run_tag=run_name)
            lines.append(summary_line(f"evaluate {run_name} {name}", metrics))
    print("\n".join(lines) + f"\n(wrote {config.out_dir / run_name} in {time.perf_counter() - started:.1f}s)")

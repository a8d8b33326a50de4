"""Stage ``evaluate@RUN``: zero-shot LAReQA evaluation (Mo., Cr., Mul.) of one trained run; stage
``evaluate-base``: the same for the unchanged encoder every run starts from (the report's zero-shot row).

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
from hybrid_repro.data.translated_manifest import verify_eval_dataset
from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.download import verify_pinned_files
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
RUN_TOP_K = MAP_CUTOFF
"""Candidates per query kept in the run files: deep enough that mAP@20, R@10 and R@1 computed from a
run file are exact, small enough for XQuAD-R (about 17 MB per file; top-100 would be 85 MB). The
metrics documents themselves come from full rankings."""


def dataset_directory(params: Params, name: str) -> Path:
    """Where dataset ``name`` lives, verified against what the stage that writes it recorded (the
    translate manifest, or the pinned checksums of the fetched files); a missing directory, file or
    a mismatch is an error naming the stage to re-run."""
    if name == "synth-r":
        directory = params.translate.out_dir / "eval" / "synth-r"
        producer = "`hybrid-repro translate` (or `dvc repro translate`)"
    else:  # a fetched set: the config admits no other name
        directory = LAREQA_DATA_DIR / name
        producer = (f"`dvc repro pipelines/lareqa/dvc.yaml:fetch@{name}` or `hybrid-repro fetch-lareqa {name}` "
                    "(offline: set HYBRID_REPRO_DATA_MIRROR to a directory holding the pinned files)")
    if not directory.is_dir():
        raise HybridReproError(f"dataset {name} not found at {directory}: run {producer} first")
    if name == "synth-r":
        verify_eval_dataset(params.translate.out_dir, name, params.translate.eval_languages)
    else:
        verify_pinned_files(name, directory)
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
    params.run(run_name)
    model_dir = params.train.model_dir / run_name
    if not model_dir.is_dir():
        raise HybridReproError(
            f"no trained model for run {run_name!r} at {model_dir}: run `hybrid-repro train --run {run_name}` "
            f"(or `dvc repro train@{run_name}`) first"
        )
    directories = dataset_directories(params)
    evaluate_encoder(params, load_run_encoder(model_dir), directories, params.evaluate.out_dir / run_name,
                     run_tag=run_name)


def run_evaluate_base(params: Params) -> None:
    """Evaluate the unchanged encoder of ``params.model`` (what every run starts from) like a trained run, into
    ``params.report.baseline_results``: the report's zero-shot row, encoded with the runs' exact settings."""
    out_dir = params.report.baseline_results
    if out_dir is None:
        raise HybridReproError("report.baseline_results is null: set it to the directory the unchanged encoder's "
                               "results go to (under evaluate.out_dir) before running `hybrid-repro evaluate-base`")
    if params.model.source == "scratch":
        raise HybridReproError("model.source 'scratch' has no pretrained encoder to evaluate unchanged: "
                               "`hybrid-repro evaluate-base` needs model.source 'hub' or 'local'")
    directories = dataset_directories(params)
    from hybrid_repro.modeling.encoder import Encoder

    # The run tag (TREC files, metrics "run") is the directory's name, a word; the label is the report's.
    evaluate_encoder(params, Encoder.build(params.model, None, seed=params.seed), directories, out_dir,
                     run_tag=out_dir.name)


def dataset_directories(params: Params) -> dict[str, Path]:
    """Every dataset of ``params.evaluate``, verified, before any encoding starts."""
    return {name: dataset_directory(params, name) for name in params.evaluate.datasets}


def evaluate_encoder(params: Params, encoder, directories: Mapping[str, Path], out_dir: Path, *, run_tag: str) -> None:
    """Encode, rank and score every dataset in ``directories`` with ``encoder``; write ``out_dir`` atomically."""
    started = time.perf_counter()
    config = params.evaluate
    encoding = dataclasses.asdict(encoder.settings)
    lines = []
    with atomic_output_dir(out_dir) as out:
        for name, directory in directories.items():
            dataset = load_lareqa(directory, candidate_text=config.candidate_text, name=name)
            encoded = encode_dataset(
                encoder, dataset, batch_size=config.batch_size, cache_dir=config.cache_dir, settings=encoding
            )
            check_embeddings(dataset, encoded.queries, encoded.candidates)
            scorer = embedding_scorer(encoded.queries, encoded.candidates)
            result = evaluate_score_rows(dataset, scorer)
            extra = {
                "run": run_tag,
                "model_fingerprint": encoded.settings["fingerprint"],
                "encoding": encoded.settings,
                "embedding_cache_hits": encoded.cache_hits,
            }
            metrics = write_dataset_outputs(out / name, result, scorer, extra, run_tag=run_tag)
            lines.append(summary_line(f"evaluate {run_tag} {name}", metrics))
    print("\n".join(lines) + f"\n(wrote {out_dir} in {time.perf_counter() - started:.1f}s)")

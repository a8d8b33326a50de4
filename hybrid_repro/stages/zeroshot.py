"""Stage ``zeroshot`` of ``pipelines/me5-zeroshot/dvc.yaml``: a pretrained encoder, unchanged, on LAReQA.

The encoder comes from the ``model`` section (for multilingual-e5-small: ``source: local`` on the
directory the ``base-model`` stage writes, mean pooling, ``query: `` / ``passage: `` prefixes). For
every candidate text (the sentence alone, and the sentence with its paragraph as LAReQA encodes
candidates) and every dataset it writes ``<out_dir>/<candidate_text>/<dataset>/`` in the layout of
the evaluate stage (:func:`hybrid_repro.stages.evaluate.write_dataset_outputs`), then renders
``doc_path`` from those metrics. Each ``metrics.json`` also records the encoding time
(``encoding_seconds``, ``texts_encoded``: nothing is encoded when the embedding cache answers); the
doc leaves timings out so that it is the same on every run. Parameters:
``pipelines/me5-zeroshot/params.yaml``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Literal, Mapping

from pydantic import Field

from hybrid_repro.config import FETCHED_DATASETS, ModelConfig, Section, load_params
from hybrid_repro.evaluation.download import verify_pinned_files
from hybrid_repro.evaluation.encode import encode_dataset
from hybrid_repro.evaluation.lareqa import load_lareqa
from hybrid_repro.evaluation.ranking import embedding_scorer
from hybrid_repro.evaluation.settings import check_embeddings, evaluate_score_rows
from hybrid_repro.io import atomic_output_dir, atomic_output_file
from hybrid_repro.paths import OutputPath
from hybrid_repro.stages.baselines import COLUMNS, format_cell
from hybrid_repro.stages.evaluate import LAREQA_DATA_DIR, summary_line, write_dataset_outputs

DEFAULT_ZEROSHOT_PARAMS = Path("pipelines/me5-zeroshot/params.yaml")
CandidateText = Literal["sentence", "sentence+context"]


class ZeroShotConfig(Section):
    """The ``zeroshot`` section of ``pipelines/me5-zeroshot/params.yaml``."""

    label: str = Field(min_length=1)
    model: ModelConfig
    datasets: tuple[Literal[FETCHED_DATASETS], ...] = FETCHED_DATASETS  # type: ignore[valid-type]
    candidate_texts: tuple[CandidateText, ...] = ("sentence", "sentence+context")
    batch_size: int = Field(32, ge=1)
    threads: int = Field(0, ge=0)
    """torch intra-op threads; 0 keeps torch's default (one per core)."""
    cache_dir: Path = Path(".cache/embeddings")
    out_dir: OutputPath = Path("zeroshot")
    doc_path: OutputPath = Path("docs/me5-zeroshot.md")


class ZeroShotParams(Section):
    zeroshot: ZeroShotConfig


def load_zeroshot_params(path: str | Path = DEFAULT_ZEROSHOT_PARAMS) -> ZeroShotConfig:
    """Read and validate the zero-shot pipeline's params file."""
    return load_params(path, ZeroShotParams).zeroshot


def run_zeroshot(config: ZeroShotConfig, *, progress: bool = True) -> None:
    """Evaluate the encoder of ``config.model`` on every dataset and candidate text; write outputs and doc."""
    import torch

    from hybrid_repro.modeling.encoder import Encoder

    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    encoder = Encoder.build(config.model, None, seed=0)
    encoding = dataclasses.asdict(encoder.settings)
    results: dict[str, dict[str, dict]] = {}
    with atomic_output_dir(config.out_dir) as out:
        for candidate_text in config.candidate_texts:
            for name in config.datasets:
                verify_pinned_files(name, LAREQA_DATA_DIR / name)
                dataset = load_lareqa(LAREQA_DATA_DIR / name, candidate_text=candidate_text, name=name)
                encode_started = time.perf_counter()
                encoded = encode_dataset(encoder, dataset, batch_size=config.batch_size,
                                         cache_dir=config.cache_dir, settings=encoding, progress=progress)
                seconds = time.perf_counter() - encode_started
                check_embeddings(dataset, encoded.queries, encoded.candidates)
                scorer = embedding_scorer(encoded.queries, encoded.candidates)
                result = evaluate_score_rows(dataset, scorer, progress=progress)
                extra = {
                    "encoder": config.label,
                    "model_fingerprint": encoded.settings["fingerprint"],
                    "encoding": encoded.settings,
                    "embedding_cache_hits": encoded.cache_hits,
                    "encoding_seconds": round(seconds, 1),
                    "texts_encoded": (0 if encoded.cache_hits["query"] else len(dataset.questions.text))
                    + (0 if encoded.cache_hits["passage"] else len(dataset.candidates.sentence)),
                }
                metrics = write_dataset_outputs(out / candidate_text / name, result, scorer, extra,
                                                run_tag=config.label, progress=progress)
                results.setdefault(name, {})[candidate_text] = metrics
                print(summary_line(f"zeroshot {config.label} {name} ({candidate_text})", metrics), flush=True)
    with atomic_output_file(config.doc_path) as handle:
        handle.write(render_zeroshot_markdown(results, config))
    print(f"(wrote {config.out_dir} and {config.doc_path} in {time.perf_counter() - started:.1f}s)")


def render_zeroshot_markdown(results: Mapping[str, Mapping[str, Mapping]], config: ZeroShotConfig) -> str:
    """The doc: per dataset, one row per candidate text, then Mul. mAP per query language."""
    model = config.model
    header = "| candidates | " + " | ".join(label for _, _, label in COLUMNS) + " |"
    lines = [
        f"# Zero-shot {config.label} on XQuAD-R and MLQA-R",
        "",
        "Generated by the `zeroshot` stage of `pipelines/me5-zeroshot/dvc.yaml` from",
        f"`{config.out_dir}/<candidate text>/<dataset>/metrics.json`; do not edit by hand.",
        "The encoder is used as published, without training on anything here: "
        f"pooling {model.pooling}, prefixes `{model.query_prefix}` / `{model.passage_prefix}`, at most "
        f"{model.max_query_length} / {model.max_passage_length} tokens per query / candidate. Same metrics "
        "and averaging as `docs/baselines.md`, whose BM25 and random rows are the reference points for "
        "these. *sentence+context*: each candidate is encoded as the pair (sentence, its paragraph), "
        "as LAReQA does.",
    ]
    for name, by_text in results.items():
        lines += ["", f"## {name}", "", header, "|" + "---|" * (len(COLUMNS) + 1)]
        for candidate_text, metrics in by_text.items():
            means = metrics["settings"]
            cells = [format_cell(means[setting]["mean"][key], key) for setting, key, _ in COLUMNS]
            lines.append(f"| {candidate_text} | " + " | ".join(cells) + " |")
        lines += ["", f"mAP per query language ({name}; Mo. / Cr. / Mul.):", "",
                  "| language | " + " | ".join(by_text) + " |", "|---|" + "---|" * len(by_text)]
        first = next(iter(by_text.values()))["settings"]
        for lang in first["mul"]["per_language"]:
            cells = []
            for metrics in by_text.values():
                values = [metrics["settings"][s]["per_language"].get(lang, {}).get("map") for s in ("mo", "cr", "mul")]
                cells.append(" / ".join(f"{v:.4f}" if v is not None else "n/a" for v in values))
            lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

"""Stages of ``pipelines/miracl/dvc.yaml``: fetch, encode, evaluate, BM25 and report on MIRACL dev.

* ``fetch@<lang>``: pinned topics, judgements and corpus into ``<data_dir>/<lang>``
  (:func:`~hybrid_repro.evaluation.miracl_data.fetch_miracl_language`).
* ``encode@<run>-<lang>``: the corpus through the run's trained encoder (the directory the train
  stage writes, :meth:`Encoder.load`) into ``<out_dir>/embeddings/<run>/<lang>``, resumable.
* ``evaluate@<run>-<lang>``: queries encoded, exact top-100 search over the shards, nDCG@10 and
  Recall@100; ``<out_dir>/results/<run>/<lang>/{metrics.json,run.trec}``.
* ``bm25@<lang>``: the BM25 baseline into ``<out_dir>/results/bm25/<lang>``.
* ``report``: :mod:`hybrid_repro.evaluation.miracl_report` over every result present.

Parameters: the ``miracl`` section of ``pipelines/miracl/params.yaml`` (:class:`MiraclConfig`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import Field, field_validator, model_validator

from hybrid_repro.config import RUN_NAME, Section, load_params
from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.corpus_encoding import (CorpusEncodingSettings, encode_corpus, encoding_key,
                                                     encoding_key_fields, load_embedded_corpus)
from hybrid_repro.evaluation.exact_search import TopK, exact_search, resolve_device
from hybrid_repro.evaluation.miracl import (TOP_K, comparability, language_summary, score_rankings, subset_reasons,
                                            top_k_rankings)
from hybrid_repro.evaluation.miracl_data import (COMMIT, OFFICIAL_DEV_QUERIES, PAPER_LANGUAGES, MiraclLanguage,
                                                 fetch_miracl_language, load_miracl_language)
from hybrid_repro.evaluation.runfile import write_run_file
from hybrid_repro.io import atomic_output_dir, write_json
from hybrid_repro.paths import OutputPath
from hybrid_repro.stages.baselines import Bm25Params

DEFAULT_MIRACL_PARAMS = Path("pipelines/miracl/params.yaml")
BM25_RUN = "bm25"


class MiraclEncodeParams(Section):
    passage_template: str = "{title} {text}"
    shard_size: int = Field(8192, ge=1)
    batch_size: int = Field(64, ge=1)

    @field_validator("passage_template")
    @classmethod
    def _has_text(cls, template: str) -> str:
        try:
            template.format(title="", text="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"may use only {{title}} and {{text}}: {exc}") from exc
        if "{text}" not in template:
            raise ValueError("must contain {text}")
        return template


class MiraclSearchParams(Section):
    top_k: int = Field(TOP_K, ge=1)
    chunk_size: int = Field(8192, ge=1)
    """Passages scored per matrix product: memory is about queries x chunk_size x 4 bytes."""
    query_batch_size: int = Field(64, ge=1)
    device: str = "auto"


class MiraclConfig(Section):
    """The ``miracl`` section of ``pipelines/miracl/params.yaml``."""

    languages: tuple[str, ...] = PAPER_LANGUAGES
    # Required, no default: the hub repositories change, so results are tied to a commit the user pins.
    topics_revision: Optional[str]
    corpus_revision: Optional[str]
    data_dir: OutputPath = Path("data/miracl")
    models: dict[str, Path] = Field(default_factory=dict)
    """Run name -> model directory written by the train stage (e.g. ``models/hybrid``)."""
    max_corpus_passages: Optional[int] = Field(None, ge=1)
    encode: MiraclEncodeParams = MiraclEncodeParams()
    search: MiraclSearchParams = MiraclSearchParams()
    bm25: Bm25Params = Bm25Params()
    out_dir: OutputPath = Path("miracl")

    @field_validator("topics_revision", "corpus_revision")
    @classmethod
    def _pinned(cls, revision: Optional[str]) -> str:
        if revision is None or not COMMIT.fullmatch(revision):
            raise ValueError(
                f"required: the full 40-hex commit hash of the hub repository (got {revision!r}); find it on the "
                "dataset's 'Files and versions' history, or `huggingface_hub.HfApi().dataset_info(repo).sha`")
        return revision

    @model_validator(mode="after")
    def _check(self) -> "MiraclConfig":
        unknown = [lang for lang in self.languages if lang not in OFFICIAL_DEV_QUERIES]
        if unknown or not self.languages:
            raise ValueError(f"languages {unknown or '(none)'}: choose among {', '.join(PAPER_LANGUAGES)}")
        for name in self.models:
            if name == BM25_RUN or not RUN_NAME.fullmatch(name):
                raise ValueError(f"model run name {name!r}: letters, digits, '-', '_', and not {BM25_RUN!r}")
        return self

    def language(self, lang: str) -> str:
        if lang not in self.languages:
            raise HybridReproError(f"language {lang!r} is not in miracl.languages ({', '.join(self.languages)})")
        return lang

    def model_dir(self, run: str) -> Path:
        if run not in self.models:
            raise HybridReproError(f"unknown MIRACL run {run!r}; miracl.models defines: {', '.join(self.models)}")
        return self.models[run]

    @property
    def corpus_settings(self) -> CorpusEncodingSettings:
        return CorpusEncodingSettings(self.encode.passage_template, self.encode.shard_size, self.encode.batch_size,
                                      self.max_corpus_passages)

    def embeddings_dir(self, run: str, lang: str) -> Path:
        return self.out_dir / "embeddings" / run / lang

    def results_dir(self, run: str, lang: str) -> Path:
        return self.out_dir / "results" / run / lang


class MiraclParams(Section):
    miracl: MiraclConfig


def load_miracl_params(path: str | Path = DEFAULT_MIRACL_PARAMS) -> MiraclConfig:
    """Read and validate the MIRACL pipeline's params file."""
    return load_params(path, MiraclParams).miracl


def run_miracl_fetch(config: MiraclConfig, lang: str, mirror: Path | None = None) -> Path:
    """Fetch ``lang`` into ``<data_dir>/<lang>``, checking the official dev query count; return the directory."""
    out = config.data_dir / config.language(lang)
    manifest = fetch_miracl_language(lang, out, topics_revision=config.topics_revision,
                                     corpus_revision=config.corpus_revision,
                                     expected_dev_queries=OFFICIAL_DEV_QUERIES[lang], mirror=mirror)
    print(f"miracl-fetch {lang}: {manifest['n_queries']} dev queries, {manifest['n_passages']} passages -> {out}")
    return out


def _load_language(config: MiraclConfig, lang: str) -> MiraclLanguage:
    return load_miracl_language(config.data_dir / config.language(lang), lang)


def _load_encoder(config: MiraclConfig, run: str):
    from hybrid_repro.stages.evaluate import load_run_encoder

    model_dir = config.model_dir(run)
    if not model_dir.is_dir():
        raise HybridReproError(f"no trained model for MIRACL run {run!r} at {model_dir}: train it first "
                               f"(`hybrid-repro train --run {run}`) or fix miracl.models")
    return load_run_encoder(model_dir)


def run_miracl_encode(config: MiraclConfig, run: str, lang: str, *, encoder=None, progress: bool = True) -> dict:
    """Encode ``lang``'s corpus with run ``run``'s encoder into its shard directory (resuming); return the index."""
    language = _load_language(config, lang)
    encoder = encoder if encoder is not None else _load_encoder(config, run)
    started = time.perf_counter()
    index = encode_corpus(encoder, language, config.embeddings_dir(run, lang), config.corpus_settings,
                          encoder_settings=dataclasses.asdict(encoder.settings), progress=progress)
    seconds = time.perf_counter() - started
    print(f"miracl-encode {run} {lang}: {index['n_passages']} passages in {len(index['shards'])} shards "
          f"({index['reused_shards']} reused) in {seconds:.1f}s")
    return index


def _write_results(config: MiraclConfig, run: str, language: MiraclLanguage, top_k: TopK, qids: list[str],
                   extra: dict) -> dict:
    per_query = score_rankings(top_k_rankings(top_k, qids), language.qrels)
    summary = language_summary(per_query)
    document = {
        "run": run,
        "language": language.language,
        # One language's result is comparable unless its corpus was cut; the language subset is the report's.
        **comparability(subset_reasons(PAPER_LANGUAGES, {language.language: config.max_corpus_passages})),
        "metrics": {name: value for name, value in summary.items() if name != "n_queries"},
        "n_topics": len(language.queries),
        "n_scored_queries": summary["n_queries"],
        "top_k": config.search.top_k,
        "corpus": {"revision": language.corpus_revision, "max_corpus_passages": config.max_corpus_passages},
        **extra,
        "per_query": per_query,
    }
    with atomic_output_dir(config.results_dir(run, language.language)) as out:
        write_run_file(out / "run.trec", top_k.rankings(qids), tag=run, top_k=config.search.top_k)
        write_json(out / "metrics.json", document)
    print(f"miracl {run} {language.language}: nDCG@10 {summary['ndcg@10']:.4f}, R@100 {summary['recall@100']:.4f} "
          f"over {summary['n_queries']} queries")
    return document


def run_miracl_evaluate(config: MiraclConfig, run: str, lang: str, *, encoder=None, progress: bool = True) -> dict:
    """Exact top-k search of ``lang``'s dev queries over the run's corpus embeddings, scored and written."""
    language = _load_language(config, lang)
    encoder = encoder if encoder is not None else _load_encoder(config, run)
    encoder_settings = dataclasses.asdict(encoder.settings)
    fields = encoding_key_fields(encoder, language, config.corpus_settings, encoder_settings)
    corpus = load_embedded_corpus(config.embeddings_dir(run, lang), expected_key=encoding_key(fields))
    qids = sorted(language.queries)
    started = time.perf_counter()
    queries = encoder.encode([language.queries[q] for q in qids], "query", batch_size=config.search.query_batch_size,
                             progress=progress)
    encoded = time.perf_counter()
    device = resolve_device(config.search.device)
    top_k = exact_search(np.asarray(queries, dtype=np.float32), corpus.chunks(config.search.chunk_size),
                         k=config.search.top_k, device=device)
    searched = time.perf_counter()
    extra = {"model_fingerprint": fields["fingerprint"], "encoding": encoder_settings,
             "n_passages": corpus.n_passages,
             "timing": {"device": str(device), "query_encoding_s": round(encoded - started, 3),
                        "search_s": round(searched - encoded, 3)}}
    return _write_results(config, run, language, top_k, qids, extra)


def run_miracl_bm25(config: MiraclConfig, lang: str, *, progress: bool = True) -> dict:
    """BM25 top-k of ``lang``'s dev queries over the same (possibly cut) corpus, scored and written."""
    from hybrid_repro.evaluation.miracl_bm25 import bm25_settings, bm25_top_k

    language = _load_language(config, lang)
    settings = config.corpus_settings
    passages = list(language.passages(config.max_corpus_passages))
    qids = sorted(language.queries)
    started = time.perf_counter()
    top_k = bm25_top_k(passages, [settings.passage_text(p) for p in passages], [language.queries[q] for q in qids],
                       k=config.search.top_k, k1=config.bm25.k1, b=config.bm25.b, progress=progress)
    extra = {"ranker": bm25_settings(config.bm25.k1, config.bm25.b), "n_passages": len(passages),
             "timing": {"index_and_search_s": round(time.perf_counter() - started, 3)}}
    return _write_results(config, BM25_RUN, language, top_k, qids, extra)


def run_miracl_report(config: MiraclConfig) -> Path:
    """Tables and plot over every MIRACL result present, beside the paper's; returns the report directory."""
    from hybrid_repro.evaluation.miracl_report import write_miracl_report

    return write_miracl_report(config.out_dir / "results", config.out_dir / "report",
                               runs=[*config.models, BM25_RUN], languages=config.languages)

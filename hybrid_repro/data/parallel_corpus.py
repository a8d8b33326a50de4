"""A source corpus that is already parallel (``data.source: xquad``) and its pass-through translation.

``data/source`` for a parallel corpus holds, written by :func:`write_parallel_source`:

* ``train.jsonl`` / ``val.jsonl``: records in the translated layout
  (:mod:`hybrid_repro.data.translated_corpus`): ``{"id", "question_id", "dataset", "positive_id",
  "negative_id", "texts": {lang: {"query", "positive", "negative"}}}``;
* ``manifest.json``: ``kind: parallel``, the source language, the languages, datasets and counts,
  the provenance of the inputs and the sha256 of both files, checked on read.

The ``translate`` stage with ``backend: parallel`` (:func:`write_passthrough`) translates nothing:
it keeps the ``translate.train_languages`` of every training record, checks that each of them has
examples, copies the validation records (source language only), and writes ``data/translated``
with the same manifest keys as a translated corpus. No evaluation set is written there: evaluation
reads the datasets named in ``evaluate.datasets``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid_repro.data.jsonl import read_jsonl, write_jsonl
from hybrid_repro.data.source_corpus import MANIFEST, verify_files
from hybrid_repro.data.translated_corpus import LanguagePlan, dataset_summary, kept_languages, language_counts
from hybrid_repro.data.translated_manifest import manifest_files
from hybrid_repro.data.xquad import ParallelCorpus
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import read_json, sha256_file, write_json

KIND = "parallel"
SPLITS = ("train", "val")


def write_parallel_source(out_dir: Path, corpus: ParallelCorpus, *, source_language: str, dataset: dict[str, Any],
                          provenance: dict[str, Any], seed: int) -> dict[str, Any]:
    """Write ``corpus`` under ``out_dir`` as a parallel source corpus; return the manifest written with it.

    ``dataset`` describes the one dataset of the corpus (``name``, ``description``); ``provenance``
    records where the inputs came from.
    """
    write_jsonl(out_dir / "train.jsonl", corpus.train)
    write_jsonl(out_dir / "val.jsonl", corpus.val)
    languages = sorted({lang for record in corpus.train for lang in record["texts"]})
    manifest = {
        "kind": KIND,
        "source_language": source_language,
        "languages": languages,
        "seed": seed,
        "datasets": {dataset["name"]: {"multilingual": True, "query_style": "question",
                                       "description": dataset["description"],
                                       "train": len(corpus.train), "val": len(corpus.val)}},
        "val_articles": corpus.val_articles,
        # Answers sharing a sentence in any language share one identity (hybrid_repro/data/xquad.py).
        "passage_identities": {"training_questions": len(corpus.train),
                               "positive_ids": len({record["positive_id"] for record in corpus.train})},
        "negative_tiers": corpus.negative_tiers,
        "inputs": provenance,
        "files": {f"{split}.jsonl": sha256_file(out_dir / f"{split}.jsonl") for split in SPLITS},
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest


@dataclass
class ParallelSource:
    """A verified parallel ``data/source`` directory."""

    manifest: dict[str, Any]
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]

    @property
    def source_language(self) -> str:
        return self.manifest["source_language"]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.manifest["languages"])


def read_parallel_source(source_dir: Path) -> ParallelSource:
    """Read and verify a parallel ``source_dir``; a missing, corrupt or empty part is a HybridReproError."""
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise HybridReproError(f"source corpus {source_dir} does not exist: run `hybrid-repro data` first")
    manifest = read_json(source_dir / MANIFEST)
    if manifest.get("kind") != KIND:
        raise HybridReproError(
            f"translate.backend 'parallel' passes through a corpus that is already parallel (data.source: xquad), "
            f"but {source_dir} holds a {manifest.get('kind')!r} corpus: set translate.backend to lexicon, nllb or m2m100")
    verify_files(source_dir, manifest)
    splits = {split: read_jsonl(source_dir / f"{split}.jsonl") for split in SPLITS}
    empty = [split for split, records in splits.items() if not records]
    if empty:
        raise HybridReproError(f"{source_dir} has no {' or '.join(empty)} examples; rerun `hybrid-repro data`")
    return ParallelSource(manifest, splits["train"], splits["val"])


def write_passthrough(out_dir: Path, source: ParallelSource, plan: LanguagePlan, seed: int) -> dict[str, Any]:
    """``data/translated`` from a parallel source: the plan's training languages, no translation; the manifest."""
    train = kept_languages(source.train, plan.train)
    present = Counter(lang for record in train for lang in record["texts"])
    missing = [lang for lang in plan.train if not present[lang]]
    if missing:
        raise HybridReproError(f"translate.train_languages {missing} have no examples in the parallel corpus "
                               f"(it holds {', '.join(source.languages)})")
    val = kept_languages(source.val, plan.train)
    write_jsonl(out_dir / "train.jsonl", train)
    write_jsonl(out_dir / "val.jsonl", val)
    manifest = {
        "source_kind": KIND,
        "backend": {"name": "parallel", "model_name": None, "model_revision": None},
        "seed": seed,
        "languages": {"source": plan.source, "train": list(plan.train), "eval": [], "eval_only": [],
                      "low_resource": {}},
        "datasets": dataset_summary(source.manifest),
        "counts": {"train": language_counts(train), "val": language_counts(val), "eval": {}},
        "files": manifest_files(out_dir),
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest

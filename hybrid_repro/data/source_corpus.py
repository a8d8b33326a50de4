"""The ``data/source`` directory: the source-language corpus the ``translate`` stage reads.

Layout (all written by :func:`write_source_corpus` into a directory that appears atomically):

* ``train.jsonl`` / ``val.jsonl``: ``{"id", "question_id", "dataset", "query", "positive", "negative",
  "positive_id", "negative_id"}`` per line, in the source language; the two ids name the source sentence of
  each passage (shared by its translations) for the loss's false-negative mask;
* ``eval.json``: ``{"dataset", "articles": [{"title", "topic", "paragraphs": [{"sentences": [str],
  "questions": [{"id", "question", "answer", "sentence"}]}]}]}``, where ``sentence`` indexes the
  answer sentence and ``answer`` is a span of it;
* ``lexicon.json``: the synthetic lexicon (:meth:`hybrid_repro.data.lexicon.Lexicon.to_json`);
* ``manifest.json``: corpus kind, source language, datasets, counts and the sha256 of every file,
  checked on read so a corrupted or hand-edited input is caught before translation.

A ``kind: paper`` corpus (:mod:`hybrid_repro.data.paper_corpus`) has no ``eval.json`` nor lexicon, and
may hold ``released.jsonl``: records already in the translated layout
(:mod:`hybrid_repro.data.translated_corpus`) of datasets whose translations were released with them
(origin ``released``), which the translate stage passes through. Its datasets record their ``origin``
and ``role``: a ``validation`` dataset has examples in ``val.jsonl`` only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from hybrid_repro.data.jsonl import iter_jsonl, write_jsonl
from hybrid_repro.data.lexicon import Lexicon
from hybrid_repro.data.synthetic import EVAL_DATASET, SourceCorpus
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import read_json, sha256_file, write_json
from hybrid_repro.paths import safe_name

MANIFEST = "manifest.json"
MANIFEST_KEYS = ("kind", "source_language", "datasets", "files")
EXAMPLE_KEYS = ("id", "question_id", "dataset", "query", "positive", "negative", "positive_id", "negative_id")
TEXT_FIELDS = ("query", "positive", "negative")
RELEASED_FILE = "released.jsonl"
# The corpus kind of data.source paper (hybrid_repro/data/paper_corpus.py), the one without an evaluation set.
PAPER_KIND = "paper"
RELEASED_KEYS = ("id", "question_id", "dataset", "positive_id", "negative_id")
# How a dataset reaches the training languages: translated by the translate stage, kept in the source language,
# or with the translations released with it.
ORIGIN_MACHINE_TRANSLATED, ORIGIN_SOURCE_ONLY, ORIGIN_RELEASED = "machine-translated", "source-only", "released"


@dataclass
class LoadedSource:
    """A verified ``data/source`` directory whose example files are read one record at a time.

    :func:`read_source_corpus` has checked every file's sha256 and every training and validation record;
    :meth:`train`, :meth:`val` and :meth:`released` read their file again on each call, checking each record
    as it goes. A released record is checked on this read only (it is never read ahead of its use), so a
    malformed one at line N of ``released.jsonl`` stops the translate stage only when the pass-through reaches
    it, after the machine translation (which the translation cache keeps for the re-run).
    """

    directory: Path
    manifest: dict[str, Any]
    split_counts: dict[str, dict[str, int]]
    """Examples per dataset in ``train.jsonl`` and ``val.jsonl`` (keys ``train``, ``val``)."""
    eval_articles: list[dict[str, Any]]
    eval_dataset: Optional[str]
    lexicon: Optional[Lexicon]
    released_verified: bool = True
    """False when :func:`read_source_corpus` was told to leave ``released.jsonl`` alone; :meth:`released` then
    refuses to read it."""

    def train(self) -> Iterator[dict[str, Any]]:
        return _checked_examples(self.directory / "train.jsonl", self.manifest["datasets"])

    def val(self) -> Iterator[dict[str, Any]]:
        return _checked_examples(self.directory / "val.jsonl", self.manifest["datasets"])

    def released(self) -> Iterator[dict[str, Any]]:
        """The records of ``released.jsonl`` in file order; none when the corpus has no such file. Reading (not
        calling) is refused when the file was not verified."""
        if not self.released_verified:
            raise HybridReproError(f"{self.directory / RELEASED_FILE} was not verified when {self.directory} was "
                                   "read, so it is not read now")
        yield from _released_records(self.directory, self.manifest)

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def source_language(self) -> str:
        return self.manifest["source_language"]

    @property
    def multilingual_datasets(self) -> set[str]:
        return {name for name, info in self.manifest["datasets"].items() if info["multilingual"]}

    @property
    def released_datasets(self) -> set[str]:
        """Datasets whose records in :meth:`released` carry their released translations."""
        return {name for name, info in self.manifest["datasets"].items() if info.get("origin") == ORIGIN_RELEASED}


def write_source_corpus(out_dir: Path, corpus: SourceCorpus, source_language: str, seed: int) -> dict[str, Any]:
    """Write every file of ``corpus`` under ``out_dir`` and return the manifest written with them."""
    write_json(out_dir / "lexicon.json", corpus.lexicon.to_json())
    write_jsonl(out_dir / "train.jsonl", corpus.train)
    write_jsonl(out_dir / "val.jsonl", corpus.val)
    write_json(out_dir / "eval.json", {"dataset": EVAL_DATASET, "articles": corpus.eval_articles})
    train_counts, val_counts = Counter(e["dataset"] for e in corpus.train), Counter(e["dataset"] for e in corpus.val)
    manifest = {
        "kind": "synthetic",
        "source_language": source_language,
        "seed": seed,
        "datasets": {
            name: {"multilingual": spec.multilingual, "query_style": spec.query_style,
                   "description": spec.description, "train": train_counts[name], "val": val_counts[name]}
            for name, spec in corpus.datasets.items()
        },
        # Share of hard negatives that are some example's positive: false negatives whenever the two meet in a batch.
        "negatives_that_are_answers": {split: answer_negative_share(examples)
                                       for split, examples in (("train", corpus.train), ("val", corpus.val))},
        "eval": {
            "dataset": EVAL_DATASET,
            "articles": len(corpus.eval_articles),
            "paragraphs": sum(len(a["paragraphs"]) for a in corpus.eval_articles),
            "questions": sum(len(p["questions"]) for a in corpus.eval_articles for p in a["paragraphs"]),
        },
        "files": {name: sha256_file(out_dir / name) for name in ("lexicon.json", "train.jsonl", "val.jsonl", "eval.json")},
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def answer_negative_share(examples: list[dict[str, Any]]) -> float:
    """The share of ``examples`` whose negative passage is the positive of some example of the same list."""
    positives = {example["positive_id"] for example in examples}
    return round(sum(example["negative_id"] in positives for example in examples) / len(examples), 6)


def verify_files(source_dir: Path, manifest: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    """Every file in ``manifest["files"]`` but those in ``skip`` exists under ``source_dir`` with its recorded
    sha256."""
    for name, expected in manifest["files"].items():
        if name in skip:
            continue
        path = source_dir / name
        if not path.is_file():
            raise HybridReproError(f"missing file {path}: rerun `hybrid-repro data`")
        if sha256_file(path) != expected:
            raise HybridReproError(
                f"{path} does not match the checksum in {source_dir / MANIFEST} (corrupt or edited); "
                "rerun `hybrid-repro data`"
            )


def _checked_examples(path: Path, datasets: dict[str, Any]) -> Iterator[dict[str, Any]]:
    count = 0
    for count, record in enumerate(iter_jsonl(path), start=1):
        missing = [key for key in EXAMPLE_KEYS if not isinstance(record.get(key), str) or not record[key]]
        if missing:
            raise HybridReproError(f"{path} line {count} lacks {', '.join(missing)}")
        if record["dataset"] not in datasets:
            raise HybridReproError(f"{path} line {count}: dataset {record['dataset']!r} is not in the manifest")
        yield record
    if not count:
        raise HybridReproError(f"{path} holds no examples: an empty split cannot be trained on; rerun `hybrid-repro data`")


def _checked_released(path: Path, datasets: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for number, record in enumerate(iter_jsonl(path), start=1):
        missing = [key for key in RELEASED_KEYS if not isinstance(record.get(key), str) or not record[key]]
        texts = record.get("texts")
        if missing or not isinstance(texts, dict) or not texts:
            raise HybridReproError(f"{path} line {number} lacks {', '.join(missing) or 'texts'}")
        if datasets.get(record["dataset"], {}).get("origin") != ORIGIN_RELEASED:
            raise HybridReproError(f"{path} line {number}: dataset {record['dataset']!r} is not a released dataset "
                                   "in the manifest")
        for lang, fields in texts.items():
            if not isinstance(fields, dict) or not all(isinstance(fields.get(f), str) and fields[f]
                                                       for f in TEXT_FIELDS):
                raise HybridReproError(f"{path} line {number}: the {lang} texts lack a query, positive or negative")
        yield record


def _released_records(source_dir: Path, manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if RELEASED_FILE not in manifest["files"]:
        return iter(())
    return _checked_released(source_dir / RELEASED_FILE, manifest["datasets"])


def found_among(records: Iterable[dict[str, Any]], wanted: set[str],
                keys: Callable[[dict[str, Any]], Iterable[str]]) -> set[str]:
    """Which of ``wanted`` the ``keys`` of some record give, reading ``records`` only until all are found."""
    found: set[str] = set()
    if not wanted:
        return found
    for record in records:
        found |= wanted.intersection(keys(record))
        if found >= wanted:
            break
    return found


def read_source_corpus(source_dir: Path, *, released: bool = True) -> LoadedSource:
    """Read and verify ``source_dir``; any missing, corrupt or empty part is a HybridReproError.

    Memory stays bounded whatever the corpus size: the example files are checked in one streamed pass, and
    ``released.jsonl`` only as far as it takes to find a record of every released dataset. With ``released``
    False, ``released.jsonl`` (mMARCO's ~250 GB at the paper's scale) is neither hashed nor read, for a caller
    that never uses it (the translate-pair stage); :meth:`LoadedSource.released` then refuses to read it.
    """
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise HybridReproError(f"source corpus {source_dir} does not exist: run `hybrid-repro data` first")
    manifest = read_json(source_dir / MANIFEST)
    missing = [key for key in MANIFEST_KEYS if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise HybridReproError(f"{source_dir / MANIFEST} lacks {', '.join(missing)}; rerun `hybrid-repro data`")
    if manifest["kind"] == "parallel":
        raise HybridReproError(f"{source_dir} holds a corpus that is already parallel (data.source: xquad) and needs "
                               "no translation: set translate.backend: parallel")
    datasets = manifest["datasets"]
    verify_files(source_dir, manifest, skip=() if released else (RELEASED_FILE,))
    split_counts = {split: dict(Counter(example["dataset"] for example in
                                        _checked_examples(source_dir / f"{split}.jsonl", datasets)))
                    for split in ("train", "val")}
    # Every training dataset needs examples: in released.jsonl if its translations were released, else in train.jsonl
    # (a validation dataset has examples in val.jsonl only).
    training = [name for name, info in datasets.items() if info.get("role", "train") == "train"]
    released_datasets = {name for name in training if datasets[name].get("origin") == ORIGIN_RELEASED}
    released_present = found_among(_released_records(source_dir, manifest), released_datasets,
                                   lambda r: [r["dataset"]]) if released else released_datasets
    empty = [name for name in training
             if name not in (released_present if name in released_datasets else split_counts["train"])]
    if empty:
        raise HybridReproError(f"datasets {empty} have no training examples in {source_dir}; rerun `hybrid-repro data`")
    # A paper corpus has no evaluation set: evaluation reads the fetched LAReQA sets of evaluate.datasets. Any other
    # kind must have one, or translate would silently write none.
    if "eval.json" in manifest["files"]:
        evaluation = read_json(source_dir / "eval.json")
        # The evaluation set's name becomes a folder of translate's output: never a path of its own.
        safe_name(evaluation.get("dataset"), f"{source_dir / 'eval.json'}: dataset")
    elif manifest["kind"] == PAPER_KIND:
        evaluation = {"articles": [], "dataset": None}
    else:
        raise HybridReproError(f"{source_dir / MANIFEST} lists no eval.json, which a {manifest['kind']!r} corpus "
                               "needs; rerun `hybrid-repro data`")
    lexicon = Lexicon.from_json(read_json(source_dir / "lexicon.json")) if "lexicon.json" in manifest["files"] else None
    return LoadedSource(source_dir, manifest, split_counts, evaluation["articles"], evaluation["dataset"], lexicon,
                        released_verified=released)

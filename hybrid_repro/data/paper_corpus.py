"""``data.source: paper``: the fetched sources (``<sources.out_dir>/<name>``) assembled into ``data/source``.

Every source of ``params.sources.datasets`` is read through its shard manifest and must have been
fetched with the settings the params give now (pin, negatives, ``max_pairs`` and ``seed``: checked on
the manifests alone, every source's before any shard is read); then each shard's sha256 is checked just
before the shard is read. What becomes of a source follows its spec
(:data:`~hybrid_repro.sources.specs.SPECS`, PAPER.md section 2):

* an English QA set to be translated (``spec.translate``) gives training examples of a
  multilingual dataset, in English, for the translate stage to render into ``translate.train_languages``
  (origin ``machine-translated``);
* an English-only source (Mr. TyDi, MFAQ) gives training examples of a dataset that stays in
  English (origin ``source-only``);
* a source released in several languages (mMARCO) gives records already in the translated layout,
  one per source record with the text of every language it has, in ``released.jsonl`` (origin
  ``released``): the translate stage passes them through, never machine-translating them;
* the validation source (SQuADShifts) gives the English validation split.

The layout is :mod:`hybrid_repro.data.source_corpus`'s with ``kind: paper``, no ``eval.json``
(evaluation reads the fetched XQuAD-R / MLQA-R of ``evaluate.datasets``) and ``released.jsonl``.
``passage_id`` / ``negative_id`` are the shards' own, shared by a passage's translations, so the
loss's false-negative mask holds across languages. A ``question_id`` is the dataset and a hash of
the query's text, or for a released (mMARCO) record of MS MARCO's query id, the same in every
language: examples asking the same question with other positives or negatives never share a batch.
Examples are numbered within their dataset in shard order, which is the source's order; released
records keep the order of the source's triples.

Memory: the corpus streams. A source is read a record batch of one shard at a time
(:func:`~hybrid_repro.sources.shards.iter_shard_rows`), and every record is written as soon as it is
formed; mMARCO's languages are read side by side, one open shard each, and merged on the triple's line
number (each language's shards hold its rows in triple order, as the loader writes them). What grows with
the number of records is the count of negatives that are answers: 20 bytes per record
(:mod:`hybrid_repro.data.answer_negatives`). docs/data.md gives the measured figures.
"""

from __future__ import annotations

import heapq
import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from hybrid_repro.config import SourceConfig, SourcesConfig
from hybrid_repro.data.answer_negatives import AnswerNegativeCounter
from hybrid_repro.data.jsonl import write_jsonl
from hybrid_repro.data.source_corpus import (MANIFEST, ORIGIN_MACHINE_TRANSLATED, ORIGIN_RELEASED, ORIGIN_SOURCE_ONLY,
                                             PAPER_KIND, RELEASED_FILE, TEXT_FIELDS)
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import sha256_file, write_json
from hybrid_repro.sources.files import split_triple_source_id
from hybrid_repro.sources.shards import MANIFEST as SOURCE_MANIFEST
from hybrid_repro.sources.shards import iter_shard_rows, read_source_manifest
from hybrid_repro.sources.specs import SPECS, SourceSpec, passage_id

SOURCE_LANGUAGE = "en"
DESCRIPTIONS = {
    ORIGIN_MACHINE_TRANSLATED: "English pairs of {repo}, machine-translated into the training languages",
    ORIGIN_SOURCE_ONLY: "English pairs of {repo}, kept in English only",
    ORIGIN_RELEASED: "triples of {repo} in the languages it was released in, passed through untranslated",
}
TRAIN_FILE, VAL_FILE = "train.jsonl", "val.jsonl"


def _fetch_hint(name: str) -> str:
    return f"run `dvc repro pipelines/paper/dvc.yaml:source@{name}`"


@contextmanager
def _verifying(name: str, directory: Path) -> Iterator[None]:
    """Errors of reading a fetched source (a malformed manifest, a shard that does not match) turned into one
    naming the fetch."""
    try:
        yield
    except HybridReproError as exc:
        raise HybridReproError(f"source {name!r} in {directory} cannot be verified ({exc}): "
                               f"{_fetch_hint(name)}") from exc


def fetched_identity(spec: SourceSpec, settings: SourceConfig, seed: int) -> dict[str, Any]:
    """What the manifest of source ``spec`` fetched with ``settings`` and ``seed`` records about its settings."""
    return {"source": spec.name, spec.pin_key: getattr(settings, spec.pin_key), "negatives": settings.negatives,
            "max_pairs": settings.max_pairs, "seed": seed}


@dataclass(frozen=True)
class FetchedSource:
    """A fetched source whose manifest records the settings the params give it now; ``inputs`` is what the
    corpus manifest records of it. Its rows are read only when iterated (:meth:`rows`)."""

    spec: SourceSpec
    directory: Path
    manifest: dict[str, Any]
    inputs: dict[str, Any]

    @property
    def languages(self) -> list[str]:
        """The languages of its shards, in the spec's order."""
        present = {shard["language"] for shard in self.manifest["shards"]}
        return [language for language in self.spec.languages if language in present]

    def rows(self, language: Optional[str] = None) -> Iterator[dict[str, Any]]:
        """Its rows (those in ``language`` only, when given) in shard order, streamed: each shard is checked
        against its sha256 just before it is read."""
        with _verifying(self.spec.name, self.directory):
            yield from iter_shard_rows(self.directory, self.manifest, language)


def fetched_source(sources: SourcesConfig, name: str, seed: int) -> FetchedSource:
    """Source ``name`` as fetched, checked on its manifest alone (no shard is read): the manifest records the
    settings the params give the source now (:func:`fetched_identity`; one without them is stale) and shards only
    in the source's languages."""
    directory = sources.out_dir / name
    if not (directory / SOURCE_MANIFEST).is_file():
        raise HybridReproError(f"source {name!r} has not been fetched ({directory / SOURCE_MANIFEST} is missing): "
                               f"{_fetch_hint(name)}")
    spec = SPECS[name]
    with _verifying(name, directory):
        manifest = read_source_manifest(directory)
    wanted = fetched_identity(spec, sources.datasets[name], seed)
    stale = {key: manifest.get(key) for key, value in wanted.items() if manifest.get(key) != value}
    if stale:
        raise HybridReproError(
            f"{directory} was fetched with {stale}, but params give {({key: wanted[key] for key in stale})}: "
            f"{_fetch_hint(name)}")
    foreign = sorted({shard["language"] for shard in manifest["shards"]} - set(spec.languages))
    if foreign:
        raise HybridReproError(f"{directory} holds rows in {foreign}, but {name} has only {list(spec.languages)}: "
                               f"{_fetch_hint(name)}")
    inputs = {**wanted, "pairs": manifest["pairs"], "manifest_sha256": sha256_file(directory / SOURCE_MANIFEST)}
    return FetchedSource(spec, directory, manifest, inputs)


def fetched_sources(sources: SourcesConfig, seed: int) -> list[FetchedSource]:
    """Every source of ``sources.datasets`` (fetched with ``seed``), in the params' order, checked on the manifests
    alone (:func:`fetched_source`) before any shard is read; there must be a validation and a training source."""
    fetched = [fetched_source(sources, name, seed) for name in sources.datasets]
    if not any(source.spec.role == "validation" for source in fetched):
        raise HybridReproError("sources.datasets names no validation source: add squadshifts (the paper validates "
                               "on English SQuADShifts)")
    if all(source.spec.role == "validation" for source in fetched):
        raise HybridReproError("sources.datasets names no training source: add at least one (docs/data.md)")
    return fetched


def question_id(dataset: str, key: str) -> str:
    """The id of a question: its dataset and a hash of its key (its text, or mMARCO's query id), formed as a
    passage id is."""
    return passage_id(dataset, key)


def _example(row: dict[str, Any], number: int) -> dict[str, Any]:
    dataset = row["dataset"]
    return {"id": f"{dataset}/{number}", "question_id": question_id(dataset, row["query"]), "dataset": dataset,
            **{name: row[name] for name in TEXT_FIELDS},
            "positive_id": row["passage_id"], "negative_id": row["negative_id"]}


def _numbered(spec: SourceSpec, rank: int, rows: Iterable[dict[str, Any]]) -> Iterator[tuple]:
    """``(line, rank, query id, row)`` for the rows of one language, whose lines must rise strictly (the loader
    writes a language's rows in triple order): what the merge in :func:`released_records` orders by."""
    previous = -1
    for row in rows:
        try:
            line, query = split_triple_source_id(row["source_id"])
        except ValueError as exc:
            raise HybridReproError(f"source {spec.name!r}: {exc}, as the loader writes it: "
                                   f"{_fetch_hint(spec.name)}") from exc
        if line <= previous:
            raise HybridReproError(f"source {spec.name!r}: its {row['language']} rows are not in triple order "
                                   f"(triple {line} after {previous}), as the loader writes them: "
                                   f"{_fetch_hint(spec.name)}")
        previous = line
        yield line, rank, query, row


def released_records(spec: SourceSpec, rows_by_language: dict[str, Iterable[dict[str, Any]]]) -> Iterator[dict]:
    """One record per source triple with the texts of every language it has, languages in the spec's order,
    records in triple order; its question id comes from MS MARCO's query id
    (:func:`~hybrid_repro.sources.files.triple_source_id`), so it is the same whichever languages a triple has.

    ``rows_by_language`` gives each language's rows in triple order; they are merged on the triple's line number
    (a k-way merge), so only the current row of each language is held, never a whole language."""
    order = {language: rank for rank, language in enumerate(spec.languages)}
    streams = [_numbered(spec, order[language], rows) for language, rows in rows_by_language.items()]
    # (line, rank) is unique across the streams (one per language), so the merge never compares rows.
    merged = heapq.merge(*streams, key=lambda item: item[:2])
    for line, group in itertools.groupby(merged, key=lambda item: item[0]):
        record: dict[str, Any] = {}
        for _, _, query, row in group:
            identity = (question_id(spec.name, query), row["passage_id"], row["negative_id"])
            if not record:
                record = {"id": f"{spec.name}/{line}", "question_id": identity[0], "dataset": spec.name,
                          "positive_id": identity[1], "negative_id": identity[2], "texts": {}}
            elif (record["question_id"], record["positive_id"], record["negative_id"]) != identity:
                raise HybridReproError(f"source {spec.name!r}: triple {line} names another query or other passages "
                                       f"in {row['language']} than in {next(iter(record['texts']))}: "
                                       f"{_fetch_hint(spec.name)}")
            record["texts"][row["language"]] = {name: row[name] for name in TEXT_FIELDS}
        yield record


def origin_of(spec: SourceSpec) -> str:
    """How a training source reaches the training languages (PAPER.md section 2)."""
    if spec.translate:
        return ORIGIN_MACHINE_TRANSLATED
    return ORIGIN_RELEASED if len(spec.languages) > 1 else ORIGIN_SOURCE_ONLY


def _file_of(spec: SourceSpec) -> str:
    if spec.role == "validation":
        return VAL_FILE
    return RELEASED_FILE if origin_of(spec) == ORIGIN_RELEASED else TRAIN_FILE


def _dataset_entry(spec: SourceSpec) -> dict[str, Any]:
    """What the corpus manifest says of a source's dataset; its count (``train`` or ``val``) is set once written."""
    if spec.role == "validation":
        return {"multilingual": False, "origin": ORIGIN_SOURCE_ONLY, "role": "validation",
                "description": f"English validation pairs of {spec.repo}", "train": 0, "val": 0}
    origin = origin_of(spec)
    return {"multilingual": origin != ORIGIN_SOURCE_ONLY, "origin": origin, "role": "train",
            "description": DESCRIPTIONS[origin].format(repo=spec.repo), "train": 0, "val": 0}


def _records(source: FetchedSource) -> Iterator[dict[str, Any]]:
    """The records ``source`` gives its file, streamed: examples numbered in shard order, or released records."""
    if _file_of(source.spec) == RELEASED_FILE:
        return released_records(source.spec, {language: source.rows(language) for language in source.languages})
    return (_example(row, number) for number, row in enumerate(source.rows()))


def _counted(sources: list[FetchedSource], datasets: dict[str, dict[str, Any]],
             answers: AnswerNegativeCounter) -> Iterator[dict[str, Any]]:
    """The records of ``sources`` in turn, each counted in its dataset's entry (``train``, or ``val`` for the
    validation source) and in ``answers`` as it passes."""
    for source in sources:
        entry = datasets[source.spec.name]
        split = "val" if source.spec.role == "validation" else "train"
        for record in _records(source):
            entry[split] += 1
            answers.add(record["dataset"], record["positive_id"], record["negative_id"])
            yield record


def write_paper_source(out_dir: Path, fetched: list[FetchedSource], seed: int) -> dict[str, Any]:
    """Write the ``fetched`` sources (:func:`fetched_sources`) under ``out_dir`` as a ``kind: paper`` source corpus,
    streaming each file; return the manifest written with it."""
    datasets = {source.spec.name: _dataset_entry(source.spec) for source in fetched}
    # Share of hard negatives that are some example's positive: false negatives whenever the two meet in a batch.
    # Training counts the released records too: the share depends on passage ids only, whatever the language.
    answers = {"train": AnswerNegativeCounter(), "val": AnswerNegativeCounter()}
    files = (TRAIN_FILE, VAL_FILE, RELEASED_FILE)
    for name in files:
        chosen = [source for source in fetched if _file_of(source.spec) == name]
        write_jsonl(out_dir / name, _counted(chosen, datasets, answers["val" if name == VAL_FILE else "train"]))
    shares = {split: counter.share() for split, counter in answers.items()}
    manifest = {
        "kind": PAPER_KIND,
        "source_language": SOURCE_LANGUAGE,
        "seed": seed,
        "datasets": datasets,
        "negatives_that_are_answers": {split: share for split, share in shares.items() if share is not None},
        "inputs": {source.spec.name: source.inputs for source in fetched},
        "files": {name: sha256_file(out_dir / name) for name in files},
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest

"""``data.source: paper``: the fetched sources (``<sources.out_dir>/<name>``) assembled into ``data/source``.

Every source of ``params.sources.datasets`` is read through its shard manifest and must have been
fetched with the settings the params give now (pin, negatives, ``max_pairs`` and ``seed``: checked on
the manifest alone, before any shard is read); then each shard's sha256 is checked
(:func:`~hybrid_repro.sources.shards.read_shards`). What becomes of a source follows its spec
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

Memory: every source is held in memory as Python dicts while the corpus is written (tested at the
``mini`` profile's size: a few thousand pairs per source); docs/data.md says what the full scale needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hybrid_repro.config import SourceConfig, SourcesConfig
from hybrid_repro.data.jsonl import write_jsonl
from hybrid_repro.data.source_corpus import (MANIFEST, ORIGIN_MACHINE_TRANSLATED, ORIGIN_RELEASED, ORIGIN_SOURCE_ONLY,
                                             PAPER_KIND, RELEASED_FILE, TEXT_FIELDS, answer_negative_share)
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import sha256_file, write_json
from hybrid_repro.sources.files import split_triple_source_id
from hybrid_repro.sources.shards import MANIFEST as SOURCE_MANIFEST
from hybrid_repro.sources.shards import read_shards, read_source_manifest
from hybrid_repro.sources.specs import SPECS, SourceSpec, passage_id

SOURCE_LANGUAGE = "en"
DESCRIPTIONS = {
    ORIGIN_MACHINE_TRANSLATED: "English pairs of {repo}, machine-translated into the training languages",
    ORIGIN_SOURCE_ONLY: "English pairs of {repo}, kept in English only",
    ORIGIN_RELEASED: "triples of {repo} in the languages it was released in, passed through untranslated",
}


@dataclass
class PaperCorpus:
    """The assembled sources: English training and validation examples (flat layout), released records
    (translated layout), and per dataset its origin, role and provenance."""

    train: list[dict[str, Any]] = field(default_factory=list)
    val: list[dict[str, Any]] = field(default_factory=list)
    released: list[dict[str, Any]] = field(default_factory=list)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _fetch_hint(name: str) -> str:
    return f"run `dvc repro pipelines/paper/dvc.yaml:source@{name}`"


def _verified(name: str, directory: Path, read: Callable[[], Any]) -> Any:
    """``read()``, its errors (a malformed manifest, a shard that does not match) turned into one naming the fetch."""
    try:
        return read()
    except HybridReproError as exc:
        raise HybridReproError(f"source {name!r} in {directory} cannot be verified ({exc}): "
                               f"{_fetch_hint(name)}") from exc


def fetched_identity(spec: SourceSpec, settings: SourceConfig, seed: int) -> dict[str, Any]:
    """What the manifest of source ``spec`` fetched with ``settings`` and ``seed`` records about its settings."""
    return {"source": spec.name, spec.pin_key: getattr(settings, spec.pin_key), "negatives": settings.negatives,
            "max_pairs": settings.max_pairs, "seed": seed}


def read_fetched_source(sources: SourcesConfig, name: str, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The verified manifest and rows of source ``name``: the manifest records the settings the params give the
    source now (:func:`fetched_identity`; one without them is stale), checked before any shard is read, and every
    shard matches its sha256."""
    directory = sources.out_dir / name
    if not (directory / SOURCE_MANIFEST).is_file():
        raise HybridReproError(f"source {name!r} has not been fetched ({directory / SOURCE_MANIFEST} is missing): "
                               f"{_fetch_hint(name)}")
    spec = SPECS[name]
    manifest = _verified(name, directory, lambda: read_source_manifest(directory))
    wanted = fetched_identity(spec, sources.datasets[name], seed)
    stale = {key: manifest.get(key) for key, value in wanted.items() if manifest.get(key) != value}
    if stale:
        raise HybridReproError(
            f"{directory} was fetched with {stale}, but params give {({key: wanted[key] for key in stale})}: "
            f"{_fetch_hint(name)}")
    rows = _verified(name, directory, lambda: read_shards(directory, manifest)).to_pylist()
    foreign = sorted({row["language"] for row in rows} - set(spec.languages))
    if foreign:
        raise HybridReproError(f"{directory} holds rows in {foreign}, but {name} has only {list(spec.languages)}: "
                               f"{_fetch_hint(name)}")
    return manifest, rows


def question_id(dataset: str, key: str) -> str:
    """The id of a question: its dataset and a hash of its key (its text, or mMARCO's query id), formed as a
    passage id is."""
    return passage_id(dataset, key)


def _example(row: dict[str, Any], number: int) -> dict[str, Any]:
    dataset = row["dataset"]
    return {"id": f"{dataset}/{number}", "question_id": question_id(dataset, row["query"]), "dataset": dataset,
            **{name: row[name] for name in TEXT_FIELDS},
            "positive_id": row["passage_id"], "negative_id": row["negative_id"]}


def released_records(spec: SourceSpec, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per source triple with the texts of every language it has, languages in the spec's order,
    records in triple order; its question id comes from MS MARCO's query id
    (:func:`~hybrid_repro.sources.files.triple_source_id`), so it is the same whichever languages a triple has."""
    order = {language: index for index, language in enumerate(spec.languages)}
    records: dict[int, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda row: order[row["language"]]):
        try:
            line, query = split_triple_source_id(row["source_id"])
        except ValueError as exc:
            raise HybridReproError(f"source {spec.name!r}: {exc}, as the loader writes it: "
                                   f"{_fetch_hint(spec.name)}") from exc
        record = records.setdefault(line, {
            "id": f"{spec.name}/{line}", "question_id": question_id(spec.name, query),
            "dataset": spec.name, "positive_id": row["passage_id"], "negative_id": row["negative_id"], "texts": {}})
        if (record["question_id"], record["positive_id"], record["negative_id"]) != (
                question_id(spec.name, query), row["passage_id"], row["negative_id"]):
            raise HybridReproError(f"source {spec.name!r}: triple {line} names another query or other passages in "
                                   f"{row['language']} than in {next(iter(record['texts']))}: {_fetch_hint(spec.name)}")
        record["texts"][row["language"]] = {name: row[name] for name in TEXT_FIELDS}
    return [records[line] for line in sorted(records)]


def origin_of(spec: SourceSpec) -> str:
    """How a training source reaches the training languages (PAPER.md section 2)."""
    if spec.translate:
        return ORIGIN_MACHINE_TRANSLATED
    return ORIGIN_RELEASED if len(spec.languages) > 1 else ORIGIN_SOURCE_ONLY


def assemble(sources: SourcesConfig, seed: int) -> PaperCorpus:
    """Read and verify every source of ``sources.datasets`` (fetched with ``seed``) and sort its rows into the
    corpus."""
    corpus = PaperCorpus()
    for name in sources.datasets:
        spec = SPECS[name]
        manifest, rows = read_fetched_source(sources, name, seed)
        corpus.inputs[name] = {**fetched_identity(spec, sources.datasets[name], seed), "pairs": manifest["pairs"],
                               "manifest_sha256": sha256_file(sources.out_dir / name / SOURCE_MANIFEST)}
        if spec.role == "validation":
            corpus.val += [_example(row, number) for number, row in enumerate(rows)]
            corpus.datasets[name] = {"multilingual": False, "origin": ORIGIN_SOURCE_ONLY, "role": "validation",
                                     "description": f"English validation pairs of {spec.repo}",
                                     "train": 0, "val": len(rows)}
            continue
        origin = origin_of(spec)
        if origin == ORIGIN_RELEASED:
            records = released_records(spec, rows)
            corpus.released += records
            count = len(records)
        else:
            corpus.train += [_example(row, number) for number, row in enumerate(rows)]
            count = len(rows)
        corpus.datasets[name] = {"multilingual": origin != ORIGIN_SOURCE_ONLY, "origin": origin, "role": "train",
                                 "description": DESCRIPTIONS[origin].format(repo=spec.repo), "train": count, "val": 0}
    if not corpus.val:
        raise HybridReproError("sources.datasets names no validation source: add squadshifts (the paper validates "
                               "on English SQuADShifts)")
    if not corpus.train and not corpus.released:
        raise HybridReproError("sources.datasets names no training source: add at least one (docs/data.md)")
    return corpus


def write_paper_source(out_dir: Path, corpus: PaperCorpus, seed: int) -> dict[str, Any]:
    """Write ``corpus`` under ``out_dir`` as a ``kind: paper`` source corpus; return the manifest written with it."""
    files = {"train.jsonl": corpus.train, "val.jsonl": corpus.val, RELEASED_FILE: corpus.released}
    for name, records in files.items():
        write_jsonl(out_dir / name, records)
    manifest = {
        "kind": PAPER_KIND,
        "source_language": SOURCE_LANGUAGE,
        "seed": seed,
        "datasets": corpus.datasets,
        # Share of hard negatives that are some example's positive: false negatives whenever the two meet in a batch.
        # Training counts the released records too: the share depends on passage ids only, whatever the language.
        "negatives_that_are_answers": {split: answer_negative_share(examples)
                                       for split, examples in (("train", corpus.train + corpus.released),
                                                               ("val", corpus.val))
                                       if examples},
        "inputs": corpus.inputs,
        "files": {name: sha256_file(out_dir / name) for name in files},
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest

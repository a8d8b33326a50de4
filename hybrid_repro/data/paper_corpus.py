"""``data.source: paper``: the fetched sources (``<sources.out_dir>/<name>``) assembled into ``data/source``.

Every source of ``params.sources.datasets`` is read through its shard manifest (each shard's sha256
checked, :func:`~hybrid_repro.sources.shards.read_source_pairs`) and must have been fetched at the
pin and with the negatives the params name. What becomes of a source follows its spec
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
the query's text (for a released record, its first language's): examples asking the same question
with other positives or negatives never share a batch. Examples are numbered within their dataset
in shard order, which is the source's order.

Memory: every source is held in memory as Python dicts while the corpus is written (tested at the
``mini`` profile's size: a few thousand pairs per source); docs/data.md says what the full scale needs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid_repro.config import SourcesConfig
from hybrid_repro.data.jsonl import write_jsonl
from hybrid_repro.data.source_corpus import (MANIFEST, ORIGIN_MACHINE_TRANSLATED, ORIGIN_RELEASED, ORIGIN_SOURCE_ONLY,
                                             RELEASED_FILE, TEXT_FIELDS, answer_negative_share)
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import sha256_file, write_json
from hybrid_repro.sources.shards import MANIFEST as SOURCE_MANIFEST
from hybrid_repro.sources.shards import read_source_pairs
from hybrid_repro.sources.specs import SPECS, SourceSpec

KIND = "paper"
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


def read_fetched_source(sources: SourcesConfig, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The verified manifest and rows of source ``name``: every shard matches its sha256, and the manifest
    names this source, the pin and the negatives method the params give it."""
    directory = sources.out_dir / name
    if not (directory / SOURCE_MANIFEST).is_file():
        raise HybridReproError(f"source {name!r} has not been fetched ({directory / SOURCE_MANIFEST} is missing): "
                               f"{_fetch_hint(name)}")
    try:
        manifest, table = read_source_pairs(directory)
    except HybridReproError as exc:
        raise HybridReproError(f"source {name!r} in {directory} cannot be verified ({exc}): {_fetch_hint(name)}") from exc
    spec, settings = SPECS[name], sources.datasets[name]
    pinned = settings.sha256 if spec.kind == "url" else settings.revision
    fetched = (manifest.get("source"), manifest.get(spec.pin_key), manifest.get("negatives"))
    if fetched != (name, pinned, settings.negatives):
        raise HybridReproError(
            f"{directory} holds source {fetched[0]!r} at {spec.pin_key} {fetched[1]!r} with negatives {fetched[2]!r}, "
            f"but params name {name!r} at {pinned!r} with negatives {settings.negatives!r}: {_fetch_hint(name)}")
    rows = table.to_pylist()
    foreign = sorted({row["language"] for row in rows} - set(spec.languages))
    if foreign:
        raise HybridReproError(f"{directory} holds rows in {foreign}, but {name} has only {list(spec.languages)}: "
                               f"{_fetch_hint(name)}")
    return manifest, rows


def text_id(dataset: str, text: str) -> str:
    """The id of a question: its dataset and a hash of its text."""
    return f"{dataset}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:20]}"


def _example(row: dict[str, Any], number: int) -> dict[str, Any]:
    dataset = row["dataset"]
    return {"id": f"{dataset}/{number}", "question_id": text_id(dataset, row["query"]), "dataset": dataset,
            **{name: row[name] for name in TEXT_FIELDS},
            "positive_id": row["passage_id"], "negative_id": row["negative_id"]}


def released_records(spec: SourceSpec, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per source record (``source_id``) with the texts of every language it has, languages in the
    spec's order; records in the order of the spec's first language's rows."""
    order = {language: index for index, language in enumerate(spec.languages)}
    records: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda row: order[row["language"]]):
        record = records.setdefault(row["source_id"], {
            "id": f"{spec.name}/{row['source_id']}", "question_id": text_id(spec.name, row["query"]),
            "dataset": spec.name, "positive_id": row["passage_id"], "negative_id": row["negative_id"], "texts": {}})
        if (record["positive_id"], record["negative_id"]) != (row["passage_id"], row["negative_id"]):
            raise HybridReproError(f"source {spec.name!r}: record {row['source_id']!r} names other passages in "
                                   f"{row['language']} than in {next(iter(record['texts']))}: {_fetch_hint(spec.name)}")
        record["texts"][row["language"]] = {name: row[name] for name in TEXT_FIELDS}
    return list(records.values())


def origin_of(spec: SourceSpec) -> str:
    """How a training source reaches the training languages (PAPER.md section 2)."""
    if spec.translate:
        return ORIGIN_MACHINE_TRANSLATED
    return ORIGIN_RELEASED if len(spec.languages) > 1 else ORIGIN_SOURCE_ONLY


def assemble(sources: SourcesConfig) -> PaperCorpus:
    """Read and verify every source of ``sources.datasets`` and sort its rows into the corpus."""
    corpus = PaperCorpus()
    for name in sources.datasets:
        spec = SPECS[name]
        manifest, rows = read_fetched_source(sources, name)
        corpus.inputs[name] = {spec.pin_key: manifest[spec.pin_key], "negatives": manifest["negatives"],
                               "pairs": manifest["pairs"],
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
        "kind": KIND,
        "source_language": SOURCE_LANGUAGE,
        "seed": seed,
        "datasets": corpus.datasets,
        # Share of hard negatives that are some example's positive: false negatives whenever the two meet in a batch.
        "negatives_that_are_answers": {split: answer_negative_share(examples)
                                       for split, examples in (("train", corpus.train), ("val", corpus.val))
                                       if examples},
        "inputs": corpus.inputs,
        "files": {name: sha256_file(out_dir / name) for name in files},
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest

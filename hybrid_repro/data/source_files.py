"""Readers for the sources that are files rather than ``datasets`` tables: EntityQuestions (one zip
archive at a canonical URL) and mMARCO (id triples plus per-language query and passage tables)."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from pathlib import Path
from typing import Iterator, Optional

from hybrid_repro.data.training_sources import MMARCO_LANGUAGES, RawPair

# Per-relation training files inside the EntityQuestions archive, e.g. dataset/train/P17.train.json.
_ENTITY_TRAIN = re.compile(r"(?:.*/)?train/(P\d+)\.train\.json")


def read_entityquestions(archive: Path, limit: Optional[int] = None) -> Iterator[RawPair]:
    """(question, answer) pairs of every relation's training file, relations in name order.

    The release has no passages: the first gold answer stands in as the positive (docs/data.md says
    why, and that the paper does not say what it paired the questions with).
    """
    count = 0
    with zipfile.ZipFile(archive) as bundle:
        members = sorted(name for name in bundle.namelist() if _ENTITY_TRAIN.fullmatch(name))
        for member in members:
            relation = _ENTITY_TRAIN.fullmatch(member).group(1)  # type: ignore[union-attr]
            for index, record in enumerate(json.loads(bundle.read(member).decode("utf-8"))):
                if limit is not None and count >= limit:
                    return
                answers = record.get("answers") or []
                if answers:
                    count += 1
                    yield RawPair(f"{relation}/{index}", " ".join(record["question"].split()), str(answers[0]))


def _tsv(path: Path) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)


def _texts_for(path: Path, wanted: set[str]) -> dict[str, str]:
    """``id -> text`` of a two-column TSV, keeping only ``wanted`` ids (the collections hold 8.8M passages)."""
    return {row[0]: row[1] for row in _tsv(path) if len(row) >= 2 and row[0] in wanted}


def read_mmarco(files: dict[str, Path], languages: tuple[str, ...], limit: Optional[int] = None) -> Iterator[RawPair]:
    """MS MARCO's training triples (query, positive, BM25 negative) rendered in every language of
    ``languages``, from mMARCO's id triples and its per-language query and passage tables.

    Passage ids are MS MARCO's, shared by every language, so a passage and its translations are one
    passage; the triple's line number is the source id.
    """
    triples = []
    for row in _tsv(files["data/triples.train.ids.small.tsv"]):
        if limit is not None and len(triples) >= limit:
            break
        triples.append(tuple(row[:3]))
    qids = {qid for qid, _, _ in triples}
    pids = {pid for _, pos, neg in triples for pid in (pos, neg)}
    for language in languages:
        name = MMARCO_LANGUAGES[language]
        queries = _texts_for(files[f"data/google/queries/train/{name}_queries.train.tsv"], qids)
        passages = _texts_for(files[f"data/google/collections/{name}_collection.tsv"], pids)
        for line, (qid, pos, neg) in enumerate(triples):
            if qid in queries and pos in passages and neg in passages:
                yield RawPair(str(line), queries[qid], passages[pos], language=language, negative=passages[neg],
                              passage_key=pos, negative_key=neg)

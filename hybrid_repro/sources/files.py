"""Readers for the sources that are files rather than ``datasets`` tables: EntityQuestions (one zip
archive at a canonical URL) and mMARCO (id triples plus per-language query and passage tables)."""

from __future__ import annotations

import csv
import json
import re
import stat
import zipfile
from pathlib import Path
from typing import Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from hybrid_repro.errors import HybridReproError
from hybrid_repro.sources.specs import MMARCO_LANGUAGES, RawPair

# Per-relation training files inside the EntityQuestions archive, e.g. dataset/train/P17.train.json.
_ENTITY_TRAIN = re.compile(r"(?:.*/)?train/(P\d+)\.train\.json")


def read_entityquestions(archive: Path, limit: Optional[int] = None) -> Iterator[RawPair]:
    """(question, answer) pairs of every relation's training file, relations in name order.

    The release has no passages: the first gold answer stands in as the positive (docs/data.md says
    why, and that the paper does not say what it paired the questions with).
    """
    count = 0
    with zipfile.ZipFile(archive) as bundle:
        members = _checked_members(archive, bundle)
        for member in members:
            relation = _ENTITY_TRAIN.fullmatch(member).group(1)  # type: ignore[union-attr]
            try:
                records = json.loads(bundle.read(member).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise HybridReproError(f"source 'entityquestions': {archive}: member {member} is not a JSON file "
                                       f"({exc.__class__.__name__}); the archive is corrupt: delete it from "
                                       "sources.cache_dir and fetch again") from exc
            for index, record in enumerate(records):
                if limit is not None and count >= limit:
                    return
                answers = record.get("answers") or []
                if answers:
                    count += 1
                    yield RawPair(f"{relation}/{index}", " ".join(record["question"].split()), str(answers[0]))


# The release's training files are a few MB each (about 50 MB in all): anything far larger is not the release.
MAX_MEMBER_BYTES = 256 << 20
MAX_ARCHIVE_BYTES = 2 << 30


def _checked_members(archive: Path, bundle: zipfile.ZipFile) -> list[str]:
    """The relation training files of the archive, in name order, after refusing what no release holds: a member
    that is a symbolic link or whose name leaves the archive's folder (``..``, absolute), and uncompressed sizes
    beyond :data:`MAX_MEMBER_BYTES` each or :data:`MAX_ARCHIVE_BYTES` in all (a zip bomb)."""
    total = 0
    for info in bundle.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in Path(name).parts or stat.S_ISLNK(info.external_attr >> 16):
            raise HybridReproError(f"source 'entityquestions': {archive}: member {name!r} is a symbolic link or leaves "
                                   "the archive; this is not the EntityQuestions release: delete it from "
                                   "sources.cache_dir and fetch again")
        total += info.file_size
        if info.file_size > MAX_MEMBER_BYTES or total > MAX_ARCHIVE_BYTES:
            raise HybridReproError(f"source 'entityquestions': {archive}: member {name!r} unpacks to {info.file_size} "
                                   f"bytes ({total} so far), far beyond the release's size; delete the archive from "
                                   "sources.cache_dir")
    return sorted(name for name in bundle.namelist() if _ENTITY_TRAIN.fullmatch(name))


def _tsv(path: Path) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)


def _texts_for(path: Path, wanted: set[str]) -> dict[str, str]:
    """``id -> text`` of a two-column TSV, keeping only ``wanted`` ids (the collections hold 8.8M passages)."""
    return {row[0]: row[1] for row in _tsv(path) if len(row) >= 2 and row[0] in wanted}


def _triples(path: Path, limit: Optional[int]) -> pa.Table:
    """The first ``limit`` (all: None) id triples, as Arrow strings: far more compact than Python tuples for
    MS MARCO's 39.8M triples."""
    names = ["qid", "positive", "negative"]
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(column_names=names),
                            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
                            convert_options=pacsv.ConvertOptions(column_types={name: pa.string() for name in names}))
    batches, rows = [], 0
    for batch in reader:
        batches.append(batch)
        rows += batch.num_rows
        if limit is not None and rows >= limit:
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return table if limit is None else table.slice(0, limit)


def triple_source_id(line: int, query_id: str) -> str:
    """The source id of an mMARCO row, ``<line>/<query id>``: the line orders the triples, and MS MARCO's query
    id names the question in every language, whichever languages a triple has."""
    return f"{line}/{query_id}"


def split_triple_source_id(source_id: str) -> tuple[int, str]:
    """The triple's line number and query id of a :func:`triple_source_id`; ValueError if it is not one."""
    line, _, query_id = source_id.partition("/")
    if not line.isdigit() or not query_id:
        raise ValueError(f"{source_id!r} is not <line>/<query id>")
    return int(line), query_id


def read_mmarco(files: dict[str, Path], languages: tuple[str, ...], limit: Optional[int] = None) -> Iterator[RawPair]:
    """MS MARCO's training triples (query, positive, BM25 negative) rendered in every language of
    ``languages``, from mMARCO's id triples and its per-language query and passage tables.

    Passage ids are MS MARCO's, shared by every language, so a passage and its translations are one
    passage; the source id is the triple's line number and MS MARCO's query id (:func:`triple_source_id`),
    the same in every language. One language's tables are in memory at a time, only the queries and
    passages the triples name.
    """
    triples = _triples(files["data/triples.train.ids.small.tsv"], limit)
    qids = set(pc.unique(triples["qid"]).to_pylist())
    pids = set(pc.unique(pa.concat_arrays([*triples["positive"].chunks, *triples["negative"].chunks])).to_pylist())
    for language in languages:
        name = MMARCO_LANGUAGES[language]
        queries = _texts_for(files[f"data/google/queries/train/{name}_queries.train.tsv"], qids)
        passages = _texts_for(files[f"data/google/collections/{name}_collection.tsv"], pids)
        line = 0
        for batch in triples.to_batches():
            for qid, pos, neg in zip(*(column.to_pylist() for column in batch.columns)):
                if qid in queries and pos in passages and neg in passages:
                    yield RawPair(triple_source_id(line, qid), queries[qid], passages[pos], language=language,
                                  negative=passages[neg], passage_key=pos, negative_key=neg)
                line += 1

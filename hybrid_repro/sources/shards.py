"""One schema for every source, written as a few Parquet shards per dataset with a checksummed manifest.

Columns (:data:`COLUMNS`): ``query``, ``positive``, ``negative``, ``language``, ``dataset``,
``source_id`` (the record's id in its source), ``passage_id`` and ``negative_id`` (passage
identities shared by a passage's translations, :func:`~hybrid_repro.sources.specs.passage_id`)
and ``negative_origin`` (``given``, ``bm25`` or ``random``). Shards are ``<language>-<nnnn>.parquet``
of at most ``shard_rows`` rows, in source order; ``manifest.json`` holds the counts, every
shard's language and sha256 (checked by the readers) and every setting the rows depend on
(:data:`IDENTITY_KEYS`: the pin, the negatives method, ``max_pairs`` and ``seed``), so that a reader can
tell shards fetched with other params from current ones by the manifest alone. The manifest lists a
language's shards in the order they were written, which is the source's order.

:func:`iter_shard_rows` streams the rows a record batch at a time, so the ``data`` stage never holds a
source whole at the paper's scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hybrid_repro.sources.specs import RawPair, SourceSpec, passage_id
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import read_json, sha256_file, write_json

if TYPE_CHECKING:
    from hybrid_repro.sources.negatives import NegativeMethod

MANIFEST = "manifest.json"
COLUMNS = ("query", "positive", "negative", "language", "dataset", "source_id", "passage_id", "negative_id",
           "negative_origin")
SCHEMA = pa.schema([(column, pa.string()) for column in COLUMNS])
# What the rows depend on besides the source's own records (the pin key, ``revision`` or ``sha256``, comes with
# them): ``max_pairs`` cuts the source, and mined negatives are drawn within the kept rows (bm25) or with the seed
# (random).
IDENTITY_KEYS = ("source", "negatives", "max_pairs", "seed")
# Keys a reader needs besides the identity; a manifest without them is not one this module wrote.
_LAYOUT_KEYS = ("pairs", "shards")
# What iter_shard_rows holds of one open shard, whatever the shard's size: a record batch of BATCH_ROWS rows as
# Python objects, a read buffer of READ_BUFFER_BYTES, and the row group being decoded. The reader decodes a whole
# row group at a time, so shards are written in row groups of ROW_GROUP_ROWS rows (measured on a generated mMARCO
# shard with passages of 60 words: 13 MB of Arrow memory while it is read, against 22 MB as one 50,000-row group).
# Shards written with one row group per shard, as before, are read the same way, with more memory.
BATCH_ROWS = 2048
ROW_GROUP_ROWS = 8192
READ_BUFFER_BYTES = 1 << 20


class _Counts:
    """Pairs dropped by filtering, by reason, filled in while rows stream through."""

    def __init__(self) -> None:
        self.dropped = {"empty": 0, "duplicate": 0}


def _rows(spec: SourceSpec, pairs: Iterable[RawPair], counts: _Counts) -> Iterator[dict]:
    """Filtered pairs as rows in :data:`COLUMNS` (negatives of pairs without one still unset).

    Pairs with an empty query or positive are dropped. So are repeats of a (language, query, positive) among pairs
    without a given negative; triples with one (mMARCO's, where one query and positive come with many negatives)
    are kept as released, and need no memory of what was seen.
    """
    seen: set[tuple[str, str, str]] = set()
    for pair in pairs:
        if not pair.query or not pair.positive:
            counts.dropped["empty"] += 1
            continue
        if pair.negative is None:
            if (pair.language, pair.query, pair.positive) in seen:
                counts.dropped["duplicate"] += 1
                continue
            seen.add((pair.language, pair.query, pair.positive))
        yield {"query": pair.query, "positive": pair.positive, "negative": pair.negative,
               "language": pair.language, "dataset": spec.name, "source_id": pair.source_id,
               "passage_id": passage_id(spec.name, pair.passage_key or pair.positive),
               "negative_id": passage_id(spec.name, pair.negative_key or pair.negative) if pair.negative else None,
               "negative_origin": "given" if pair.negative else None}


def _given_negatives(name: str, rows: Iterable[dict]) -> Iterator[dict]:
    for row in rows:
        if row["negative"] is None:
            raise HybridReproError(f"source {name!r}: pair {row['source_id']!r} carries no negative; set "
                                   f"sources.datasets.{name}.negatives to bm25 or random")
        yield row


def _mined_negatives(name: str, rows: list[dict], method: NegativeMethod, seed: int) -> list[dict]:
    """``rows`` with a negative mined per language within the dataset (the source's own are replaced)."""
    # Imported here: bm25s brings torch (about 200 MB of memory, measured), which readers of shards never need.
    from hybrid_repro.sources.negatives import Passages, mine_negatives

    for language in sorted({row["language"] for row in rows}):
        chosen = [row for row in rows if row["language"] == language]
        passages = Passages.distinct([row["passage_id"] for row in chosen], [row["positive"] for row in chosen])
        picks = mine_negatives([row["query"] for row in chosen], [row["passage_id"] for row in chosen], passages,
                               method, seed, name)
        for row, pick in zip(chosen, picks):
            row.update(negative=passages.texts[pick], negative_id=passages.ids[pick], negative_origin=method)
    return rows


def normalised_rows(spec: SourceSpec, pairs: Iterable[RawPair], negatives: str, seed: int,
                    counts: _Counts) -> Iterable[dict]:
    """The source's rows, filtered, each with its negative: streamed with ``given`` negatives; with mined ones
    (``bm25``, ``random``) the dataset is held in memory, as mining needs all of a language's passages."""
    rows = _rows(spec, pairs, counts)
    if negatives == "given":
        return _given_negatives(spec.name, rows)
    return _mined_negatives(spec.name, list(rows), negatives, seed)  # type: ignore[arg-type]


class _ShardWriter:
    """Buffers rows per language and writes ``<language>-<nnnn>.parquet`` each time ``shard_rows`` are in."""

    def __init__(self, out_dir: Path, shard_rows: int) -> None:
        self.out_dir, self.shard_rows = out_dir, shard_rows
        self.buffers: dict[str, list[dict]] = {}
        self.shards: list[dict[str, Any]] = []

    def add(self, row: dict) -> None:
        buffer = self.buffers.setdefault(row["language"], [])
        buffer.append(row)
        if len(buffer) >= self.shard_rows:
            self._write(row["language"])

    def _write(self, language: str) -> None:
        number = sum(shard["language"] == language for shard in self.shards)
        path = self.out_dir / f"{language}-{number:04d}.parquet"
        pq.write_table(pa.Table.from_pylist(self.buffers[language], schema=SCHEMA), path, compression="zstd",
                       row_group_size=ROW_GROUP_ROWS)
        self.shards.append({"file": path.name, "language": language, "rows": len(self.buffers[language]),
                            "sha256": sha256_file(path)})
        self.buffers[language] = []

    def close(self) -> list[dict[str, Any]]:
        """Every shard written, languages in name order and each language's shards in the order written (a stable
        sort: by file name, ``-10000`` would come before ``-1001``)."""
        for language, buffer in self.buffers.items():
            if buffer:
                self._write(language)
        return sorted(self.shards, key=lambda shard: shard["language"])


def write_source(out_dir: Path, spec: SourceSpec, pairs: Iterable[RawPair], pin: dict[str, Any], negatives: str,
                 seed: int, shard_rows: int, *, max_pairs: Optional[int]) -> dict[str, Any]:
    """Normalise ``pairs`` (already cut to ``max_pairs``) into shards and ``manifest.json`` under ``out_dir``;
    return the manifest."""
    counts, writer = _Counts(), _ShardWriter(out_dir, shard_rows)
    for row in normalised_rows(spec, pairs, negatives, seed, counts):
        writer.add(row)
    shards = writer.close()
    if not shards:
        raise HybridReproError(f"source {spec.name!r}: no usable pairs (dropped {counts.dropped}); "
                               "check the revision and split")
    pairs_per_language: dict[str, int] = {}
    for shard in shards:
        pairs_per_language[shard["language"]] = pairs_per_language.get(shard["language"], 0) + shard["rows"]
    manifest = {
        "source": spec.name, "kind": spec.kind, "repo": spec.repo, **pin, "split": spec.split,
        "configs": list(spec.configs), "role": spec.role, "translate": spec.translate, "licence": spec.licence,
        "negatives": negatives, "max_pairs": max_pairs, "seed": seed, "paper_pairs_per_language": spec.paper_pairs,
        "pairs": pairs_per_language, "dropped": counts.dropped, "shards": shards,
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def read_source_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a source directory, checked for the keys a reader needs (no shard is opened)."""
    path = Path(directory) / MANIFEST
    manifest = read_json(path)
    missing = [key for key in (*IDENTITY_KEYS, *_LAYOUT_KEYS) if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise HybridReproError(f"{path} lacks {', '.join(missing)}: it was written by another version, or edited")
    shards = manifest["shards"]
    if not isinstance(shards, list) or not shards or not all(
            isinstance(shard, dict) and all(isinstance(shard.get(key), str) for key in ("file", "language", "sha256"))
            for shard in shards):
        raise HybridReproError(f"{path}: 'shards' must be a non-empty list of entries with a file, a language and "
                               "a sha256")
    return manifest


def _verified_shard(directory: Path, manifest: dict[str, Any], shard: dict[str, Any]) -> Path:
    """The path of ``shard``, checked against its sha256 in ``manifest``."""
    path = Path(directory) / shard["file"]
    if not path.is_file() or sha256_file(path) != shard["sha256"]:
        raise HybridReproError(f"{path} is missing or does not match {directory}/{MANIFEST}; "
                               f"re-run the stage source@{manifest['source']}")
    return path


def iter_shard_rows(directory: Path, manifest: dict[str, Any], language: Optional[str] = None) -> Iterator[dict]:
    """The rows of the shards ``manifest`` (from :func:`read_source_manifest`) lists, or of those in ``language``
    only, in the manifest's order, read :data:`BATCH_ROWS` at a time: each shard is checked against its sha256 just
    before it is opened, and every row must be in the language the manifest gives its shard."""
    for shard in manifest["shards"]:
        if language is not None and shard["language"] != language:
            continue
        path = _verified_shard(directory, manifest, shard)
        # pre_buffer=False: pre-buffering would read every column chunk of a row group at once.
        with pq.ParquetFile(path, buffer_size=READ_BUFFER_BYTES, pre_buffer=False) as parquet:
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=list(COLUMNS)):
                languages = pc.unique(batch.column("language")).to_pylist()
                if languages != [shard["language"]]:
                    raise HybridReproError(f"{path} holds rows in {sorted(map(str, languages))}, but "
                                           f"{directory}/{MANIFEST} lists it as {shard['language']!r}; re-run the "
                                           f"stage source@{manifest['source']}")
                yield from batch.to_pylist()

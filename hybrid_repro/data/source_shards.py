"""One schema for every source, written as a few Parquet shards per dataset with a checksummed manifest.

Columns (:data:`COLUMNS`): ``query``, ``positive``, ``negative``, ``language``, ``dataset``,
``source_id`` (the record's id in its source), ``passage_id`` and ``negative_id`` (passage
identities shared by a passage's translations, :func:`~hybrid_repro.data.training_sources.passage_id`)
and ``negative_origin`` (``given``, ``bm25`` or ``random``). Shards are ``<language>-<nnnn>.parquet``
of at most ``shard_rows`` rows, in source order; ``manifest.json`` holds the counts and every
shard's sha256, checked by :func:`read_source_pairs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from hybrid_repro.data.negatives import NegativeMethod, Passages, mine_negatives
from hybrid_repro.data.training_sources import RawPair, SourceSpec, passage_id
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import read_json, sha256_file, write_json

MANIFEST = "manifest.json"
COLUMNS = ("query", "positive", "negative", "language", "dataset", "source_id", "passage_id", "negative_id",
           "negative_origin")
SCHEMA = pa.schema([(column, pa.string()) for column in COLUMNS])


def normalise(spec: SourceSpec, pairs: Iterable[RawPair], negatives: str, seed: int) -> tuple[list[dict], dict]:
    """Rows in :data:`COLUMNS`, and what filtering dropped.

    Pairs with an empty query or positive are dropped, and so are repeats of a (language, query,
    positive) already seen. ``negatives`` is ``given`` (every pair must carry one) or a
    :data:`~hybrid_repro.data.negatives.NegativeMethod` used per language within this dataset.
    """
    rows, seen = [], set()
    dropped = {"empty": 0, "duplicate": 0}
    for pair in pairs:
        if not pair.query or not pair.positive:
            dropped["empty"] += 1
            continue
        if (pair.language, pair.query, pair.positive) in seen:
            dropped["duplicate"] += 1
            continue
        seen.add((pair.language, pair.query, pair.positive))
        rows.append({"query": pair.query, "positive": pair.positive, "negative": pair.negative,
                     "language": pair.language, "dataset": spec.name, "source_id": pair.source_id,
                     "passage_id": passage_id(spec.name, pair.passage_key or pair.positive),
                     "negative_id": passage_id(spec.name, pair.negative_key or pair.negative) if pair.negative else None,
                     "negative_origin": "given" if pair.negative else None})
    if not rows:
        raise HybridReproError(f"source {spec.name!r}: no usable pairs (dropped {dropped}); check the revision and split")
    if negatives == "given":
        missing = sum(row["negative"] is None for row in rows)
        if missing:
            raise HybridReproError(f"source {spec.name!r}: {missing} pairs carry no negative; set "
                                   f"sources.datasets.{spec.name}.negatives to bm25 or random")
    else:
        _add_mined_negatives(spec.name, rows, negatives, seed)  # type: ignore[arg-type]
    return rows, dropped


def _add_mined_negatives(dataset: str, rows: list[dict], method: NegativeMethod, seed: int) -> None:
    for language in sorted({row["language"] for row in rows}):
        chosen = [row for row in rows if row["language"] == language]
        passages = Passages.distinct([row["passage_id"] for row in chosen], [row["positive"] for row in chosen])
        picks = mine_negatives([row["query"] for row in chosen], [row["passage_id"] for row in chosen], passages,
                               method, seed, dataset)
        for row, pick in zip(chosen, picks):
            row.update(negative=passages.texts[pick], negative_id=passages.ids[pick], negative_origin=method)


def write_shards(out_dir: Path, rows: list[dict], shard_rows: int) -> list[dict[str, Any]]:
    """Write ``rows`` as shards per language under ``out_dir``; return their manifest entries."""
    entries = []
    for language in sorted({row["language"] for row in rows}):
        chosen = [row for row in rows if row["language"] == language]
        for number, start in enumerate(range(0, len(chosen), shard_rows)):
            part = chosen[start:start + shard_rows]
            path = out_dir / f"{language}-{number:04d}.parquet"
            pq.write_table(pa.Table.from_pylist(part, schema=SCHEMA), path, compression="zstd")
            entries.append({"file": path.name, "language": language, "rows": len(part), "sha256": sha256_file(path)})
    return entries


def write_source(out_dir: Path, spec: SourceSpec, rows: list[dict], dropped: dict, pin: dict[str, Any],
                 negatives: str, shard_rows: int) -> dict[str, Any]:
    """Shards and ``manifest.json`` of one source under ``out_dir``; return the manifest."""
    shards = write_shards(out_dir, rows, shard_rows)
    languages = sorted({row["language"] for row in rows})
    manifest = {
        "source": spec.name, "kind": spec.kind, "repo": spec.repo, **pin, "split": spec.split,
        "configs": list(spec.configs), "role": spec.role, "translate": spec.translate, "licence": spec.licence,
        "negatives": negatives, "paper_pairs_per_language": spec.paper_pairs,
        "pairs": {language: sum(row["language"] == language for row in rows) for language in languages},
        "passages": {language: len({row["passage_id"] for row in rows if row["language"] == language})
                     for language in languages},
        "dropped": dropped, "shards": shards,
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def read_source_pairs(directory: Path) -> tuple[dict[str, Any], pa.Table]:
    """The manifest and all rows of a source directory, every shard checked against its sha256."""
    manifest = read_json(Path(directory) / MANIFEST)
    tables = []
    for shard in manifest["shards"]:
        path = Path(directory) / shard["file"]
        if not path.is_file() or sha256_file(path) != shard["sha256"]:
            raise HybridReproError(f"{path} is missing or does not match {directory}/{MANIFEST}; "
                                   f"re-run the stage source@{manifest['source']}")
        tables.append(pq.read_table(path, schema=SCHEMA))
    return manifest, pa.concat_tables(tables)

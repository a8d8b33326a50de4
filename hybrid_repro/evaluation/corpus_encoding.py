"""Streaming, resumable corpus encoding into sharded float16 embedding files.

The corpus is read in file order and cut into shards of ``shard_size`` passages. Each shard is
encoded in batches of similar length (longest first, as :func:`encode_in_length_order` does) and
written as three files: ``shard-<n>.npy`` (float16, passages x dim, rows in corpus order),
``shard-<n>.ids.json`` (the doc ids of the rows) and ``shard-<n>.json``, the header that makes the
shard valid (cache key, count, sha256 of the other two). Each file is written atomically and the
header last, so a kill loses at most the shard being encoded. A re-run skips every shard whose
header carries the current key, the same doc ids and a matching sha256, and encodes the rest.

``index.json`` is written when every shard is in place: the key, its fields, the shard list and
the passage count. Search (:func:`load_embedded_corpus`) needs it and re-checks every shard, so a
missing or truncated shard is an error, never a silently smaller corpus.

Cache key: encoder fingerprint, encoder settings (prefixes, pooling, maximum lengths), corpus
repository, revision and file checksums, language, passage template, shard size and corpus cut
(``max_corpus_passages``). The batch size is not part of it: it changes only padding, not results.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from tqdm.auto import tqdm

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.encode import TextEncoder, encode_in_length_order
from hybrid_repro.evaluation.miracl_data import CORPUS_REPO, MiraclLanguage, Passage
from hybrid_repro.io import atomic_output_file, read_json, sha256_file, write_json

logger = logging.getLogger(__name__)

SHARD_FORMAT = 1
INDEX_FILE = "index.json"
_SHARD_FILE = re.compile(r"shard-\d+\.(npy|ids\.json|json)")


@dataclass(frozen=True)
class CorpusEncodingSettings:
    """How a corpus becomes embedding shards (the encoder's own settings come with the encoder)."""

    passage_template: str = "{title} {text}"
    """How title and text are joined; the encoder adds its passage prefix (E5-style models)."""
    shard_size: int = 8192
    batch_size: int = 64
    max_corpus_passages: int | None = None

    def passage_text(self, passage: Passage) -> str:
        return self.passage_template.format(title=passage.title, text=passage.text).strip()


def encoding_key_fields(encoder: TextEncoder, corpus: MiraclLanguage, settings: CorpusEncodingSettings,
                        encoder_settings: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the embeddings depend on (see the module docstring)."""
    return {
        "format": SHARD_FORMAT,
        "fingerprint": encoder.fingerprint,
        "encoder_settings": dict(encoder_settings),
        "corpus": {"repo": CORPUS_REPO, "revision": corpus.corpus_revision, "files_digest": corpus.corpus_digest},
        "language": corpus.language,
        "passage_template": settings.passage_template,
        "shard_size": settings.shard_size,
        "max_corpus_passages": settings.max_corpus_passages,
        "dtype": "float16",
    }


def encoding_key(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _ids_digest(doc_ids: list[str]) -> str:
    return hashlib.sha256(json.dumps(doc_ids, ensure_ascii=False).encode()).hexdigest()


def _shard_paths(out_dir: Path, number: int) -> tuple[Path, Path, Path]:
    stem = out_dir / f"shard-{number:05d}"
    return stem.with_suffix(".npy"), stem.with_suffix(".ids.json"), stem.with_suffix(".json")


def _shard_chunks(passages: Iterator[Passage], shard_size: int) -> Iterator[list[Passage]]:
    chunk: list[Passage] = []
    for passage in passages:
        chunk.append(passage)
        if len(chunk) == shard_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _valid_shard(out_dir: Path, number: int, key: str, doc_ids: list[str]) -> bool:
    array_path, ids_path, header_path = _shard_paths(out_dir, number)
    if not header_path.is_file():
        return False
    try:
        header = read_json(header_path)
        return (header["key"] == key and header["ids_sha256"] == _ids_digest(doc_ids)
                and sha256_file(ids_path) == header["ids_file_sha256"] and sha256_file(array_path) == header["sha256"])
    except (HybridReproError, OSError, KeyError, TypeError) as exc:
        logger.warning("re-encoding shard %s: its header cannot be trusted (%s)", header_path, exc)
        return False


def _write_shard(out_dir: Path, number: int, key: str, doc_ids: list[str], embeddings: np.ndarray) -> dict:
    array_path, ids_path, header_path = _shard_paths(out_dir, number)
    with atomic_output_file(array_path, "wb") as handle:
        np.save(handle, embeddings.astype(np.float16), allow_pickle=False)
    with atomic_output_file(ids_path) as handle:
        json.dump(doc_ids, handle, ensure_ascii=False)
    header = {"format": SHARD_FORMAT, "key": key, "shard": number, "count": len(doc_ids),
              "dim": int(embeddings.shape[1]), "ids_sha256": _ids_digest(doc_ids),
              "ids_file_sha256": sha256_file(ids_path), "sha256": sha256_file(array_path)}
    write_json(header_path, header)
    return header


def encode_corpus(
    encoder: TextEncoder,
    corpus: MiraclLanguage,
    out_dir: Path,
    settings: CorpusEncodingSettings,
    *,
    encoder_settings: Mapping[str, Any],
    progress: bool = True,
) -> dict:
    """Encode ``corpus`` into shards under ``out_dir`` (resuming finished shards); return the index
    written there, plus ``reused_shards``, the number of finished shards this call skipped.

    ``encoder_settings`` are the encoder's text settings (prefixes, pooling, lengths) for the key.
    A different key (other model, corpus, settings) makes every old shard stale: it is re-encoded.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = encoding_key_fields(encoder, corpus, settings, encoder_settings)
    key = encoding_key(fields)
    (out_dir / INDEX_FILE).unlink(missing_ok=True)  # the index is valid only for a finished run
    total = corpus.manifest.get("n_passages") if settings.max_corpus_passages is None else None
    bar = tqdm(total=total, desc=f"encode miracl-{corpus.language} corpus", unit="passage", unit_scale=True,
               disable=not progress, smoothing=0.05)
    shards, reused, dim = [], 0, None
    for number, chunk in enumerate(_shard_chunks(corpus.passages(settings.max_corpus_passages), settings.shard_size)):
        doc_ids = [passage.docid for passage in chunk]
        if _valid_shard(out_dir, number, key, doc_ids):
            header = read_json(_shard_paths(out_dir, number)[2])
            reused += 1
            bar.update(len(chunk))
        else:
            texts = [settings.passage_text(passage) for passage in chunk]

            def embed(indices: list[int]) -> np.ndarray:
                embedded = encoder.encode([texts[i] for i in indices], "passage", batch_size=len(indices),
                                          progress=False)
                bar.update(len(indices))
                return embedded

            embeddings = encode_in_length_order(embed, [len(text) for text in texts], settings.batch_size,
                                                progress=False)
            header = _write_shard(out_dir, number, key, doc_ids, embeddings)
        dim = header["dim"]
        shards.append({"shard": number, "count": header["count"]})
    bar.close()
    if not shards:
        raise HybridReproError(f"the MIRACL {corpus.language} corpus yielded no passages: fetch it again")
    names = {path.name for number in range(len(shards)) for path in _shard_paths(out_dir, number)}
    for stale in out_dir.iterdir():
        if _SHARD_FILE.fullmatch(stale.name) and stale.name not in names:
            stale.unlink()
    index = {"key": key, "fields": fields, "dim": dim, "n_passages": sum(s["count"] for s in shards),
             "shards": shards}
    write_json(out_dir / INDEX_FILE, index)
    # How many shards were reused is reported, not stored: a resumed and a fresh run write the same index.
    return {**index, "reused_shards": reused}


@dataclass(frozen=True)
class EmbeddedCorpus:
    """A finished, verified shard directory."""

    directory: Path
    index: dict

    @property
    def n_passages(self) -> int:
        return self.index["n_passages"]

    def chunks(self, chunk_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(float16 embeddings, doc ids) of at most ``chunk_size`` passages, in corpus order."""
        for shard in self.index["shards"]:
            array_path, ids_path, _ = _shard_paths(self.directory, shard["shard"])
            embeddings = np.load(array_path, mmap_mode="r", allow_pickle=False)
            doc_ids = np.asarray(json.loads(ids_path.read_text(encoding="utf-8")))
            for start in range(0, len(doc_ids), chunk_size):
                # A copy of one chunk: the memory in use stays bounded by the chunk, not the shard.
                yield np.array(embeddings[start:start + chunk_size]), doc_ids[start:start + chunk_size]


def load_embedded_corpus(directory: Path, expected_key: str | None = None) -> EmbeddedCorpus:
    """The shard directory written by :func:`encode_corpus`, every shard checked (count, sha256, shape)."""
    directory = Path(directory)
    if not (directory / INDEX_FILE).is_file():
        raise HybridReproError(f"{directory} holds no finished corpus encoding ({INDEX_FILE} missing): run the "
                               "MIRACL encode stage for this run and language (it resumes where it stopped)")
    index = read_json(directory / INDEX_FILE)
    if expected_key is not None and index["key"] != expected_key:
        raise HybridReproError(f"the embeddings in {directory} were made with another model, corpus or settings: "
                               "run the MIRACL encode stage again")
    for shard in index["shards"]:
        array_path, ids_path, header_path = _shard_paths(directory, shard["shard"])
        for path in (array_path, ids_path, header_path):
            if not path.is_file():
                raise HybridReproError(f"embedding shard file {path} is missing: run the MIRACL encode stage again "
                                       "(it re-encodes only missing shards)")
        header = read_json(header_path)
        if header["key"] != index["key"] or sha256_file(array_path) != header["sha256"] \
                or sha256_file(ids_path) != header["ids_file_sha256"]:
            raise HybridReproError(f"embedding shard {array_path} is truncated or altered (its sha256 or key does not "
                                   "match its header): run the MIRACL encode stage again")
        shape = np.load(array_path, mmap_mode="r", allow_pickle=False).shape
        if shape != (shard["count"], index["dim"]):
            raise HybridReproError(f"embedding shard {array_path} has shape {shape}, the index says "
                                   f"({shard['count']}, {index['dim']}): run the MIRACL encode stage again")
    return EmbeddedCorpus(directory, index)

"""Encode a LAReQA dataset's questions and candidates, with an on-disk embedding cache.

Texts are encoded in batches of similar length (sorted by character length, longest first, so
little compute goes to padding); the rows come back in the dataset's order. Questions are encoded
as ``query``, candidates as ``passage``: the sentence alone, or the pair (sentence, paragraph)
when the dataset's ``candidate_text`` is ``sentence+context`` (LAReQA's candidate encoding; the
encoder must then offer ``encode_pairs``).

Cache: one entry per (encoder fingerprint, dataset name and file checksums, text kind, candidate
text, caller-supplied encoding settings such as maximum lengths, digest of the exact texts),
stored as ``<cache_dir>/<dataset>-<kind>-<key>.npy`` plus a JSON header naming the key fields,
shape and the sha256 of the ``.npy`` file. Both files are written atomically, the header last, so
an interrupted write leaves no entry. An entry whose header or array is unreadable, whose key
fields differ or whose array does not match the recorded sha256 or shape is never trusted: it is
reported with a warning and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.lareqa import LareqaDataset
from hybrid_repro.io import atomic_output_file, sha256_file, write_json

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
TextKind = Literal["query", "passage"]


class TextEncoder(Protocol):
    """What evaluation needs from an encoder (``hybrid_repro.modeling.encoder.Encoder`` is one)."""

    @property
    def fingerprint(self) -> str:
        """Identifies the weights and the encoding settings; part of every cache key."""

    def encode(self, texts: Sequence[str], kind: TextKind, batch_size: int, progress: bool = True) -> np.ndarray:
        """float32 embeddings (len(texts) x dim), rows in input order."""


@runtime_checkable
class PairTextEncoder(TextEncoder, Protocol):
    """An encoder that can also encode (sentence, context) candidate pairs."""

    def encode_pairs(
        self, sentences: Sequence[str], contexts: Sequence[str], batch_size: int, progress: bool = True
    ) -> np.ndarray:
        """float32 passage embeddings (len(sentences) x dim), rows in input order."""


@dataclass(frozen=True)
class EncodedDataset:
    """Embeddings of one dataset: rows follow ``dataset.questions`` and ``dataset.candidates``."""

    queries: np.ndarray
    candidates: np.ndarray
    settings: dict[str, Any]
    """The encoding settings that entered the cache keys (for the metrics document)."""
    cache_hits: dict[str, bool]
    """``{"query": bool, "passage": bool}``: whether each side came from the cache."""


def encode_in_length_order(
    embed_batch: Callable[[list[int]], np.ndarray],
    lengths: Sequence[int],
    batch_size: int,
    *,
    progress: bool = True,
    description: str = "encode",
) -> np.ndarray:
    """Call ``embed_batch(indices)`` on batches of items of similar length; rows in input order.

    ``embed_batch`` receives the indices of one batch and returns their embeddings in that order.
    Items are visited longest first, so a batch pads little and a too-large batch fails early.
    """
    if batch_size < 1:
        raise HybridReproError(f"batch_size must be at least 1, got {batch_size}")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    out: np.ndarray | None = None
    for start in tqdm(range(0, len(order), batch_size), desc=description, unit="batch", disable=not progress):
        batch = order[start : start + batch_size]
        embedded = np.asarray(embed_batch(batch.tolist()), dtype=np.float32)
        if embedded.ndim != 2 or embedded.shape[0] != len(batch):
            raise HybridReproError(
                f"the encoder returned shape {embedded.shape} for a batch of {len(batch)} texts; expected (batch x dim)"
            )
        if out is None:
            out = np.empty((len(order), embedded.shape[1]), dtype=np.float32)
        out[batch] = embedded
    if out is None:
        raise HybridReproError("nothing to encode: the list of texts is empty")
    return out


def encode_questions(encoder: TextEncoder, dataset: LareqaDataset, batch_size: int, progress: bool = True) -> np.ndarray:
    """Query embeddings of ``dataset.questions`` (rows in dataset order)."""
    texts = dataset.questions.text
    return encode_in_length_order(
        lambda idx: encoder.encode([texts[i] for i in idx], "query", batch_size=len(idx), progress=False),
        [len(text) for text in texts],
        batch_size,
        progress=progress,
        description=f"encode {dataset.name} questions",
    )


def encode_candidates(encoder: TextEncoder, dataset: LareqaDataset, batch_size: int, progress: bool = True) -> np.ndarray:
    """Passage embeddings of ``dataset.candidates`` as its ``candidate_text`` says (rows in dataset order)."""
    sentences, contexts = dataset.candidates.sentence, dataset.candidates.context
    description = f"encode {dataset.name} candidates"
    if dataset.candidate_text == "sentence":
        return encode_in_length_order(
            lambda idx: encoder.encode([sentences[i] for i in idx], "passage", batch_size=len(idx), progress=False),
            [len(text) for text in sentences],
            batch_size,
            progress=progress,
            description=description,
        )
    if not isinstance(encoder, PairTextEncoder):
        raise HybridReproError(
            f"candidate_text 'sentence+context' needs an encoder with encode_pairs, and "
            f"{type(encoder).__name__} has none; set evaluate.candidate_text: sentence"
        )
    return encode_in_length_order(
        lambda idx: encoder.encode_pairs(
            [sentences[i] for i in idx], [contexts[i] for i in idx], batch_size=len(idx), progress=False
        ),
        [len(s) + len(c) for s, c in zip(sentences, contexts)],
        batch_size,
        progress=progress,
        description=description,
    )


def texts_digest(texts: Sequence[str] | Sequence[tuple[str, ...]]) -> str:
    """sha256 of a list of texts (or text tuples), unambiguous about where each one ends."""
    digest = hashlib.sha256()
    for item in texts:
        parts = (item,) if isinstance(item, str) else item
        digest.update(json.dumps(parts, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


class EmbeddingCache:
    """Embedding arrays on disk, keyed by a mapping of JSON-serialisable key fields."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    @staticmethod
    def key(fields: Mapping[str, Any]) -> str:
        canonical = json.dumps({"format": CACHE_FORMAT, **fields}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def paths(self, fields: Mapping[str, Any]) -> tuple[Path, Path]:
        """(array file, header file) of the entry for ``fields``."""
        stem = f"{fields.get('dataset', 'data')}-{fields.get('kind', 'emb')}-{self.key(fields)[:24]}"
        return self.directory / f"{stem}.npy", self.directory / f"{stem}.json"

    def load(self, fields: Mapping[str, Any]) -> np.ndarray | None:
        """The cached array for ``fields``; None on a miss or an entry that cannot be trusted."""
        array_path, header_path = self.paths(fields)
        if not header_path.exists():
            return None
        try:
            return self._read_checked(fields, array_path, header_path)
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            logger.warning("ignoring corrupt embedding cache entry %s (%s); recomputing", header_path, exc)
            return None

    def _read_checked(self, fields: Mapping[str, Any], array_path: Path, header_path: Path) -> np.ndarray:
        header = json.loads(header_path.read_text(encoding="utf-8"))
        if header["key"] != self.key(fields):
            raise ValueError("its key differs from the one its file name stands for")
        # Checked before any read: a link to a device (/dev/zero) would never end, a huge file would fill memory.
        if array_path.is_symlink() or not array_path.is_file():
            raise ValueError("the array file is not a regular file")
        if array_path.stat().st_size > 4 * int(np.prod(header["shape"])) + NPY_HEADER_ROOM:
            raise ValueError(f"the array file holds {array_path.stat().st_size} bytes, more than its header's shape")
        if sha256_file(array_path) != header["sha256"]:
            raise ValueError("the array file does not match the sha256 in its header")
        array = np.load(array_path, allow_pickle=False)
        if list(array.shape) != header["shape"] or array.dtype != np.float32:
            raise ValueError(f"array has shape {array.shape} and dtype {array.dtype}, header says {header['shape']}")
        if not np.isfinite(array).all():
            raise ValueError("the array holds NaN or infinite values")  # recomputed, so a re-run is not stuck on it
        return array

    def store(self, fields: Mapping[str, Any], array: np.ndarray) -> None:
        """Write the entry for ``fields``: the array first, then the header that makes it valid."""
        array_path, header_path = self.paths(fields)
        with atomic_output_file(array_path, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
        write_json(
            header_path,
            {
                "format": CACHE_FORMAT,
                "key": self.key(fields),
                "fields": dict(fields),
                "shape": list(array.shape),
                "dtype": "float32",
                "sha256": sha256_file(array_path),
            },
        )


# Bytes an .npy file holds beyond its float32 values: its header, at most a few hundred bytes in practice.
NPY_HEADER_ROOM = 1 << 16


def _cached(cache: EmbeddingCache | None, fields: Mapping[str, Any], compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
    """(array, came from cache)."""
    if cache is not None:
        hit = cache.load(fields)
        if hit is not None:
            return hit, True
    array = compute()
    if cache is not None:
        cache.store(fields, array)
    return array, False


def encode_dataset(
    encoder: TextEncoder,
    dataset: LareqaDataset,
    *,
    batch_size: int,
    cache_dir: Path | None = None,
    settings: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> EncodedDataset:
    """Embeddings of ``dataset``'s questions and candidates, read from or added to ``cache_dir``.

    ``settings`` holds encoding choices the fingerprint may not cover (e.g. maximum lengths); they
    join the cache key. Without ``cache_dir`` nothing is cached.
    """
    common = {
        "fingerprint": encoder.fingerprint,
        "dataset": dataset.name,
        "checksums": dict(sorted(dataset.checksums.items())),
        **dict(settings or {}),
    }
    query_fields = {**common, "kind": "query", "texts": texts_digest(dataset.questions.text)}
    passage_fields = {
        **common,
        "kind": "passage",
        "candidate_text": dataset.candidate_text,
        "texts": texts_digest(dataset.candidate_inputs()),
    }
    cache = EmbeddingCache(cache_dir) if cache_dir is not None else None
    queries, query_hit = _cached(cache, query_fields, lambda: encode_questions(encoder, dataset, batch_size, progress))
    candidates, passage_hit = _cached(
        cache, passage_fields, lambda: encode_candidates(encoder, dataset, batch_size, progress)
    )
    if queries.shape[1] != candidates.shape[1]:
        raise HybridReproError(
            f"query embeddings have {queries.shape[1]} dimensions but candidate embeddings {candidates.shape[1]}"
        )
    return EncodedDataset(
        queries=queries,
        candidates=candidates,
        settings={key: value for key, value in common.items() if key not in ("dataset", "checksums")}
        | {"candidate_text": dataset.candidate_text},
        cache_hits={"query": query_hit, "passage": passage_hit},
    )

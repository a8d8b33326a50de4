"""A synthetic MIRACL language in the hub's file layout, and a deterministic stand-in encoder."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np

TOPICS_REVISION = "a" * 40
CORPUS_REVISION = "b" * 40
MIRACL_LANG = "sw"


@dataclasses.dataclass(frozen=True)
class FakeSettings:
    """The fields of EncodingSettings that the MIRACL stages record."""

    passage_prefix: str = "passage: "
    query_prefix: str = "query: "
    max_passage_length: int = 64


class HashingEncoder:
    """A deterministic bag-of-words encoder: word hashes into 32 dims, L2-normalised rows.

    A query shares words with its relevant passages, so rankings and metrics mean something.
    """

    settings = FakeSettings()
    fingerprint = "hashing-encoder-v1"

    def __init__(self):
        self.calls = 0

    def encode(self, texts, kind, batch_size, progress=True):
        self.calls += 1
        out = np.zeros((len(texts), 32), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 32] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def synthetic_miracl(n_articles: int = 30, passages_per_article: int = 4, n_queries: int = 12):
    """(topics lines, qrels lines, corpus shards as lists of passage dicts) of a small MIRACL language."""
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(400)]
    passages = []
    for article in range(n_articles):
        title = f"Title {article}"
        for part in range(passages_per_article):
            text = " ".join(rng.choice(words, size=int(rng.integers(6, 20))))
            passages.append({"docid": f"{1000 + article}#{part}", "title": title, "text": text})
    topics, qrels = [], []
    for q in range(n_queries):
        target = passages[int(rng.integers(len(passages)))]
        topics.append(f"{q}\t{' '.join(target['text'].split()[:4])}")
        qrels.append(f"{q}\tQ0\t{target['docid']}\t1")
        other = passages[int(rng.integers(len(passages)))]
        if other["docid"] != target["docid"]:
            qrels.append(f"{q}\tQ0\t{other['docid']}\t0")
    shards = [passages[i::3] for i in range(3)]
    return topics, qrels, shards


def _listing_entry(path: str, data: bytes, lfs: bool) -> dict:
    entry = {"type": "file", "path": path, "size": len(data),
             "oid": hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()}
    if lfs:
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data)}
    return entry


def write_mirror(mirror: Path, lang: str = MIRACL_LANG, files: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Lay out a synthetic language under ``mirror`` as the hub serves it; return repo path -> bytes.

    ``files`` overrides the content served for a repo path while the listing keeps the original's
    size and checksums (to fake truncation or corruption in transit).
    """
    topics, qrels, shards = synthetic_miracl()
    original = {
        f"miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-dev.tsv": ("\n".join(topics) + "\n").encode(),
        f"miracl-v1.0-{lang}/qrels/qrels.miracl-v1.0-{lang}-dev.tsv": ("\n".join(qrels) + "\n").encode(),
    }
    corpus = {f"miracl-corpus-v1.0-{lang}/docs-{i}.jsonl.gz": gzip.compress(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in shard).encode(), mtime=0)
        for i, shard in enumerate(shards)}
    served = {**original, **corpus, **(files or {})}
    hub = mirror / "huggingface.co"
    for repo, revision, paths, lfs in (("miracl/miracl", TOPICS_REVISION, original, False),
                                       ("miracl/miracl-corpus", CORPUS_REVISION, corpus, True)):
        folders: dict[str, list] = {}
        for path, data in paths.items():
            folders.setdefault(path.rsplit("/", 1)[0], []).append(_listing_entry(path, data, lfs))
            target = hub / "datasets" / repo / "resolve" / revision / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if path in served:
                target.write_bytes(served[path])
        for folder, entries in folders.items():
            listing = hub / "api" / "datasets" / repo / "tree" / revision / folder
            listing.parent.mkdir(parents=True, exist_ok=True)
            listing.write_text(json.dumps(entries))
    return {**original, **corpus}

"""MIRACL dev data, pinned: per-language topics, judgements and Wikipedia passage corpus.

Sources (Hugging Face hub, each at a commit hash the user pins):

* ``miracl/miracl``: ``miracl-v1.0-<lang>/topics/topics.miracl-v1.0-<lang>-dev.tsv`` (``qid<TAB>query``)
  and ``miracl-v1.0-<lang>/qrels/qrels.miracl-v1.0-<lang>-dev.tsv`` (``qid Q0 docid relevance``);
* ``miracl/miracl-corpus``: ``miracl-corpus-v1.0-<lang>/docs-<n>.jsonl.gz``, one passage per line
  (``{"docid": "X#Y", "title": ..., "text": ...}``; ``X`` is the Wikipedia article, ``Y`` the passage).

The hub's tree listing at the pinned commit (``/api/datasets/<repo>/tree/<commit>/<folder>``) names
the files and gives each one's size and checksum: the sha256 of files stored in Git LFS (the corpus),
the git blob sha1 of the others (topics and judgements). Every downloaded file is checked against
both; a short file is reported as truncated, a wrong digest as a checksum mismatch.

Offline, a mirror directory (argument, or ``$HYBRID_REPRO_DATA_MIRROR`` as for LAReQA) replaces the
network: it holds each URL's content at the URL's path without ``https://``, e.g.
``<mirror>/huggingface.co/api/datasets/miracl/miracl-corpus/tree/<commit>/miracl-corpus-v1.0-sw``
(the saved listing) and ``<mirror>/huggingface.co/datasets/miracl/miracl-corpus/resolve/<commit>/
miracl-corpus-v1.0-sw/docs-0.jsonl.gz`` (what ``wget -x`` writes).

A fetched language directory holds ``topics-dev.tsv``, ``qrels-dev.tsv``, ``corpus/docs-<n>.jsonl.gz``
and ``manifest.json`` (sources, sizes, checksums, query and passage counts). It appears only when
every file is in place and verified and the dev query count equals the official one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.download import MIRROR_ENV, copy_hashing, fetch_url, resolve_mirror
from hybrid_repro.io import atomic_output_dir, git_blob_digest, read_json, read_text, write_json

HUB = "https://huggingface.co"
TOPICS_REPO = "miracl/miracl"
CORPUS_REPO = "miracl/miracl-corpus"
COMMIT = re.compile(r"[0-9a-f]{40}")

OFFICIAL_DEV_QUERIES: dict[str, int] = {
    "ar": 2896, "bn": 411, "es": 648, "fa": 632, "fi": 1271, "fr": 343, "hi": 350, "id": 960,
    "ja": 860, "ko": 213, "ru": 1252, "sw": 482, "te": 828, "th": 733, "zh": 393,
}
"""Dev queries per language (MIRACL; PAPER.md section 3). The paper's 15 languages, in this table's order."""
PAPER_LANGUAGES = ("sw", "bn", "hi", "ko", "th", "te", "fi", "ja", "es", "fr", "ru", "zh", "fa", "ar", "id")
"""The paper's 15 MIRACL languages in the order of its Tables 12-13."""

TOPICS_FILE, QRELS_FILE, CORPUS_DIR, MANIFEST_FILE = "topics-dev.tsv", "qrels-dev.tsv", "corpus", "manifest.json"
CORPUS_SHARD = re.compile(r"docs-(\d+)\.jsonl\.gz")
LICENCES = {
    TOPICS_REPO: "Apache-2.0 (dataset card of miracl/miracl)",
    CORPUS_REPO: "Apache-2.0 (dataset card of miracl/miracl-corpus); passage text from Wikipedia, CC BY-SA",
}


@dataclass(frozen=True)
class RemoteFile:
    """One file of a hub repository at a commit, as its tree listing describes it."""

    repo: str
    revision: str
    path: str
    size: int
    sha256: str | None
    """sha256 of the content for files in Git LFS; None otherwise."""
    git_oid: str
    """Git object id: the blob sha1 for plain files (the LFS pointer's for LFS files)."""

    @property
    def url(self) -> str:
        return f"{hub_url()}/datasets/{self.repo}/resolve/{self.revision}/{self.path}"


def hub_url() -> str:
    """The hub's address: ``HF_ENDPOINT`` when set (a mirror server, as for huggingface_hub), else the hub's own."""
    return os.environ.get("HF_ENDPOINT", HUB).rstrip("/")


def check_commit(revision: object, what: str) -> str:
    """``revision`` if it is a full 40-hex commit hash; otherwise an error saying how to pin it."""
    if not isinstance(revision, str) or not COMMIT.fullmatch(revision):
        raise HybridReproError(
            f"{what} must be a full 40-hex commit hash of the hub repository, got {revision!r}: look it up "
            "on the repository's 'Files and versions' history page (or `huggingface_hub.HfApi().dataset_info"
            "(repo).sha`) and pin it in pipelines/miracl/params.yaml"
        )
    return revision


class HubReader:
    """Reads hub URLs from the network, or from a mirror directory laid out by URL path."""

    def __init__(self, mirror: Path | None = None):
        self.mirror = resolve_mirror(mirror)

    def copy(self, url: str, target: Path, digest: Any = None) -> tuple[str, str]:
        """Copy ``url``'s content into ``target``; return (hex digest, where it came from)."""
        if self.mirror is None:
            return fetch_url(url, target, digest)
        # The mirror is laid out by the hub's own URL paths, whichever address the URL was built with.
        source = self.mirror / HUB.removeprefix("https://") / url.removeprefix(hub_url()).lstrip("/")
        try:
            with source.open("rb") as handle:
                return copy_hashing(handle, target, digest), str(source)
        except FileNotFoundError as exc:
            raise HybridReproError(
                f"mirror {self.mirror} lacks {source.relative_to(self.mirror)}: save {url} there "
                f"(the layout of `wget -x`) or unset {MIRROR_ENV} to download"
            ) from exc

    def list_folder(self, repo: str, revision: str, folder: str, scratch: Path) -> list[RemoteFile]:
        """Files directly in ``folder`` of dataset ``repo`` at ``revision`` (sub-folders left out)."""
        url = f"{hub_url()}/api/datasets/{repo}/tree/{revision}/{folder}"
        listing_path = scratch / ".listing.json"
        self.copy(url, listing_path)
        try:
            entries = json.loads(listing_path.read_text(encoding="utf-8"))
            listing_path.unlink()
            return [
                RemoteFile(repo, revision, entry["path"], int(entry["size"]),
                           (entry.get("lfs") or {}).get("oid"), entry["oid"])
                for entry in entries if entry.get("type") == "file"
            ]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            raise HybridReproError(f"the tree listing {url} is not the hub's JSON file list ({exc}); "
                                   "fetch it again or replace the mirror's copy") from exc


def download_verified(reader: HubReader, remote: RemoteFile, target: Path) -> None:
    """Copy ``remote`` into ``target`` and check its size and checksum against the tree listing."""
    digest = hashlib.sha256() if remote.sha256 else git_blob_digest(remote.size)
    actual, source = reader.copy(remote.url, target, digest)
    size = target.stat().st_size
    if size != remote.size:
        raise HybridReproError(
            f"{remote.repo}/{remote.path} from {source} is truncated or oversized: {size} bytes, the listing at "
            f"{remote.revision[:12]} says {remote.size}; fetch it again or replace the mirror's copy"
        )
    expected = remote.sha256 or remote.git_oid
    if actual != expected:
        kind = "sha256" if remote.sha256 else "git blob sha1"
        raise HybridReproError(
            f"checksum mismatch for {remote.repo}/{remote.path} from {source}: expected {kind} {expected}, got "
            f"{actual} (altered or another version); fetch it again or replace the mirror's copy"
        )


def _dev_file(files: list[RemoteFile], name: str, repo: str, folder: str, language: str) -> RemoteFile:
    for remote in files:
        if remote.path == f"{folder}/{name}":
            return remote
    raise HybridReproError(
        f"{repo} at {files[0].revision if files else 'the pinned commit'} has no dev split file {folder}/{name} "
        f"for language {language!r}: check the language code and miracl.topics_revision"
    )


def fetch_miracl_language(
    language: str,
    out_dir: Path,
    *,
    topics_revision: str,
    corpus_revision: str,
    expected_dev_queries: int | None,
    mirror: Path | None = None,
) -> dict:
    """Fetch ``language``'s dev topics, judgements and corpus into ``out_dir``, atomically; return the manifest.

    ``expected_dev_queries`` (the official count) must equal the number of dev topics when given.
    Any failure (network, missing split, truncation, checksum, count) raises HybridReproError and
    leaves ``out_dir`` as it was.
    """
    check_commit(topics_revision, "miracl.topics_revision")
    check_commit(corpus_revision, "miracl.corpus_revision")
    reader = HubReader(mirror)
    with atomic_output_dir(out_dir) as tmp:
        files = {}
        for kind, name, local in (("topics", f"topics.miracl-v1.0-{language}-dev.tsv", TOPICS_FILE),
                                  ("qrels", f"qrels.miracl-v1.0-{language}-dev.tsv", QRELS_FILE)):
            folder = f"miracl-v1.0-{language}/{kind}"
            listing = reader.list_folder(TOPICS_REPO, topics_revision, folder, tmp)
            remote = _dev_file(listing, name, TOPICS_REPO, folder, language)
            download_verified(reader, remote, tmp / local)
            files[local] = _file_record(remote)
        corpus_folder = f"miracl-corpus-v1.0-{language}"
        shards = [remote for remote in reader.list_folder(CORPUS_REPO, corpus_revision, corpus_folder, tmp)
                  if CORPUS_SHARD.fullmatch(Path(remote.path).name)]
        if not shards:
            raise HybridReproError(f"{CORPUS_REPO} at {corpus_revision[:12]} has no {corpus_folder}/docs-*.jsonl.gz: "
                                   f"check the language code {language!r} and miracl.corpus_revision")
        shards.sort(key=lambda remote: int(CORPUS_SHARD.fullmatch(Path(remote.path).name).group(1)))
        (tmp / CORPUS_DIR).mkdir()
        corpus_names = [f"{CORPUS_DIR}/{Path(remote.path).name}" for remote in shards]
        for remote, local in zip(shards, corpus_names):
            download_verified(reader, remote, tmp / local)
            files[local] = _file_record(remote)
        queries, qrels = read_topics(tmp / TOPICS_FILE), read_qrels(tmp / QRELS_FILE)
        _check_judgements(language, queries, qrels, expected_dev_queries)
        manifest = {
            "language": language,
            "split": "dev",
            "sources": {TOPICS_REPO: topics_revision, CORPUS_REPO: corpus_revision},
            "licences": LICENCES,
            "files": files,
            "n_queries": len(queries),
            "n_judged_queries": len(qrels),
            "n_passages": sum(1 for _ in _read_passages(tmp / CORPUS_DIR, corpus_names)),
        }
        write_json(tmp / MANIFEST_FILE, manifest)
    return manifest


def _file_record(remote: RemoteFile) -> dict:
    return {"source": f"{remote.repo}@{remote.revision}:{remote.path}", "size": remote.size,
            "sha256": remote.sha256, "git_oid": remote.git_oid}


def _check_judgements(language: str, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
                      expected: int | None) -> None:
    if expected is not None and len(queries) != expected:
        raise HybridReproError(f"MIRACL {language} dev has {len(queries)} topics, the official count is {expected}: "
                               "the pinned topics revision is not the released dev set")
    unknown = sorted(set(qrels) - set(queries))
    if unknown:
        raise HybridReproError(f"MIRACL {language} dev judgements name {len(unknown)} queries without a topic "
                               f"(e.g. {unknown[0]!r}): topics and qrels come from different versions")


def read_topics(path: Path) -> dict[str, str]:
    """``qid -> query text`` from a MIRACL topics TSV (``qid<TAB>query``)."""
    queries = {}
    for number, line in enumerate(_lines(path), 1):
        qid, sep, text = line.partition("\t")
        if not sep or not qid:
            raise HybridReproError(f"{path}:{number} is not 'qid<TAB>query': {line[:80]!r}")
        queries[qid] = text
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``qid -> {docid: relevance}`` from a TREC qrels file (``qid Q0 docid relevance``)."""
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(_lines(path), 1):
        parts = line.split()
        try:
            qid, _, docid, relevance = parts
            qrels.setdefault(qid, {})[docid] = int(relevance)
        except ValueError as exc:
            raise HybridReproError(f"{path}:{number} is not 'qid Q0 docid relevance': {line[:80]!r}") from exc
    return qrels


def _lines(path: Path) -> list[str]:
    return [line for line in read_text(path).splitlines() if line.strip()]


@dataclass(frozen=True)
class Passage:
    docid: str
    title: str
    text: str


@dataclass(frozen=True)
class MiraclLanguage:
    """One fetched language: dev topics and judgements, and where its corpus shards are."""

    language: str
    directory: Path
    manifest: dict
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def corpus_files(self) -> list[str]:
        return [name for name in self.manifest["files"] if name.startswith(f"{CORPUS_DIR}/")]

    @property
    def corpus_revision(self) -> str:
        return self.manifest["sources"][CORPUS_REPO]

    @property
    def corpus_digest(self) -> str:
        """One sha256 over the corpus files' checksums: identifies the corpus content."""
        records = {name: self.manifest["files"][name] for name in self.corpus_files}
        return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()

    def passages(self, max_corpus_passages: int | None = None) -> Iterator[Passage]:
        """The corpus in file order; with ``max_corpus_passages``, the first that many plus every judged passage.

        Keeping the judged passages makes a cut corpus still score every query (a subset run is
        labelled as such); which passages are kept depends only on the corpus and the judgements.
        """
        judged = {docid for judgements in self.qrels.values() for docid in judgements}
        for index, passage in enumerate(_read_passages(self.directory / CORPUS_DIR, self.corpus_files)):
            if max_corpus_passages is None or index < max_corpus_passages or passage.docid in judged:
                yield passage


def load_miracl_language(directory: Path, language: str) -> MiraclLanguage:
    """A fetched language directory, checked against its manifest (missing or truncated files are errors)."""
    directory = Path(directory)
    if not (directory / MANIFEST_FILE).is_file():
        raise HybridReproError(f"no fetched MIRACL data for {language!r} at {directory}: run "
                               f"`hybrid-repro miracl-fetch --lang {language}` (or the fetch@{language} stage) first")
    manifest = read_json(directory / MANIFEST_FILE)
    if manifest.get("language") != language:
        raise HybridReproError(f"{directory} holds MIRACL {manifest.get('language')!r}, not {language!r}")
    for name, record in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise HybridReproError(f"{path} is missing from the fetched MIRACL {language} data: fetch it again")
        if path.stat().st_size != record["size"]:
            raise HybridReproError(f"{path} has {path.stat().st_size} bytes, the manifest says {record['size']} "
                                   "(truncated or altered): fetch the language again")
    return MiraclLanguage(language, directory, manifest, read_topics(directory / TOPICS_FILE),
                          read_qrels(directory / QRELS_FILE))


def _read_passages(corpus_dir: Path, names: list[str]) -> Iterator[Passage]:
    for name in names:
        path = corpus_dir / Path(name).name
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    yield _passage(line, path, number)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
            raise HybridReproError(f"cannot read corpus shard {path} ({exc}): truncated or corrupt, "
                                   "fetch it again") from exc


def _passage(line: str, path: Path, number: int) -> Passage:
    try:
        record = json.loads(line)
        return Passage(str(record["docid"]), str(record.get("title", "")), str(record["text"]))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise HybridReproError(f"{path}:{number} is not a MIRACL passage (docid, title, text): {exc}") from exc

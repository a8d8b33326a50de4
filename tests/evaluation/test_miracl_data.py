"""MIRACL fetch and load: hub listing checks, mirror and network boundary, all-or-nothing output (no network)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from miracl_synthetic import CORPUS_REVISION, MIRACL_LANG, TOPICS_REVISION, write_mirror

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation import download
from hybrid_repro.evaluation.miracl_data import fetch_miracl_language, load_miracl_language

CORPUS_SHARD = f"miracl-corpus-v1.0-{MIRACL_LANG}/docs-1.jsonl.gz"
QRELS = f"miracl-v1.0-{MIRACL_LANG}/qrels/qrels.miracl-v1.0-{MIRACL_LANG}-dev.tsv"


def fetch(out: Path, mirror: Path | None, expected: int | None = 12) -> dict:
    return fetch_miracl_language(MIRACL_LANG, out, topics_revision=TOPICS_REVISION, corpus_revision=CORPUS_REVISION,
                                 expected_dev_queries=expected, mirror=mirror)


def test_fetch_writes_verified_files_and_manifest(tmp_path, miracl_language_dir):
    language = load_miracl_language(miracl_language_dir, MIRACL_LANG)
    assert len(language.queries) == 12 and set(language.qrels) <= set(language.queries)
    assert language.corpus_files == [f"corpus/docs-{i}.jsonl.gz" for i in range(3)]
    passages = list(language.passages())
    assert len(passages) == language.manifest["n_passages"] == 120
    assert all("#" in p.docid and p.title.startswith("Title") for p in passages)
    assert language.manifest["sources"] == {"miracl/miracl": TOPICS_REVISION, "miracl/miracl-corpus": CORPUS_REVISION}


def test_network_path_requests_the_pinned_urls(tmp_path, monkeypatch):
    """The same files served by a fake urlopen (the network boundary) instead of a mirror."""
    mirror = tmp_path / "served"
    write_mirror(mirror)
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url)
        return io.BytesIO((mirror / url.removeprefix("https://")).read_bytes())

    monkeypatch.setattr(download.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.delenv("HYBRID_REPRO_DATA_MIRROR", raising=False)
    fetch(tmp_path / "out", None)
    assert f"https://huggingface.co/api/datasets/miracl/miracl-corpus/tree/{CORPUS_REVISION}/miracl-corpus-v1.0-sw" \
        in requested
    assert f"https://huggingface.co/datasets/miracl/miracl-corpus/resolve/{CORPUS_REVISION}/{CORPUS_SHARD}" in requested


@pytest.mark.parametrize(("path", "corrupt", "message"), [
    (CORPUS_SHARD, lambda data: data[:-10], "truncated or oversized"),
    (CORPUS_SHARD, lambda data: data[:-1] + bytes([data[-1] ^ 1]), "checksum mismatch .* expected sha256"),
    (QRELS, lambda data: data.replace(b"\t1", b"\t2", 1), "checksum mismatch .* git blob sha1"),
])
def test_damaged_file_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch, path, corrupt, message):
    mirror = tmp_path / "mirror"
    clean = write_mirror(mirror)
    write_mirror(mirror, files={path: corrupt(clean[path])})
    with pytest.raises(HybridReproError, match=message):
        fetch(tmp_path / "data" / "sw", mirror)
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []


def test_missing_dev_split_names_the_file(tmp_path):
    mirror = tmp_path / "mirror"
    write_mirror(mirror)
    listing = next(mirror.rglob("tree/*/miracl-v1.0-sw/qrels"))
    listing.write_text("[]")
    with pytest.raises(HybridReproError, match="no dev split file .*qrels.miracl-v1.0-sw-dev.tsv"):
        fetch(tmp_path / "out", mirror)
    assert not (tmp_path / "out").exists()


def test_missing_mirror_file_and_wrong_query_count(tmp_path):
    mirror = tmp_path / "mirror"
    write_mirror(mirror)
    with pytest.raises(HybridReproError, match="the official count is 13"):
        fetch(tmp_path / "out", mirror, expected=13)
    next(mirror.rglob("docs-2.jsonl.gz")).unlink()
    with pytest.raises(HybridReproError, match="mirror .* lacks .*docs-2.jsonl.gz"):
        fetch(tmp_path / "out", mirror)
    assert not (tmp_path / "out").exists()


def test_revisions_must_be_commit_hashes(tmp_path):
    with pytest.raises(HybridReproError, match="40-hex commit hash"):
        fetch_miracl_language("sw", tmp_path, topics_revision="main", corpus_revision=CORPUS_REVISION,
                              expected_dev_queries=None)


def test_load_detects_missing_and_truncated_corpus_shards(miracl_language_dir):
    shard = miracl_language_dir / "corpus" / "docs-1.jsonl.gz"
    data = shard.read_bytes()
    shard.write_bytes(data[:-5])
    with pytest.raises(HybridReproError, match="truncated or altered"):
        load_miracl_language(miracl_language_dir, MIRACL_LANG)
    shard.unlink()
    with pytest.raises(HybridReproError, match="docs-1.jsonl.gz is missing"):
        load_miracl_language(miracl_language_dir, MIRACL_LANG)


def test_corpus_cut_keeps_the_first_passages_and_every_judged_one(miracl_language_dir):
    language = load_miracl_language(miracl_language_dir, MIRACL_LANG)
    judged = {docid for judgements in language.qrels.values() for docid in judgements}
    all_ids = [p.docid for p in language.passages()]
    cut = [p.docid for p in language.passages(10)]
    assert cut == [docid for i, docid in enumerate(all_ids) if i < 10 or docid in judged]
    assert judged <= set(cut)


def test_unreadable_gzip_is_a_clear_error(miracl_language_dir):
    manifest_path = miracl_language_dir / "manifest.json"
    shard = miracl_language_dir / "corpus" / "docs-0.jsonl.gz"
    broken = gzip.compress(b'{"docid": "1#0", "title": "t", "text": "x"}\n')[:-12]
    shard.write_bytes(broken)
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["corpus/docs-0.jsonl.gz"]["size"] = len(broken)
    manifest_path.write_text(json.dumps(manifest))
    language = load_miracl_language(miracl_language_dir, MIRACL_LANG)
    with pytest.raises(HybridReproError, match="truncated or corrupt"):
        list(language.passages())

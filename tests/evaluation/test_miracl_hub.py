"""MIRACL's fetch against a real hub-compatible server on 127.0.0.1 (tests/hub_server.py), by ``HF_ENDPOINT``:
the tree listings and downloads of two git repositories shaped like miracl/miracl and miracl/miracl-corpus."""

import gzip
import json

import pytest
from hub_server import HubServer
from miracl_synthetic import MIRACL_LANG, synthetic_miracl

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.miracl_data import CORPUS_REPO, TOPICS_REPO, fetch_miracl_language, load_miracl_language


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    topics, qrels, shards = synthetic_miracl()
    lang = MIRACL_LANG
    server = HubServer(tmp_path_factory.mktemp("hub"))
    topics_repo = server.add_repo(TOPICS_REPO, "dataset", {
        f"miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-dev.tsv": ("\n".join(topics) + "\n").encode(),
        f"miracl-v1.0-{lang}/qrels/qrels.miracl-v1.0-{lang}-dev.tsv": ("\n".join(qrels) + "\n").encode()})
    corpus_repo = server.add_repo(CORPUS_REPO, "dataset", {
        f"miracl-corpus-v1.0-{lang}/docs-{i}.jsonl.gz": gzip.compress(
            "".join(json.dumps(p) + "\n" for p in shard).encode(), mtime=0) for i, shard in enumerate(shards)})
    server.start()
    yield server, topics_repo.commit, corpus_repo.commit, sum(len(shard) for shard in shards)
    server.stop()


def test_a_language_is_fetched_and_verified_through_the_server(hub, tmp_path, monkeypatch):
    server, topics_commit, corpus_commit, passages = hub
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.delenv("HYBRID_REPRO_DATA_MIRROR", raising=False)
    manifest = fetch_miracl_language(MIRACL_LANG, tmp_path / "sw", topics_revision=topics_commit,
                                     corpus_revision=corpus_commit, expected_dev_queries=12)
    language = load_miracl_language(tmp_path / "sw", MIRACL_LANG)
    assert len(language.queries) == 12 and sum(1 for _ in language.passages()) == passages
    assert manifest["sources"] == {TOPICS_REPO: topics_commit, CORPUS_REPO: corpus_commit}
    assert manifest["n_passages"] == passages and manifest["n_queries"] == 12


def test_an_unknown_commit_through_the_server_leaves_nothing(hub, tmp_path, monkeypatch):
    server, topics_commit, _, _ = hub
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.delenv("HYBRID_REPRO_DATA_MIRROR", raising=False)
    with pytest.raises(HybridReproError):
        fetch_miracl_language(MIRACL_LANG, tmp_path / "sw", topics_revision=topics_commit,
                              corpus_revision="c" * 40, expected_dev_queries=12)
    assert not (tmp_path / "sw").exists()

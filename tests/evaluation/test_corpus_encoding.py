"""Sharded corpus encoding: resume after a kill gives identical shards; damaged shards are clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from miracl_synthetic import MIRACL_LANG, HashingEncoder

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.corpus_encoding import (CorpusEncodingSettings, encode_corpus, encoding_key,
                                                     encoding_key_fields, load_embedded_corpus)
from hybrid_repro.evaluation.miracl_data import load_miracl_language

SETTINGS = CorpusEncodingSettings(shard_size=25, batch_size=8)


class KilledEncoder(HashingEncoder):
    """Dies on its n-th call, as a kill mid-encoding would."""

    def __init__(self, die_at: int):
        super().__init__()
        self.die_at = die_at

    def encode(self, texts, kind, batch_size, progress=True):
        if self.calls + 1 == self.die_at:
            raise KeyboardInterrupt("killed")
        return super().encode(texts, kind, batch_size, progress)


def encode(directory, language, encoder, settings=SETTINGS):
    return encode_corpus(encoder, language, directory, settings,
                         encoder_settings=dataclasses.asdict(encoder.settings), progress=False)


def all_embeddings(directory):
    corpus = load_embedded_corpus(directory)
    parts = list(corpus.chunks(1000))
    return np.concatenate([e for e, _ in parts]), np.concatenate([i for _, i in parts]).tolist()


@pytest.fixture()
def language(miracl_language_dir):
    return load_miracl_language(miracl_language_dir, MIRACL_LANG)


def test_shards_hold_fp16_rows_in_corpus_order(tmp_path, language):
    index = encode(tmp_path / "emb", language, HashingEncoder())
    assert [s["count"] for s in index["shards"]] == [25, 25, 25, 25, 20]
    embeddings, doc_ids = all_embeddings(tmp_path / "emb")
    passages = list(language.passages())
    assert doc_ids == [p.docid for p in passages] and embeddings.dtype == np.float16
    direct = HashingEncoder().encode([SETTINGS.passage_text(p) for p in passages], "passage", 8)
    np.testing.assert_array_equal(embeddings, direct.astype(np.float16))


def test_resume_after_a_kill_reuses_finished_shards_and_gives_identical_embeddings(tmp_path, language):
    encode(tmp_path / "fresh", language, HashingEncoder())
    with pytest.raises(KeyboardInterrupt):
        encode(tmp_path / "resumed", language, KilledEncoder(die_at=9))  # 4 batches a shard: dies in shard 2
    assert not (tmp_path / "resumed" / "index.json").exists()
    assert sorted(p.name for p in (tmp_path / "resumed").glob("shard-*.json") if "ids" not in p.name) == [
        "shard-00000.json", "shard-00001.json"]
    resumed_encoder = HashingEncoder()
    index = encode(tmp_path / "resumed", language, resumed_encoder)
    assert index["reused_shards"] == 2 and resumed_encoder.calls == 3 * 4 - 1  # shards 2-4 (the last has 3 batches)
    fresh, resumed = all_embeddings(tmp_path / "fresh"), all_embeddings(tmp_path / "resumed")
    np.testing.assert_array_equal(fresh[0], resumed[0])
    assert fresh[1] == resumed[1]
    for name in ["index.json", *(p.name for p in (tmp_path / "fresh").glob("shard-*"))]:
        assert (tmp_path / "fresh" / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes(), name
    rerun = HashingEncoder()
    assert encode(tmp_path / "resumed", language, rerun)["reused_shards"] == 5 and rerun.calls == 0


def test_another_key_re_encodes_and_drops_stale_shards(tmp_path, language):
    encode(tmp_path / "emb", language, HashingEncoder())
    other = HashingEncoder()
    other.fingerprint = "another-model"
    index = encode(tmp_path / "emb", language, other, CorpusEncodingSettings(shard_size=50, batch_size=8))
    assert index["reused_shards"] == 0 and len(index["shards"]) == 3
    assert len(list((tmp_path / "emb").glob("shard-*.npy"))) == 3
    key = encoding_key(encoding_key_fields(HashingEncoder(), language, SETTINGS, {}))
    with pytest.raises(HybridReproError, match="made with another model"):
        load_embedded_corpus(tmp_path / "emb", expected_key=key)


def test_missing_or_truncated_shard_is_a_clear_error(tmp_path, language):
    encode(tmp_path / "emb", language, HashingEncoder())
    shard = tmp_path / "emb" / "shard-00003.npy"
    shard.write_bytes(shard.read_bytes()[:-64])
    with pytest.raises(HybridReproError, match="shard-00003.npy is truncated or altered"):
        load_embedded_corpus(tmp_path / "emb")
    shard.unlink()
    with pytest.raises(HybridReproError, match="shard-00003.npy is missing"):
        load_embedded_corpus(tmp_path / "emb")
    (tmp_path / "emb" / "index.json").unlink()
    with pytest.raises(HybridReproError, match="no finished corpus encoding"):
        load_embedded_corpus(tmp_path / "emb")

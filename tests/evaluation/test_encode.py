"""Length-ordered encoding, candidate text choice and the on-disk embedding cache."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.encode import (
    EmbeddingCache,
    encode_candidates,
    encode_dataset,
    encode_in_length_order,
    texts_digest,
)
from hybrid_repro.evaluation.lareqa import load_lareqa

DIM = 16


def text_vector(text: str) -> np.ndarray:
    """A fixed pseudo-random unit vector per text, so any row mix-up is visible."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


class RecordingEncoder:
    """Embeds each text as :func:`text_vector` of ``kind:text`` and records every batch it is given."""

    def __init__(self, fingerprint: str = "weights-1"):
        self.fingerprint = fingerprint
        self.batches: list[tuple[str, list[str]]] = []

    def encode(self, texts, kind, batch_size, progress=True):
        self.batches.append((kind, list(texts)))
        return np.stack([text_vector(f"{kind}:{text}") for text in texts])


class PairRecordingEncoder(RecordingEncoder):
    def encode_pairs(self, sentences, contexts, batch_size, progress=True):
        self.batches.append(("pair", list(sentences)))
        return np.stack([text_vector(f"pair:{s}|{c}") for s, c in zip(sentences, contexts)])


def write_squad_file(path: Path, lang: str, paragraphs: list[tuple[list[str], list[tuple[str, str, int]]]]) -> None:
    """A LAReQA language file: each paragraph is (sentences, [(qa id, question, answer sentence index)])."""
    data = []
    for sentences, questions in paragraphs:
        context, breaks = "", []
        for sentence in sentences:
            start = len(context)
            context += sentence + " "
            breaks.append([start, start + len(sentence)])
        qas = [
            {"id": qa_id, "question": question, "answers": [{"text": "x", "answer_start": breaks[answer][0]}]}
            for qa_id, question, answer in questions
        ]
        data.append({"context": context, "qas": qas, "sentences": sentences, "sentence_breaks": breaks})
    path.write_text(json.dumps({"version": "1", "data": [{"title": lang, "paragraphs": data}]}), encoding="utf-8")


@pytest.fixture()
def dataset_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "tiny-r"
    directory.mkdir()
    for lang in ("en", "de"):
        write_squad_file(
            directory / f"{lang}.json",
            lang,
            [
                ([f"{lang} short.", f"{lang} a much longer sentence about rivers.", f"{lang} mid one."],
                 [("q1", f"{lang} which river?", 1), ("q2", f"{lang} what is short and small here?", 0)]),
                ([f"{lang} mountains are high and wide and old."], [("q3", f"{lang} mountains?", 0)]),
            ],
        )
    return directory


def test_length_order_batches_longest_first_and_restores_order():
    texts = ["a", "ccc", "bb", "eeeee", "dddd", "ff"]
    seen: list[list[int]] = []

    def embed(indices):
        seen.append(indices)
        return np.array([[float(i), len(texts[i])] for i in indices])

    out = encode_in_length_order(embed, [len(t) for t in texts], batch_size=2, progress=False)
    assert seen == [[3, 4], [1, 2], [5, 0]]
    np.testing.assert_array_equal(out[:, 0], np.arange(len(texts)))
    assert out.dtype == np.float32


def test_length_order_rejects_bad_encoder_output_and_batch_size():
    with pytest.raises(HybridReproError, match="batch_size"):
        encode_in_length_order(lambda idx: np.zeros((len(idx), 2)), [1, 2], batch_size=0, progress=False)
    with pytest.raises(HybridReproError, match="shape"):
        encode_in_length_order(lambda idx: np.zeros((1, 2)), [1, 2, 3], batch_size=2, progress=False)


def test_encode_dataset_rows_follow_the_dataset(dataset_dir: Path):
    dataset = load_lareqa(dataset_dir)
    encoder = RecordingEncoder()
    encoded = encode_dataset(encoder, dataset, batch_size=2, progress=False)
    expected_q = np.stack([text_vector(f"query:{t}") for t in dataset.questions.text])
    expected_c = np.stack([text_vector(f"passage:{t}") for t in dataset.candidates.sentence])
    np.testing.assert_array_equal(encoded.queries, expected_q)
    np.testing.assert_array_equal(encoded.candidates, expected_c)
    assert all(len(batch) <= 2 for _, batch in encoder.batches)
    assert encoded.cache_hits == {"query": False, "passage": False}


def test_sentence_plus_context_uses_pairs_and_needs_them(dataset_dir: Path):
    dataset = load_lareqa(dataset_dir, candidate_text="sentence+context")
    encoded = encode_candidates(PairRecordingEncoder(), dataset, batch_size=3, progress=False)
    pairs = zip(dataset.candidates.sentence, dataset.candidates.context)
    np.testing.assert_array_equal(encoded, np.stack([text_vector(f"pair:{s}|{c}") for s, c in pairs]))
    with pytest.raises(HybridReproError, match="encode_pairs"):
        encode_candidates(RecordingEncoder(), dataset, batch_size=3, progress=False)


def test_cache_hit_skips_the_encoder(dataset_dir: Path, tmp_path: Path):
    dataset = load_lareqa(dataset_dir)
    cache = tmp_path / "cache"
    first = encode_dataset(RecordingEncoder(), dataset, batch_size=4, cache_dir=cache, progress=False)
    again = RecordingEncoder()
    second = encode_dataset(again, dataset, batch_size=4, cache_dir=cache, progress=False)
    assert again.batches == []
    assert second.cache_hits == {"query": True, "passage": True}
    np.testing.assert_array_equal(first.queries, second.queries)
    np.testing.assert_array_equal(first.candidates, second.candidates)
    assert len(list(cache.glob("*.npy"))) == 2 and not list(cache.glob(".*tmp*"))


@pytest.mark.parametrize(
    "change",
    ["fingerprint", "settings", "candidate_text", "dataset_file"],
)
def test_cache_key_changes_force_recompute(dataset_dir: Path, tmp_path: Path, change: str):
    cache = tmp_path / "cache"
    encode_dataset(RecordingEncoder(), load_lareqa(dataset_dir), batch_size=4, cache_dir=cache,
                   settings={"max_passage_length": 64}, progress=False)
    fingerprint, settings, candidate_text = "weights-1", {"max_passage_length": 64}, "sentence"
    if change == "fingerprint":
        fingerprint = "weights-2"
    elif change == "settings":
        settings = {"max_passage_length": 32}
    elif change == "candidate_text":
        candidate_text = "sentence+context"
    else:
        path = dataset_dir / "de.json"
        path.write_text(path.read_text(encoding="utf-8").replace("rivers", "lakes"), encoding="utf-8")
    encoder = PairRecordingEncoder(fingerprint)
    result = encode_dataset(encoder, load_lareqa(dataset_dir, candidate_text=candidate_text), batch_size=4,
                            cache_dir=cache, settings=settings, progress=False)
    # a passage-side change leaves the question embeddings valid
    query_reused = change == "candidate_text"
    assert result.cache_hits == {"query": query_reused, "passage": False}
    assert {kind for kind, _ in encoder.batches} == ({"pair"} if query_reused else {"query", "passage"})


@pytest.mark.parametrize("damage", ["truncate_array", "flip_byte", "garbage_header", "delete_array", "wrong_key",
                                    "link_to_dev_zero", "nan_values"])
def test_corrupt_cache_entry_is_recomputed_with_a_warning(dataset_dir: Path, tmp_path: Path, caplog, damage: str):
    dataset = load_lareqa(dataset_dir)
    cache = tmp_path / "cache"
    reference = encode_dataset(RecordingEncoder(), dataset, batch_size=4, cache_dir=cache, progress=False)
    array_path = next(cache.glob("tiny-r-passage-*.npy"))
    header_path = array_path.with_suffix(".json")
    if damage == "truncate_array":
        array_path.write_bytes(array_path.read_bytes()[:60])
    elif damage == "flip_byte":
        raw = bytearray(array_path.read_bytes())
        raw[-3] ^= 0xFF
        array_path.write_bytes(bytes(raw))
    elif damage == "garbage_header":
        header_path.write_text("{not json", encoding="utf-8")
    elif damage == "delete_array":
        array_path.unlink()
    elif damage == "link_to_dev_zero":  # read whole it would never end
        array_path.unlink()
        array_path.symlink_to("/dev/zero")
    elif damage == "nan_values":  # consistent with its header, but no embedding: recomputed, not failed on forever
        array = np.load(array_path)
        array[0, 0] = np.nan
        np.save(array_path, array, allow_pickle=False)
        header = json.loads(header_path.read_text(encoding="utf-8"))
        header_path.write_text(json.dumps({**header, "sha256": hashlib.sha256(array_path.read_bytes()).hexdigest()}),
                               encoding="utf-8")
    else:
        header = json.loads(header_path.read_text(encoding="utf-8"))
        header_path.write_text(json.dumps({**header, "key": "0" * 64}), encoding="utf-8")
    encoder = RecordingEncoder()
    with caplog.at_level(logging.WARNING, logger="hybrid_repro.evaluation.encode"):
        result = encode_dataset(encoder, dataset, batch_size=4, cache_dir=cache, progress=False)
    assert "corrupt embedding cache entry" in caplog.text and header_path.name in caplog.text  # the entry is named
    assert result.cache_hits == {"query": True, "passage": False}
    np.testing.assert_array_equal(result.candidates, reference.candidates)
    # the rewritten entry is valid again
    assert EmbeddingCache(cache).load(_passage_fields(cache)) is not None


def _passage_fields(cache: Path) -> dict:
    header = json.loads(next(cache.glob("tiny-r-passage-*.json")).read_text(encoding="utf-8"))
    return header["fields"]


def test_texts_digest_separates_boundaries():
    assert texts_digest(["ab", "c"]) != texts_digest(["a", "bc"])
    assert texts_digest([("a", "b")]) != texts_digest(["a", "b"])
    assert texts_digest(["x"]) == texts_digest(["x"])

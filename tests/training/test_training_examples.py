"""The training split read lazily: metadata in memory, texts read back from the file line by line."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid_repro.data.jsonl import write_jsonl
from hybrid_repro.errors import HybridReproError
from hybrid_repro.training.sampler import ExampleMeta
from hybrid_repro.training.triplets import TrainingExamples, corpus_texts, read_training_examples

# Characters JSON leaves unescaped that str.splitlines() treats as line ends, and text in several scripts.
AWKWARD = "a\u2028b\u2029c\x85d \u0e20\u0e32\u0e29\u0e32 \u4e2d\u6587 \U0001f600"


def _record(index: int, languages=("en", "de"), positive: str | None = None, text: str = "") -> dict:
    positive = positive or f"p{index}"
    return {"id": f"d/{index}", "question_id": f"q{index}", "dataset": "d", "positive_id": positive,
            "negative_id": f"n{index}",
            "texts": {lang: {"query": f"query {index} {lang}{text}", "positive": f"{positive} {lang}",
                             "negative": f"n{index} {lang}"} for lang in languages}}


def test_examples_read_back_equal_the_lines_written(tmp_path):
    records = [_record(0, text=AWKWARD), _record(1, ("en",)), _record(2, ("de", "en", "fr"), text="\n\t\"")]
    write_jsonl(tmp_path / "train.jsonl", records)
    with read_training_examples(tmp_path / "train.jsonl") as examples:
        assert len(examples) == 3
        for example, record in zip(examples, records):
            assert (example.id, example.question_id, example.dataset) == (record["id"], record["question_id"], "d")
            assert example.texts == record["texts"]
        # Random access in any order reads the right line.
        assert [examples[i].id for i in (2, 0, 1, 2)] == ["d/2", "d/0", "d/1", "d/2"]
        assert examples[1:].__len__() == 2 and examples[-1].id == "d/2"
        assert examples.metas == [ExampleMeta("q0", "d", frozenset({"en", "de"})), ExampleMeta("q1", "d", frozenset({"en"})),
                                  ExampleMeta("q2", "d", frozenset({"de", "en", "fr"}))]
        assert list(corpus_texts(examples))[0] == f"query 0 en{AWKWARD}"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["s0", "s1", "s2", "s3"]), min_size=1, max_size=12), st.data())
def test_passage_identities_are_equal_exactly_when_the_passage_ids_are(positives, data):
    negatives = data.draw(st.lists(st.sampled_from(["s0", "s1", "s4"]), min_size=len(positives), max_size=len(positives)))
    records = [{**_record(i, positive=p), "negative_id": n} for i, (p, n) in enumerate(zip(positives, negatives))]
    examples = TrainingExamples.from_records(records)
    ids = dict(zip(positives + negatives, examples.positive_ids.tolist() + examples.negative_ids.tolist()))
    names = positives + negatives
    got = examples.positive_ids.tolist() + examples.negative_ids.tolist()
    for a in range(len(names)):
        for b in range(len(names)):
            assert (got[a] == got[b]) == (names[a] == names[b])
    assert len(set(ids.values())) == len(ids)


def test_examples_share_one_language_set_object_per_distinct_set():
    examples = TrainingExamples.from_records([_record(i) for i in range(5)])
    assert len({id(meta.languages) for meta in examples.metas}) == 1


@pytest.mark.parametrize("line, message", [
    (b'{"id": "d/0", "question_id"', "line 2 is not valid JSON"),
    (b'[1, 2]', "line 2 is not a JSON object"),
    (json.dumps({**_record(1), "dataset": ""}).encode(), "line 2: 'dataset' must be a non-empty string"),
    (json.dumps({**_record(1), "texts": {"en": {"query": "q"}}}).encode(), r"line 2: texts\[.en.\] must hold"),
    (b"\xff\xfe", "line 2 of .* is not valid UTF-8"),
    (b'{"a": "\x00"}', "line 2 of .* NUL"),
])
def test_a_bad_line_is_named_when_the_split_is_opened(tmp_path, line, message):
    path = tmp_path / "train.jsonl"
    path.write_bytes(json.dumps(_record(0)).encode() + b"\n" + line + b"\n")
    with pytest.raises(HybridReproError, match=message):
        read_training_examples(path)


def test_an_empty_or_missing_split_is_refused(tmp_path):
    (tmp_path / "train.jsonl").write_bytes(b"")
    with pytest.raises(HybridReproError, match="holds no examples"):
        read_training_examples(tmp_path / "train.jsonl")
    with pytest.raises(HybridReproError, match="does not exist"):
        read_training_examples(tmp_path / "val.jsonl")


def test_texts_are_not_held_in_memory(tmp_path):
    """What the split keeps per example is its metadata: the texts are read from the file when asked for, so a
    text changed on disk (same length, so the offsets still hold) is what the next read returns."""
    path = tmp_path / "train.jsonl"
    write_jsonl(path, [_record(0), _record(1)])
    with read_training_examples(path) as examples:
        path.write_bytes(path.read_bytes().replace(b"query 1 de", b"QUERY 1 DE"))
        assert examples[1].texts["de"]["query"] == "QUERY 1 DE"

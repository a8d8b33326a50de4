"""The streamed count of negatives that are answers equals the in-memory one, from compact ids."""

import random

import pytest

from hybrid_repro.data.answer_negatives import AnswerNegativeCounter
from hybrid_repro.data.source_corpus import answer_negative_share
from hybrid_repro.errors import HybridReproError
from hybrid_repro.sources.specs import passage_id


def _examples(count: int, seed: int) -> list[dict]:
    """Examples of two datasets whose passage keys overlap: the same key in two datasets is two passages."""
    rng = random.Random(seed)
    return [{"dataset": dataset, "positive_id": passage_id(dataset, str(rng.randrange(60))),
             "negative_id": passage_id(dataset, str(rng.randrange(120)))}
            for dataset in (rng.choice(["wikiqa", "mmarco"]) for _ in range(count))]


@pytest.mark.parametrize("flush", [7, 65_536])
def test_the_share_equals_answer_negative_share_across_datasets_and_flushes(flush, monkeypatch):
    monkeypatch.setattr("hybrid_repro.data.answer_negatives._FLUSH_IDS", flush)
    for seed in range(5):
        examples = _examples(300, seed)
        counter = AnswerNegativeCounter()
        for example in examples:
            counter.add(example["dataset"], example["positive_id"], example["negative_id"])
        expected = answer_negative_share(examples)
        assert 0 < expected < 1 and counter.share() == expected
        assert counter.share() == expected  # asking again counts the same


def test_an_id_of_another_dataset_never_matches():
    counter = AnswerNegativeCounter()
    counter.add("wikiqa", passage_id("wikiqa", "a"), passage_id("wikiqa", "b"))
    counter.add("mmarco", passage_id("mmarco", "b"), passage_id("mmarco", "c"))
    assert counter.share() == 0.0
    assert AnswerNegativeCounter().share() is None


def test_each_example_costs_twenty_bytes():
    counter = AnswerNegativeCounter()
    for example in _examples(1000, 0):
        counter.add(example["dataset"], example["positive_id"], example["negative_id"])
    counter.share()
    assert counter.nbytes == 20 * 1000


@pytest.mark.parametrize("when", ["add", "share"])
def test_ids_the_source_stage_does_not_write_are_refused(when):
    digits = passage_id("mmarco", "1").split(":")[1]
    # The shape of an id is checked as it is added, its digits with the rest of the buffer.
    wrong = {"add": ["wikiqa:" + digits, "mmarco:" + digits + "0", None], "share": ["mmarco:" + digits.upper()]}
    for value in wrong[when]:
        counter = AnswerNegativeCounter()
        with pytest.raises(HybridReproError, match=r"passage id .* is not mmarco:<20 hex digits> as the source stage "
                                                   r"writes it: re-run the stage source@mmarco"):
            counter.add("mmarco", passage_id("mmarco", "0"), passage_id("mmarco", "1"))
            counter.add("mmarco", passage_id("mmarco", "2"), value)
            counter.share()

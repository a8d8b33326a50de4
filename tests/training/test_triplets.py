"""Batch texts and the passage identities that keep answers out of the negatives (PAPER.md Eq. 1)."""

from __future__ import annotations

import torch

from hybrid_repro.config import LossConfig
from hybrid_repro.kernels.infonce_reference import info_nce_reference
from hybrid_repro.modeling.loss import InfoNCELoss
from hybrid_repro.training.sampler import Batch, TripletRef
from hybrid_repro.training.triplets import TrainingExamples, TripletLookup, TripletTexts


def _example(index: int, positive_id: str, negative_id: str) -> dict:
    texts = {lang: {"query": f"q{index} {lang}", "positive": f"{positive_id} {lang}", "negative": f"{negative_id} {lang}"}
             for lang in ("en", "de")}
    return {"id": f"ex{index}", "question_id": f"q{index}", "dataset": "d", "positive_id": positive_id,
            "negative_id": negative_id, "texts": texts}


def test_a_translated_answer_gets_its_source_identity_in_every_language():
    # Example 1's hard negative is sentence s0, the answer of example 0.
    examples = TrainingExamples.from_records([_example(0, "s0", "s5"), _example(1, "s1", "s0"), _example(2, "s2", "s6")])
    batch = Batch("x-y", "d", (TripletRef(0, "en", "de"), TripletRef(1, "de", "en"), TripletRef(2, "en", "de")))
    texts = TripletLookup(examples)(batch)
    assert texts.positives[0] == "s0 de" and texts.negatives[1] == "s0 en"
    assert texts.positive_ids[0] == texts.negative_ids[1]
    assert len({*texts.positive_ids, *texts.negative_ids}) == 5
    query_ids, passage_ids = texts.loss_ids(torch.device("cpu"))
    assert query_ids.tolist() == texts.positive_ids
    assert passage_ids.tolist() == texts.positive_ids + texts.negative_ids
    assert texts.false_negatives(positives_as_negatives=False) == 1


def test_loss_drops_a_translation_of_the_answer_from_that_row_only():
    """Row 0's answer reappears (translated) as row 1's hard negative: row 0's loss equals its loss without
    that column, and the other rows keep it as an ordinary negative."""
    texts = TripletTexts(["a", "b", "c"], ["pa", "pb", "pc"], ["na", "nb", "nc"], positive_ids=[10, 11, 12],
                         negative_ids=[20, 10, 22])
    gen = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(3, 8, generator=gen), dim=-1)
    p = torch.nn.functional.normalize(torch.randn(6, 8, generator=gen), dim=-1)
    loss_fn = InfoNCELoss.from_config(LossConfig(impl="torch", temperature=0.05), torch.device("cpu"))
    got = loss_fn(q, p, torch.arange(3), *texts.loss_ids(torch.device("cpu")))

    def row_loss(row: int, columns: list[int]) -> torch.Tensor:
        # Eq. 1: the row's positive first, then the hard negatives it is compared with.
        return info_nce_reference(q[row:row + 1], p[columns], torch.tensor([0]), 20.0)

    negatives = [3, 4, 5]
    expected = (row_loss(0, [0, 3, 5]) + row_loss(1, [1, *negatives]) + row_loss(2, [2, *negatives])) / 3
    torch.testing.assert_close(got, expected)
    unmasked = loss_fn(q, p, torch.arange(3), torch.tensor([10, 11, 12]), torch.tensor([10, 11, 12, 20, 21, 22]))
    assert not torch.allclose(got, unmasked)


def test_false_negatives_count_shared_positives_only_when_positives_are_negatives():
    # Two questions answered by the same passage s7 (e.g. two questions on one sentence).
    texts = TripletTexts(["a", "b", "c"], ["x", "x", "y"], ["n1", "n2", "n3"], positive_ids=[7, 7, 8],
                         negative_ids=[1, 2, 3])
    assert texts.false_negatives(positives_as_negatives=False) == 0
    assert texts.false_negatives(positives_as_negatives=True) == 2

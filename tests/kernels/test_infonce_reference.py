"""The reference InfoNCE loss against hand computations, F.cross_entropy and autograd's gradcheck."""

import math

import pytest
import torch
import torch.nn.functional as F

from hybrid_repro.errors import HybridReproError
from hybrid_repro.kernels.infonce_reference import info_nce_reference


def _inputs(batch=4, n_passages=7, dim=5, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, dim, generator=gen, dtype=dtype)
    p = torch.randn(n_passages, dim, generator=gen, dtype=dtype)
    labels = torch.randint(0, n_passages, (batch,), generator=gen)
    return q, p, labels


def test_hand_computed_two_passages():
    q = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = info_nce_reference(q, p, torch.tensor([0]), 2.0)
    # logits (2, 0): -log(e^2 / (e^2 + e^0))
    assert loss.item() == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-6)


def test_hand_computed_with_both_masks_and_symmetric():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    # Row 0: column 1 is row 1's positive -> excluded; column 2 shares question 7 -> excluded.
    # Row 1: column 0 excluded (row 0's positive); column 2 (question 7) is not row 1's question.
    ids = dict(query_ids=torch.tensor([7, 8]), passage_ids=torch.tensor([7, 8, 7]))
    loss = info_nce_reference(q, p, labels, 1.0, reduction="sum", positives_as_negatives=False, **ids)
    row0 = 0.0
    row1 = math.log(math.exp(1.0) + math.exp(1.0)) - 1.0
    assert loss.item() == pytest.approx(row0 + row1, rel=1e-12)

    # Reverse direction: rows are p[0], p[1] over queries q[0], q[1] (no masks hit: distinct questions
    # and distinct positives); logits are the identity.
    reverse_row = math.log(math.exp(1.0) + 1.0) - 1.0
    sym = info_nce_reference(q, p, labels, 1.0, reduction="sum", symmetric=True, positives_as_negatives=False, **ids)
    assert sym.item() == pytest.approx(0.5 * (row0 + row1) + 0.5 * 2 * reverse_row, rel=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_unmasked_equals_cross_entropy(reduction):
    q, p, labels = _inputs(batch=6, n_passages=11, dim=8, dtype=torch.float32)
    expected = F.cross_entropy(20.0 * q @ p.T, labels, reduction=reduction)
    unmasked = info_nce_reference(q, p, labels, 20.0, reduction=reduction, positives_as_negatives=True)
    torch.testing.assert_close(unmasked, expected)


def test_default_is_the_papers_equation_1():
    """A direct call computes PAPER.md Eq. 1 (other triplets' positives are not negatives), like the config."""
    q, p, labels = _inputs(batch=6, n_passages=12, dim=8, dtype=torch.float32)
    eq1 = info_nce_reference(q, p, labels, 20.0, positives_as_negatives=False)
    torch.testing.assert_close(info_nce_reference(q, p, labels, 20.0), eq1)
    assert not torch.allclose(info_nce_reference(q, p, labels, 20.0, positives_as_negatives=True), eq1)


def test_sum_is_batch_size_times_mean():
    q, p, labels = _inputs()
    mean = info_nce_reference(q, p, labels, 3.0, symmetric=True)
    total = info_nce_reference(q, p, labels, 3.0, symmetric=True, reduction="sum")
    torch.testing.assert_close(total, q.shape[0] * mean)


def test_duplicate_question_mask_equals_dropping_columns():
    q, p, labels = _inputs(batch=3, n_passages=6, seed=1)
    labels = torch.tensor([0, 1, 2])
    query_ids = torch.tensor([10, 11, 12])
    passage_ids = torch.tensor([10, 11, 12, 10, 99, 12])  # column 3 repeats question 10, column 5 question 12
    masked = info_nce_reference(q, p, labels, 5.0, query_ids=query_ids, passage_ids=passage_ids, reduction="sum",
                                positives_as_negatives=True)
    logits = 5.0 * q @ p.T
    expected = 0.0
    for row, dropped in enumerate([[3], [], [5]]):
        keep = [j for j in range(6) if j not in dropped]
        expected += torch.logsumexp(logits[row, keep], 0) - logits[row, labels[row]]
    torch.testing.assert_close(masked, expected)


def test_positives_as_negatives_false_drops_other_positives():
    q, p, _ = _inputs(batch=3, n_passages=6, seed=2)
    labels = torch.tensor([4, 0, 4])  # a repeated positive: column 4 is row 0's and row 2's
    loss = info_nce_reference(q, p, labels, 4.0, positives_as_negatives=False, reduction="sum")
    logits = 4.0 * q @ p.T
    expected = 0.0
    for row, keep in enumerate([[1, 2, 3, 4, 5], [0, 1, 2, 3, 5], [1, 2, 3, 4, 5]]):
        expected += torch.logsumexp(logits[row, keep], 0) - logits[row, labels[row]]
    torch.testing.assert_close(loss, expected)


def test_symmetric_reverse_direction_and_its_masks():
    q, p, _ = _inputs(batch=3, n_passages=5, seed=3)
    labels = torch.tensor([2, 2, 0])
    query_ids = torch.tensor([1, 2, 1])
    passage_ids = torch.arange(5) + 100  # no forward duplicates: only the reverse masks matter
    kwargs = dict(reduction="sum", query_ids=query_ids, passage_ids=passage_ids)
    forward = info_nce_reference(q, p, labels, 2.0, positives_as_negatives=True, **kwargs)
    sym = info_nce_reference(q, p, labels, 2.0, symmetric=True, positives_as_negatives=True, **kwargs)
    sym_strict = info_nce_reference(q, p, labels, 2.0, symmetric=True, positives_as_negatives=False, **kwargs)

    reverse_logits = 2.0 * p[labels] @ q.T
    # Same question: rows 0 and 2 exclude each other. Shared positive (strict only): rows 0 and 1.
    def reverse(keeps):
        return sum(torch.logsumexp(reverse_logits[i, keep], 0) - reverse_logits[i, i] for i, keep in enumerate(keeps))

    torch.testing.assert_close(sym, 0.5 * forward + 0.5 * reverse([[0, 1], [0, 1, 2], [1, 2]]))
    strict_forward = info_nce_reference(q, p, labels, 2.0, positives_as_negatives=False, **kwargs)
    torch.testing.assert_close(sym_strict, 0.5 * strict_forward + 0.5 * reverse([[0], [1, 2], [1, 2]]))


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("positives_as_negatives", [False, True])
def test_gradcheck_float64_with_learnable_scale(symmetric, positives_as_negatives):
    q, p, _ = _inputs(batch=4, n_passages=7, dim=3, seed=4)
    labels = torch.tensor([0, 1, 1, 5])
    q.requires_grad_(True)
    p.requires_grad_(True)
    scale = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    ids = dict(query_ids=torch.tensor([0, 1, 1, 2]), passage_ids=torch.tensor([0, 1, 9, 0, 1, 2, 0]))

    def loss(q_, p_, s_):
        return info_nce_reference(q_, p_, labels, s_, symmetric=symmetric,
                                  positives_as_negatives=positives_as_negatives, **ids)

    assert torch.autograd.gradcheck(loss, (q, p, scale))


def test_low_precision_inputs_compute_in_float32():
    q, p, labels = _inputs(dtype=torch.float32)
    loss16 = info_nce_reference(q.half(), p.half(), labels, 10.0)
    assert loss16.dtype == torch.float32
    expected = info_nce_reference(q.half().float(), p.half().float(), labels, 10.0)
    torch.testing.assert_close(loss16, expected)


@pytest.mark.parametrize("kwargs, message", [
    (dict(labels=torch.tensor([0, 9])), "labels must lie"),
    (dict(labels=torch.tensor([0.0, 1.0])), "int32/int64"),
    (dict(reduction="max"), "reduction"),
    (dict(query_ids=torch.tensor([0, 1])), "given together"),
    (dict(q=torch.zeros(4, 3)), "B <= N"),
    (dict(p=torch.zeros(3, 2)), "embedding dim"),
    (dict(scale=torch.ones(2)), "1-element tensor"),
])
def test_rejects_malformed_arguments(kwargs, message):
    args = dict(q=torch.zeros(2, 3), p=torch.zeros(3, 3), labels=torch.tensor([0, 1]), scale=1.0)
    args.update(kwargs)
    q, p, labels, scale = args.pop("q"), args.pop("p"), args.pop("labels"), args.pop("scale")
    with pytest.raises(HybridReproError, match=message):
        info_nce_reference(q, p, labels, scale, **args)

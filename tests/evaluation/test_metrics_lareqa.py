"""Rank-based metrics: hand-computed cases, ties, truncation, and agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from hybrid_repro.evaluation.metrics import (
    average_precision,
    mono_cross_metrics,
    multilingual_metrics,
    rank_distance,
    recall_at,
    reciprocal_rank,
)

NAN, INF = np.nan, np.inf


def pessimistic_ranks(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Ranks of the relevant entries of one score vector, written out as the definition states."""
    return np.array([[float((scores >= scores[r]).sum()) for r in relevant]])


def test_single_relevant_at_rank_three():
    ranks = np.array([[3.0]])
    assert average_precision(ranks)[0] == pytest.approx(1 / 3)
    assert average_precision(ranks, 20)[0] == pytest.approx(1 / 3)
    assert average_precision(ranks, 2)[0] == 0.0
    assert reciprocal_rank(ranks)[0] == pytest.approx(1 / 3)
    assert recall_at(ranks, 1)[0] == 0.0
    assert recall_at(ranks, 10)[0] == 1.0
    assert rank_distance(ranks, 10)[0] == 0.0


def test_three_relevant_at_ranks_one_three_six():
    ranks = np.array([[6.0, 1.0, 3.0]])  # column order must not matter
    assert average_precision(ranks)[0] == pytest.approx((1 / 1 + 2 / 3 + 3 / 6) / 3)
    assert average_precision(ranks, 5)[0] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert average_precision(ranks, 2)[0] == pytest.approx(1 / 2)  # divisor min(R, k) = 2
    assert reciprocal_rank(ranks)[0] == 1.0
    assert recall_at(ranks, 1)[0] == pytest.approx(1 / 3)
    assert recall_at(ranks, 5)[0] == pytest.approx(2 / 3)
    assert rank_distance(ranks, 10)[0] == 5.0


def test_map_at_k_divides_by_k_when_more_relevant_than_k():
    all_top = np.arange(1.0, 26.0)[None, :]
    assert average_precision(all_top, 20)[0] == 1.0
    shifted = np.arange(2.0, 27.0)[None, :]
    assert average_precision(shifted, 20)[0] == pytest.approx(sum(i / (i + 1) for i in range(1, 20)) / 20)


def test_tie_between_relevant_and_irrelevant_takes_worst_rank():
    scores = np.array([0.9, 0.9, 0.5, 0.5, 0.1])
    ranks = pessimistic_ranks(scores, np.array([0, 2]))
    np.testing.assert_array_equal(ranks, [[2.0, 4.0]])
    assert average_precision(ranks)[0] == pytest.approx(0.5)
    assert reciprocal_rank(ranks)[0] == 0.5
    assert recall_at(ranks, 1)[0] == 0.0
    assert average_precision_score([1, 0, 1, 0, 0], scores) == pytest.approx(0.5)


def test_tied_relevant_candidates_share_their_group_rank():
    scores = np.array([0.7, 0.7, 0.7, 0.2])
    ranks = pessimistic_ranks(scores, np.array([0, 1]))
    np.testing.assert_array_equal(ranks, [[3.0, 3.0]])
    assert average_precision(ranks)[0] == pytest.approx(2 / 3)
    assert average_precision_score([1, 1, 0, 0], scores) == pytest.approx(2 / 3)
    assert rank_distance(ranks, 4)[0] == 0.0


def test_unretrieved_relevant_adds_nothing_and_sits_last_for_rank_distance():
    ranks = np.array([[2.0, INF]])
    assert average_precision(ranks)[0] == pytest.approx(0.25)
    assert average_precision(ranks, 20)[0] == pytest.approx(0.25)
    assert reciprocal_rank(ranks)[0] == 0.5
    assert recall_at(ranks, 10)[0] == 0.5
    assert rank_distance(ranks, 50)[0] == 48.0
    nothing = np.array([[INF]])
    assert average_precision(nothing)[0] == 0.0 and reciprocal_rank(nothing)[0] == 0.0


def test_padding_is_ignored_and_empty_rows_are_nan():
    ranks = np.array([[1.0, NAN, NAN], [NAN, NAN, NAN], [4.0, 2.0, NAN]])
    ap = average_precision(ranks)
    assert ap[0] == 1.0 and np.isnan(ap[1]) and ap[2] == pytest.approx((1 / 2 + 2 / 4) / 2)
    distance = rank_distance(ranks, 10)
    assert distance[0] == 0.0 and np.isnan(distance[1]) and distance[2] == 2.0
    for values in (*mono_cross_metrics(ranks).values(), *multilingual_metrics(ranks, 10).values()):
        assert np.isnan(values[1]) and not np.isnan(values[[0, 2]]).any()


def test_metric_names_per_setting():
    ranks = np.array([[1.0]])
    assert list(mono_cross_metrics(ranks)) == ["map", "map@20", "r@1", "mrr"]
    assert list(multilingual_metrics(ranks, 5)) == ["map", "map@20", "r@10", "mrr", "rank_distance"]


@st.composite
def tied_scores_with_relevance(draw):
    n = draw(st.integers(2, 40))
    scores = np.array(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)), dtype=np.float64)
    relevant = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    return scores, np.array(sorted(relevant))


@settings(max_examples=200, deadline=None)
@given(tied_scores_with_relevance())
def test_average_precision_equals_sklearn_even_with_ties(case):
    scores, relevant = case
    labels = np.zeros(len(scores), int)
    labels[relevant] = 1
    ranks = pessimistic_ranks(scores, relevant)
    assert average_precision(ranks)[0] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(tied_scores_with_relevance(), st.integers(1, 10))
def test_metrics_stay_in_range_and_recall_grows_with_k(case, k):
    scores, relevant = case
    ranks = pessimistic_ranks(scores, relevant)
    for value in (average_precision(ranks), average_precision(ranks, k), reciprocal_rank(ranks), recall_at(ranks, k)):
        assert 0.0 <= value[0] <= 1.0
    assert recall_at(ranks, k)[0] <= recall_at(ranks, k + 1)[0]
    assert 0 <= rank_distance(ranks, len(scores))[0] <= len(scores) - 1

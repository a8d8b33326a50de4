"""MIRACL metrics: pytrec_eval's nDCG@10 and Recall@100 equal a hand computation; labels and means."""

from __future__ import annotations

import math

import pytest

from hybrid_repro.evaluation.miracl import (SUBSET_LABEL, comparability, language_summary, mean_over_languages,
                                            score_rankings, subset_reasons)
from hybrid_repro.evaluation.miracl_data import PAPER_LANGUAGES


def test_metrics_equal_a_hand_computation():
    qrels = {"q1": {"d1": 2, "d2": 1, "d3": 0, "d9": 1}, "q2": {"d5": 1}, "q3": {"d7": 1}}
    run = {"q1": {"d3": 0.9, "d1": 0.8, "d4": 0.7, "d2": 0.6}, "q2": {"d6": 0.5, "d5": 0.4}}
    per_query = score_rankings(run, qrels)
    # q1 gains by rank: 0, 2, 0, 1 (log2(rank+1) discount); ideal order 2, 1, 1.
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    ideal = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert per_query["q1"]["ndcg@10"] == pytest.approx(dcg / ideal, abs=1e-12)
    assert per_query["q1"]["recall@100"] == pytest.approx(2 / 3)  # d1, d2 of d1, d2, d9 (d3 has relevance 0)
    assert per_query["q2"]["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert per_query["q2"]["recall@100"] == 1.0
    assert per_query["q3"] == {"ndcg@10": 0.0, "recall@100": 0.0}  # not ranked at all: counts as 0
    summary = language_summary(per_query)
    assert summary["n_queries"] == 3
    assert summary["ndcg@10"] == pytest.approx((dcg / ideal + 1 / math.log2(3)) / 3)


def test_subset_labels():
    assert comparability(subset_reasons(PAPER_LANGUAGES, {lang: None for lang in PAPER_LANGUAGES})) == {
        "comparable_with_paper": True, "label": None, "reasons": []}
    labelled = comparability(subset_reasons(["sw", "bn"], {"sw": 1000, "bn": None}))
    assert labelled["label"] == SUBSET_LABEL == "subset, not comparable with the paper"
    assert "languages missing" in labelled["reasons"][0] and "sw 1000" in labelled["reasons"][1]


def test_mean_over_languages_is_a_macro_average():
    means = mean_over_languages({"a": {"ndcg@10": 0.2, "recall@100": 1.0}, "b": {"ndcg@10": 0.4, "recall@100": 0.0}})
    assert means == pytest.approx({"ndcg@10": 0.3, "recall@100": 0.5})

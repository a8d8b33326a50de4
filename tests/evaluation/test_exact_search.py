"""Exact chunked top-k search equals a brute-force full sort, ties included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.exact_search import TopK, exact_search, merge_top_k


def brute_force(queries, corpus, doc_ids, k):
    scores = queries.astype(np.float64) @ corpus.astype(np.float64).T
    best_ids, best_scores = [], []
    for row in scores:
        order = sorted(range(len(doc_ids)), key=lambda i: (-row[i], doc_ids[i]))[:k]
        best_ids.append([doc_ids[i] for i in order])
        best_scores.append([row[i] for i in order])
    return best_ids, best_scores


def chunks(corpus, doc_ids, size):
    for start in range(0, len(doc_ids), size):
        yield corpus[start:start + size], np.asarray(doc_ids[start:start + size])


@pytest.mark.parametrize(("chunk_size", "k"), [(7, 5), (64, 10), (1000, 100), (3, 1)])
def test_equals_brute_force_with_many_ties(chunk_size, k):
    rng = np.random.default_rng(0)
    # Small integers: every dot product is exact in float16/32, and equal scores are frequent.
    corpus = rng.integers(-2, 3, size=(300, 6)).astype(np.float16)
    queries = rng.integers(-2, 3, size=(20, 6)).astype(np.float32)
    doc_ids = [f"{rng.integers(1, 60)}#{i}" for i in range(300)]
    rng.shuffle(doc_ids)
    result = exact_search(queries, chunks(corpus, doc_ids, chunk_size), k=k)
    expected_ids, expected_scores = brute_force(queries, corpus, doc_ids, k)
    assert result.doc_ids.tolist() == expected_ids
    np.testing.assert_array_equal(result.scores, np.asarray(expected_scores, dtype=np.float32))


def test_all_scores_equal_ranks_by_doc_id():
    corpus = np.ones((50, 4), dtype=np.float16)
    doc_ids = [f"{i % 7}#{i}" for i in range(50)]
    result = exact_search(np.ones((2, 4), dtype=np.float32), chunks(corpus, doc_ids, 8), k=10)
    assert result.doc_ids[0].tolist() == sorted(doc_ids)[:10] == result.doc_ids[1].tolist()


def test_corpus_smaller_than_k_and_bad_shapes():
    result = exact_search(np.eye(3, dtype=np.float32), chunks(np.eye(3, dtype=np.float16), ["a", "b", "c"], 2), k=100)
    assert result.doc_ids.tolist() == [["a", "b", "c"], ["b", "a", "c"], ["c", "a", "b"]]
    with pytest.raises(HybridReproError, match="dimensions"):
        exact_search(np.eye(3, dtype=np.float32), [(np.ones((2, 4)), np.asarray(["a", "b"]))], k=1)
    with pytest.raises(HybridReproError, match="do not match"):
        merge_top_k(TopK.empty(2), torch.zeros(3, 4), np.asarray(["a"] * 4), 1)

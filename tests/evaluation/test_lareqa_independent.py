"""Independent checks on the pinned XQuAD-R and MLQA-R pools: our metrics against pytrec_eval
(on the same TREC run files) and scikit-learn (on the same score matrices), to 1e-9.

Queries are subsampled (a few per language) to keep the module fast; the candidate pools are
always complete. Two rankers: random embeddings (untied scores) and word TF-IDF (many exact
ties, mostly at zero). pytrec_eval breaks ties by document id, so it is given the
TF-IDF ranking with ties broken by candidate index; scikit-learn sees the raw tied scores,
which our pessimistic tie rule must reproduce exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import average_precision_score
from test_lareqa_shared_data import shared_dataset

from hybrid_repro.evaluation.lareqa import LareqaDataset
from hybrid_repro.evaluation.runfile import read_run_file, write_run_file
from hybrid_repro.evaluation.settings import evaluate_embeddings, evaluate_run, evaluate_score_rows

pytestmark = pytest.mark.shared_data

QUERIES_PER_LANGUAGE = 3
TOL = 1e-9


class Case:
    """One dataset, a query subsample, and both rankers' full score rows for the subsample."""

    def __init__(self, dataset: LareqaDataset):
        self.dataset = dataset
        rng = np.random.default_rng(7)
        self.queries = np.sort(np.concatenate([
            rng.choice(np.flatnonzero(dataset.question_lang_index == lang), QUERIES_PER_LANGUAGE, replace=False)
            for lang in range(len(dataset.languages))
        ]))
        self.query_emb = rng.standard_normal((len(dataset.questions), 16))
        self.cand_emb = rng.standard_normal((len(dataset.candidates), 16))
        self.random_scores = self.query_emb[self.queries] @ self.cand_emb.T
        tfidf = TfidfVectorizer(token_pattern=r"(?u)\w+", sublinear_tf=True)
        cand_vectors = tfidf.fit_transform(dataset.candidates.sentence)
        query_vectors = tfidf.transform([dataset.questions.text[q] for q in self.queries])
        self.lexical_scores = (query_vectors @ cand_vectors.T).toarray()

    def subset(self, setting: str, query: int, target: int | None) -> np.ndarray:
        """Candidate indices of a query's ranking in a setting."""
        lang = self.dataset.candidate_lang_index
        if setting == "mul":
            return np.arange(len(lang))
        return np.flatnonzero(lang == (self.dataset.question_lang_index[query] if setting == "mo" else target))

    def labels(self, query: int, candidates: np.ndarray) -> np.ndarray:
        return np.isin(candidates, self.dataset.relevance[query]).astype(int)

    def pairs(self, setting: str, targets: list[int]):
        """(row in the subsample, query index, target language or None) scored in ``setting``."""
        for row, q in enumerate(self.queries):
            for target in (targets if setting == "cr" else [None]):
                if setting == "cr" and target == self.dataset.question_lang_index[q]:
                    continue
                if self.labels(q, self.subset(setting, q, target)).any():
                    yield row, q, target


@pytest.fixture(scope="module", params=["xquad-r", "mlqa-r"])
def case(request) -> Case:
    return Case(shared_dataset(request.param))


def untied(scores: np.ndarray) -> np.ndarray:
    """Strictly decreasing integer scores in the order (score desc, candidate index asc)."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    result = np.empty(len(scores))
    result[order] = np.arange(len(scores), 0, -1)
    return result


def reference_ap_at_k(labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    """XTREME-R ``average_precision_at_k`` as published, for untied scores."""
    targets = set(np.flatnonzero(labels).tolist())
    ranked = np.argsort(scores)[::-1][:k]
    hits, total = 0, 0.0
    for i, pred in enumerate(ranked):
        if pred in targets:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(targets), k)


def pessimistic_ranks(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1-based ranks of the relevant entries, each taking the worst place of its tie group."""
    ordered = np.sort(scores)
    return len(scores) - np.searchsorted(ordered, scores[labels == 1], side="left")


def per_query(result, setting: str) -> dict[tuple[str, str], dict]:
    return {(row["qid"], row["target_language"]): row for row in result.per_query_rows() if row["setting"] == setting}


SETTING_CASES = [("mul", None), ("mo", None), ("cr", "de"), ("cr", "zh")]


@pytest.mark.parametrize(("setting", "target"), SETTING_CASES)
@pytest.mark.parametrize("ranker", ["random", "lexical"])
def test_run_file_metrics_match_pytrec_eval(case: Case, tmp_path: Path, ranker: str, setting: str, target: str | None):
    ds = case.dataset
    scores = case.random_scores if ranker == "random" else case.lexical_scores
    target_index = [ds.languages.index(target)] if target else []
    qrels, rankings = {}, []
    for row, q, t in case.pairs(setting, target_index):
        candidates = case.subset(setting, q, t)
        qid = ds.questions.qid[q]
        qrels[qid] = {ds.candidates.cid[c]: 1 for c in candidates[case.labels(q, candidates) == 1]}
        rankings.append((qid, [ds.candidates.cid[c] for c in candidates], untied(scores[row, candidates])))
    path = tmp_path / "run.trec"
    write_run_file(path, rankings, tag=ranker)
    run = read_run_file(path)

    ours = per_query(evaluate_run(ds, run, setting, target, require_all_queries=False), setting)
    cutoff = 10 if setting == "mul" else 1
    trec = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recip_rank", f"recall.{cutoff}"}).evaluate(run)
    assert len(ours) == len(trec) == len(rankings) > 0
    for (qid, _), row in ours.items():
        assert row["map"] == pytest.approx(trec[qid]["map"], abs=TOL)
        assert row["mrr"] == pytest.approx(trec[qid]["recip_rank"], abs=TOL)
        assert row[f"r@{cutoff}"] == pytest.approx(trec[qid][f"recall_{cutoff}"], abs=TOL)


@pytest.mark.parametrize("ranker", ["random", "lexical"])
def test_score_matrix_metrics_match_sklearn_and_reference_formulas(case: Case, ranker: str):
    ds = case.dataset
    scores = case.random_scores if ranker == "random" else case.lexical_scores
    if ranker == "random":
        result = evaluate_embeddings(ds, case.query_emb, case.cand_emb, queries=case.queries, progress=False)
    else:
        row_of = {q: row for row, q in enumerate(case.queries)}
        result = evaluate_score_rows(
            ds, lambda idx: torch.from_numpy(scores[[row_of[q] for q in idx]]), queries=case.queries, progress=False
        )
    targets = list(range(len(ds.languages)))
    for setting in ("mo", "cr", "mul"):
        ours = per_query(result, setting)
        expected_rows = list(case.pairs(setting, targets))
        assert len(ours) == len(expected_rows)
        for row, q, t in expected_rows:
            candidates = case.subset(setting, q, t)
            labels = case.labels(q, candidates)
            mine = ours[(ds.questions.qid[q], "*" if setting == "mul" else ds.languages[
                ds.question_lang_index[q] if setting == "mo" else t])]
            assert mine["map"] == pytest.approx(average_precision_score(labels, scores[row, candidates]), abs=TOL)
            if ranker == "random":  # the published AP@k and rank formulas assume untied scores
                assert mine["map@20"] == pytest.approx(reference_ap_at_k(labels, scores[row, candidates], 20), abs=TOL)
            if setting == "mul":
                ranks = pessimistic_ranks(scores[row, candidates], labels)
                assert mine["rank_distance"] == ranks.max() - ranks.min()
                assert mine["r@10"] == pytest.approx((ranks <= 10).mean(), abs=TOL)

"""MIRACL dev scoring: top-100 rankings -> nDCG@10 and Recall@100 with ``pytrec_eval``, run files.

Metrics are trec_eval's, computed by ``pytrec_eval`` on the judgements as released (graded
relevance; a document counts as relevant for recall at relevance >= 1): ``ndcg_cut_10`` and
``recall_100``. Every judged query is scored; a query the run does not rank scores 0 (trec_eval
would skip it). A language's value is the mean over its judged queries; the summary's value the
mean over languages (macro), as in the paper's Tables 12-13.

Cheap runs: a corpus cut by ``max_corpus_passages`` or fewer languages than the paper's 15 give
numbers that cannot be set beside the paper's; every result document, table and plot made from such
a run carries :data:`SUBSET_LABEL` and the reasons.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pytrec_eval

from hybrid_repro.evaluation.exact_search import TopK
from hybrid_repro.evaluation.miracl_data import PAPER_LANGUAGES

MEASURES = {"ndcg@10": "ndcg_cut_10", "recall@100": "recall_100"}
"""Our metric name -> pytrec_eval's result key."""
TOP_K = 100
SUBSET_LABEL = "subset, not comparable with the paper"


def score_rankings(rankings: Mapping[str, Mapping[str, float]],
                   qrels: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, float]]:
    """Per judged query, ``{"ndcg@10": ..., "recall@100": ...}`` of ``rankings`` (qid -> {docid: score})."""
    evaluator = pytrec_eval.RelevanceEvaluator({q: dict(j) for q, j in qrels.items()}, {"ndcg_cut.10", "recall.100"})
    scored = evaluator.evaluate({qid: {d: float(s) for d, s in rankings[qid].items()}
                                 for qid in qrels if rankings.get(qid)})
    return {qid: {name: float(scored.get(qid, {}).get(key, 0.0)) for name, key in MEASURES.items()}
            for qid in qrels}


def top_k_rankings(top_k: TopK, qids: Sequence[str]) -> dict[str, dict[str, float]]:
    """``qid -> {docid: score}`` from a :class:`TopK` whose rows follow ``qids``."""
    return {qid: dict(zip(doc_ids, scores)) for qid, doc_ids, scores in top_k.rankings(list(qids))}


def language_summary(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float | int]:
    """Mean of each metric over the queries, and their number."""
    summary: dict[str, float | int] = {"n_queries": len(per_query)}
    for name in MEASURES:
        summary[name] = float(np.mean([values[name] for values in per_query.values()])) if per_query else 0.0
    return summary


def subset_reasons(languages: Iterable[str], corpus_cuts: Mapping[str, int | None]) -> list[str]:
    """Why a set of results is not comparable with the paper (empty when it is)."""
    languages = list(languages)
    reasons = []
    missing = [lang for lang in PAPER_LANGUAGES if lang not in languages]
    if missing:
        reasons.append(f"languages missing: {', '.join(missing)}")
    cut = {lang: cap for lang, cap in corpus_cuts.items() if cap is not None}
    if cut:
        reasons.append("corpus cut to max_corpus_passages (plus judged passages): "
                       + ", ".join(f"{lang} {cap}" for lang, cap in sorted(cut.items())))
    return reasons


def comparability(reasons: list[str]) -> dict:
    """The label block every MIRACL result document carries."""
    return {"comparable_with_paper": not reasons, "label": SUBSET_LABEL if reasons else None, "reasons": reasons}


def mean_over_languages(per_language: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Macro average of each metric over languages."""
    return {name: float(np.mean([values[name] for values in per_language.values()])) for name in MEASURES}

"""BM25 on one MIRACL language's corpus (``bm25s``, Lucene variant), top 100 with the search's tie rule.

Each passage is indexed as the corpus encoding joins it (``passage_template``, title and text).
Tokens come from :func:`~hybrid_repro.evaluation.baselines.bm25_tokenize`, the tokenizer of the
LAReQA baseline, applied per language: NFKC, case folding, words of letters, marks and digits;
scripts written without spaces (Thai, Japanese kana and kanji, Chinese) become grapheme-cluster
unigrams plus bigrams, the segmenter-free indexing of CJK and Thai (Lucene's CJK analyzer also
indexes bigrams). There is no stemming and no stop-word list, which Pyserini's Lucene analyzers
have for several languages, so our BM25 is expected to differ from Pyserini's published numbers.

Each query's full score row (``get_scores_from_ids``, exact) goes through
:func:`~hybrid_repro.evaluation.exact_search.merge_top_k`, so ties are broken by doc id as in the
dense search. The index lives in memory: its size grows with the corpus (unlike the dense search).
"""

from __future__ import annotations

from typing import Sequence

import bm25s
import numpy as np
import torch
from tqdm.auto import tqdm

from hybrid_repro.evaluation.baselines import BM25_B, BM25_K1, bm25_tokenize
from hybrid_repro.evaluation.exact_search import TopK, merge_top_k
from hybrid_repro.evaluation.miracl_data import Passage

QUERY_BATCH = 32


def bm25_top_k(passages: Sequence[Passage], passage_texts: Sequence[str], queries: Sequence[str], *, k: int,
               k1: float = BM25_K1, b: float = BM25_B, progress: bool = True) -> TopK:
    """The best ``k`` passages per query by BM25 over ``passages`` (texts as indexed: ``passage_texts``)."""
    index = bm25s.BM25(k1=k1, b=b, method="lucene")
    index.index([bm25_tokenize(text) for text in passage_texts], show_progress=progress)
    doc_ids = np.asarray([passage.docid for passage in passages])
    token_ids = [sorted(set(index.get_tokens_ids(bm25_tokenize(text)))) for text in queries]
    parts = []
    for start in tqdm(range(0, len(queries), QUERY_BATCH), desc="bm25 queries", unit="batch", disable=not progress):
        rows = np.stack([index.get_scores_from_ids(ids) for ids in token_ids[start:start + QUERY_BATCH]])
        parts.append(merge_top_k(TopK.empty(len(rows)), torch.from_numpy(rows.astype(np.float32)), doc_ids, k))
    if not parts:
        return TopK.empty(0)
    return TopK(np.concatenate([part.doc_ids for part in parts]), np.concatenate([part.scores for part in parts]))


def bm25_settings(k1: float, b: float) -> dict:
    """How the BM25 run was made, for its metrics document."""
    return {"ranker": "bm25", "library": f"bm25s {bm25s.__version__}", "method": "lucene", "k1": k1, "b": b,
            "tokenizer": "casefold words; grapheme 1+2-grams for unspaced scripts (th, ja, zh); no stemming"}

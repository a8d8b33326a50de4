"""Reference points for the LAReQA tables: a lexical BM25 ranker and a uniformly random ranker.

Both produce score rows over all candidates of a dataset, so they are scored by exactly the same
ranking and metric code as the dense encoders (full rankings, pessimistic ties).

**BM25** (library ``bm25s``, Lucene variant). One index holds every candidate of every language
(the sentence, or the sentence followed by its paragraph for ``candidate_text: sentence+context``);
a setting's ranking is the full pooled score row restricted to the setting's candidates, as for
embeddings. Document frequencies are therefore pooled over languages; words of different
languages rarely coincide, so this changes little. Each distinct query token counts once.
Full score rows come from ``BM25.get_scores_from_ids`` (one exact row per query), not from the
top-k ``retrieve``, so the full-ranking mAP is exact.

Tokenizer (:func:`bm25_tokenize`): text is NFKC-normalised and case-folded, then split into runs
of letters, combining marks and digits (so Devanagari or Arabic vowel signs stay inside their
word). Runs in scripts written without spaces between words (Han, Hiragana, Katakana, Thai, Lao,
Khmer, Myanmar) are cut into grapheme clusters (a Thai consonant keeps its vowel and tone marks)
and contribute cluster unigrams and bigrams, the usual word-segmenter-free indexing of Chinese and
Thai (on XQuAD-R, th and zh Mo. mAP with 1+2-grams was within 0.01 of the best of 1-, 2-, 2+3- and
1+2+3-grams); every other run is one word token. Punctuation and symbols are dropped.

**Random**: every query ranks the candidates in an independent, uniformly random order (iid
uniform scores, seeded per query). Its expected metrics are known exactly; for a query with ``R``
relevant candidates among ``N`` (see :func:`expected_random_metrics`):

* AP: a relevant candidate at rank ``r`` (uniform on 1..N) has on average ``(r-1)(R-1)/(N-1)``
  relevant candidates above it, and AP averages precision at the relevant ranks, so
  ``E[AP] = (1/N) * sum_{r=1..N} (1 + (r-1)(R-1)/(N-1)) / r = ((N-R) H_N + (R-1) N) / (N (N-1))``
  with ``H_N`` the N-th harmonic number (``H_N / N``, the expected reciprocal rank, for R = 1;
  1 for R = N). AP@k keeps the terms with ``r <= k`` and divides by ``min(R, k)`` instead of R:
  ``E[AP@k] = R / (N min(R, k)) * sum_{r=1..min(k,N)} (1 + (r-1)(R-1)/(N-1)) / r``.
* R@k: ``min(k, N) / N``.
* reciprocal rank: ``sum_k P(best rank = k) / k`` with ``P(best rank = k) = C(N-k, R-1) / C(N, R)``.
* rank distance (largest minus smallest relevant rank): ``(R-1)(N+1)/(R+1)``.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Sequence

import bm25s
import numpy as np
import regex
import torch

from hybrid_repro.evaluation.lareqa import LareqaDataset
from hybrid_repro.evaluation.metrics import MONO_CROSS_KEYS, MULTILINGUAL_KEYS
from hybrid_repro.evaluation.ranking import ScoreRows
from hybrid_repro.evaluation.settings import SETTINGS, EvaluationResult

NO_SPACE_SCRIPTS = ("Han", "Hiragana", "Katakana", "Thai", "Lao", "Khmer", "Myanmar")
_NO_SPACE_CLASS = "".join(rf"\p{{{script}}}" for script in NO_SPACE_SCRIPTS)
_RUN = regex.compile(
    rf"(?P<unspaced>[{_NO_SPACE_CLASS}]+)|(?P<word>[[\p{{L}}\p{{M}}\p{{N}}]--[{_NO_SPACE_CLASS}]]+)", regex.V1
)
_GRAPHEME = regex.compile(r"\X")

BM25_K1 = 0.9
BM25_B = 0.4


def bm25_tokenize(text: str) -> list[str]:
    """Tokens of ``text`` for BM25: words, or grapheme unigrams and bigrams in unspaced scripts."""
    tokens: list[str] = []
    for match in _RUN.finditer(unicodedata.normalize("NFKC", text).casefold()):
        if match.lastgroup == "word":
            tokens.append(match.group())
            continue
        clusters = _GRAPHEME.findall(match.group())
        tokens.extend(clusters)
        tokens.extend(a + b for a, b in zip(clusters, clusters[1:]))
    return tokens


def candidate_documents(dataset: LareqaDataset) -> list[str]:
    """The text BM25 indexes for each candidate: the sentence, or sentence and paragraph."""
    return [item if isinstance(item, str) else " ".join(item) for item in dataset.candidate_inputs()]


class Bm25Ranker:
    """A BM25 index over a dataset's candidates that scores its questions against all of them."""

    def __init__(self, dataset: LareqaDataset, *, k1: float = BM25_K1, b: float = BM25_B, progress: bool = True):
        self.dataset = dataset
        self.k1, self.b = k1, b
        self.index = bm25s.BM25(k1=k1, b=b, method="lucene")
        self.index.index([bm25_tokenize(doc) for doc in candidate_documents(dataset)], show_progress=progress)
        self.query_token_ids = [
            sorted(set(self.index.get_tokens_ids(bm25_tokenize(text)))) for text in dataset.questions.text
        ]

    @property
    def settings(self) -> dict:
        return {"ranker": "bm25", "library": f"bm25s {bm25s.__version__}", "method": "lucene",
                "k1": self.k1, "b": self.b, "tokenizer": "casefold words; grapheme 1+2-grams for unspaced scripts"}

    def score_rows(self, queries: np.ndarray) -> torch.Tensor:
        """Exact BM25 scores of ``queries`` (question indices) against every candidate."""
        rows = [self.index.get_scores_from_ids(self.query_token_ids[q]) for q in queries]
        return torch.from_numpy(np.stack(rows).astype(np.float32, copy=False))


def random_score_rows(dataset: LareqaDataset, seed: int) -> ScoreRows:
    """iid uniform scores: question ``q``'s row depends only on ``(seed, q)``, not on chunking."""
    n_candidates = len(dataset.candidates)

    def score_rows(queries: np.ndarray) -> torch.Tensor:
        rows = [np.random.default_rng([seed, int(q)]).random(n_candidates) for q in queries]
        return torch.from_numpy(np.stack(rows))

    return score_rows


def expected_random_ap(n_candidates: int, n_relevant: int, k: int | None = None) -> float:
    """Expected AP (or AP@k) of a uniformly random ranking; formula in the module docstring."""
    n, r = _checked_pool(n_candidates, n_relevant)
    if n == 1:
        return 1.0
    depth = n if k is None else min(k, n)
    ranks = np.arange(1, depth + 1, dtype=np.float64)
    precision_sum = float(np.sum((1.0 + (ranks - 1.0) * (r - 1) / (n - 1)) / ranks))
    denominator = r if k is None else min(r, k)
    return r * precision_sum / (n * denominator)


def expected_random_reciprocal_rank(n_candidates: int, n_relevant: int) -> float:
    """E[1 / best relevant rank] of a uniformly random ranking."""
    n, r = _checked_pool(n_candidates, n_relevant)
    k = np.arange(1, n - r + 2, dtype=np.float64)
    # P(best = k) = C(n-k, r-1) / C(n, r); successive ratios avoid huge binomials.
    ratios = np.concatenate([[r / n], (n - k[:-1] - r + 1) / (n - k[:-1])])
    return float(np.sum(np.cumprod(ratios) / k))


def expected_random_recall(n_candidates: int, k: int) -> float:
    """E[fraction of relevant candidates in the top k] of a uniformly random ranking."""
    return min(k, n_candidates) / n_candidates


def expected_random_rank_distance(n_candidates: int, n_relevant: int) -> float:
    """E[largest - smallest relevant rank] of a uniformly random ranking."""
    n, r = _checked_pool(n_candidates, n_relevant)
    return (r - 1) * (n + 1) / (r + 1)


def _checked_pool(n_candidates: int, n_relevant: int) -> tuple[int, int]:
    if not 1 <= n_relevant <= n_candidates:
        raise ValueError(f"need 1 <= relevant ({n_relevant}) <= candidates ({n_candidates})")
    return int(n_candidates), int(n_relevant)


def expected_random_metrics(n_candidates: int, n_relevant: int, metrics: Sequence[str]) -> dict[str, float]:
    """Expected value of each named metric (``map``, ``map@K``, ``r@K``, ``mrr``, ``rank_distance``)."""
    values = {}
    for name in metrics:
        if name == "map":
            values[name] = expected_random_ap(n_candidates, n_relevant)
        elif name.startswith("map@"):
            values[name] = expected_random_ap(n_candidates, n_relevant, int(name[4:]))
        elif name.startswith("r@"):
            values[name] = expected_random_recall(n_candidates, int(name[2:]))
        elif name == "mrr":
            values[name] = expected_random_reciprocal_rank(n_candidates, n_relevant)
        elif name == "rank_distance":
            values[name] = expected_random_rank_distance(n_candidates, n_relevant)
        else:
            raise ValueError(f"no expected random value for metric {name!r}")
    return values


@lru_cache(maxsize=None)
def _expected_row(n_candidates: int, n_relevant: int, metrics: tuple[str, ...]) -> tuple[float, ...]:
    return tuple(expected_random_metrics(n_candidates, n_relevant, metrics).values())


def expected_random_result(dataset: LareqaDataset) -> EvaluationResult:
    """The expected metrics of the random ranker, per query and setting, aggregated like a real run.

    Each query's value in each setting is its exact expectation for the setting's pool size and
    number of relevant candidates, so the macro averages of the result are the expected macro
    averages of a random run.
    """
    n_queries, n_languages = len(dataset.questions), len(dataset.languages)
    block_sizes = [stop - start for start, stop in dataset.language_blocks]
    by_target = {key: np.full((n_queries, n_languages), np.nan) for key in MONO_CROSS_KEYS}
    pooled = {key: np.full(n_queries, np.nan) for key in MULTILINGUAL_KEYS}
    for q, relevant in enumerate(dataset.relevance):
        per_language = np.bincount(dataset.candidate_lang_index[relevant], minlength=n_languages)
        for lang in np.flatnonzero(per_language):
            row = _expected_row(block_sizes[lang], int(per_language[lang]), MONO_CROSS_KEYS)
            for key, value in zip(MONO_CROSS_KEYS, row):
                by_target[key][q, lang] = value
        row = _expected_row(len(dataset.candidates), len(relevant), MULTILINGUAL_KEYS)
        for key, value in zip(MULTILINGUAL_KEYS, row):
            pooled[key][q] = value
    return EvaluationResult(dataset, SETTINGS, np.arange(n_queries), by_target, pooled, dataset.languages)


"""Ranking metrics computed from the ranks of a query's relevant candidates.

Every function takes ``ranks``, a float array of shape ``(n_queries, max_relevant)``: one row per
query, one column per relevant candidate of that query in the setting being scored:

* a finite value is the candidate's 1-based rank in the setting's candidate subset;
* ``inf`` marks a relevant candidate that was never retrieved (absent from a truncated run);
* ``nan`` pads rows with fewer relevant candidates than ``max_relevant``.

Tie rule (:data:`TIE_RULE`): a candidate's rank is the number of candidates in the subset whose
score is greater than or equal to its own, i.e. ties are broken pessimistically, every member of
a tie group taking the group's worst rank. With this rule the average precision below equals
scikit-learn's ``average_precision_score`` on the raw scores *including* ties (scikit-learn treats
a tie group as one threshold), and no metric depends on the order in which candidates are given.

A row without relevant candidates gets ``nan`` for every metric; callers drop such queries.
"""

from __future__ import annotations

import numpy as np

TIE_RULE = (
    "pessimistic: rank = number of candidates scoring >= the candidate (a tie group shares its worst rank); "
    "mAP then equals scikit-learn average_precision_score on the raw scores, ties included"
)
MAP_CUTOFF = 20


def _prepare(ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ranks sorted ascending, padding turned into ``inf``; and the relevant count per row.

    Sorting makes every sum run in rank order, so results are bit-identical whatever the column order.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.ndim != 2:
        raise ValueError(f"ranks must be 2-D (queries x relevant), got shape {ranks.shape}")
    valid = ~np.isnan(ranks)
    n_relevant = valid.sum(axis=1)
    return np.sort(np.where(valid, ranks, np.inf), axis=1), n_relevant


def _per_query(total: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, total / np.maximum(denominator, 1), np.nan)


def average_precision(ranks: np.ndarray, k: int | None = None) -> np.ndarray:
    """AP per query; with ``k``, the XTREME-R AP@k.

    AP = (1/R) * sum over retrieved relevant candidates c of precision at rank(c), where the
    precision at rank(c) is (#relevant candidates with rank <= rank(c)) / rank(c) and R is the
    number of relevant candidates. AP@k (XTREME-R's ``average_precision_at_k``) keeps only the
    terms with rank(c) <= k and divides by min(R, k).
    """
    ranks, n_relevant = _prepare(ranks)
    hits_at_rank = (ranks[:, None, :] <= ranks[:, :, None]).sum(axis=2)
    counted = np.isfinite(ranks) if k is None else ranks <= k
    with np.errstate(invalid="ignore"):
        precision = np.where(counted, hits_at_rank / ranks, 0.0)
    denominator = n_relevant if k is None else np.minimum(n_relevant, k)
    return _per_query(precision.sum(axis=1), denominator)


def reciprocal_rank(ranks: np.ndarray) -> np.ndarray:
    """1 / rank of the best-ranked relevant candidate (0 when none was retrieved)."""
    ranks, n_relevant = _prepare(ranks)
    return _per_query(1.0 / ranks.min(axis=1, initial=np.inf), np.minimum(n_relevant, 1))


def recall_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Fraction of a query's relevant candidates ranked in the top ``k``."""
    ranks, n_relevant = _prepare(ranks)
    return _per_query((ranks <= k).sum(axis=1).astype(np.float64), n_relevant)


def rank_distance(ranks: np.ndarray, pool_size: int) -> np.ndarray:
    """Largest minus smallest rank among a query's relevant candidates.

    A relevant candidate that was never retrieved counts as ranked last (rank ``pool_size``),
    where a pessimistic tie among all unretrieved candidates would put it. A query with one
    relevant candidate has distance 0.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    valid = ~np.isnan(ranks)
    placed = np.where(np.isinf(ranks), float(pool_size), ranks)
    largest = np.where(valid, placed, -np.inf).max(axis=1, initial=-np.inf)
    smallest = np.where(valid, placed, np.inf).min(axis=1, initial=np.inf)
    n_relevant = valid.sum(axis=1)
    with np.errstate(invalid="ignore"):
        return np.where(n_relevant > 0, largest - smallest, np.nan)


def mono_cross_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query metrics reported for the Mo. and Cr. settings."""
    return {
        "map": average_precision(ranks),
        f"map@{MAP_CUTOFF}": average_precision(ranks, MAP_CUTOFF),
        "r@1": recall_at(ranks, 1),
        "mrr": reciprocal_rank(ranks),
    }


def multilingual_metrics(ranks: np.ndarray, pool_size: int) -> dict[str, np.ndarray]:
    """Per-query metrics reported for the Mul. setting."""
    return {
        "map": average_precision(ranks),
        f"map@{MAP_CUTOFF}": average_precision(ranks, MAP_CUTOFF),
        "r@10": recall_at(ranks, 10),
        "mrr": reciprocal_rank(ranks),
        "rank_distance": rank_distance(ranks, pool_size),
    }


MONO_CROSS_KEYS = tuple(mono_cross_metrics(np.ones((0, 1))))
MULTILINGUAL_KEYS = tuple(multilingual_metrics(np.ones((0, 1)), 1))

"""Ranks of every query's relevant candidates, computed chunk by chunk without a full score matrix.

For a chunk of queries the score rows (``n_chunk x n_candidates``) are compared with the scores of
the chunk's relevant candidates, language block by language block: ``counts[q, j, l]`` is the
number of candidates of language ``l`` scoring at least as high as relevant candidate ``j`` of
query ``q``. Every setting's ranks follow from these counts under the pessimistic tie rule of
:mod:`hybrid_repro.evaluation.metrics`: the rank of ``j`` among the candidates of its own
language (Mo., Cr.) is ``counts[q, j, lang(j)]``, its rank in the pooled candidates (Mul.) is
``sum_l counts[q, j, l]``. A candidate scored ``-inf`` counts as not retrieved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from hybrid_repro.evaluation.lareqa import LareqaDataset

ScoreRows = Callable[[np.ndarray], torch.Tensor]
"""Given query indices, return their score rows over all candidates (``len(indices) x n_candidates``)."""


@dataclass(frozen=True)
class RelevantRanks:
    """Ranks of the relevant candidates of a set of queries; padded columns hold ``nan``.

    Ranks are 1-based and pessimistic; ``inf`` marks a relevant candidate that was not retrieved.
    """

    candidate_language: np.ndarray
    """(n, max_relevant) language index of each relevant candidate, -1 in padding."""
    own_language_rank: np.ndarray
    """(n, max_relevant) rank among the candidates of the relevant candidate's own language."""
    pooled_rank: np.ndarray
    """(n, max_relevant) rank among all candidates of the dataset."""


def default_device() -> torch.device:
    """The first CUDA device when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def embedding_scorer(
    query_emb: np.ndarray, cand_emb: np.ndarray, device: str | torch.device | None = None
) -> ScoreRows:
    """Score rows by exact dot products, in float32 (float64 when both inputs are float64).

    Both matrices move to ``device`` once (default: CUDA when present); rows are computed on demand.
    """
    dtype = torch.float64 if query_emb.dtype == cand_emb.dtype == np.float64 else torch.float32
    device = torch.device(device) if device is not None else default_device()
    q_matrix = torch.as_tensor(query_emb, dtype=dtype).to(device)
    c_matrix = torch.as_tensor(cand_emb, dtype=dtype).to(device)

    def score_rows(indices: np.ndarray) -> torch.Tensor:
        return q_matrix[torch.from_numpy(np.asarray(indices, np.int64)).to(device)] @ c_matrix.T

    return score_rows


def _padded_relevance(dataset: LareqaDataset, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, max_relevant) candidate indices (padding 0) and the mask of real entries."""
    lists = [dataset.relevance[q] for q in queries]
    width = max((len(x) for x in lists), default=0)
    index = np.zeros((len(lists), max(width, 1)), np.int64)
    mask = np.zeros_like(index, dtype=bool)
    for row, relevant in enumerate(lists):
        index[row, : len(relevant)] = relevant
        mask[row, : len(relevant)] = True
    return index, mask


def _count_at_least(scores: torch.Tensor, relevant: torch.Tensor, blocks: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """``counts[q, j, l]`` = #candidates of language block ``l`` with score >= ``relevant[q, j]``."""
    threshold = relevant.unsqueeze(2)
    # int32 accumulation sums the boolean mask markedly faster than the default int64
    return torch.stack(
        [(scores[:, None, start:stop] >= threshold).sum(dim=2, dtype=torch.int32) for start, stop in blocks], dim=2
    )


def rank_relevant(
    dataset: LareqaDataset,
    queries: np.ndarray,
    score_rows: ScoreRows,
    *,
    chunk_size: int = 256,
    progress: bool = True,
) -> RelevantRanks:
    """Ranks of the relevant candidates of ``queries``, scoring ``chunk_size`` queries at a time."""
    queries = np.asarray(queries, np.int64)
    relevant_index, relevant_mask = _padded_relevance(dataset, queries)
    own = np.full(relevant_index.shape, np.nan)
    pooled = np.full(relevant_index.shape, np.nan)
    language = np.where(relevant_mask, dataset.candidate_lang_index[relevant_index], -1)
    starts = range(0, len(queries), chunk_size)
    for start in tqdm(starts, desc=f"ranking {dataset.name}", unit="chunk", disable=not progress):
        rows = slice(start, start + chunk_size)
        scores = score_rows(queries[rows])
        index = torch.from_numpy(relevant_index[rows]).to(scores.device)
        relevant_scores = scores.gather(1, index)
        counts = _count_at_least(scores, relevant_scores, dataset.language_blocks)
        lang = torch.from_numpy(np.maximum(language[rows], 0)).to(scores.device)
        own_counts = counts.gather(2, lang.unsqueeze(2)).squeeze(2)
        retrieved = (relevant_scores > -torch.inf).cpu().numpy()
        mask = relevant_mask[rows]
        own[rows] = np.where(mask, np.where(retrieved, own_counts.cpu().numpy(), np.inf), np.nan)
        pooled[rows] = np.where(mask, np.where(retrieved, counts.sum(dim=2).cpu().numpy(), np.inf), np.nan)
    return RelevantRanks(candidate_language=language, own_language_rank=own, pooled_rank=pooled)

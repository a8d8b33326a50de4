"""Exact top-k search over a corpus that arrives in chunks, in memory bounded by the chunk.

Scores are dot products of float32 queries with the chunk's embeddings (cast to float32; on the
GPU when ``device`` is CUDA). A running top-k per query is merged with each chunk's top-k, so the
memory in use is one ``queries x chunk`` score matrix plus ``queries x k`` kept results, whatever
the corpus size.

Ties are broken deterministically, the same way everywhere: **score descending, then doc id
ascending** (string order). Within a chunk, ``torch.topk`` may cut a run of equal scores at the
k-th place arbitrarily, so a query whose k-th score is tied with more documents than fit is
resolved exactly from all its tied documents. The result equals a full sort of the whole corpus by
(score desc, doc id asc), cut at k (the tests compare it with that brute force).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.ranking import default_device


@dataclass
class TopK:
    """The best ``k`` documents of each query, best first: ``doc_ids[q, i]`` scored ``scores[q, i]``."""

    doc_ids: np.ndarray
    """(queries x kept) numpy unicode array."""
    scores: np.ndarray
    """(queries x kept) float32."""

    @classmethod
    def empty(cls, n_queries: int) -> "TopK":
        return cls(np.empty((n_queries, 0), dtype="<U1"), np.empty((n_queries, 0), dtype=np.float32))

    def rankings(self, qids: list[str]) -> Iterable[tuple[str, list[str], list[float]]]:
        """(qid, doc ids, scores) per query, for :func:`~hybrid_repro.evaluation.runfile.write_run_file`."""
        for row, qid in enumerate(qids):
            yield qid, self.doc_ids[row].tolist(), self.scores[row].tolist()


def _ordered(doc_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per-row permutation sorting by score descending, then doc id ascending."""
    return np.lexsort((doc_ids, -scores), axis=-1)


def merge_top_k(best: TopK, chunk_scores: torch.Tensor, chunk_ids: np.ndarray, k: int) -> TopK:
    """``best`` merged with one chunk's scores (queries x chunk, any device) over documents ``chunk_ids``."""
    if chunk_scores.shape != (best.scores.shape[0], len(chunk_ids)):
        raise HybridReproError(f"chunk scores of shape {tuple(chunk_scores.shape)} do not match "
                               f"{best.scores.shape[0]} queries x {len(chunk_ids)} documents")
    take = min(k, len(chunk_ids))
    if take == 0:
        return best
    values, index = torch.topk(chunk_scores, take, dim=1)
    # Rows where more documents tie with the take-th score than topk kept: resolve them exactly.
    kth = values[:, -1:]
    crowded = ((chunk_scores >= kth).sum(dim=1) > take).nonzero().flatten().tolist()
    values, index = values.cpu().numpy(), index.cpu().numpy()
    for row in crowded:
        tied = (chunk_scores[row] >= kth[row]).nonzero().flatten().cpu().numpy()
        tied_scores = chunk_scores[row, tied].cpu().numpy()
        keep = _ordered(chunk_ids[tied], tied_scores)[:take]
        index[row], values[row] = tied[keep], tied_scores[keep]
    ids = np.concatenate([best.doc_ids, chunk_ids[index]], axis=1)
    scores = np.concatenate([best.scores, values.astype(np.float32, copy=False)], axis=1)
    order = _ordered(ids, scores)[:, :k]
    return TopK(np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1))


def exact_search(
    queries: np.ndarray,
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
    *,
    k: int = 100,
    device: str | torch.device = "cpu",
) -> TopK:
    """Top ``k`` documents per query over ``chunks`` of (embeddings (n x d), doc ids (n,)), exactly.

    ``queries`` is (queries x d). Chunks may be float16 (as stored) or float32; scores are float32.
    """
    if k < 1:
        raise HybridReproError(f"k must be at least 1, got {k}")
    query_tensor = torch.as_tensor(np.ascontiguousarray(queries, dtype=np.float32), device=device)
    best = TopK.empty(query_tensor.shape[0])
    for embeddings, doc_ids in chunks:
        if embeddings.ndim != 2 or embeddings.shape[1] != query_tensor.shape[1]:
            raise HybridReproError(f"a corpus chunk has shape {embeddings.shape}; queries have "
                                   f"{query_tensor.shape[1]} dimensions")
        chunk = torch.as_tensor(np.asarray(embeddings), device=device).to(torch.float32)
        best = merge_top_k(best, query_tensor @ chunk.T, np.asarray(doc_ids).astype(str), k)
    return best


def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; otherwise the named device."""
    return default_device() if device == "auto" else torch.device(device)

"""Hard negatives for sources that ship none: BM25 over the same dataset's passages, or random ones.

The candidates are the dataset's distinct positive passages (by passage id). An example's negative is
never a passage with its own positive's passage id, so it is never its own answer, nor the answer of
another example asking about the same passage (the loss would then push a correct pair apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import bm25s
import numpy as np

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.baselines import BM25_B, BM25_K1, bm25_tokenize

NegativeMethod = Literal["bm25", "random"]
# BM25 hits examined per query: the first that is not the positive's passage becomes the negative.
# One suffices unless several passages tie with the positive; ten keeps a margin at little cost.
BM25_DEPTH = 10


@dataclass(frozen=True)
class Passages:
    """The distinct passages of a dataset: ``ids[i]`` has text ``texts[i]``."""

    ids: list[str]
    texts: list[str]

    @classmethod
    def distinct(cls, ids: Sequence[str], texts: Sequence[str]) -> "Passages":
        first: dict[str, str] = {}
        for passage, text in zip(ids, texts):
            first.setdefault(passage, text)
        return cls(list(first), list(first.values()))


def mine_negatives(queries: Sequence[str], positive_ids: Sequence[str], passages: Passages,
                   method: NegativeMethod, seed: int, dataset: str) -> list[int]:
    """For every query, the index into ``passages`` of its negative, never one with the query's positive id."""
    if len(passages.ids) < 2:
        raise HybridReproError(f"dataset {dataset!r} has {len(passages.ids)} distinct passage(s): a negative needs "
                               "at least two; use a larger max_pairs or negatives: given")
    position = {passage: index for index, passage in enumerate(passages.ids)}
    own = np.array([position[passage] for passage in positive_ids])
    if method == "random":
        rng = np.random.default_rng(seed)
        # Uniform over the other n - 1 passages: draw from n - 1 and skip over the query's own.
        draws = rng.integers(0, len(passages.ids) - 1, size=len(own))
        return (draws + (draws >= own)).tolist()
    return _bm25_negatives(queries, own, passages)


def _bm25_negatives(queries: Sequence[str], own: np.ndarray, passages: Passages) -> list[int]:
    index = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
    index.index([bm25_tokenize(text) for text in passages.texts], show_progress=False)
    depth = min(BM25_DEPTH, len(passages.ids))
    hits, _ = index.retrieve([bm25_tokenize(query) for query in queries], k=depth, show_progress=False)
    negatives = []
    for row, own_index in zip(np.asarray(hits), own):
        # Never the own passage; when every hit is (a tie of one), the next passage in order serves.
        others = [int(hit) for hit in row if hit != own_index]
        negatives.append(others[0] if others else (int(own_index) + 1) % len(passages.ids))
    return negatives

"""The share of hard negatives that are some example's positive, counted while examples stream past.

:func:`~hybrid_repro.data.source_corpus.answer_negative_share` needs the whole list of examples; at the
paper's scale (tens of millions of records) the data stage cannot hold them. :class:`AnswerNegativeCounter`
gives the same number from the passage ids alone, kept compactly: an id written by
:func:`~hybrid_repro.sources.specs.passage_id` is ``<dataset>:<hex digits of a hash>``, so per dataset its
hex digits as raw bytes (10 bytes for 20 digits) identify it exactly, and an id of one dataset can equal
only an id of the same dataset. Memory: 20 bytes per example (its positive and its negative), plus, while
:meth:`AnswerNegativeCounter.share` runs, a sorted copy of one dataset's positives (10 bytes per example of
that dataset).
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np

from hybrid_repro.errors import HybridReproError
from hybrid_repro.sources.specs import passage_id

# Ids are buffered as strings and turned into digests this many at a time: the buffer's memory stays bounded.
_FLUSH_IDS = 65_536
_HEX = re.compile(r"[0-9a-f]*")


def id_digests(dataset: str, ids: list[str]) -> np.ndarray:
    """The hash digits of ``ids`` (passage ids of ``dataset``) as an array of fixed-width raw bytes, one per id.

    Raises HybridReproError for an id that is not ``<dataset>:<hex digits>`` as :func:`passage_id` writes it:
    two distinct such ids never share a digest, so counting on digests counts exactly as on the ids.
    """
    width = len(passage_id(dataset, ""))
    prefix = f"{dataset}:"
    # Checked in two passes, for speed at tens of millions of ids: the shape of every id, then all hex digits at once.
    def shaped(value: object) -> bool:
        return isinstance(value, str) and len(value) == width and value.startswith(prefix)

    well_shaped = all(shaped(value) for value in ids)
    digits = "".join(value[len(prefix):] for value in ids) if well_shaped else ""
    if not well_shaped or not _HEX.fullmatch(digits):
        wrong = next(value for value in ids if not (shaped(value) and _HEX.fullmatch(value, len(prefix))))
        raise HybridReproError(f"passage id {wrong!r} of dataset {dataset!r} is not {prefix}<hex digits> as "
                               "the source stage writes it")
    return np.frombuffer(bytes.fromhex(digits), dtype=f"V{(width - len(prefix)) // 2}")


class AnswerNegativeCounter:
    """Counts the examples of one split whose negative passage is the positive of some example of the split,
    as :func:`~hybrid_repro.data.source_corpus.answer_negative_share` does on a list, without holding examples."""

    def __init__(self) -> None:
        self.examples = 0
        self._pending: dict[str, tuple[list[str], list[str]]] = {}
        self._digests: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}

    def add(self, dataset: str, positive_id: str, negative_id: str) -> None:
        """Count one example of ``dataset`` with these passage ids."""
        positives, negatives = self._pending.setdefault(dataset, ([], []))
        positives.append(positive_id)
        negatives.append(negative_id)
        self.examples += 1
        if len(positives) >= _FLUSH_IDS:
            self._flush(dataset)

    def _flush(self, dataset: str) -> None:
        positives, negatives = self._pending.pop(dataset)
        digests = self._digests.setdefault(dataset, ([], []))
        digests[0].append(id_digests(dataset, positives))
        digests[1].append(id_digests(dataset, negatives))

    def share(self) -> Optional[float]:
        """The share of the examples counted so far whose negative is some example's positive, rounded as
        :func:`~hybrid_repro.data.source_corpus.answer_negative_share` rounds it; None when none was counted."""
        if not self.examples:
            return None
        for dataset in list(self._pending):
            self._flush(dataset)
        answers = 0
        for positive_chunks, negative_chunks in self._digests.values():
            positives = np.concatenate(positive_chunks)
            positives.sort()
            positive_chunks[:] = [positives]  # the chunks' memory goes; a later call finds them sorted
            for negatives in negative_chunks:
                at = np.minimum(np.searchsorted(positives, negatives), len(positives) - 1)
                answers += int(np.count_nonzero(positives[at] == negatives))
        return round(answers / self.examples, 6)

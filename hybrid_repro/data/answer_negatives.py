"""The share of hard negatives that are some example's positive, counted while examples stream past.

:func:`~hybrid_repro.data.source_corpus.answer_negative_share` needs the whole list of examples; at the
paper's scale (tens of millions of records) the data stage cannot hold them. :class:`AnswerNegativeCounter`
gives the same number from the passage ids alone, kept compactly: an id written by
:func:`~hybrid_repro.sources.specs.passage_id` is ``<dataset>:<hex digits of a hash>``, so per dataset its
hex digits as raw bytes (10 bytes for 20 digits) identify it exactly, and an id of one dataset can equal
only an id of the same dataset. Memory: 20 bytes per example (its positive and its negative,
:attr:`AnswerNegativeCounter.nbytes`), plus, while :meth:`AnswerNegativeCounter.share` runs, a sorted copy of
one dataset's positives (10 bytes per example of that dataset).
"""

from __future__ import annotations

import io
import re
from typing import Optional

import numpy as np

from hybrid_repro.errors import HybridReproError
from hybrid_repro.sources.specs import passage_id

# Hex digits after "<dataset>:" in a passage id.
_DIGITS = len(passage_id("", "")) - 1
_HEX = re.compile(r"[0-9a-f]*")
# Ids are buffered as hex text and turned into digests this many at a time: the buffer stays well under a MB.
_FLUSH_IDS = 16_384


def _malformed(dataset: str, value: object) -> HybridReproError:
    return HybridReproError(f"passage id {value!r} of dataset {dataset!r} is not {dataset}:<{_DIGITS} hex digits> as "
                            f"the source stage writes it: re-run the stage source@{dataset}")


class AnswerNegativeCounter:
    """Counts the examples of one split whose negative passage is the positive of some example of the split,
    as :func:`~hybrid_repro.data.source_corpus.answer_negative_share` does on a list, without holding examples.

    An id that is not ``<dataset>:<hex digits>`` as :func:`~hybrid_repro.sources.specs.passage_id` writes it is
    refused (HybridReproError): two distinct such ids never share a digest, so counting on digests counts exactly
    as on the ids."""

    def __init__(self) -> None:
        self.examples = 0
        # Hex digits not yet turned into digests, all of one dataset (a dataset's examples stream past together).
        # Only the digits are copied in: holding the id strings would hold the memory of the records around them.
        self._pending_dataset = ""
        self._pending = (io.StringIO(), io.StringIO())
        self._pending_count = 0
        self._digests: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}

    def add(self, dataset: str, positive_id: str, negative_id: str) -> None:
        """Count one example of ``dataset`` with these passage ids."""
        if dataset != self._pending_dataset or self._pending_count >= _FLUSH_IDS:
            self._flush()
            self._pending_dataset = dataset
        prefix = f"{dataset}:"
        for buffer, value in zip(self._pending, (positive_id, negative_id)):
            if not (isinstance(value, str) and len(value) == len(prefix) + _DIGITS and value.startswith(prefix)):
                raise _malformed(dataset, value)
            buffer.write(value[len(prefix):])
        self._pending_count += 1
        self.examples += 1

    def _flush(self) -> None:
        if self._pending_count:
            digests = self._digests.setdefault(self._pending_dataset, ([], []))
            for chunks, buffer in zip(digests, self._pending):
                chunks.append(self._as_digests(buffer.getvalue()))
        self._pending = (io.StringIO(), io.StringIO())
        self._pending_count = 0

    def _as_digests(self, digits: str) -> np.ndarray:
        if not _HEX.fullmatch(digits):  # one check for all the ids; the wrong one is looked for only on failure
            wrong = next(digits[at:at + _DIGITS] for at in range(0, len(digits), _DIGITS)
                         if not _HEX.fullmatch(digits, at, at + _DIGITS))
            raise _malformed(self._pending_dataset, f"{self._pending_dataset}:{wrong}")
        return np.frombuffer(bytes.fromhex(digits), dtype=f"V{_DIGITS // 2}")

    @property
    def nbytes(self) -> int:
        """Bytes the digests hold (the ids still buffered as text not counted)."""
        return sum(chunk.nbytes for chunks in self._digests.values() for side in chunks for chunk in side)

    def share(self) -> Optional[float]:
        """The share of the examples counted so far whose negative is some example's positive, rounded as
        :func:`~hybrid_repro.data.source_corpus.answer_negative_share` rounds it; None when none was counted."""
        if not self.examples:
            return None
        self._flush()
        answers = 0
        for positive_chunks, negative_chunks in self._digests.values():
            positives = np.concatenate(positive_chunks)
            positives.sort()
            positive_chunks[:] = [positives]  # the chunks' memory goes; a later call finds them sorted
            for negatives in negative_chunks:
                at = np.minimum(np.searchsorted(positives, negatives), len(positives) - 1)
                answers += int(np.count_nonzero(positives[at] == negatives))
        return round(answers / self.examples, 6)

"""Is the translation in the language it should be? A sampled check with ``py3langid``.

MT models sometimes answer in the wrong language (copying the English source, or drifting into a
related language), and nothing downstream would notice: a "German" training example in English
teaches the X-Y batches nothing. ``py3langid`` (a maintained fork of langid.py, 97 languages,
model shipped inside the package, no download) identifies a seeded sample of each
(dataset, language) output; :func:`check_samples` reports the wrong-language rate of each and
fails the stage when one exceeds the threshold.

Texts shorter than ``min_chars`` are left out of the sample: names, numbers and one-word answers
read the same in many languages and would count as errors that are not.

The sample is collected one text at a time (:class:`DistinctSample`), so the stage gathers it while writing
its outputs and never holds them: of the distinct candidates it keeps the ``sample_size`` with the smallest
seeded hash, a uniform sample that does not depend on the order or repetitions of the texts. An output with
at most ``sample_size`` candidates is checked whole.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from typing import Any, Iterable, Sequence

from hybrid_repro.config import LangIdCheckConfig
from hybrid_repro.errors import HybridReproError


def identify(texts: Sequence[str]) -> list[str]:
    """py3langid's language code (ISO 639-1, as ours) for each text."""
    import py3langid

    return [py3langid.classify(text)[0] for text in texts]


class DistinctSample:
    """A seeded uniform sample of up to ``size`` distinct texts of at least ``min_chars`` characters, fed one text
    at a time, holding ``size`` texts: the candidates whose sha256 under ``seed`` is smallest (bottom-k)."""

    def __init__(self, size: int, min_chars: int, seed: str):
        self.size = size
        self.min_chars = min_chars
        self._hash = hashlib.sha256(seed.encode() + b"\0")
        self._kept: list[tuple[int, str]] = []  # (-rank, text): a heap with the largest kept rank on top
        self._members: set[str] = set()

    def add(self, text: str) -> None:
        if len(text.strip()) < self.min_chars or text in self._members:
            return
        digest = self._hash.copy()
        digest.update(text.encode())
        rank = int.from_bytes(digest.digest()[:16], "big")
        if len(self._kept) < self.size:
            heapq.heappush(self._kept, (-rank, text))
        elif rank < -self._kept[0][0]:
            self._members.discard(heapq.heapreplace(self._kept, (-rank, text))[1])
        else:
            return
        self._members.add(text)

    def texts(self) -> list[str]:
        """The sample, sorted."""
        return sorted(self._members)


class OutputSamples:
    """The samples of every (dataset, language) output, fed as the outputs are written."""

    def __init__(self, config: LangIdCheckConfig, seed: int):
        self.config = config
        self.seed = seed
        self.samples: dict[tuple[str, str], DistinctSample] = {}

    def add(self, dataset: str, lang: str, texts: Iterable[str]) -> None:
        """Offer ``texts``, translations into ``lang`` written for ``dataset``."""
        sample = self.samples.get((dataset, lang))
        if sample is None:
            sample = self.samples[dataset, lang] = DistinctSample(self.config.sample_size, self.config.min_chars,
                                                                  f"{self.seed}:langid:{dataset}:{lang}")
        for text in texts:
            sample.add(text)


def check_samples(samples: OutputSamples) -> dict[str, dict[str, Any]]:
    """``{dataset: {lang: {checked, wrong, wrong_rate, detected_instead}}}``; raise when a rate is too high."""
    config = samples.config
    report: dict[str, dict[str, Any]] = {}
    too_high = []
    for (dataset, lang), collected in sorted(samples.samples.items(), key=lambda item: item[0]):
        sample = collected.texts()
        detected = identify(sample)
        wrong = Counter(code for code in detected if code != lang)
        rate = sum(wrong.values()) / len(sample) if sample else None
        report.setdefault(dataset, {})[lang] = {
            "checked": len(sample), "wrong": sum(wrong.values()),
            "wrong_rate": None if rate is None else round(rate, 4),
            "detected_instead": dict(wrong.most_common(3)),
        }
        if rate is not None and rate > config.max_wrong_rate:
            too_high.append(f"{dataset}/{lang}: {rate:.1%} ({dict(wrong.most_common(3))})")
    if too_high:
        raise HybridReproError(
            f"translations in the wrong language above translate.langid.max_wrong_rate "
            f"({config.max_wrong_rate:.1%}): {'; '.join(too_high)}. Check the language codes and the model, "
            "or raise the threshold if the detector is wrong for these texts"
        )
    return report

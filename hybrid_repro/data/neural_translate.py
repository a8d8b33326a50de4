"""The :class:`~hybrid_repro.data.translate.Translator` for neural models: split, deduplicate,
cache, sort, batch, rejoin.

For one call (many texts, one language pair) :class:`NeuralTranslator`:

1. splits every text into sentences (:mod:`hybrid_repro.data.sentences`);
2. keeps each distinct sentence once and looks it up in the persistent cache;
3. translates the rest longest first (by characters) in batches of ``batch_size``, so a batch pads
   little and an out-of-memory error shows up in the first batch, not after hours;
4. stores each batch in the cache as soon as it is done (an interrupted run resumes there);
5. rejoins each text's translated sentences in their original order.

Steps 2-4 are :meth:`NeuralTranslator.translate_sentences`, which a caller that splits the texts itself (the
``translate-pair`` stage, which records each sentence's translation) calls directly.

:class:`TranslationStats` accumulates what the stage reports: sentences seen, distinct, served by
the cache, translated, cut at the input limit, and the seconds spent translating.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Optional, Protocol, Sequence

from tqdm import tqdm

from hybrid_repro.data.mt_families import ModelFamily
from hybrid_repro.data.sentences import split_sentences
from hybrid_repro.data.translation_cache import TranslationCache
from hybrid_repro.errors import HybridReproError


class Engine(Protocol):
    """Translates one batch of sentences; see :mod:`hybrid_repro.data.mt_engines`."""

    name: str

    @property
    def version(self) -> str: ...

    def check_targets(self, targets: Sequence[str]) -> None: ...

    def translate_batch(self, sentences: Sequence[str], source_lang: str,
                        target_lang: str) -> tuple[list[str], int]: ...


@dataclass
class TranslationStats:
    """Counts over every call of one translator."""

    sentences: int = 0
    unique_sentences: int = 0
    cache_hits: int = 0
    translated: int = 0
    truncated: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The counts with the cache hit rate and throughput (translated sentences per second)."""
        return {
            **asdict(self),
            "seconds": round(self.seconds, 3),
            "cache_hit_rate": round(self.cache_hits / self.unique_sentences, 4) if self.unique_sentences else None,
            "sentences_per_second": round(self.translated / self.seconds, 2) if self.seconds > 0 else None,
        }


class NeuralTranslator:
    """A model family's codes, an engine, and the cache, behind the ``Translator`` interface."""

    def __init__(self, family: ModelFamily, engine: Engine, cache: Optional[TranslationCache], batch_size: int,
                 progress: bool = True):
        self.family = family
        self.engine = engine
        self.cache = cache
        self.batch_size = batch_size
        self.progress = progress
        self.stats = TranslationStats()

    def known_languages(self) -> tuple[str, ...]:
        return tuple(self.family.codes)

    def check_targets(self, targets: Sequence[str]) -> None:
        """Fail before any translation unless the model knows every target (codes and vocabulary)."""
        for lang in targets:
            self.family.code(lang)
        self.engine.check_targets(targets)

    def translate(self, texts: Sequence[str], source_lang: str, target_lang: str) -> list[str]:
        if source_lang == target_lang:
            self.family.code(source_lang)
            return list(texts)
        splits = [split_sentences(text, source_lang) for text in texts]
        done = self.translate_sentences([s for split in splits for s in split.sentences], source_lang, target_lang)
        return [split.join([done[s] for s in split.sentences], target_lang) for split in splits]

    def translate_sentences(self, sentences: Sequence[str], source_lang: str, target_lang: str) -> dict[str, str]:
        """The translation of every distinct sentence of ``sentences`` (already split, as
        :func:`~hybrid_repro.data.sentences.split_sentences` cuts a text), keyed by sentence: from the cache, or
        translated longest first in batches and stored. Counts all of ``sentences`` in :attr:`stats`."""
        self.family.code(source_lang)
        self.family.code(target_lang)
        unique = list(dict.fromkeys(sentences))
        done = self.cache.lookup(source_lang, target_lang, unique) if self.cache else {}
        self.stats.sentences += len(sentences)
        self.stats.unique_sentences += len(unique)
        self.stats.cache_hits += len(done)
        todo = sorted((s for s in unique if s not in done), key=len, reverse=True)
        done.update(self._translate_sorted(todo, source_lang, target_lang))
        return done

    def _translate_sorted(self, todo: list[str], source_lang: str, target_lang: str) -> dict[str, str]:
        out: dict[str, str] = {}
        bar = tqdm(total=len(todo), desc=f"translate {source_lang}->{target_lang}", unit="sentence",
                   disable=not self.progress or not todo, leave=False)
        with bar:
            for start in range(0, len(todo), self.batch_size):
                batch = todo[start : start + self.batch_size]
                started = time.perf_counter()
                translated, truncated = self.engine.translate_batch(batch, source_lang, target_lang)
                self.stats.seconds += time.perf_counter() - started
                if len(translated) != len(batch):
                    raise HybridReproError(f"the {self.engine.name} engine returned {len(translated)} "
                                           f"translations for {len(batch)} sentences")
                result = dict(zip(batch, translated))
                if self.cache:
                    self.cache.store(source_lang, target_lang, result)
                out.update(result)
                self.stats.translated += len(batch)
                self.stats.truncated += truncated
                bar.update(len(batch))
        return out

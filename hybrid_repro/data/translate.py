"""Machine translation behind one interface: the synthetic lexicon and real NLLB-200 / M2M-100 / OPUS-MT.

:class:`Translator` is what the ``translate`` stage calls. :class:`LexiconTranslator` renders the
synthetic source language into the other synthetic languages word by word (with each language's
word order, adjective position, script, punctuation and digits);
:class:`~hybrid_repro.data.neural_translate.NeuralTranslator` runs a pinned NLLB-200, M2M-100 or
Marian/OPUS-MT checkpoint for real languages, through transformers or CTranslate2, with sentence
splitting and a persistent cache. The lexicon backend is the only one that knows the synthetic
languages, and the neural backends know only real ones, so :func:`build_translator` rejects a
backend that does not fit the source corpus.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional, Protocol, Sequence

from hybrid_repro.config import TranslateConfig
from hybrid_repro.data.languages import LanguageSpec, known_languages, language, render_name, render_number
from hybrid_repro.data.lexicon import Lexicon
from hybrid_repro.data.mt_engines import CTranslate2Engine, Decoding, TransformersEngine
from hybrid_repro.data.mt_families import model_family, translation_model_name
from hybrid_repro.data.neural_translate import NeuralTranslator
from hybrid_repro.data.translation_cache import TranslationCache
from hybrid_repro.errors import HybridReproError


class Translator(Protocol):
    """Translates a batch of texts from one language into another, preserving order."""

    def translate(self, texts: Sequence[str], source_lang: str, target_lang: str) -> list[str]: ...


_DIGITS = re.compile(r"[0-9]+")


class LexiconTranslator:
    """Word-for-word translation out of the synthetic source language.

    A source text is words separated by spaces, optionally ending in a full stop or question mark.
    Each word found in the lexicon becomes the target language's form of the same concept and
    synonym variant; digit strings are rewritten with the target's digits; any other word (a name)
    is copied into Latin-script languages and transliterated otherwise. The first verb then moves
    to the end (SOV) or to the front, after a leading question word (VSO), and adjectives follow
    their noun where the target places them so.
    """

    def __init__(self, lexicon: Lexicon, source_lang: str):
        self.lexicon = lexicon
        self.source_lang = source_lang
        self.source = language(source_lang)

    def known_languages(self) -> tuple[str, ...]:
        return self.lexicon.languages

    def translate(self, texts: Sequence[str], source_lang: str, target_lang: str) -> list[str]:
        if source_lang != self.source_lang:
            raise HybridReproError(
                f"the lexicon translator translates from {self.source_lang!r} only, not {source_lang!r}"
            )
        if target_lang not in self.lexicon.languages:
            language(target_lang)  # raises, listing the known languages
            raise HybridReproError(f"the lexicon file has no words for {target_lang!r}; rerun `hybrid-repro data`")
        if target_lang == source_lang:
            return list(texts)
        target = language(target_lang)
        return [self._translate_one(text, target) for text in texts]

    def _split_mark(self, text: str, target: LanguageSpec) -> tuple[str, str]:
        marks = {self.source.question_mark: target.question_mark, self.source.full_stop: target.full_stop}
        if text and text[-1] in marks:
            return text[:-1], marks[text[-1]]
        return text, ""

    def _token(self, word: str, target: LanguageSpec) -> tuple[str, str]:
        """``(part of speech, target text)`` of one source word."""
        parsed = self.lexicon.parse(self.source_lang, word)
        if parsed is not None:
            concept, variant = parsed
            return self.lexicon.concepts[concept].pos, self.lexicon.form(target.code, concept, variant)
        if _DIGITS.fullmatch(word):
            return "number", render_number(word, target)
        return "name", _cached_name(word, target)

    def _translate_one(self, text: str, target: LanguageSpec) -> str:
        body, mark = self._split_mark(text, target)
        tokens = [self._token(word, target) for word in body.split()]
        if target.adjective_after_noun:
            tokens = _adjectives_after_nouns(tokens)
        tokens = _place_verb(tokens, target.word_order)
        return target.word_joiner.join(text for _, text in tokens) + mark


@lru_cache(maxsize=None)
def _cached_name(word: str, target: LanguageSpec) -> str:
    return render_name(word, target)


def _adjectives_after_nouns(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = list(tokens)
    i = 0
    while i < len(out) - 1:
        if out[i][0] == "adj" and out[i + 1][0] == "noun":
            out[i], out[i + 1] = out[i + 1], out[i]
            i += 2
        else:
            i += 1
    return out


def _place_verb(tokens: list[tuple[str, str]], word_order: str) -> list[tuple[str, str]]:
    verbs = [i for i, (pos, _) in enumerate(tokens) if pos == "verb"]
    if word_order == "SVO" or not verbs:
        return tokens
    verb = tokens[verbs[0]]
    rest = tokens[: verbs[0]] + tokens[verbs[0] + 1 :]
    if word_order == "SOV":
        return rest + [verb]
    front = 1 if rest and rest[0][0] == "qword" else 0
    return rest[:front] + [verb] + rest[front:]


def build_neural_translator(config: TranslateConfig, progress: bool = True) -> NeuralTranslator:
    """The nllb / m2m100 / marian translator of ``config``: engine, decoding settings and cache."""
    family = model_family(config.backend)
    model_name = translation_model_name(config.backend, config.model_name)
    if model_name is None:
        raise HybridReproError(f"translate.backend {config.backend!r} needs translate.model_name")
    revision = config.model_revision or ""
    decoding = Decoding(config.num_beams, config.max_length_ratio, config.max_length_extra, config.max_input_tokens)
    engine: TransformersEngine
    if config.engine == "ctranslate2":
        engine = CTranslate2Engine(family, model_name, revision, decoding, config.cache_dir / "ctranslate2")
    else:
        engine = TransformersEngine(family, model_name, revision, decoding)
    namespace = {"model": model_name, "revision": revision, "engine": engine.name, "engine_version": engine.version,
                 "decoding": decoding.as_dict()}
    cache = TranslationCache(config.cache_dir / "translations.sqlite", namespace)
    return NeuralTranslator(family, engine, cache, config.batch_size, progress)


def build_translator(config: TranslateConfig, corpus_kind: str, source_lang: str,
                     lexicon: Optional[Lexicon]) -> LexiconTranslator | NeuralTranslator:
    """The translator ``config.backend`` names, checked against the kind of source corpus."""
    if config.backend == "lexicon":
        if corpus_kind != "synthetic" or lexicon is None:
            raise HybridReproError(
                f"translate.backend 'lexicon' only translates the synthetic corpus, but data/source holds a "
                f"{corpus_kind!r} corpus; use backend nllb, m2m100 or marian"
            )
        return LexiconTranslator(lexicon, source_lang)
    if corpus_kind == "synthetic":
        raise HybridReproError(
            f"translate.backend {config.backend!r} translates real languages, but the synthetic corpus is written in "
            f"synthetic languages ({', '.join(known_languages())}) that only backend 'lexicon' knows; set "
            "translate.backend: lexicon"
        )
    return build_neural_translator(config)

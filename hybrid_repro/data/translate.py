"""Machine translation behind one interface: the synthetic lexicon and real NLLB-200 / M2M-100.

:class:`Translator` is what the ``translate`` stage calls. :class:`LexiconTranslator` renders the
synthetic source language into the other synthetic languages word by word (with each language's
word order, adjective position, script, punctuation and digits); :class:`HuggingFaceTranslator`
runs a pinned NLLB-200 or M2M-100 checkpoint for real languages. The lexicon backend is the only
one that knows the synthetic languages, and the HF backends know only real ones, so
:func:`build_translator` rejects a backend that does not fit the source corpus.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Optional, Protocol, Sequence

from tqdm import tqdm

from hybrid_repro.config import TranslateConfig
from hybrid_repro.data.languages import LanguageSpec, known_languages, language, render_name, render_number
from hybrid_repro.data.lexicon import Lexicon
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


# Language codes of the real backends, keyed by the ISO 639-1 codes used in params.yaml.
NLLB_CODES = {
    "ar": "arb_Arab", "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn", "hi": "hin_Deva",
    "ro": "ron_Latn", "ru": "rus_Cyrl", "th": "tha_Thai", "tr": "tur_Latn", "vi": "vie_Latn", "zh": "zho_Hans",
}
M2M100_CODES = {lang: f"__{lang}__" for lang in NLLB_CODES}
HF_BACKENDS = {
    "nllb": ("facebook/nllb-200-distilled-600M", NLLB_CODES),
    "m2m100": ("facebook/m2m100_418M", M2M100_CODES),
}


class HuggingFaceTranslator:
    """NLLB-200 or M2M-100 through ``transformers``, at a pinned revision, in batches.

    Both model families mark the source language on the tokenizer (``src_lang``) and force the
    target language token as the first generated token; only their codes differ. transformers is
    imported, and the model loaded, on the first call to :meth:`translate`.
    """

    def __init__(self, backend: str, revision: str, model_name: Optional[str] = None, batch_size: int = 16,
                 max_new_tokens: int = 256, device: Optional[str] = None):
        if backend not in HF_BACKENDS:
            raise HybridReproError(f"unknown translation backend {backend!r}; known: {', '.join(HF_BACKENDS)}")
        default_name, self.codes = HF_BACKENDS[backend]
        self.model_name = model_name or default_name
        self.revision = revision
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.device = device
        self._tokenizer: Any = None
        self._model: Any = None

    def known_languages(self) -> tuple[str, ...]:
        return tuple(self.codes)

    def _code(self, lang: str) -> str:
        if lang not in self.codes:
            raise HybridReproError(
                f"{self.model_name} has no code for language {lang!r}; known: {', '.join(self.codes)}"
            )
        return self.codes[lang]

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_name, revision=self.revision)
            self._model = AutoModelForSeq2SeqLM.from_pretrained(self.model_name, revision=self.revision)
        except OSError as exc:
            raise HybridReproError(
                f"cannot load {self.model_name}@{self.revision}: {exc} (check the name, the revision and network "
                "access, or pre-fill the Hugging Face cache)"
            ) from exc
        self._model.to(self.device).eval()

    def translate(self, texts: Sequence[str], source_lang: str, target_lang: str) -> list[str]:
        source_code, target_code = self._code(source_lang), self._code(target_lang)
        if source_lang == target_lang:
            return list(texts)
        self._load()
        import torch

        self._tokenizer.src_lang = source_code
        forced_bos = self._tokenizer.convert_tokens_to_ids(target_code)
        out: list[str] = []
        batches = range(0, len(texts), self.batch_size)
        for start in tqdm(batches, desc=f"translate {source_lang}->{target_lang}", unit="batch", leave=False):
            batch = list(texts[start : start + self.batch_size])
            inputs = self._tokenizer(batch, return_tensors="pt", padding=True, truncation=True).to(self.device)
            with torch.inference_mode():
                generated = self._model.generate(
                    **inputs, forced_bos_token_id=forced_bos, max_new_tokens=self.max_new_tokens
                )
            out += self._tokenizer.batch_decode(generated, skip_special_tokens=True)
        return out


def build_translator(config: TranslateConfig, corpus_kind: str, source_lang: str,
                     lexicon: Optional[Lexicon]) -> LexiconTranslator | HuggingFaceTranslator:
    """The translator ``config.backend`` names, checked against the kind of source corpus."""
    if config.backend == "lexicon":
        if corpus_kind != "synthetic" or lexicon is None:
            raise HybridReproError(
                f"translate.backend 'lexicon' only translates the synthetic corpus, but data/source holds a "
                f"{corpus_kind!r} corpus; use backend nllb or m2m100"
            )
        return LexiconTranslator(lexicon, source_lang)
    if corpus_kind == "synthetic":
        raise HybridReproError(
            f"translate.backend {config.backend!r} translates real languages, but the synthetic corpus is written in "
            f"synthetic languages ({', '.join(known_languages())}) that only backend 'lexicon' knows; set "
            "translate.backend: lexicon"
        )
    return HuggingFaceTranslator(config.backend, config.model_revision or "", config.model_name, config.batch_size)

"""The neural translation model families and how each one names a language.

Our params name real languages by ISO 639-1 code (``en``, ``zh``). Each model family spells them
its own way and steers the translation through a different door:

* **NLLB-200** uses FLORES-200 codes (``eng_Latn``, ``arb_Arab``, ``zho_Hans``): the tokenizer's
  ``src_lang`` takes the code, and the target code is a vocabulary token forced as the first
  generated token.
* **M2M-100** uses bare ISO codes for the tokenizer's ``src_lang`` (``"en"``; the tokenizer adds
  the underscores itself and raises KeyError on ``"__en__"``), and the target token ``__de__`` is
  forced as the first generated token.
* **Marian / OPUS-MT** multilingual models (e.g. ``Helsinki-NLP/opus-mt-en-mul``) take no source
  language; the target is a ``>>xxx<<`` token written at the start of the source text, in the
  Tatoeba-Challenge codes (ISO 639-3, with a script suffix where the model distinguishes scripts).

Whether a model really knows a target is checked against its tokenizer's vocabulary before any
text is translated (:func:`missing_target_tokens`), so a wrong or missing entry here stops the
stage instead of producing text in the wrong language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from hybrid_repro.errors import HybridReproError

FLORES200_CODES = {
    "ar": "arb_Arab", "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn", "hi": "hin_Deva",
    "ro": "ron_Latn", "ru": "rus_Cyrl", "th": "tha_Thai", "tr": "tur_Latn", "vi": "vie_Latn", "zh": "zho_Hans",
}
M2M100_CODES = {lang: lang for lang in FLORES200_CODES}
OPUS_MT_CODES = {
    "ar": "ara", "de": "deu", "el": "ell", "en": "eng", "es": "spa", "hi": "hin",
    "ro": "ron", "ru": "rus", "th": "tha", "tr": "tur", "vi": "vie", "zh": "cmn_Hans",
}


@dataclass(frozen=True)
class ModelFamily:
    """How one family of seq2seq translation models is told the source and target language.

    ``codes`` maps our language codes to the family's; ``target_token_format`` renders a family
    code as the vocabulary token that selects the target; ``forced_bos`` says whether that token
    is forced as the first generated token (NLLB, M2M-100) or written before the source text
    (Marian); ``sets_src_lang`` whether the tokenizer's ``src_lang`` carries the source code.
    """

    name: str
    default_model: Optional[str]
    codes: Mapping[str, str]
    target_token_format: str
    forced_bos: bool
    sets_src_lang: bool

    def code(self, lang: str) -> str:
        if lang not in self.codes:
            raise HybridReproError(
                f"translate backend {self.name!r} has no code for language {lang!r}; known: {', '.join(self.codes)}"
            )
        return self.codes[lang]

    def target_token(self, lang: str) -> str:
        """The vocabulary token that selects ``lang`` as the output language."""
        return self.target_token_format.format(self.code(lang))

    def source_text(self, text: str, target_lang: str) -> str:
        """What is tokenized for ``text``: the text itself, or Marian's target token and the text."""
        return text if self.forced_bos else f"{self.target_token(target_lang)} {text}"


FAMILIES = {
    "nllb": ModelFamily("nllb", "facebook/nllb-200-distilled-600M", FLORES200_CODES, "{}", True, True),
    "m2m100": ModelFamily("m2m100", "facebook/m2m100_418M", M2M100_CODES, "__{}__", True, True),
    # OPUS-MT checkpoints are per language pair or per group; no single default fits every target set.
    "marian": ModelFamily("marian", None, OPUS_MT_CODES, ">>{}<<", False, False),
}


def model_family(backend: str) -> ModelFamily:
    if backend not in FAMILIES:
        raise HybridReproError(f"unknown translation backend {backend!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[backend]


def translation_model_name(backend: str, model_name: str | None) -> str | None:
    """The checkpoint a neural backend translates with: ``model_name`` when set, else the family's default
    (None for a backend without one, or for the lexicon and parallel backends, which use no model)."""
    if model_name or backend not in FAMILIES:
        return model_name
    return FAMILIES[backend].default_model


def missing_target_tokens(family: ModelFamily, tokenizer: Any, targets: list[str]) -> list[str]:
    """The target tokens of ``targets`` that ``tokenizer`` does not hold as a single known token."""
    missing = []
    for lang in targets:
        token = family.target_token(lang)
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id:
            missing.append(token)
    return missing

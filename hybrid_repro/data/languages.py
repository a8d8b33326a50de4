"""The inventory of synthetic languages and how each one is written.

Every synthetic language has a code that starts with ``q`` followed by the ISO code of the real
language it loosely stands in for (``qen`` plays English's role, ``qzh`` Chinese's, ...). The codes
are invented: they name no real language and contain no ``_`` (LAReQA candidate ids are
``{lang}_{p}_{s}``).

A language is described by its :class:`LanguageSpec`: a romanised sound inventory from which its
words are built (see :mod:`hybrid_repro.data.lexicon`), the script those romanised words are
rendered in, its word order, where adjectives go, whether words are separated by spaces, its
punctuation and digits, and optionally a parent language it shares part of its vocabulary with.

Rendering (:func:`render`) is a deterministic function of the romanised string, so a name coined in
the source language is written the same way every time it appears in a target language: names are
copied into Latin-script languages and transliterated into the others, as in real text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal, Optional

from hybrid_repro.errors import HybridReproError

Script = Literal["latin", "cyrillic", "greek", "arabic", "cjk", "thai"]
WordOrder = Literal["SVO", "SOV", "VSO"]


@dataclass(frozen=True)
class LanguageSpec:
    """One synthetic language.

    ``onsets``/``vowels``/``codas`` are romanised letters (one letter per sound) from which
    syllables are drawn; ``parent`` names the language this one inherited ``cognate_share`` of its
    vocabulary from, after applying ``sound_changes`` (ordered ``(old, new)`` substitutions).
    """

    code: str
    description: str
    script: Script
    word_order: WordOrder
    adjective_after_noun: bool
    spaces: bool
    onsets: str
    vowels: str
    codas: str
    syllables: tuple[int, int]
    full_stop: str = "."
    question_mark: str = "?"
    digits: str = "0123456789"
    parent: Optional[str] = None
    cognate_share: float = 0.0
    sound_changes: tuple[tuple[str, str], ...] = ()

    @property
    def word_joiner(self) -> str:
        return " " if self.spaces else ""

    @property
    def sentence_joiner(self) -> str:
        """What separates sentences in running text (Thai-like text uses a space and no full stop)."""
        return "" if self.script == "cjk" else " "


INVENTORY: tuple[LanguageSpec, ...] = (
    LanguageSpec("qen", "source language; Latin script, SVO", "latin", "SVO", False, True,
                 onsets="bdfgklmnprstv", vowels="aeiou", codas="nrsl", syllables=(2, 3)),
    LanguageSpec("qde", "Latin script, SOV, inherits half its vocabulary from qen", "latin", "SOV", False, True,
                 onsets="bdghklmnrstvz", vowels="aeiouü", codas="nrst", syllables=(2, 3),
                 parent="qen", cognate_share=0.5, sound_changes=(("p", "pf"),)),
    LanguageSpec("qru", "Cyrillic-like script, SVO", "cyrillic", "SVO", False, True,
                 onsets="bvgdzklmnprsth", vowels="aeiouy", codas="nlrst", syllables=(2, 3)),
    LanguageSpec("qar", "Arabic-like script, VSO, adjectives after nouns, Arabic-Indic digits", "arabic", "VSO",
                 True, True, onsets="btdrzsfqklmnh", vowels="aiu", codas="bdrlmn", syllables=(2, 3),
                 question_mark="؟", digits="٠١٢٣٤٥٦٧٨٩"),
    LanguageSpec("qzh", "CJK-like script (one character per syllable), no spaces, SVO", "cjk", "SVO", False, False,
                 onsets="bpmfdtnlgkhjqxzcsr", vowels="aeiou", codas="", syllables=(1, 2),
                 full_stop="。", question_mark="？"),
    LanguageSpec("qth", "Thai-like script, no spaces between words, SOV, adjectives after nouns", "thai", "SOV",
                 True, False, onsets="bpmfdtnlgkhsryw", vowels="aiueo", codas="nmk", syllables=(2, 3),
                 full_stop=""),
    LanguageSpec("qel", "Greek-like script, VSO (evaluation only in the demo)", "greek", "VSO", False, True,
                 onsets="ptkbdgmnlrszfh", vowels="aeiou", codas="sn", syllables=(2, 3), question_mark=";"),
    LanguageSpec("qvi", "Latin script with diacritics, SVO, adjectives after nouns, inherits a third of its "
                 "vocabulary from qde (evaluation only in the demo)", "latin", "SVO", True, True,
                 onsets="bcdghklmnptvx", vowels="aăâeêioôơuư", codas="nctmp", syllables=(1, 3),
                 parent="qde", cognate_share=0.35, sound_changes=(("o", "ơ"),)),
)

SOURCE_LANGUAGE = "qen"
_BY_CODE = {spec.code: spec for spec in INVENTORY}


def known_languages() -> tuple[str, ...]:
    return tuple(_BY_CODE)


def language(code: str) -> LanguageSpec:
    """The spec of ``code``, or an error that lists the known synthetic languages."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise HybridReproError(
            f"unknown synthetic language {code!r}; the lexicon backend knows: {', '.join(known_languages())} "
            "(fix translate.train_languages / eval_languages / low_resource in params.yaml)"
        ) from None


_CYRILLIC = {**dict(zip("abcdefghijklmnopqrstuvwyz", "абцдефгхийклмнопкрстуввыз")), "x": "кс"}
_GREEK = dict(zip("abcdefghijklmnopqrstuvwxyz", "αβκδεφγηιικλμνοπκρστυβωξυζ"))
_ARABIC = {**dict(zip("abcdefghijklmnopqrstuvwyz", "ابكديفغهيجكلمنوبقرستوفويز")), "x": "كس"}
_THAI_CONSONANTS = {**dict(zip("bcdfghjklmnpqrstvwyz", "บคดฟกหจขลมนพกรสทววยซ")), "x": "กซ"}
_THAI_VOWELS = dict(zip("aeiou", "าีิอู"))
_THAI_VOWEL_CARRIER = "อ"
_CJK_FIRST, _CJK_COUNT = 0x4E00, 0x9FA5 - 0x4E00
_SYLLABLE = re.compile(r"[^aeiou]*[aeiou]+|[^aeiou]+")


def _letters(table: dict[str, str], word: str) -> str:
    return "".join(table.get(char, char) for char in word)


def _greek(word: str) -> str:
    text = _letters(_GREEK, word)
    return text[:-1] + "ς" if text.endswith("σ") else text


def _thai(word: str) -> str:
    # Thai vowel signs attach to a consonant; a vowel with none before it gets the silent carrier,
    # as in real Thai orthography.
    out: list[str] = []
    previous_was_consonant = False
    for char in word:
        if char in _THAI_VOWELS:
            if not previous_was_consonant:
                out.append(_THAI_VOWEL_CARRIER)
            out.append(_THAI_VOWELS[char])
            previous_was_consonant = False
        else:
            out.append(_THAI_CONSONANTS.get(char, char))
            previous_was_consonant = True
    return "".join(out)


def _cjk(word: str) -> str:
    # One character per syllable, chosen by a stable hash: distinct syllables may share a character,
    # much as homophones do in real CJK text.
    return "".join(
        chr(_CJK_FIRST + int.from_bytes(hashlib.sha256(syllable.encode()).digest()[:4], "big") % _CJK_COUNT)
        for syllable in _SYLLABLE.findall(word)
    )


_RENDERERS = {
    "latin": lambda word: word,
    "cyrillic": lambda word: _letters(_CYRILLIC, word),
    "greek": _greek,
    "arabic": lambda word: _letters(_ARABIC, word),
    "cjk": _cjk,
    "thai": _thai,
}


def render(romanised: str, spec: LanguageSpec) -> str:
    """Write a lower-case romanised word in ``spec``'s script."""
    return _RENDERERS[spec.script](romanised)


def render_name(name: str, spec: LanguageSpec) -> str:
    """A proper name from the source language: copied in Latin script, transliterated otherwise."""
    if spec.script == "latin":
        return name
    return render(name.lower(), spec)


def render_number(digits: str, spec: LanguageSpec) -> str:
    """An ASCII digit string written with ``spec``'s digits."""
    return digits.translate(str.maketrans("0123456789", spec.digits))

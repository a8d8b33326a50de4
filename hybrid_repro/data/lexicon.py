"""Concepts and their word forms in every synthetic language.

A *concept* is a meaning with a part of speech (noun, verb, adjective, determiner, preposition,
question word) and a vocabulary pool: general words, words of a domain (a group of related topics)
or words of one topic. Every language names every concept with one to three *variants*
(synonyms); function words have exactly one. Variant ``v`` of a concept in the source language is
rendered in a target language as that language's variant ``v mod n``, so a paraphrase in the
source (a different synonym) usually stays a paraphrase after translation, and sometimes collapses
into the same word, as with real MT.

Word forms are coined from each language's sound inventory and written in its script
(:mod:`hybrid_repro.data.languages`); a language with a parent inherits ``cognate_share`` of its
concepts from the parent, after the parent's words pass through its sound changes. Forms are
unique within a language, so translation from the source language is unambiguous.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from hybrid_repro.data.languages import INVENTORY, LanguageSpec, render
from hybrid_repro.errors import HybridReproError

PartOfSpeech = Literal["noun", "verb", "adj", "det", "prep", "qword"]
CONTENT_POS = ("noun", "verb", "adj")
FUNCTION_WORDS: dict[str, tuple[str, ...]] = {
    "det": ("the", "a"),
    "prep": ("in", "near", "with", "for", "from"),
    "qword": ("who", "what", "when", "where", "how-many", "how", "why"),
}
TOPICS_PER_DOMAIN = 4
POOL_SIZES: dict[str, dict[str, int]] = {
    "general": {"noun": 24, "verb": 8, "adj": 8},
    "domain": {"noun": 12, "verb": 4, "adj": 4},
    "topic": {"noun": 16, "verb": 6, "adj": 5},
}
_MAX_COINING_ATTEMPTS = 1000


@dataclass(frozen=True)
class Concept:
    """A meaning: ``key`` is unique (e.g. ``topic3.noun.7``, ``fn.prep.near``)."""

    key: str
    pos: PartOfSpeech
    pool: str


def n_domains(n_topics: int) -> int:
    return max(1, n_topics // TOPICS_PER_DOMAIN)


def domain_of(topic: int, n_topics: int) -> int:
    return min(topic // TOPICS_PER_DOMAIN, n_domains(n_topics) - 1)


def build_concepts(n_topics: int) -> tuple[Concept, ...]:
    """Function words, then general, domain and topic vocabulary, in a fixed order."""
    concepts = [Concept(f"fn.{pos}.{name}", pos, "function") for pos, names in FUNCTION_WORDS.items() for name in names]
    pools = [("general", "general")]
    pools += [(f"domain{d}", "domain") for d in range(n_domains(n_topics))]
    pools += [(f"topic{t}", "topic") for t in range(n_topics)]
    for pool, kind in pools:
        for pos, count in POOL_SIZES[kind].items():
            concepts += [Concept(f"{pool}.{pos}.{i}", pos, pool) for i in range(count)]  # type: ignore[arg-type]
    return tuple(concepts)


class Lexicon:
    """Word forms: ``forms[lang][i]`` are the variants naming concept ``i`` in ``lang``."""

    def __init__(self, concepts: tuple[Concept, ...], forms: dict[str, tuple[tuple[str, ...], ...]]):
        for lang, per_concept in forms.items():
            if len(per_concept) != len(concepts) or not all(per_concept):
                raise HybridReproError(f"lexicon for {lang!r} does not name every concept exactly once")
        self.concepts = concepts
        self.forms = forms

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.forms)

    def form(self, lang: str, concept: int, variant: int) -> str:
        variants = self.forms[lang][concept]
        return variants[variant % len(variants)]

    @cached_property
    def _parsers(self) -> dict[str, dict[str, tuple[int, int]]]:
        return {
            lang: {form: (c, v) for c, variants in enumerate(per_concept) for v, form in enumerate(variants)}
            for lang, per_concept in self.forms.items()
        }

    def parse(self, lang: str, word: str) -> tuple[int, int] | None:
        """``(concept, variant)`` of a word of ``lang``, or None for a word the lexicon lacks."""
        return self._parsers[lang].get(word)

    def vocabulary(self, lang: str) -> set[str]:
        return {form for variants in self.forms[lang] for form in variants}

    def to_json(self) -> dict[str, Any]:
        return {
            "concepts": [[c.key, c.pos, c.pool] for c in self.concepts],
            "forms": {lang: [list(v) for v in per_concept] for lang, per_concept in self.forms.items()},
        }

    @classmethod
    def from_json(cls, raw: Any) -> "Lexicon":
        try:
            concepts = tuple(Concept(key, pos, pool) for key, pos, pool in raw["concepts"])
            forms = {lang: tuple(tuple(v) for v in per_concept) for lang, per_concept in raw["forms"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise HybridReproError(f"lexicon file has an unexpected layout ({exc!r}); rerun `hybrid-repro data`") from exc
        return cls(concepts, forms)


def coin_word(spec: LanguageSpec, rng: random.Random, syllables: tuple[int, int]) -> str:
    """A new romanised word: CV syllables, with an optional final consonant on the last one."""
    word = "".join(rng.choice(spec.onsets) + rng.choice(spec.vowels) for _ in range(rng.randint(*syllables)))
    if spec.codas and rng.random() < 0.35:
        word += rng.choice(spec.codas)
    return word


def _sound_change(word: str, spec: LanguageSpec) -> str:
    for old, new in spec.sound_changes:
        word = word.replace(old, new)
    return word


def _variant_count(concept: Concept, rng: random.Random) -> int:
    if concept.pos not in CONTENT_POS:
        return 1
    return 1 + (rng.random() < 0.6) + (rng.random() < 0.2)


def build_lexicon(n_topics: int, seed: int) -> Lexicon:
    """Coin every concept's variants in every language of the inventory, deterministically."""
    concepts = build_concepts(n_topics)
    romanised: dict[str, list[tuple[str, ...]]] = {}
    forms: dict[str, tuple[tuple[str, ...], ...]] = {}
    for spec in INVENTORY:  # parents come before their children
        rng = random.Random(f"{seed}:lexicon:{spec.code}")
        used: set[str] = set()
        roman_rows, form_rows = [], []
        for i, concept in enumerate(concepts):
            count = _variant_count(concept, rng)
            inherit = spec.parent is not None and rng.random() < spec.cognate_share
            syllables = (1, 1) if concept.pool == "function" else spec.syllables
            roman_row, form_row = [], []
            for v in range(count):
                candidate = None
                if inherit:
                    parent_row = romanised[spec.parent][i]  # type: ignore[index]
                    candidate = _sound_change(parent_row[v % len(parent_row)], spec)
                for attempt in range(_MAX_COINING_ATTEMPTS):
                    if candidate is not None and render(candidate, spec) not in used:
                        break
                    # Crowded short words: allow one more syllable every 50 failed attempts.
                    candidate = coin_word(spec, rng, (syllables[0], syllables[1] + attempt // 50))
                else:
                    raise HybridReproError(f"cannot coin enough distinct words for {spec.code}; lower n_topics")
                roman_row.append(candidate)
                form_row.append(render(candidate, spec))
                used.add(form_row[-1])
            roman_rows.append(tuple(roman_row))
            form_rows.append(tuple(form_row))
        romanised[spec.code] = roman_rows
        forms[spec.code] = tuple(form_rows)
    return Lexicon(concepts, forms)

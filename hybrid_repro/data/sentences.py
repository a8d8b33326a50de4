"""Split a passage into sentences for translation, and join the translated sentences back.

Neural MT models translate sentences: NLLB-200 was trained on sentences and accepts at most 512
tokens, so a whole paragraph is either cut at that limit or translated worse. The splitter is
``sentencex`` (Wikimedia's rule-based segmenter: ~300 languages, abbreviation lists, the sentence
marks of CJK, Thai, Devanagari, Arabic and Greek scripts; pure code, no model to download). It
splits the *source* text, in the source language's rules.

Joining uses the *target* language's convention: sentences are separated by one space, or by
nothing in languages written without spaces (Chinese, Japanese); a line break in the source
between two sentences is kept as a line break.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sentencex import segment

# Real languages written without spaces between sentences.
UNSPACED_LANGUAGES = frozenset({"zh", "ja"})


def sentence_separator(lang: str) -> str:
    """What separates two sentences of a paragraph in the real language ``lang``."""
    return "" if lang in UNSPACED_LANGUAGES else " "


@dataclass(frozen=True)
class SplitText:
    """A text as its sentences, and whether a line break (not a space) follows each but the last."""

    sentences: tuple[str, ...]
    line_breaks: tuple[bool, ...]

    def join(self, translated: Sequence[str], target_lang: str) -> str:
        """The translated sentences, in order, joined in ``target_lang``'s way."""
        if len(translated) != len(self.sentences):
            raise ValueError(f"{len(translated)} translations for {len(self.sentences)} sentences")
        if not translated:
            return ""
        space = sentence_separator(target_lang)
        parts = [translated[0]]
        for line_break, sentence in zip(self.line_breaks, translated[1:]):
            parts += ["\n" if line_break else space, sentence]
        return "".join(parts)


def split_sentences(text: str, lang: str) -> SplitText:
    """``text`` cut into its sentences (stripped, none empty) with the kind of break after each."""
    sentences: list[str] = []
    breaks: list[bool] = []
    for piece in segment(lang, text):
        sentence = piece.strip()
        if not sentence:
            # Whitespace between sentences belongs to the break before it.
            if breaks and "\n" in piece:
                breaks[-1] = True
            continue
        sentences.append(sentence)
        breaks.append("\n" in piece[len(piece.rstrip()):])
    return SplitText(tuple(sentences), tuple(breaks[:-1]))

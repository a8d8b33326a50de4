"""A few XQuAD-like articles in every training language, served as a pinned mirror (xquad/ and xquad-r/)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hybrid_repro.evaluation.download import PINNED, PinnedDataset

LANGUAGES = ("en", "ar", "de", "es", "hi", "ru", "th", "tr", "zh")
ARTICLES, PARAGRAPHS, SENTENCES = 4, 2, 3
WORDS = ("river", "stone", "tower", "harbour", "garden", "engine", "market", "bridge", "forest", "valley")


def _sentence(lang: str, a: int, p: int, s: int) -> str:
    words = [WORDS[(a * 7 + p * 3 + s + k) % len(WORDS)] for k in range(4)]
    return f"{lang} {' '.join(words)} a{a}p{p}s{s}."


def _language_files(lang: str) -> tuple[dict, dict]:
    """(XQuAD file, XQuAD-R file) of ``lang``: the same paragraphs, the second with sentence spans."""
    plain, split = [], []
    for a in range(ARTICLES):
        paragraphs, split_paragraphs = [], []
        for p in range(PARAGRAPHS):
            sentences = [_sentence(lang, a, p, s) for s in range(SENTENCES)]
            context = " ".join(sentences)
            starts = [context.index(sentence) for sentence in sentences]
            # Two questions per paragraph, on its first two sentences: the third is a hard-negative candidate.
            qas = [{"id": f"a{a}p{p}q{q}", "question": f"{lang} which {sentences[q].split()[1]} a{a}p{p}?",
                    "answers": [{"text": sentences[q].split()[1], "answer_start": starts[q] + len(lang) + 1}]}
                   for q in range(2)]
            paragraphs.append({"context": context, "qas": qas})
            split_paragraphs.append({"context": context, "qas": qas, "sentences": sentences,
                                     "sentence_breaks": [[start, start + len(s)] for start, s in zip(starts, sentences)]})
        plain.append({"title": f"Article_{a}", "paragraphs": paragraphs})
        split.append({"title": f"Article_{a}", "paragraphs": split_paragraphs})
    return {"version": "1.1", "data": plain}, {"version": "1.1", "data": split}


def write_xquad_mirror(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write the fixture under ``root/xquad`` and ``root/xquad-r`` and pin exactly those files; returns ``root``."""
    digests: dict[str, dict[str, str]] = {"xquad": {}, "xquad-r": {}}
    for lang in LANGUAGES:
        for folder, name, document in zip(("xquad", "xquad-r"), (f"xquad.{lang}.json", f"{lang}.json"),
                                          _language_files(lang)):
            path = root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
            digests[folder][name] = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(PINNED, "xquad", PinnedDataset("fixture/xquad", "0" * 40, "", digests["xquad"],
                                                       language_file="xquad.{lang}.json"))
    monkeypatch.setitem(PINNED, "xquad-r", PinnedDataset("fixture/lareqa", "0" * 40, "xquad-r", digests["xquad-r"]))
    monkeypatch.setenv("HYBRID_REPRO_DATA_MIRROR", str(root))
    return root

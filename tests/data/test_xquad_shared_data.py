"""On the pinned files: XQuAD-R splits apply to XQuAD, and XQuAD training data shares nothing with MLQA-R."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

from hybrid_repro.data.xquad import Articles, read_language
from hybrid_repro.evaluation.download import PINNED

pytestmark = pytest.mark.shared_data

REPO_ROOT = Path(__file__).resolve().parents[2]
XQUAD_LANGUAGES = [lang for lang in PINNED["xquad"].languages if lang in PINNED["xquad-r"].languages]
MLQA_LANGUAGES = PINNED["mlqa-r"].languages
# The only sentences found in both (measured on the pinned files): Wikipedia boilerplate, not content.
SHARED_FRAGMENTS = {
    "hi": {"[उद्धरण वांछित]",  # "[citation needed]", the Wikipedia template
           "ए."},  # the initial "A." that LAReQA's splitter cut off as a sentence of its own
}


def shared_dir(name: str) -> Path:
    directory = Path(os.environ.get("HYBRID_REPRO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")) / name
    if not directory.is_dir():
        pytest.skip(f"pinned {name} files not found at {directory} (set HYBRID_REPRO_SHARED_DATA)")
    return directory


@functools.lru_cache(maxsize=None)
def xquad(lang: str) -> Articles:
    return read_language(shared_dir("xquad") / f"xquad.{lang}.json", shared_dir("xquad-r") / f"{lang}.json")


@functools.lru_cache(maxsize=None)
def mlqa_r(lang: str) -> dict:
    return json.loads((shared_dir("mlqa-r") / f"{lang}.json").read_text(encoding="utf-8"))


def xquad_texts(lang: str) -> tuple[set[str], set[str], set[str]]:
    """(titles, paragraph texts, sentences) of XQuAD in ``lang``, whitespace-stripped."""
    articles = xquad(lang)
    paragraphs = {" ".join(p.sentences) for a in articles for p in a.paragraphs}
    sentences = {s for a in articles for p in a.paragraphs for s in p.sentences}
    return {a.title.strip() for a in articles}, paragraphs, sentences


def mlqa_texts(lang: str) -> tuple[set[str], set[str], set[str]]:
    articles = mlqa_r(lang)["data"]
    paragraphs = [p for a in articles for p in a["paragraphs"]]
    sentences = {p["context"][s:e].strip().lstrip("\ufeff").strip() for p in paragraphs for s, e in p["sentence_breaks"]}
    return ({a["title"].strip() for a in articles},
            {" ".join(p["context"][s:e].strip() for s, e in p["sentence_breaks"]) for p in paragraphs} |
            {p["context"].strip() for p in paragraphs},
            sentences)


@pytest.mark.parametrize("lang", XQUAD_LANGUAGES)
def test_xquad_r_splits_fit_every_xquad_language(lang: str):
    """read_language checks contexts and question ids paragraph by paragraph; every answer lies in a sentence."""
    articles = xquad(lang)
    assert len(articles) == 48
    assert sum(len(p.questions) for a in articles for p in a.paragraphs) == 1190


@pytest.mark.parametrize("lang", MLQA_LANGUAGES)
def test_xquad_and_mlqa_r_share_no_title_paragraph_or_sentence(lang: str):
    """Zero-shot means disjoint: in every MLQA-R language, against the XQuAD text of every language."""
    titles, paragraphs, sentences = mlqa_texts(lang)
    for xquad_lang in XQUAD_LANGUAGES:
        x_titles, x_paragraphs, x_sentences = xquad_texts(xquad_lang)
        assert not titles & x_titles, (lang, xquad_lang, sorted(titles & x_titles)[:5])
        assert not paragraphs & x_paragraphs, (lang, xquad_lang)
        shared = sentences & x_sentences
        assert shared <= SHARED_FRAGMENTS.get(lang, set()), (lang, xquad_lang, sorted(shared)[:5])

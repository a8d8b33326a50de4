"""XQuAD as parallel training data: sentence splits from XQuAD-R, passage identities, hard negatives, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybrid_repro.data.xquad import Article, Paragraph, build_parallel_corpus, positive_identities, read_language
from hybrid_repro.errors import HybridReproError


def paragraph(sentences: list[str], answers: dict[str, int]) -> Paragraph:
    return Paragraph(tuple(sentences), {qid: f"question {qid} about {sentences[s]}" for qid, s in answers.items()},
                     dict(answers))


def corpus_languages() -> dict[str, list[Article]]:
    """Three articles in two languages. In 'xx' the answers of q1 and q2 share one sentence; article a0's first
    paragraph holds answers only, so its negatives must come from elsewhere in the article."""
    en = [
        Article("a0", (paragraph(["Red stone.", "Blue river."], {"q1": 0, "q2": 1}),
                       paragraph(["Green hill grows.", "Old red tower.", "Quiet lake."], {"q3": 1}))),
        Article("a1", (paragraph(["Cats sleep.", "Dogs bark loudly.", "Birds sing."], {"q4": 0, "q5": 1}),)),
        Article("a2", (paragraph(["Snow falls.", "Wind blows.", "Sun shines."], {"q6": 2}),)),
    ]
    xx = [
        Article("a0", (paragraph(["Rouge pierre et fleuve bleu."], {"q1": 0, "q2": 0}),
                       paragraph(["Colline verte.", "Vieille tour rouge.", "Lac calme."], {"q3": 1}))),
        Article("a1", (paragraph(["Chats dorment.", "Chiens aboient.", "Oiseaux chantent."], {"q4": 0, "q5": 1}),)),
        Article("a2", (paragraph(["Neige tombe.", "Vent souffle.", "Soleil brille."], {"q6": 2}),)),
    ]
    return {"en": en, "xx": xx}


def build(negatives: str = "paragraph", val_articles: int = 1, seed: int = 0):
    return build_parallel_corpus(corpus_languages(), source_language="en", val_articles=val_articles,
                                 negatives=negatives, seed=seed)


def test_answers_sharing_a_sentence_in_any_language_share_one_identity_everywhere():
    identities = positive_identities(corpus_languages())
    assert identities["q1"] == identities["q2"] == "xquad:q1"
    assert len({identities[q] for q in ("q3", "q4", "q5", "q6")}) == 4
    assert identities["q3"] not in (identities["q1"], identities["q4"])


def test_training_examples_are_parallel_and_validation_is_held_out_english():
    corpus = build()
    held_out = set(corpus.val_articles)
    assert len(held_out) == 1
    val_questions = {r["question_id"] for r in corpus.val}
    train_questions = {r["question_id"] for r in corpus.train}
    assert val_questions and train_questions and not val_questions & train_questions
    assert val_questions | train_questions == {f"q{i}" for i in range(1, 7)}
    assert all(set(r["texts"]) == {"en", "xx"} for r in corpus.train)
    assert all(set(r["texts"]) == {"en"} for r in corpus.val)
    # No text of a held-out article reaches training, in any language or role.
    held_sentences = {s for lang in corpus_languages().values() for a in lang if a.title in held_out
                      for p in a.paragraphs for s in p.sentences}
    train_texts = {t for r in corpus.train for fields in r["texts"].values() for t in fields.values()}
    assert not held_sentences & train_texts


@pytest.mark.parametrize("negatives", ["paragraph", "bm25"])
def test_negatives_are_never_an_answer_and_positives_hold_the_answer(negatives):
    languages = corpus_languages()
    corpus = build(negatives, seed=3)
    answers = {lang: {p.sentences[s] for a in articles for p in a.paragraphs for s in p.answer_sentences}
               for lang, articles in languages.items()}
    for record in corpus.train + corpus.val:
        positive_ids = {r["positive_id"] for r in corpus.train + corpus.val}
        assert record["negative_id"] not in positive_ids
        for lang, fields in record["texts"].items():
            assert fields["negative"] not in answers[lang]
            assert fields["positive"] in answers[lang]


def test_paragraph_negatives_prefer_the_paragraph_then_the_article():
    by_question = {r["question_id"]: r["texts"]["en"] for r in build("paragraph").train + build("paragraph").val}
    assert by_question["q4"]["negative"] == "Birds sing."  # the only non-answer sentence of its paragraph
    # q1's paragraph holds answers only: the negative comes from the rest of its article (no word in common
    # with the question, so the first non-answer sentence there).
    assert by_question["q1"]["negative"] == "Green hill grows."


def test_holding_out_every_article_or_none_is_refused():
    with pytest.raises(HybridReproError, match="val_articles"):
        build(val_articles=3)


def write_language(root: Path, lang: str, context: str, breaks: list[list[int]], split_context: str | None = None):
    qas = [{"id": "q1", "question": "Which?", "answers": [{"text": "B", "answer_start": context.index("B")}]}]
    squad = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}
    with_splits = {"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": split_context or context, "qas": qas, "sentence_breaks": breaks,
         "sentences": [context[s:e] for s, e in breaks]}]}]}
    (root / f"xquad.{lang}.json").write_text(json.dumps(squad), encoding="utf-8")
    (root / f"{lang}.json").write_text(json.dumps(with_splits), encoding="utf-8")


def test_read_language_takes_xquad_r_spans_and_strips_their_edges(tmp_path: Path):
    context = "\ufeffA one. B two.  C three."
    write_language(tmp_path, "en", context, [[0, 7], [7, 14], [14, 24]])
    [article] = read_language(tmp_path / "xquad.en.json", tmp_path / "en.json")
    [only] = article.paragraphs
    assert only.sentences == ("A one.", "B two.", "C three.")
    assert only.answer_sentence == {"q1": 1}


def test_read_language_refuses_splits_of_another_text(tmp_path: Path):
    write_language(tmp_path, "en", "A one. B two.", [[0, 6], [7, 13]], split_context="A one. B 2.")
    with pytest.raises(HybridReproError, match="XQuAD-R's paragraph differs"):
        read_language(tmp_path / "xquad.en.json", tmp_path / "en.json")

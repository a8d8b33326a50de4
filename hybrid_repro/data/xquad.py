"""XQuAD as parallel training data: (question, answer sentence, hard negative) in every language.

XQuAD (google-deepmind/xquad) holds the same 240 paragraphs and 1,190 questions, professionally
translated, in every language; a question ``id`` names the same question everywhere. Each
question of a training article becomes one example with a triplet in every language read.

**Sentences.** XQuAD has no sentence splits, and no punctuation rule splits Thai (it separates
sentences, clauses and phrases alike with spaces: LAReQA's Thai splits use 612 of the 7,632 spaces
in XQuAD's Thai paragraphs). The rule used is LAReQA's own: a paragraph's sentences are the
``sentence_breaks`` spans of the same paragraph in XQuAD-R, which LAReQA built from XQuAD with
byte-identical contexts (checked on read: context, question ids and texts must agree). Training
sentences are therefore cut exactly as LAReQA cuts evaluation candidates, in every script. XQuAD-R
is XQuAD's evaluation set, not MLQA-R's, so using its splits for training data leaks nothing into
the MLQA-R evaluation; XQuAD-R itself must not be used to evaluate a model trained on this corpus.
Romanian has no XQuAD-R file, so it cannot be read (it stays unseen, like el and vi).

**Answers.** A question's answer sentence is the one whose span holds its first answer start
(``start <= answer_start < end``, as :mod:`hybrid_repro.evaluation.lareqa`).

**Passage identities.** The answer sentences of one question in all languages are one passage:
they share ``positive_id``. Splits differ between languages (two English sentences may be one Thai
sentence), so identities are the connected groups of the graph linking each question's answer
sentence across languages; two questions whose answers share a sentence in any language share one
identity everywhere. The loss masks a column whose identity is the query's positive's.

**Hard negatives** (``negatives``), chosen per language, never a sentence that holds some
question's answer in that language: ``paragraph`` takes the sentence of the question's own
paragraph that BM25 scores highest against the question, falling back to the question's article,
then to the whole split, when the paragraph (or article) has only answer sentences; ``bm25``
searches the whole split directly. The split is the training or validation articles, so validation
text never enters training. Non-answer sentences cannot be aligned across languages (the splits
differ: the nine training languages have the same sentence count and answer positions in 7 of the
240 paragraphs), so an example's negatives are different sentences in different languages; being
nobody's answer, they can never be a false negative, and ``negative_id`` (one per example, never
equal to a ``positive_id``) only has to say so.

**Validation.** ``val_articles`` whole articles, drawn with the seed, are held out and kept in the
source language only, as the paper validates on English (SQuADShifts).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import bm25s
import numpy as np

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.baselines import BM25_B, BM25_K1, bm25_tokenize
from hybrid_repro.io import read_json

DATASET = "xquad"
NegativeSource = Literal["paragraph", "bm25"]


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of one language: its sentences and, per question id, the question and its answer sentence."""

    sentences: tuple[str, ...]
    questions: dict[str, str]
    answer_sentence: dict[str, int]

    @property
    def answer_sentences(self) -> set[int]:
        return set(self.answer_sentence.values())


@dataclass(frozen=True)
class Article:
    title: str
    paragraphs: tuple[Paragraph, ...]


Articles = list[Article]
"""A language file: its articles in file order."""


def read_language(xquad_file: Path, xquad_r_file: Path) -> Articles:
    """One language of XQuAD, with the sentence spans of the same paragraphs in XQuAD-R.

    Raises HybridReproError when the two files do not hold the same articles, contexts and
    questions, or when an answer start lies in no sentence.
    """
    source, splits = read_json(xquad_file), read_json(xquad_r_file)
    if len(source["data"]) != len(splits["data"]):
        raise HybridReproError(f"{xquad_file} and {xquad_r_file} hold different numbers of articles")
    articles: Articles = []
    for article, split_article in zip(source["data"], splits["data"]):
        if len(article["paragraphs"]) != len(split_article["paragraphs"]):
            raise HybridReproError(f"article {article['title']!r} has different paragraphs in {xquad_file} and "
                                   f"{xquad_r_file}")
        articles.append(Article(article["title"], tuple(
            _paragraph(p, s, f"{xquad_file}, article {article['title']!r}")
            for p, s in zip(article["paragraphs"], split_article["paragraphs"]))))
    return articles


def _paragraph(paragraph: dict, split: dict, where: str) -> Paragraph:
    context = paragraph["context"]
    if split["context"] != context or [qa["id"] for qa in split["qas"]] != [qa["id"] for qa in paragraph["qas"]]:
        raise HybridReproError(f"{where}: XQuAD-R's paragraph differs from XQuAD's (context or questions), so its "
                               "sentence splits do not apply; check the pinned files")
    spans = [(int(start), int(end)) for start, end in split["sentence_breaks"]]
    questions, answers = {}, {}
    for qa in paragraph["qas"]:
        start = int(qa["answers"][0]["answer_start"])
        sentence = next((s for s, (begin, end) in enumerate(spans) if begin <= start < end), None)
        if sentence is None:
            raise HybridReproError(f"{where}: the answer of question {qa['id']} starts outside every sentence")
        questions[qa["id"]], answers[qa["id"]] = qa["question"], sentence
    # Spans may start with the space or byte-order mark that preceded the sentence: training texts drop it.
    return Paragraph(tuple(context[begin:end].strip().lstrip("\ufeff").strip() for begin, end in spans), questions, answers)


def check_parallel(by_language: dict[str, Articles]) -> None:
    """Every language holds the same articles, paragraphs and question ids in the same order."""
    shapes = {lang: [[sorted(p.questions) for p in article.paragraphs] for article in articles]
              for lang, articles in by_language.items()}
    reference_lang, reference = next(iter(shapes.items()))
    for lang, shape in shapes.items():
        if shape != reference:
            raise HybridReproError(f"XQuAD {lang} is not parallel to {reference_lang} (articles, paragraphs or "
                                   "question ids differ); check the pinned files")


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, node: Any) -> Any:
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a: Any, b: Any) -> None:
        self.parent[self.find(a)] = self.find(b)


def positive_identities(by_language: dict[str, Articles]) -> dict[str, str]:
    """Question id -> the identity of its answer passage, shared by every language (module docstring)."""
    groups = _UnionFind()
    for lang, articles in by_language.items():
        for a, article in enumerate(articles):
            for p, paragraph in enumerate(article.paragraphs):
                for qid, sentence in paragraph.answer_sentence.items():
                    groups.union(("question", qid), (lang, a, p, sentence))
    members: dict[Any, list[str]] = defaultdict(list)
    for article in next(iter(by_language.values())):  # parallel: every language holds the same question ids
        for paragraph in article.paragraphs:
            for qid in paragraph.questions:
                members[groups.find(("question", qid))].append(qid)
    return {qid: f"{DATASET}:{min(qids)}" for qids in members.values() for qid in qids}


@dataclass
class _NegativePool:
    """The non-answer sentences of one language in one split, with a BM25 index over them."""

    texts: list[str] = field(default_factory=list)
    location: list[tuple[int, int]] = field(default_factory=list)  # (article, paragraph)
    index: Any = None

    def build(self) -> None:
        if self.texts:
            self.index = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
            self.index.index([bm25_tokenize(text) for text in self.texts], show_progress=False)

    def best(self, question: str, tiers: Sequence[np.ndarray]) -> tuple[str, int] | None:
        """The sentence BM25 scores highest against ``question`` within the first tier (a mask over the pool)
        that allows any, and that tier's number; ties go to pool order. None when no tier allows any."""
        if self.index is None:
            return None
        tokens = sorted(set(self.index.get_tokens_ids(bm25_tokenize(question))))
        scores = np.asarray(self.index.get_scores_from_ids(tokens)) if tokens else np.zeros(len(self.texts))
        for number, allowed in enumerate(tiers):
            if allowed.any():
                return self.texts[int(np.argmax(np.where(allowed, scores, -np.inf)))], number
        return None


def _negative_pool(articles: Articles, article_ids: Iterable[int]) -> _NegativePool:
    pool = _NegativePool()
    for a in article_ids:
        for p, paragraph in enumerate(articles[a].paragraphs):
            answers = paragraph.answer_sentences
            for s, sentence in enumerate(paragraph.sentences):
                if s not in answers:
                    pool.texts.append(sentence)
                    pool.location.append((a, p))
    pool.build()
    return pool


@dataclass
class ParallelCorpus:
    """Training and validation records in the translated-corpus layout, and how they were built."""

    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    val_articles: list[str]
    negative_tiers: dict[str, dict[str, dict[str, int]]]
    """Per split and language, how many negatives came from the paragraph, the article and the whole split."""


def build_parallel_corpus(by_language: dict[str, Articles], *, source_language: str, val_articles: int,
                          negatives: NegativeSource, seed: int) -> ParallelCorpus:
    """Training examples of the non-held-out articles in every language of ``by_language`` and source-language
    validation examples of ``val_articles`` held-out articles (module docstring)."""
    if source_language not in by_language:
        raise HybridReproError(f"the source language {source_language!r} is not among the XQuAD languages read")
    check_parallel(by_language)
    titles = [article.title for article in by_language[source_language]]
    n_articles = len(titles)
    if not 0 < val_articles < n_articles:
        raise HybridReproError(f"data.xquad.val_articles is {val_articles}: it must leave at least one of the "
                               f"{n_articles} articles for training and hold out at least one")
    held_out = sorted(random.Random(f"{seed}:xquad-validation").sample(range(n_articles), val_articles))
    training = [a for a in range(n_articles) if a not in held_out]
    identities = positive_identities(by_language)
    tiers_used: dict[str, dict[str, dict[str, int]]] = {}
    split_records = {}
    for split, article_ids, languages in (("train", training, list(by_language)), ("val", held_out, [source_language])):
        texts_by_question: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
        for lang in languages:
            counts = tiers_used.setdefault(split, {}).setdefault(lang, defaultdict(int))
            _add_language_triplets(by_language[lang], article_ids, lang, negatives, texts_by_question, counts)
        split_records[split] = [
            {"id": f"{DATASET}:{qid}", "question_id": qid, "dataset": DATASET, "positive_id": identities[qid],
             "negative_id": f"{DATASET}:negatives-of:{qid}", "texts": texts_by_question[qid]}
            for a in article_ids for paragraph in by_language[source_language][a].paragraphs
            for qid in paragraph.questions
        ]
    return ParallelCorpus(split_records["train"], split_records["val"], [titles[a] for a in held_out],
                          {split: {lang: dict(counts) for lang, counts in by_lang.items()}
                           for split, by_lang in tiers_used.items()})


def _add_language_triplets(articles: Articles, article_ids: list[int], lang: str, negatives: NegativeSource,
                           out: dict[str, dict[str, dict[str, str]]], counts: dict[str, int]) -> None:
    pool = _negative_pool(articles, article_ids)
    locations = np.array(pool.location, dtype=np.int64).reshape(-1, 2)
    tier_names = ("paragraph", "article", "split") if negatives == "paragraph" else ("split",)
    for a in article_ids:
        for p, paragraph in enumerate(articles[a].paragraphs):
            same_article = locations[:, 0] == a
            everywhere = np.ones(len(pool.texts), dtype=bool)
            tiers = [same_article & (locations[:, 1] == p), same_article, everywhere][-len(tier_names):]
            for qid, question in paragraph.questions.items():
                found = pool.best(question, tiers)
                if found is None:
                    raise HybridReproError(f"XQuAD {lang}: every sentence of these articles holds an answer, so "
                                           "no hard negative is left; change data.xquad.val_articles")
                negative, tier = found
                counts[tier_names[tier]] += 1
                out[qid][lang] = {"query": question, "positive": paragraph.sentences[paragraph.answer_sentence[qid]],
                                  "negative": negative}

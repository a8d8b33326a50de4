"""A seeded generator of a synthetic QA corpus in the source language (``qen``).

The demo cannot download the paper's training sets, so it trains on a corpus built here and
rendered into synthetic languages by :mod:`hybrid_repro.data.translate`. The design is fixed
independently of which batch strategy it favours; it models the properties of the real data that
batch composition interacts with.

What it models
--------------
* **Topics and domains.** Every paragraph has a topic; topics come four to a domain. A paragraph's
  nouns, verbs and adjectives come mostly from its topic's vocabulary, partly from its domain's and
  from general vocabulary, so paragraphs on the same topic (and, less so, the same domain) look
  alike: they are the distractors that make retrieval non-trivial.
* **Sentences** are clauses ``subject verb object [place] [time]``; a subject is a named entity or
  a noun phrase, an object may be a quantity (``42 towers``), the time is a year. Every sentence
  text in the corpus is unique, so evaluation sentences never occur in training.
* **Named entities and numbers** are not in the lexicon: translation copies them into Latin-script
  languages and transliterates them (names) or re-writes their digits (qar) elsewhere, giving the
  cross-lingual signal real text has even without cross-lingual training.
* **Questions** ask for one slot of one sentence of a paragraph (who / what / how many / where /
  when). The answer slot is left out; every other word survives with probability
  ``question_keep_prob``, a surviving word is swapped for a synonym with probability
  ``question_paraphrase_prob``, and up to ``question_noise_words`` topical words that are not in the
  sentence are inserted, so the lexical overlap with the answer is partial and noisy.
* **Training triplets** are (question, answer sentence, hard negative), the negative being a
  sentence of another paragraph on the same topic (same domain, then any, when the split has none)
  that answers no question of the split, whenever the pool holds one. Every passage carries the
  identity of its source sentence (``positive_id``, ``negative_id``), shared by its translations.
* **Datasets with different query styles and language coverage** (:data:`DATASETS`):
  ``synth-qa`` (multilingual factoid questions, the bulk), ``synth-faq`` (how/why questions that
  exist only in the source language, like MFAQ's and Mr. TyDi's English parts) and ``synth-kw``
  (a small multilingual set of keyword queries). Dataset mixing therefore changes both the query
  style and the language mix of batches.
* **Splits**: training paragraphs per dataset, held-out validation paragraphs (``synth-qa`` style)
  and evaluation articles of several paragraphs on one topic (``synth-r``, laid out like XQuAD-R).

What it cannot show
-------------------
* Real linguistic structure: there is no morphology, agreement, ambiguity, discourse or world
  knowledge; a sentence's meaning is a bag of concepts in a fixed frame, and "translation" is a
  word-for-word lexicon lookup with reordering, so every language is exactly parallel and free of
  MT errors. Absolute scores, and how they compare with the paper's, mean nothing.
* Pre-training effects: the demo encoder starts from scratch, so the paper's question of keeping a
  multilingual pre-trained model's monolingual strength does not arise in the same form.
* Scale: a few thousand examples and a tiny model; differences between strategies may be within
  seed noise and must be read with the reported spread.
The corpus can show whether a batch strategy teaches a model to align languages that share no
surface vocabulary (cross-lingual and multilingual retrieval) and whether it keeps the
within-language ranking sharp (monolingual retrieval), on data whose difficulty is controlled by
the parameters above.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal, Sequence

from hybrid_repro.config import SyntheticConfig
from hybrid_repro.data.languages import SOURCE_LANGUAGE, LanguageSpec, language
from hybrid_repro.data.lexicon import Lexicon, build_lexicon, coin_word, domain_of
from hybrid_repro.errors import HybridReproError

QueryStyle = Literal["question", "faq", "keywords"]


@dataclass(frozen=True)
class DatasetSpec:
    """A training dataset: its query style and whether it exists beyond the source language."""

    name: str
    multilingual: bool
    query_style: QueryStyle
    description: str


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("synth-qa", True, "question", "multilingual factoid questions on topic paragraphs (the bulk)"),
        DatasetSpec("synth-faq", False, "faq", "how/why questions, source language only (like MFAQ's English part)"),
        DatasetSpec("synth-kw", True, "keywords", "small multilingual set of keyword queries"),
    )
}
VAL_DATASET = "synth-qa"
EVAL_DATASET = "synth-r"

# A token is ("word", concept, variant), ("name", text) or ("number", digits).
Token = tuple
SLOT_ORDER = ("subject", "verb", "object", "place", "time")
_QWORD_FOR_SLOT = {"subject": "who", "object": "what", "place": "where", "time": "when"}
_POOL_WEIGHTS = (("topic", 0.6), ("domain", 0.25), ("general", 0.15))


@dataclass
class Sentence:
    """One clause; ``slots`` maps slot name (in :data:`SLOT_ORDER`) to its tokens."""

    slots: dict[str, list[Token]]

    @property
    def tokens(self) -> list[Token]:
        return [token for name in SLOT_ORDER for token in self.slots.get(name, [])]


@dataclass
class Paragraph:
    topic: int
    sentences: list[Sentence] = field(default_factory=list)


class SourceWriter:
    """Renders tokens as source-language text (lower-case words, capitalised names, final mark)."""

    def __init__(self, lexicon: Lexicon):
        self.lexicon = lexicon
        self.spec: LanguageSpec = language(SOURCE_LANGUAGE)

    def words(self, tokens: Sequence[Token]) -> str:
        return " ".join(self.lexicon.form(SOURCE_LANGUAGE, t[1], t[2]) if t[0] == "word" else t[1] for t in tokens)

    def statement(self, tokens: Sequence[Token]) -> str:
        return self.words(tokens) + self.spec.full_stop

    def question(self, tokens: Sequence[Token]) -> str:
        return self.words(tokens) + self.spec.question_mark


class CorpusGenerator:
    """Draws paragraphs, questions and triplets from one seeded random stream per purpose."""

    def __init__(self, config: SyntheticConfig, seed: int):
        unknown = sorted(set(config.train_paragraphs) - set(DATASETS))
        if unknown:
            raise HybridReproError(
                f"data.synthetic.train_paragraphs names unknown datasets {unknown}; known: {', '.join(DATASETS)}"
            )
        self.config = config
        self.seed = seed
        self.lexicon = build_lexicon(config.n_topics, seed)
        self.writer = SourceWriter(self.lexicon)
        self._seen_sentences: set[str] = set()
        self._vocab = self._vocabulary_pools()
        self._function = {c.key: i for i, c in enumerate(self.lexicon.concepts) if c.pool == "function"}
        self.entities = self._entities()

    # -- vocabulary ---------------------------------------------------------------------------
    def _vocabulary_pools(self) -> dict[tuple[str, str], list[int]]:
        pools: dict[tuple[str, str], list[int]] = {}
        for i, concept in enumerate(self.lexicon.concepts):
            pools.setdefault((concept.pool, concept.pos), []).append(i)
        return pools

    def _entities(self) -> list[list[str]]:
        rng = random.Random(f"{self.seed}:entities")
        spec = language(SOURCE_LANGUAGE)
        taken = self.lexicon.vocabulary(SOURCE_LANGUAGE)
        names: list[list[str]] = []
        for _ in range(self.config.n_topics):
            topic_names: list[str] = []
            while len(topic_names) < self.config.entities_per_topic:
                name = coin_word(spec, rng, (2, 3))
                if name not in taken:
                    taken.add(name)
                    topic_names.append(name.capitalize())
            names.append(topic_names)
        return names

    def _variants(self, concept: int) -> int:
        return len(self.lexicon.forms[SOURCE_LANGUAGE][concept])

    def topical_word(self, rng: random.Random, topic: int, pos: str) -> Token:
        draw, pool = rng.random(), "general"
        for kind, weight in _POOL_WEIGHTS:
            if draw < weight:
                pool = kind
                break
            draw -= weight
        name = {"topic": f"topic{topic}", "domain": f"domain{domain_of(topic, self.config.n_topics)}"}.get(pool, pool)
        concept = rng.choice(self._vocab[(name, pos)])
        return ("word", concept, rng.randrange(self._variants(concept)))

    def _fn(self, key: str) -> Token:
        return ("word", self._function[key], 0)

    # -- sentences and paragraphs -------------------------------------------------------------
    def _noun_phrase(self, rng: random.Random, topic: int) -> list[Token]:
        phrase = [self._fn(rng.choice(("fn.det.the", "fn.det.a")))]
        if rng.random() < 0.5:
            phrase.append(self.topical_word(rng, topic, "adj"))
        return phrase + [self.topical_word(rng, topic, "noun")]

    def _sentence(self, rng: random.Random, topic: int) -> Sentence:
        slots: dict[str, list[Token]] = {}
        if rng.random() < 0.5:
            slots["subject"] = [("name", rng.choice(self.entities[topic]))]
        else:
            slots["subject"] = self._noun_phrase(rng, topic)
        slots["verb"] = [self.topical_word(rng, topic, "verb")]
        if rng.random() < 0.25:
            slots["object"] = [("number", str(rng.randint(2, 99))), self.topical_word(rng, topic, "noun")]
        else:
            slots["object"] = self._noun_phrase(rng, topic)
        if rng.random() < 0.6:
            preposition = self._fn(rng.choice(("fn.prep.near", "fn.prep.with", "fn.prep.for", "fn.prep.from")))
            if rng.random() < 0.3:
                slots["place"] = [preposition, ("name", rng.choice(self.entities[topic]))]
            else:
                slots["place"] = [preposition] + self._noun_phrase(rng, topic)
        if rng.random() < 0.45:
            slots["time"] = [self._fn("fn.prep.in"), ("number", str(rng.randint(1700, 2023)))]
        return Sentence(slots)

    def _unique_sentence(self, rng: random.Random, topic: int) -> Sentence:
        while True:
            sentence = self._sentence(rng, topic)
            text = self.writer.statement(sentence.tokens)
            if text not in self._seen_sentences:
                self._seen_sentences.add(text)
                return sentence

    def paragraph(self, rng: random.Random, topic: int) -> Paragraph:
        count = rng.randint(*self.config.sentences_per_paragraph)
        return Paragraph(topic, [self._unique_sentence(rng, topic) for _ in range(count)])

    # -- queries ------------------------------------------------------------------------------
    def _perturb(self, rng: random.Random, tokens: Sequence[Token], content_only: bool) -> list[Token]:
        """Keep each token with question_keep_prob (at least one content token), swap synonyms."""
        content = [t for t in tokens if t[0] != "word" or self.lexicon.concepts[t[1]].pool != "function"]
        candidates = content if content_only else list(tokens)
        kept = [t for t in candidates if rng.random() < self.config.question_keep_prob]
        if not any(t in content for t in kept) and content:
            kept.append(rng.choice(content))
            kept.sort(key=candidates.index)
        out = []
        for token in kept:
            if token[0] == "word" and rng.random() < self.config.question_paraphrase_prob:
                variants = self._variants(token[1])
                if variants > 1:
                    token = ("word", token[1], (token[2] + rng.randrange(1, variants)) % variants)
            out.append(token)
        return out

    def _add_noise(self, rng: random.Random, tokens: list[Token], topic: int, start: int) -> list[Token]:
        for _ in range(rng.randint(0, self.config.question_noise_words)):
            noise = self.topical_word(rng, topic, rng.choice(("noun", "noun", "adj", "verb")))
            tokens.insert(rng.randint(start, len(tokens)), noise)
        return tokens

    def answer_span(self, sentence: Sentence, slot: str) -> list[Token]:
        """The answer's tokens: the slot without its leading preposition (``1869``, not ``in 1869``)."""
        tokens = sentence.slots[slot]
        first = tokens[0]
        if first[0] == "word" and self.lexicon.concepts[first[1]].pos == "prep":
            return tokens[1:]
        return tokens

    def answer_slot(self, rng: random.Random, sentence: Sentence) -> str:
        return rng.choice([name for name in _QWORD_FOR_SLOT if name in sentence.slots])

    def query(self, rng: random.Random, sentence: Sentence, topic: int, style: QueryStyle, answer: str) -> str:
        """Source-language query text asking for slot ``answer`` of ``sentence``, in ``style``."""
        if style == "faq":
            body = sentence.slots["verb"] + sentence.slots["object"]
            tokens = [self._fn(f"fn.qword.{rng.choice(('how', 'why'))}")] + self._perturb(rng, body, False)
            return self.writer.question(self._add_noise(rng, tokens, topic, 1))
        rest = [t for name in SLOT_ORDER if name != answer for t in sentence.slots.get(name, [])]
        if style == "keywords":
            return self.writer.words(self._add_noise(rng, self._perturb(rng, rest, True), topic, 0))
        qword = _QWORD_FOR_SLOT[answer]
        if answer == "subject" and sentence.slots["subject"][0][0] != "name":
            qword = "what"
        if answer == "object" and sentence.slots["object"][0][0] == "number":
            qword = "how-many"
        tokens = [self._fn(f"fn.qword.{qword}")] + self._perturb(rng, rest, False)
        return self.writer.question(self._add_noise(rng, tokens, topic, 1))


def _topics(rng: random.Random, count: int, n_topics: int) -> list[int]:
    return [rng.randrange(n_topics) for _ in range(count)]


def hard_negative(rng: random.Random, paragraphs: list[Paragraph], own: int, n_topics: int,
                  answers: set[tuple[int, int]], label: str) -> tuple[int, int]:
    """(paragraph, sentence) of a hard negative for a question on paragraph ``own``.

    A sentence of another paragraph on the same topic if any, else the same domain, else any; within that pool
    a sentence that answers no question of the split (``answers``) whenever the pool has one. An answer
    sentence as a negative is another triplet's positive (or its translation) in some batch: a false negative
    the loss then has to mask.
    """
    topic = paragraphs[own].topic
    for same in (lambda p: p.topic == topic,
                 lambda p: domain_of(p.topic, n_topics) == domain_of(topic, n_topics),
                 lambda p: True):
        pool = [(i, s) for i, p in enumerate(paragraphs) if i != own and same(p) for s in range(len(p.sentences))]
        if pool:
            clean = [place for place in pool if place not in answers]
            return rng.choice(clean or pool)
    raise HybridReproError(f"{label} has a single paragraph: hard negatives need at least two (raise its size)")


def _examples(gen: CorpusGenerator, rng: random.Random, dataset: DatasetSpec, split: str,
              paragraphs: list[Paragraph]) -> list[dict]:
    """One triplet per question. ``positive_id``/``negative_id`` name the source sentence of each passage, so
    every translation of a sentence shares its identity (what the loss's false-negative mask compares)."""
    questions = [(p, s) for p, paragraph in enumerate(paragraphs)
                 for s in sorted(rng.sample(range(len(paragraph.sentences)), gen.config.questions_per_paragraph))]
    answers = set(questions)

    def sentence_id(p: int, s: int) -> str:
        return f"{dataset.name}-{split}-p{p:04d}-s{s}"

    examples = []
    for p, s in questions:
        paragraph = paragraphs[p]
        sentence = paragraph.sentences[s]
        query = gen.query(rng, sentence, paragraph.topic, dataset.query_style, gen.answer_slot(rng, sentence))
        negative = hard_negative(rng, paragraphs, p, gen.config.n_topics, answers, f"{split} split of {dataset.name}")
        examples.append({
            "id": f"{dataset.name}-{split}-{len(examples):05d}",
            "question_id": sentence_id(p, s),
            "dataset": dataset.name,
            "query": query,
            "positive": gen.writer.statement(sentence.tokens),
            "negative": gen.writer.statement(paragraphs[negative[0]].sentences[negative[1]].tokens),
            "positive_id": sentence_id(p, s),
            "negative_id": sentence_id(*negative),
        })
    return examples


def _eval_articles(gen: CorpusGenerator, rng: random.Random) -> list[dict]:
    config = gen.config
    articles = []
    for a, topic in enumerate(_topics(rng, config.eval_articles, config.n_topics)):
        title_tokens = [gen.topical_word(rng, topic, "noun"), ("name", rng.choice(gen.entities[topic]))]
        paragraphs = []
        for p in range(config.paragraphs_per_article):
            paragraph = gen.paragraph(rng, topic)
            questions = []
            for q, s in enumerate(sorted(rng.sample(range(len(paragraph.sentences)), config.questions_per_paragraph))):
                sentence = paragraph.sentences[s]
                answer = gen.answer_slot(rng, sentence)
                questions.append({
                    "id": f"{EVAL_DATASET}-a{a:02d}-p{p}-q{q}",
                    "question": gen.query(rng, sentence, topic, "question", answer),
                    "answer": gen.writer.words(gen.answer_span(sentence, answer)),
                    "sentence": s,
                })
            paragraphs.append({
                "sentences": [gen.writer.statement(s.tokens) for s in paragraph.sentences],
                "questions": questions,
            })
        articles.append({"title": gen.writer.words(title_tokens), "topic": topic, "paragraphs": paragraphs})
    return articles


@dataclass
class SourceCorpus:
    """The generated corpus in the source language, ready to be written and translated."""

    lexicon: Lexicon
    train: list[dict]
    val: list[dict]
    eval_articles: list[dict]
    datasets: dict[str, DatasetSpec]


def generate_corpus(config: SyntheticConfig, seed: int) -> SourceCorpus:
    """The whole source corpus for ``config`` and ``seed``; the same inputs give the same corpus."""
    gen = CorpusGenerator(config, seed)
    # Evaluation paragraphs are drawn first so that their sentences claim uniqueness before
    # training ones: changing training sizes then leaves the evaluation set unchanged.
    eval_articles = _eval_articles(gen, random.Random(f"{seed}:eval"))
    train: list[dict] = []
    for name, count in config.train_paragraphs.items():
        rng = random.Random(f"{seed}:train:{name}")
        paragraphs = [gen.paragraph(rng, t) for t in _topics(rng, count, config.n_topics)]
        train += _examples(gen, rng, DATASETS[name], "train", paragraphs)
    rng = random.Random(f"{seed}:val")
    val_paragraphs = [gen.paragraph(rng, t) for t in _topics(rng, config.val_paragraphs, config.n_topics)]
    val = _examples(gen, rng, DATASETS[VAL_DATASET], "val", val_paragraphs)
    used = {name: DATASETS[name] for name in config.train_paragraphs}
    return SourceCorpus(gen.lexicon, train, val, eval_articles, used)


"""The synthetic source corpus and lexicon: determinism and the properties the demo relies on."""

import itertools
import random

import pytest

from hybrid_repro.config import DataConfig, SyntheticConfig, params_from_dict
from hybrid_repro.data.languages import INVENTORY, SOURCE_LANGUAGE, language, render_name, render_number
from hybrid_repro.data.lexicon import build_lexicon, domain_of
from hybrid_repro.data.synthetic import DATASETS, CorpusGenerator, generate_corpus, hard_negative
from hybrid_repro.errors import HybridReproError

SMALL = SyntheticConfig(
    n_topics=8,
    entities_per_topic=4,
    train_paragraphs={"synth-qa": 40, "synth-faq": 12, "synth-kw": 6},
    val_paragraphs=8,
    eval_articles=4,
    paragraphs_per_article=3,
)


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(SMALL, seed=5)


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


def test_same_seed_same_corpus_other_seed_differs(corpus):
    again = generate_corpus(SMALL, seed=5)
    assert (again.train, again.val, again.eval_articles) == (corpus.train, corpus.val, corpus.eval_articles)
    assert again.lexicon.to_json() == corpus.lexicon.to_json()
    other = generate_corpus(SMALL, seed=6)
    assert other.train != corpus.train


def test_sizes_follow_config(corpus):
    per_dataset = {name: sum(e["dataset"] == name for e in corpus.train) for name in DATASETS}
    assert per_dataset == {name: n * SMALL.questions_per_paragraph for name, n in SMALL.train_paragraphs.items()}
    assert len(corpus.val) == SMALL.val_paragraphs * SMALL.questions_per_paragraph
    assert len(corpus.eval_articles) == SMALL.eval_articles
    low, high = SMALL.sentences_per_paragraph
    for article in corpus.eval_articles:
        assert len(article["paragraphs"]) == SMALL.paragraphs_per_article
        assert all(low <= len(p["sentences"]) <= high for p in article["paragraphs"])


def test_ids_are_unique_and_free_of_underscores(corpus):
    ids = [e["id"] for e in corpus.train + corpus.val]
    ids += [q["id"] for a in corpus.eval_articles for p in a["paragraphs"] for q in p["questions"]]
    assert len(ids) == len(set(ids))
    assert not any("_" in i for i in ids)


def test_each_eval_answer_is_a_span_of_its_own_sentence(corpus):
    for article in corpus.eval_articles:
        for paragraph in article["paragraphs"]:
            asked = [q["sentence"] for q in paragraph["questions"]]
            assert len(asked) == len(set(asked)) == SMALL.questions_per_paragraph
            for question in paragraph["questions"]:
                assert question["answer"] and question["answer"] in paragraph["sentences"][question["sentence"]]


def test_eval_sentences_never_occur_in_training_or_validation(corpus):
    eval_sentences = {s for a in corpus.eval_articles for p in a["paragraphs"] for s in p["sentences"]}
    seen = {e[f] for e in corpus.train + corpus.val for f in ("positive", "negative")}
    assert eval_sentences and not eval_sentences & seen


def test_negative_is_another_paragraphs_sentence_on_the_same_topic():
    gen = CorpusGenerator(SMALL, seed=1)
    rng = random.Random(0)
    paragraphs = [gen.paragraph(rng, topic) for topic in (0, 0, 1, 5)]
    for _ in range(20):
        p, s = hard_negative(rng, paragraphs, 0, SMALL.n_topics, set(), "test")
        assert p == 1 and 0 <= s < len(paragraphs[1].sentences)
    # Topic 1 has no other paragraph: fall back to the same domain (topics 0-3 form domain 0).
    assert domain_of(1, SMALL.n_topics) == domain_of(0, SMALL.n_topics) != domain_of(5, SMALL.n_topics)
    assert hard_negative(rng, paragraphs, 2, SMALL.n_topics, set(), "test")[0] in (0, 1)
    with pytest.raises(HybridReproError, match="single paragraph"):
        hard_negative(rng, paragraphs[:1], 0, SMALL.n_topics, set(), "test")


def test_negative_avoids_answer_sentences_while_the_pool_has_others():
    gen = CorpusGenerator(SMALL, seed=1)
    rng = random.Random(0)
    paragraphs = [gen.paragraph(rng, topic) for topic in (0, 0)]
    sentences = [(1, s) for s in range(len(paragraphs[1].sentences))]
    answers = set(sentences[:-1])
    assert {hard_negative(rng, paragraphs, 0, SMALL.n_topics, answers, "test") for _ in range(20)} == {sentences[-1]}
    # Every sentence of the pool answers a question: an answer sentence is the only choice left.
    assert hard_negative(rng, paragraphs, 0, SMALL.n_topics, set(sentences), "test") in sentences


def test_passage_ids_name_the_source_sentence_and_negatives_are_no_answers(corpus):
    for split in (corpus.train, corpus.val):
        text_of = {}
        for example in split:
            for side in ("positive", "negative"):
                assert text_of.setdefault(example[f"{side}_id"], example[side]) == example[side]
        positives = {example["positive_id"] for example in split}
        # SMALL has 4-6 sentences per paragraph and 3 questions: every pool holds a sentence answering none.
        assert not any(example["negative_id"] in positives for example in split)


def test_questions_overlap_their_answer_only_partially(corpus):
    overlaps = []
    for e in corpus.train:
        if e["dataset"] == "synth-qa":
            words = e["query"].rstrip("?").split()[1:]
            overlaps.append(sum(w in e["positive"].rstrip(".").split() for w in words) / max(len(words), 1))
    mean = sum(overlaps) / len(overlaps)
    assert 0.3 < mean < 0.9


def test_without_dropping_paraphrase_or_noise_a_question_is_its_sentence_minus_the_answer():
    exact = SMALL.model_copy(update={"question_keep_prob": 1.0, "question_paraphrase_prob": 0.0,
                                     "question_noise_words": 0})
    for article in generate_corpus(exact, seed=2).eval_articles:
        for paragraph in article["paragraphs"]:
            for question in paragraph["questions"]:
                sentence = paragraph["sentences"][question["sentence"]].rstrip(".").split()
                asked = question["question"].rstrip("?").split()[1:]
                assert all(word in sentence for word in asked)
                assert question["answer"] not in " ".join(asked)


def test_paraphrasing_replaces_words_with_synonyms_of_the_same_concept():
    paraphrase = SMALL.model_copy(update={"question_keep_prob": 1.0, "question_paraphrase_prob": 1.0,
                                          "question_noise_words": 0})
    corpus = generate_corpus(paraphrase, seed=2)
    lexicon = corpus.lexicon
    swapped = 0
    for e in corpus.train:
        if e["dataset"] == "synth-qa":
            sentence_words = {lexicon.parse(SOURCE_LANGUAGE, w) for w in e["positive"].rstrip(".").split()} - {None}
            for word in e["query"].rstrip("?").split()[1:]:
                parsed = lexicon.parse(SOURCE_LANGUAGE, word)
                if parsed and parsed not in sentence_words:
                    assert parsed[0] in {concept for concept, _ in sentence_words}
                    swapped += 1
    assert swapped > 0


def test_source_only_dataset_is_marked_and_others_multilingual():
    assert not DATASETS["synth-faq"].multilingual
    assert DATASETS["synth-qa"].multilingual and DATASETS["synth-kw"].multilingual


def test_unknown_dataset_name_is_rejected():
    config = SMALL.model_copy(update={"train_paragraphs": {"synth-qa": 4, "squad": 3}})
    with pytest.raises(HybridReproError, match="unknown datasets.*synth-qa"):
        generate_corpus(config, seed=0)


@pytest.mark.parametrize(
    "synthetic, expected",
    [
        ({"train_paragraphs": {"synth-qa": 0}}, "empty"),
        ({"train_paragraphs": {}}, "at least one paragraph"),
        ({"sentences_per_paragraph": [3, 2]}, "min <= max"),
        ({"sentences_per_paragraph": [2, 5], "questions_per_paragraph": 3}, "distinct answer sentences"),
    ],
)
def test_config_rejects_impossible_shapes(synthetic, expected):
    with pytest.raises(HybridReproError, match=expected):
        params_from_dict({"synthetic": synthetic}, model=DataConfig)


# -- lexicon and languages ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lexicon():
    return build_lexicon(8, seed=3)


def test_every_language_names_every_concept_with_distinct_forms(lexicon):
    for lang in lexicon.languages:
        forms = [form for variants in lexicon.forms[lang] for form in variants]
        assert len(forms) == len(set(forms)), lang
        assert all(forms)


def test_related_languages_share_vocabulary_and_unrelated_do_not(lexicon):
    vocab = {lang: lexicon.vocabulary(lang) for lang in lexicon.languages}
    assert _jaccard(vocab["qen"], vocab["qde"]) > 0.15
    assert _jaccard(vocab["qde"], vocab["qvi"]) > 0.01
    related = {("qen", "qde"), ("qde", "qvi"), ("qen", "qvi")}
    for a, b in itertools.combinations(vocab, 2):
        if (a, b) not in related:
            assert _jaccard(vocab[a], vocab[b]) < 0.005, (a, b)


def test_inventory_has_varied_scripts_orders_and_valid_codes():
    assert len(INVENTORY) >= 6
    assert {spec.script for spec in INVENTORY} >= {"latin", "cyrillic", "greek", "arabic", "cjk", "thai"}
    assert {spec.word_order for spec in INVENTORY} == {"SVO", "SOV", "VSO"}
    assert any(not spec.spaces for spec in INVENTORY)
    assert all("_" not in spec.code and spec.code.startswith("q") for spec in INVENTORY)


def test_names_are_copied_or_transliterated_and_digits_rewritten():
    assert render_name("Tarvo", language("qde")) == "Tarvo"
    assert render_name("Tarvo", language("qru")) == "тарво"
    assert render_name("Tarvo", language("qel")) == "ταρβο"
    assert render_name("Sas", language("qel")) == "σας"  # final sigma
    assert render_name("Tarvo", language("qzh")) == render_name("tarvo", language("qzh"))
    assert len(render_name("Tarvo", language("qzh"))) == 2  # one character per syllable
    assert render_number("1873", language("qar")) == "١٨٧٣"
    assert render_number("1873", language("qth")) == "1873"


def test_unknown_language_lists_known_ones():
    with pytest.raises(HybridReproError, match="qen, qde"):
        language("en")

"""Properties of the X-X-mono / X-Y / Hybrid batch sampler (hybrid_repro.training.sampler)."""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybrid_repro.errors import HybridReproError
from hybrid_repro.training.sampler import Batch, ExampleMeta, HybridBatchSampler, TripletRef

LANGUAGES = ("ar", "de", "en", "zh")
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- corpora -------------------------------------------------------------------------------------------


@st.composite
def datasets(draw, index: int) -> list[ExampleMeta]:
    """One dataset: English-only (1 in 4) or with examples in random language subsets.

    Questions repeat (several examples per question) so that the no-duplicate rule is exercised.
    """
    name = f"d{index}"
    size = draw(st.integers(4, 30))
    n_questions = draw(st.integers(max(1, size // 3), size))
    question = st.integers(0, n_questions - 1)
    if draw(st.integers(0, 3)) == 0:
        rows = draw(st.lists(question, min_size=size, max_size=size))
        return [ExampleMeta(f"{name}-q{q}", name, frozenset({"en"})) for q in rows]
    languages = st.frozensets(st.sampled_from(LANGUAGES), min_size=1)
    rows = draw(st.lists(st.tuples(question, languages), min_size=size, max_size=size))
    return [ExampleMeta(f"{name}-q{q}", name, langs) for q, langs in rows]


@st.composite
def sampler_inputs(draw) -> tuple[list[ExampleMeta], dict]:
    n_datasets = draw(st.integers(1, 3))
    examples = [example for d in range(n_datasets) for example in draw(datasets(d))]
    present = sorted(set().union(*(example.languages for example in examples)))
    # Mostly every language present: restricting them often leaves too few multilingual examples for X-Y.
    train_languages = draw(st.just(present) | st.lists(st.sampled_from(present), min_size=1, unique=True))
    kwargs = dict(
        batch_size=draw(st.integers(2, 4)),
        mono_probability=draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0)),
        train_languages=train_languages,
        dataset_mixing=draw(st.sampled_from(["proportional", "uniform"])),
        seed=draw(st.integers(0, 2**32)),
    )
    return examples, kwargs


def best_distinct_questions(examples, train_languages, cross: bool, used=frozenset(), language=None) -> int:
    """Reference: the most distinct unused questions any X-Y dataset option, or any mono (dataset, language)
    option (of ``language`` when given), holds."""
    train = set(train_languages)
    questions: dict[tuple, set[str]] = {}
    for index, example in enumerate(examples):
        languages = example.languages & train
        if index in used:
            continue
        if cross and len(languages) >= 2:
            questions.setdefault((example.dataset,), set()).add(example.question_id)
        if not cross:
            for lang in languages:
                if language in (None, lang):
                    questions.setdefault((example.dataset, lang), set()).add(example.question_id)
    return max((len(qs) for qs in questions.values()), default=0)


def every_language_fills(examples, kwargs, used=frozenset()) -> bool:
    """Whether a monolingual batch can still be filled in every training language."""
    return all(best_distinct_questions(examples, kwargs["train_languages"], False, used, lang) >= kwargs["batch_size"]
               for lang in kwargs["train_languages"])


def feasible(examples, kwargs) -> bool:
    """Whether every draw possible at the start of an epoch can fill one batch (the constructor's contract)."""
    size, alpha, train = kwargs["batch_size"], kwargs["mono_probability"], kwargs["train_languages"]
    mono_ok = alpha == 0 or every_language_fills(examples, kwargs)
    cross_ok = alpha == 1 or best_distinct_questions(examples, train, cross=True) >= size
    return mono_ok and cross_ok


def uniform_corpus(n_examples: int, datasets_sizes=None, languages=("de", "en", "zh")) -> list[ExampleMeta]:
    """Every example in every language, one question each; datasets_sizes maps name -> size."""
    datasets_sizes = datasets_sizes or {"main": n_examples}
    return [
        ExampleMeta(f"{name}-{i}", name, frozenset(languages))
        for name, size in datasets_sizes.items()
        for i in range(size)
    ]


# -- invariants of any epoch ---------------------------------------------------------------------------


def check_epoch(examples, kwargs, batches: list[Batch]) -> None:
    train = set(kwargs["train_languages"])
    size = kwargs["batch_size"]
    multilingual_datasets = {e.dataset for e in examples if len(e.languages & train) >= 2}
    seen: set[int] = set()
    for batch in batches:
        assert len(batch.items) == size
        used_here = [item.example for item in batch.items]
        assert seen.isdisjoint(used_here) and len(set(used_here)) == size, "an example was used twice"
        seen.update(used_here)
        questions = [examples[i].question_id for i in used_here]
        assert len(set(questions)) == size, "a question appears twice in one batch"
        assert {examples[i].dataset for i in used_here} == {batch.dataset}
        for item in batch.items:
            usable = examples[item.example].languages & train
            assert {item.query_lang, item.passage_lang} <= usable
        if batch.strategy == "mono":
            assert len({(item.query_lang, item.passage_lang) for item in batch.items}) == 1
            assert all(item.query_lang == item.passage_lang for item in batch.items)
        else:
            assert batch.strategy == "x-y"
            assert batch.dataset in multilingual_datasets, "a single-language dataset formed an X-Y batch"
            assert all(item.query_lang != item.passage_lang for item in batch.items)
        composition = batch.composition()
        assert composition["strategy"] == batch.strategy and composition["dataset"] == batch.dataset
        assert composition["language_pairs"] == dict(
            Counter(f"{item.query_lang}->{item.passage_lang}" for item in batch.items)
        )
    # The epoch stops only when the draw after the last batch could not be filled: some training language
    # (mono) or the X-Y branch has no option left that can fill a batch.
    alpha = kwargs["mono_probability"]
    mono_left = every_language_fills(examples, kwargs, used=seen)
    cross_left = best_distinct_questions(examples, train, cross=True, used=seen) >= size
    assert (alpha > 0 and not mono_left) or (alpha < 1 and not cross_left)


@PROPERTY_SETTINGS
@given(sampler_inputs(), st.integers(0, 3))
def test_every_epoch_satisfies_the_batch_rules(inputs, epoch):
    examples, kwargs = inputs
    if not feasible(examples, kwargs):
        with pytest.raises(HybridReproError):
            HybridBatchSampler(examples, **kwargs)
        return
    sampler = HybridBatchSampler(examples, **kwargs)
    batches = sampler.epoch_batches(epoch)
    assert batches, "a feasible sampler planned an empty epoch"
    check_epoch(examples, kwargs, batches)
    if kwargs["mono_probability"] == 1.0:
        assert all(batch.strategy == "mono" for batch in batches)
    if kwargs["mono_probability"] == 0.0:
        assert all(batch.strategy == "x-y" for batch in batches)


# -- determinism and resume -----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(sampler_inputs(), st.integers(0, 3), st.data())
def test_resumed_epoch_continues_the_uninterrupted_sequence(inputs, epoch, data):
    examples, kwargs = inputs
    if not feasible(examples, kwargs):
        return
    reference = HybridBatchSampler(examples, **kwargs).epoch_batches(epoch)
    sampler = HybridBatchSampler(examples, **kwargs)
    sampler.set_epoch(epoch)
    assert len(sampler) == len(reference)
    k = data.draw(st.integers(0, len(reference)), label="batches before the interruption")
    first_part = list(itertools.islice(iter(sampler), k))
    state = sampler.state_dict()
    assert state == {"epoch": epoch, "step": k}

    resumed = HybridBatchSampler(examples, **kwargs)
    resumed.load_state_dict(state)
    resumed.set_epoch(epoch)  # a training loop calls this at the top of the epoch; it must keep the position
    assert first_part + list(resumed) == reference
    assert resumed.state_dict() == {"epoch": epoch, "step": len(reference)}
    assert list(resumed) == [], "an exhausted epoch yields nothing until set_epoch"


def test_epochs_and_seeds_give_different_orders():
    examples = uniform_corpus(400)
    kwargs = dict(batch_size=8, mono_probability=0.5, train_languages=["de", "en", "zh"])
    sampler = HybridBatchSampler(examples, seed=3, **kwargs)
    epochs = [sampler.epoch_batches(epoch) for epoch in range(4)]
    assert all(a != b for a, b in itertools.combinations(epochs, 2))
    assert HybridBatchSampler(examples, seed=4, **kwargs).epoch_batches(0) != epochs[0]
    assert HybridBatchSampler(examples, seed=3, **kwargs).epoch_batches(2) == epochs[2]


def test_set_epoch_starts_the_new_epoch_at_step_zero():
    sampler = HybridBatchSampler(uniform_corpus(64), batch_size=4, mono_probability=0.5, train_languages=["en", "de"])
    next(iter(sampler))
    sampler.set_epoch(1)
    assert sampler.state_dict() == {"epoch": 1, "step": 0}
    assert list(sampler) == sampler.epoch_batches(1)


def test_order_does_not_depend_on_string_hashing_or_language_order():
    """frozenset iteration order changes with PYTHONHASHSEED; the batches must not."""
    script = (
        "import hashlib\n"
        "from hybrid_repro.training.sampler import ExampleMeta, HybridBatchSampler\n"
        "ex = [ExampleMeta(f'q{i % 50}', f'd{i % 3}', frozenset(['en', 'de', 'ar', 'zh'][: 1 + i % 4]))"
        " for i in range(300)]\n"
        "s = HybridBatchSampler(ex, batch_size=4, mono_probability=0.5, train_languages=LANGS, seed=1)\n"
        "print(hashlib.sha256(repr(s.epoch_batches(0)).encode()).hexdigest())\n"
    )
    digests = set()
    for hash_seed, languages in (("1", ["en", "de", "ar", "zh"]), ("2", ["zh", "ar", "de", "en"])):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", script.replace("LANGS", repr(languages))], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


# -- statistics ----------------------------------------------------------------------------------------


def within_binomial(count: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    """|count/n - p| <= sigmas * sqrt(p(1-p)/n): a 4-sigma band fails a correct sampler with prob. < 1e-4."""
    return abs(count / n - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def within_binomial_over_epochs(count: int, n: int, p: float, epochs: int) -> bool:
    """The 4-sigma band widened by one batch per epoch: an epoch ends at the first draw it cannot fill, so the
    category whose draw ended it is one batch short of its unconditional expectation in that epoch."""
    return abs(count - n * p) <= 4.0 * math.sqrt(n * p * (1 - p)) + epochs


@st.composite
def large_layouts(draw) -> tuple[list[ExampleMeta], list[str]]:
    """1-3 datasets of 300-900 examples: English-only, or multilingual with every language covering a random
    share (at least half) of the examples; enough data for several dozen batches per language and epoch."""
    examples: list[ExampleMeta] = []
    for d in range(draw(st.integers(1, 3))):
        size = draw(st.integers(300, 900))
        if d > 0 and draw(st.booleans()):
            examples += [ExampleMeta(f"d{d}-q{i}", f"d{d}", frozenset({"en"})) for i in range(size)]
            continue
        coverage = {lang: draw(st.floats(0.5, 1.0)) for lang in LANGUAGES}
        for i in range(size):
            kept = frozenset(lang for k, lang in enumerate(LANGUAGES) if (i * (k + 7)) % 100 < 100 * coverage[lang])
            examples.append(ExampleMeta(f"d{d}-q{i}", f"d{d}", kept or frozenset({"en"})))
    return examples, list(LANGUAGES)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(large_layouts(), st.integers(2, 4), st.sampled_from(["proportional", "uniform"]), st.integers(0, 2**32 - 1))
def test_monolingual_batch_languages_are_uniform_over_training_languages(layout, batch_size, mixing, seed):
    """PAPER.md: an X-X-mono batch's language is "drawn uniformly from the training languages", whatever the
    datasets: English-only datasets must not add their weight to English."""
    examples, languages = layout
    sampler = HybridBatchSampler(examples, batch_size=batch_size, mono_probability=1.0, train_languages=languages,
                                 dataset_mixing=mixing, seed=seed)
    epochs = 3
    drawn = Counter(batch.items[0].query_lang for epoch in range(epochs) for batch in sampler.epoch_batches(epoch))
    n = sum(drawn.values())
    assert all(within_binomial_over_epochs(drawn[lang], n, 1 / len(languages), epochs) for lang in languages), drawn


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(large_layouts(), st.floats(0.1, 0.9), st.integers(0, 2**32 - 1))
def test_realised_monolingual_share_matches_alpha(layout, alpha, seed):
    examples, languages = layout
    sampler = HybridBatchSampler(examples, batch_size=3, mono_probability=alpha, train_languages=languages, seed=seed)
    epochs = 3
    batches = [batch for epoch in range(epochs) for batch in sampler.epoch_batches(epoch)]
    n_mono = sum(batch.strategy == "mono" for batch in batches)
    assert within_binomial_over_epochs(n_mono, len(batches), alpha, epochs), (n_mono, len(batches))


def test_english_only_datasets_do_not_skew_monolingual_languages():
    """The shape of the paper's data: a large English-only set beside parallel ones (measured before the fix:
    English took 39 % of the demo's X-X-mono batches instead of 1/6)."""
    examples = uniform_corpus(0, {"parallel": 3000}, languages=LANGUAGES) + [
        ExampleMeta(f"faq-{i}", "faq", frozenset({"en"})) for i in range(6000)]
    sampler = HybridBatchSampler(examples, batch_size=4, mono_probability=1.0, train_languages=LANGUAGES, seed=7)
    drawn = Counter(batch.items[0].query_lang for epoch in range(4) for batch in sampler.epoch_batches(epoch))
    n = sum(drawn.values())
    assert all(within_binomial_over_epochs(drawn[lang], n, 1 / 4, 4) for lang in LANGUAGES), drawn


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.75])
def test_mono_fraction_converges_to_alpha(alpha):
    # 24,000 examples in batches of 4: ~6,000 independent Bernoulli(alpha) branch draws per epoch.
    examples = uniform_corpus(24_000)
    sampler = HybridBatchSampler(
        examples, batch_size=4, mono_probability=alpha, train_languages=["de", "en", "zh"], seed=11
    )
    batches = sampler.epoch_batches(0)
    n_mono = sum(batch.strategy == "mono" for batch in batches)
    assert len(batches) > 5_900
    assert within_binomial(n_mono, len(batches), alpha)


def test_language_draws_are_uniform():
    """Mono batch languages are uniform over 3 languages; X-Y pairs uniform over the 6 ordered pairs."""
    examples = uniform_corpus(12_000)
    batches = HybridBatchSampler(
        examples, batch_size=4, mono_probability=0.5, train_languages=["de", "en", "zh"], seed=5
    ).epoch_batches(0)
    # Every option holds every example, so no language runs out before the last few batches: drop them.
    batches = batches[: len(batches) - 10]
    mono_languages = Counter(b.items[0].query_lang for b in batches if b.strategy == "mono")
    n_mono = sum(mono_languages.values())
    assert all(within_binomial(mono_languages[lang], n_mono, 1 / 3) for lang in ("de", "en", "zh"))
    pairs = Counter((i.query_lang, i.passage_lang) for b in batches if b.strategy == "x-y" for i in b.items)
    n_pairs = sum(pairs.values())
    assert len(pairs) == 6
    assert all(within_binomial(count, n_pairs, 1 / 6) for count in pairs.values())


def test_proportional_mixing_follows_dataset_sizes_within_each_language_and_branch():
    # big and small are multilingual, english is English-only. Mono batches pick the language first (1/3 each),
    # then a dataset holding it by size: in en big/small/english = 1/2, 1/4, 1/4; in de and zh 2/3, 1/3.
    # X-Y batches draw only the multilingual datasets (2/3, 1/3).
    examples = uniform_corpus(0, {"big": 4000, "small": 2000}) + [
        ExampleMeta(f"en-{i}", "english", frozenset({"en"})) for i in range(2000)
    ]
    batches = HybridBatchSampler(
        examples, batch_size=2, mono_probability=0.5, train_languages=["de", "en", "zh"], seed=2
    ).epoch_batches(0)
    # Per batch "small" loses at most 0.5*(1/3)*2 + 0.5*(1/3)*2 = 0.67 examples on average and "english"
    # 0.5*(1/3)*(1/4)*2: nothing runs out before ~3,000 batches, so the first 1,500 are full-distribution draws.
    prefix = batches[:1500]
    expected = {("mono", "en"): {"big": 0.5, "small": 0.25, "english": 0.25},
                ("mono", "de"): {"big": 2 / 3, "small": 1 / 3},
                ("mono", "zh"): {"big": 2 / 3, "small": 1 / 3},
                ("x-y", None): {"big": 2 / 3, "small": 1 / 3}}
    for (strategy, language), shares in expected.items():
        drawn = Counter(b.dataset for b in prefix if b.strategy == strategy
                        and language in (None, b.items[0].query_lang))
        n = sum(drawn.values())
        assert set(drawn) == set(shares)
        assert all(within_binomial(drawn[name], n, share) for name, share in shares.items()), drawn


def test_uniform_mixing_ignores_dataset_sizes():
    examples = uniform_corpus(0, {"big": 6000, "mid": 3000, "small": 1500})
    batches = HybridBatchSampler(
        examples, batch_size=2, mono_probability=1.0, train_languages=["en"], dataset_mixing="uniform", seed=9
    ).epoch_batches(0)
    # "small" fills 750 batches; at 1/3 of the draws it lasts ~2,250 batches, so the first 900 are uniform.
    drawn = Counter(b.dataset for b in batches[:900])
    assert all(within_binomial(drawn[name], 900, 1 / 3) for name in ("big", "mid", "small")), drawn
    # The epoch then goes on with the datasets left, until all are used up.
    assert len(batches) == (6000 + 3000 + 1500) // 2


# -- errors --------------------------------------------------------------------------------------------


GOOD = dict(batch_size=2, mono_probability=0.5, train_languages=["en", "de"])


@pytest.mark.parametrize(
    ("examples", "overrides", "message"),
    [
        (uniform_corpus(8), {"batch_size": 1}, "batch_size must be an integer >= 2"),
        (uniform_corpus(8), {"batch_size": 2.0}, "batch_size must be an integer >= 2"),
        (uniform_corpus(8), {"mono_probability": -0.1}, r"mono_probability must be a number in \[0, 1\]"),
        (uniform_corpus(8), {"mono_probability": 1.5}, r"mono_probability must be a number in \[0, 1\]"),
        (uniform_corpus(8), {"mono_probability": float("nan")}, r"mono_probability must be a number in \[0, 1\]"),
        (uniform_corpus(8), {"dataset_mixing": "by-size"}, "unknown dataset_mixing 'by-size'"),
        (uniform_corpus(8), {"seed": -1}, "seed must be a non-negative integer"),
        ([], {}, "no training examples"),
        (uniform_corpus(8), {"train_languages": []}, "train_languages must be a non-empty list"),
        (uniform_corpus(8), {"train_languages": ["en", "de", "th"]}, r"train language\(s\) th have no training"),
        (
            [ExampleMeta(f"q{i}", "english", frozenset({"en"})) for i in range(8)],
            {"train_languages": ["en"]},
            "no dataset can form an X-Y batch",
        ),
        (uniform_corpus(3), {"batch_size": 4, "mono_probability": 1.0},
         "not enough examples for one monolingual batch of 4 in every training language"),
        (
            uniform_corpus(40) + [ExampleMeta(f"th{i}", "d", frozenset({"th"})) for i in range(3)],
            {"train_languages": ["en", "de", "th"], "batch_size": 4},
            "th has 3 distinct questions",
        ),
        (
            [ExampleMeta("same", "d", frozenset({"en", "de"})) for _ in range(8)],
            {"mono_probability": 1.0},
            "has 1 distinct questions",
        ),
    ],
)
def test_invalid_arguments_are_rejected_with_a_clear_message(examples, overrides, message):
    with pytest.raises(HybridReproError, match=message):
        HybridBatchSampler(examples, **{**GOOD, **overrides})


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"epoch": 0}, "exactly the keys 'epoch' and 'step'"),
        ({"epoch": 0, "step": -1}, "'step' must be a non-negative integer"),
        ({"epoch": "1", "step": 0}, "'epoch' must be a non-negative integer"),
        ({"epoch": 0, "step": 10_000}, "past the end of epoch 0"),
    ],
)
def test_bad_sampler_state_is_rejected(state, message):
    sampler = HybridBatchSampler(uniform_corpus(16), **GOOD)
    with pytest.raises(HybridReproError, match=message):
        sampler.load_state_dict(state)
    assert sampler.state_dict() == {"epoch": 0, "step": 0}


def test_triplet_refs_index_the_examples_sequence():
    examples = uniform_corpus(10, languages=("en",))
    batch = HybridBatchSampler(examples, batch_size=5, mono_probability=1.0, train_languages=["en"]).epoch_batches(0)[0]
    assert all(isinstance(item, TripletRef) and 0 <= item.example < len(examples) for item in batch.items)
    assert batch.composition() == {"strategy": "mono", "dataset": "main", "language_pairs": {"en->en": 5}}

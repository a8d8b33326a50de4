"""LexiconTranslator: word order, adjective position, scripts, punctuation, names and numbers."""

import pytest

from hybrid_repro.config import TranslateConfig
from hybrid_repro.data.lexicon import Concept, Lexicon
from hybrid_repro.data.neural_translate import NeuralTranslator
from hybrid_repro.data.translate import LexiconTranslator, build_translator
from hybrid_repro.errors import HybridReproError

CONCEPTS = (
    Concept("fn.qword.when", "qword", "function"),
    Concept("fn.det.the", "det", "function"),
    Concept("fn.prep.in", "prep", "function"),
    Concept("t.adj.red", "adj", "topic0"),
    Concept("t.noun.bridge", "noun", "topic0"),
    Concept("t.verb.build", "verb", "topic0"),
)
FORMS = {
    "qen": (("when",), ("the",), ("in",), ("red", "crimson"), ("bridge",), ("builds", "erects")),
    "qde": (("wann",), ("der",), ("im",), ("rot",), ("brücke",), ("baut", "errichtet")),
    "qar": (("mata",), ("al",), ("fi",), ("ahmar",), ("jisr",), ("bana",)),
    "qzh": (("何",), ("这",), ("在",), ("红",), ("桥",), ("建", "造")),
    "qru": (("когда",), ("тот",), ("в",), ("красный",), ("мост",), ("строит",)),
}


@pytest.fixture
def translator():
    return LexiconTranslator(Lexicon(CONCEPTS, FORMS), "qen")


def test_svo_target_keeps_order_and_maps_every_word(translator):
    assert translator.translate(["Tarvo builds the red bridge in 1873."], "qen", "qru") == [
        "тарво строит тот красный мост в 1873."
    ]


def test_sov_target_moves_the_verb_to_the_end(translator):
    assert translator.translate(["Tarvo builds the red bridge in 1873."], "qen", "qde") == [
        "Tarvo der rot brücke im 1873 baut."
    ]


def test_vso_target_fronts_the_verb_after_a_question_word_and_puts_adjectives_after_nouns(translator):
    out = translator.translate(["Tarvo builds the red bridge.", "when builds the bridge?"], "qen", "qar")
    assert out == ["bana تارفو al jisr ahmar.", "mata bana al jisr؟"]


def test_unspaced_target_joins_words_and_uses_its_punctuation(translator):
    assert translator.translate(["when builds the bridge?", "the bridge in 1873."], "qen", "qzh") == [
        "何建这桥？",
        "这桥在1873。",
    ]


def test_synonym_variant_is_kept_modulo_the_target_variants(translator):
    out = translator.translate(["the crimson bridge erects", "the red bridge builds"], "qen", "qde")
    assert out == ["der rot brücke errichtet", "der rot brücke baut"]


def test_same_language_is_identity_and_order_is_preserved(translator):
    texts = ["the bridge.", "when builds the bridge?", "Tarvo"]
    assert translator.translate(texts, "qen", "qen") == texts
    assert len(translator.translate(texts * 3, "qen", "qru")) == 9


def test_wrong_source_or_unknown_target_is_an_error(translator):
    with pytest.raises(HybridReproError, match="from 'qen' only"):
        translator.translate(["x"], "qde", "qen")
    with pytest.raises(HybridReproError, match="knows: qen, qde"):
        translator.translate(["x"], "qen", "xx")
    with pytest.raises(HybridReproError, match="no words for 'qth'"):
        translator.translate(["x"], "qen", "qth")


def test_build_translator_matches_backend_to_corpus(tmp_path):
    lexicon = Lexicon(CONCEPTS, FORMS)
    lexicon_config = TranslateConfig(train_languages=("qen",), eval_languages=("qen",))
    assert isinstance(build_translator(lexicon_config, "synthetic", "qen", lexicon), LexiconTranslator)
    with pytest.raises(HybridReproError, match="only translates the synthetic corpus"):
        build_translator(lexicon_config, "wikipedia", "en", None)
    nllb_config = TranslateConfig(backend="nllb", model_revision="a" * 40, train_languages=("en",),
                                  eval_languages=("en",), cache_dir=tmp_path)
    with pytest.raises(HybridReproError, match="set translate.backend: lexicon"):
        build_translator(nllb_config, "synthetic", "qen", lexicon)
    hf = build_translator(nllb_config, "wikipedia", "en", None)
    assert isinstance(hf, NeuralTranslator) and hf.engine.revision == "a" * 40
    assert hf.engine.model_name == "facebook/nllb-200-distilled-600M"


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"backend": "nllb"}, "needs model_revision"),
        ({"backend": "lexicon", "model_revision": "abc"}, "only used by the nllb, m2m100 and marian"),
        ({"backend": "nllb", "model_revision": "main"}, "'main' must be a full 40-character commit hash"),
        ({"backend": "m2m100", "model_revision": "A" * 40}, "must be a full 40-character commit hash"),
        ({"backend": "marian", "model_revision": "a" * 40}, "needs model_name"),
        ({"backend": "lexicon", "engine": "ctranslate2"}, "engine is only used"),
    ],
)
def test_config_pairs_backend_and_revision(settings, expected):
    with pytest.raises(ValueError, match=expected):
        TranslateConfig(train_languages=("qen",), eval_languages=("qen",), **settings)

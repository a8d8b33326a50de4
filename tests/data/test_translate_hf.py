"""Neural translation, offline: real M2M-100 and Marian tokenizers built from a sentencepiece model
trained in the test, tiny random seq2seq models, and a recording engine for the batching rules."""

import importlib.util
import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest
import transformers
import yaml
from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as M2M_CODES
from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as NLLB_CODES

from hybrid_repro.config import TranslateConfig, params_from_dict
from hybrid_repro.data.mt_engines import CTranslate2Engine, Decoding, TransformersEngine
from hybrid_repro.data.mt_families import FAMILIES, model_family
from hybrid_repro.data.neural_translate import NeuralTranslator
from hybrid_repro.data.translate import build_neural_translator
from hybrid_repro.data.translation_cache import TranslationCache
from hybrid_repro.errors import HybridReproError
from hybrid_repro.stages.data import run_data
from hybrid_repro.stages.translate import run_translate
from tiny_mt_models import build_m2m100, build_marian, build_nllb

REVISION = "0123456789abcdef0123456789abcdef01234567"
OUR_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")


@pytest.fixture(scope="module")
def m2m_dir(tmp_path_factory):
    return build_m2m100(tmp_path_factory.mktemp("m2m") / "model")


@pytest.fixture(scope="module")
def nllb_dir(tmp_path_factory):
    return build_nllb(tmp_path_factory.mktemp("nllb") / "model")


@pytest.fixture(scope="module")
def marian_dir(tmp_path_factory):
    return build_marian(tmp_path_factory.mktemp("marian") / "model")


def _config(tmp_path, **settings) -> TranslateConfig:
    """Short outputs keep the random models' beam search to a few steps."""
    return TranslateConfig(model_revision=REVISION, train_languages=("en",), eval_languages=("en",),
                           cache_dir=tmp_path / "cache", max_length_ratio=0.25, max_length_extra=2, **settings)


# -- the code table -------------------------------------------------------------------------------


def test_every_language_has_a_code_the_model_family_defines():
    assert set(FAMILIES["nllb"].codes) == set(FAMILIES["m2m100"].codes) == set(OUR_LANGUAGES)
    assert {FAMILIES["nllb"].code(lang) for lang in OUR_LANGUAGES} <= set(NLLB_CODES)
    assert {FAMILIES["m2m100"].code(lang) for lang in OUR_LANGUAGES} <= set(M2M_CODES["m2m100"])
    nllb = FAMILIES["nllb"]
    assert [nllb.target_token(lang) for lang in ("ar", "zh", "th", "hi")] == ["arb_Arab", "zho_Hans", "tha_Thai",
                                                                             "hin_Deva"]
    # M2M-100's tokenizer takes the bare code as src_lang and adds the underscores to the target token.
    assert FAMILIES["m2m100"].code("en") == "en" and FAMILIES["m2m100"].target_token("de") == "__de__"
    marian = FAMILIES["marian"]
    assert marian.target_token("zh") == ">>cmn_Hans<<" and marian.source_text("Hi.", "de") == ">>deu<< Hi."
    assert FAMILIES["nllb"].source_text("Hi.", "de") == "Hi."
    with pytest.raises(HybridReproError, match="no code for language 'qen'"):
        nllb.code("qen")
    with pytest.raises(HybridReproError, match="unknown translation backend 'opus'"):
        model_family("opus")


# -- the real tokenizers and tiny models ----------------------------------------------------------


def test_m2m100_tokenizer_takes_bare_codes(m2m_dir):
    tokenizer = transformers.AutoTokenizer.from_pretrained(m2m_dir)
    assert type(tokenizer).__name__ == "M2M100Tokenizer"
    tokenizer.src_lang = FAMILIES["m2m100"].code("en")
    assert tokenizer("The bridge.")["input_ids"][0] == tokenizer.convert_tokens_to_ids("__en__")
    with pytest.raises(KeyError):
        tokenizer.src_lang = "__en__"  # what the backend passed before: transformers refuses it


@pytest.mark.parametrize("backend, model", [("m2m100", "m2m_dir"), ("nllb", "nllb_dir"), ("marian", "marian_dir")])
def test_tiny_models_translate_deterministically_in_order(request, tmp_path, backend, model):
    path = request.getfixturevalue(model)
    texts = ["Where is the red house? The bridge was built.", "Cats sleep.", "", "Where is the red house?"]
    outputs = []
    for run in range(2):
        config = _config(tmp_path / str(run), backend=backend, model_name=str(path), num_beams=2, batch_size=2)
        translator = build_neural_translator(config, progress=False)
        translator.check_targets(["de"])
        outputs.append(translator.translate(texts, "en", "de"))
        assert translator.stats.unique_sentences == 3 and translator.stats.translated == 3
    assert outputs[0] == outputs[1]
    first, _, empty, fourth = outputs[0]
    assert empty == "" and all(isinstance(text, str) for text in outputs[0])
    assert first.startswith(fourth + " ")  # the shared first sentence is translated once and reused


@pytest.mark.parametrize("backend, model, missing", [("nllb", "nllb_dir", "tha_Thai"), ("marian", "marian_dir", ">>tha<<")])
def test_missing_target_token_is_refused_before_translating(request, tmp_path, backend, model, missing):
    path = request.getfixturevalue(model)
    translator = build_neural_translator(_config(tmp_path, backend=backend, model_name=str(path)))
    translator.check_targets(["de", "zh"])
    with pytest.raises(HybridReproError, match=f"no vocabulary token for {missing}.*cannot translate into th"):
        translator.check_targets(["de", "th"])
    assert translator.engine._model is None  # nothing was loaded, so nothing was translated


def test_long_sources_are_cut_and_counted(m2m_dir, tmp_path):
    decoding = Decoding(num_beams=1, max_input_tokens=8)
    engine = TransformersEngine(FAMILIES["m2m100"], str(m2m_dir), REVISION, decoding, device="cpu")
    ids, truncated = engine.encode(["Dr. Smith lives near the river and the bridge.", "Hi."], "en", "de")
    assert truncated == 1 and len(ids[0]) == 8 and ids[0][-1] == engine.tokenizer.eos_token_id
    assert ids[0][0] == engine.tokenizer.convert_tokens_to_ids("__en__")
    assert decoding.max_new_tokens(10) == 30 and Decoding(max_length_ratio=1.5).max_new_tokens(3) == 15


@pytest.mark.skipif(importlib.util.find_spec("ctranslate2") is None,
                    reason="ctranslate2 is not installed (optional extra: pip install -e '.[ct2]')")
@pytest.mark.parametrize("backend, model", [("m2m100", "m2m_dir"), ("nllb", "nllb_dir"), ("marian", "marian_dir")])
def test_ctranslate2_engine_converts_once_and_translates(request, tmp_path, backend, model):
    path = str(request.getfixturevalue(model))
    config = _config(tmp_path, backend=backend, model_name=path, engine="ctranslate2", num_beams=2)
    translator = build_neural_translator(config, progress=False)
    assert isinstance(translator.engine, CTranslate2Engine)
    texts = ["Where is the red house? Cats sleep.", "The bridge was built in 1990."]
    out = translator.translate(texts, "en", "de")
    assert len(out) == 2 and all(isinstance(text, str) for text in out) and translator.stats.translated == 3
    model_bin = translator.engine.converted_path() / "model.bin"
    stamp = model_bin.stat().st_mtime_ns
    again = build_neural_translator(config, progress=False)
    assert len(again.translate(texts, "en", "zh")) == 2 and model_bin.stat().st_mtime_ns == stamp  # converted once
    # The engine is part of the cache key: the transformers engine does not reuse these entries.
    hf = build_neural_translator(_config(tmp_path, backend=backend, model_name=path, num_beams=2), progress=False)
    hf.translate(texts, "en", "de")
    assert hf.stats.cache_hits == 0


def test_ctranslate2_engine_without_the_package_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # import fails as if not installed
    with pytest.raises(HybridReproError, match=r"needs the ctranslate2 package: pip install -e '\.\[ct2\]'"):
        build_neural_translator(_config(tmp_path, backend="nllb", engine="ctranslate2"))


@pytest.mark.skipif(importlib.util.find_spec("ctranslate2") is None, reason="ctranslate2 is not installed")
def test_failed_conversion_is_a_clear_error_and_leaves_nothing(tmp_path):
    engine = CTranslate2Engine(FAMILIES["nllb"], str(tmp_path / "absent"), REVISION, Decoding(), tmp_path / "ct2")
    with pytest.raises(HybridReproError, match="CTranslate2 cannot convert .*absent@0123"):
        engine.convert()
    assert not any((tmp_path / "ct2").rglob("*.partial"))


# -- batching, dedup, sentence split and the cache, with a recording engine ----------------------


class RecordingEngine:
    """Upper-cases each sentence, tagged with the target; records batches; can fail after N batches."""

    name = "recording"
    version = "1"

    def __init__(self, fail_after=None):
        self.batches = []
        self.fail_after = fail_after

    def check_targets(self, targets):
        pass

    def translate_batch(self, sentences, source_lang, target_lang):
        if self.fail_after is not None and len(self.batches) == self.fail_after:
            raise KeyboardInterrupt("injected")
        self.batches.append(list(sentences))
        return [f"{target_lang}:{s.upper()}" for s in sentences], 0


def _translator(engine, cache=None, batch_size=2):
    return NeuralTranslator(FAMILIES["nllb"], engine, cache, batch_size, progress=False)


def test_sentences_split_sorted_deduplicated_and_rejoined_in_order():
    engine = RecordingEngine()
    texts = ["Short one. A much longer second sentence here!", "Mid-size sentence.\nShort one.", "Short one."]
    out = _translator(engine).translate(texts, "en", "de")
    assert out == ["de:SHORT ONE. de:A MUCH LONGER SECOND SENTENCE HERE!", "de:MID-SIZE SENTENCE.\nde:SHORT ONE.",
                   "de:SHORT ONE."]
    flat = [s for batch in engine.batches for s in batch]
    assert sorted(flat) == sorted({"Short one.", "A much longer second sentence here!", "Mid-size sentence."})
    assert [len(s) for s in flat] == sorted((len(s) for s in flat), reverse=True)
    assert [len(b) for b in engine.batches] == [2, 1]


def test_unspaced_target_joins_sentences_without_spaces():
    assert _translator(RecordingEngine()).translate(["One. Two."], "en", "zh") == ["zh:ONE.zh:TWO."]


def test_same_language_is_returned_untouched():
    engine = RecordingEngine()
    assert _translator(engine).translate(["A. B."], "en", "en") == ["A. B."] and engine.batches == []


def _cache(tmp_path, **namespace):
    return TranslationCache(tmp_path / "cache.sqlite", {"model": "m", "revision": REVISION, **namespace})


def test_interrupted_translation_resumes_from_the_cache(tmp_path):
    texts = [f"Sentence number {i} is here." for i in range(7)]
    expected = _translator(RecordingEngine()).translate(texts, "en", "de")

    failing = _translator(RecordingEngine(fail_after=2), _cache(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        failing.translate(texts, "en", "de")
    assert failing.stats.translated == 4

    resumed_engine = RecordingEngine()
    resumed = _translator(resumed_engine, _cache(tmp_path))
    assert resumed.translate(texts, "en", "de") == expected
    assert resumed.stats.cache_hits == 4 and resumed.stats.translated == 3
    assert sum(map(len, resumed_engine.batches)) == 3

    rerun_engine = RecordingEngine()
    rerun = _translator(rerun_engine, _cache(tmp_path))
    assert rerun.translate(texts, "en", "de") == expected and rerun_engine.batches == []
    summary = rerun.stats.summary()
    assert summary["cache_hit_rate"] == 1.0 and summary["translated"] == 0 and summary["sentences_per_second"] is None


def test_cache_key_covers_language_pair_and_decoding(tmp_path):
    cache = _cache(tmp_path, decoding={"num_beams": 4})
    cache.store("en", "de", {"Hello.": "Hallo."})
    assert cache.lookup("en", "de", ["Hello.", "Bye."]) == {"Hello.": "Hallo."}
    assert cache.lookup("en", "es", ["Hello."]) == {}
    assert _cache(tmp_path, decoding={"num_beams": 5}).lookup("en", "de", ["Hello."]) == {}
    cache.close()
    assert _cache(tmp_path, decoding={"num_beams": 4}).lookup("en", "de", ["Hello."]) == {"Hello.": "Hallo."}


def test_engine_returning_too_few_translations_is_an_error():
    class Short(RecordingEngine):
        def translate_batch(self, sentences, source_lang, target_lang):
            return ["x"], 0

    with pytest.raises(HybridReproError, match="returned 1 translations for 2 sentences"):
        _translator(Short()).translate(["One here. Two there."], "en", "de")


def test_load_failure_becomes_a_clear_error(tmp_path):
    translator = build_neural_translator(_config(tmp_path, backend="nllb", model_name=str(tmp_path / "absent")))
    with pytest.raises(HybridReproError, match="cannot load the tokenizer of .*absent@0123"):
        translator.check_targets(["de"])


# -- the stage, end to end, on an English corpus with the tiny Marian model -----------------------

REPO = Path(__file__).resolve().parents[2]
TINY_CORPUS = {"n_topics": 4, "entities_per_topic": 2, "train_paragraphs": {"synth-qa": 6, "synth-faq": 2, "synth-kw": 2},
               "val_paragraphs": 2, "eval_articles": 1, "paragraphs_per_article": 2}


@pytest.fixture(scope="module")
def english_source(tmp_path_factory, in_basetemp):
    """A small source corpus relabelled as English text of a non-synthetic kind."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(synthetic=TINY_CORPUS, out_dir=os.path.relpath(tmp_path_factory.mktemp("english") / "source"))
    params = params_from_dict(raw)
    run_data(params)
    manifest_path = params.data.out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.update(kind="fixture", source_language="en")
    manifest_path.write_text(json.dumps(manifest))
    return params.data.out_dir


def _stage_params(tmp_path, source, model_dir, **translate):
    """Params for the stage on ``source``; paths are relative to pytest's base temporary folder, the working
    directory of these tests (``in_basetemp``, through ``english_source``), as output paths must be."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["out_dir"] = os.path.relpath(source)
    raw["translate"] = {
        "backend": "marian", "model_name": str(model_dir), "model_revision": REVISION, "num_beams": 1,
        "batch_size": 64, "max_length_ratio": 0.25, "max_length_extra": 2, "train_languages": ["en", "de"],
        "eval_languages": ["en", "de", "zh"], "cache_dir": str(tmp_path / "cache"),
        "out_dir": os.path.relpath(tmp_path / "translated"), "metrics_path": os.path.relpath(tmp_path / "translate.json"),
        **translate,
    }
    return params_from_dict(raw)


def test_stage_reports_throughput_cache_and_language_checks(english_source, marian_dir, tmp_path):
    params = _stage_params(tmp_path, english_source, marian_dir, langid={"max_wrong_rate": 1.0, "min_chars": 1})
    run_translate(params)
    metrics = json.loads(params.translate.metrics_path.read_text())
    assert metrics["engine"]["name"] == "transformers"
    first = metrics["translation"]
    assert first["translated"] == first["unique_sentences"] > 0 and first["cache_hits"] == 0
    assert first["sentences_per_second"] > 0
    langid = metrics["langid"]
    assert set(langid) == {"synth-qa", "synth-kw", "synth-r"}  # synth-faq is English only: nothing translated
    assert set(langid["synth-r"]) == {"de", "zh"} and set(langid["synth-qa"]) == {"de"}
    assert all(0 <= entry["wrong_rate"] <= 1 and entry["checked"] > 0 for per in langid.values() for entry in per.values())
    output = {p.name: p.read_bytes() for p in params.translate.out_dir.rglob("*") if p.is_file()}

    run_translate(params)
    again = json.loads(params.translate.metrics_path.read_text())["translation"]
    assert again["translated"] == 0 and again["cache_hit_rate"] == 1.0
    assert {p.name: p.read_bytes() for p in params.translate.out_dir.rglob("*") if p.is_file()} == output


def test_stage_fails_on_wrong_language_output_and_writes_nothing(english_source, marian_dir, tmp_path):
    params = _stage_params(tmp_path, english_source, marian_dir, langid={"max_wrong_rate": 0.0, "min_chars": 1})
    with pytest.raises(HybridReproError, match=r"wrong language above translate.langid.max_wrong_rate.*synth-r/de"):
        run_translate(params)
    assert not params.translate.out_dir.exists() and not params.translate.metrics_path.exists()


def test_stage_refuses_a_target_the_model_lacks_before_translating(english_source, marian_dir, tmp_path):
    params = _stage_params(tmp_path, english_source, marian_dir, eval_languages=["en", "de", "th"])
    with pytest.raises(HybridReproError, match="no vocabulary token for >>tha<<"):
        run_translate(params)
    assert not params.translate.out_dir.exists()
    with sqlite3.connect(params.translate.cache_dir / "translations.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM translations").fetchone() == (0,)


def test_a_full_translation_cache_is_one_line_and_keeps_what_it_stored(tmp_path):
    """SQLite's own 'database or disk is full' (a page limit stands in for the disk): named, with what to do."""
    cache = TranslationCache(tmp_path / "cache.sqlite", {"model": "m"})
    cache.store("en", "de", {"a house": "ein Haus"})
    cache._db.execute("PRAGMA max_page_count = 2")
    with pytest.raises(HybridReproError, match=r"cannot write the translation cache .*cache\.sqlite: database or disk "
                                               r"is full; free space there"):
        cache.store("en", "de", {f"sentence {i} " * 50: f"Satz {i}" for i in range(200)})
    assert cache.lookup("en", "de", ["a house"]) == {"a house": "ein Haus"}
    cache.close()

"""`translate-pair` on a paper corpus of fixture shards with two machine-translated datasets (WikiQA, DuoRC): one
pair fills the translation cache and writes its receipt, the translate stage then finds exactly that pair's
sentences there and writes what it writes without the pair; a pair failing its language check fails alone; each
refusal names what to fix.

The real path runs a tiny random M2M-100 (tests/tiny_mt_models.py), whose every output is the same gibberish; where a
test needs each sentence's translation to differ, ReversingEngine stands in for the model behind the real
NeuralTranslator and cache."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from paper_sources_fixture import FIXTURE_PAIRS, REPO, mini_profile_on_fixtures, with_stand_ins, write_fixture_sources
from tiny_mt_models import ReversingEngine, build_m2m100

from hybrid_repro.cli import cli
from hybrid_repro.config import load_params, params_from_dict, read_params_mapping
from hybrid_repro.data.jsonl import read_jsonl
from hybrid_repro.data.mt_families import model_family
from hybrid_repro.data.neural_translate import NeuralTranslator
from hybrid_repro.data.sentences import split_sentences
from hybrid_repro.data.source_corpus import TEXT_FIELDS
from hybrid_repro.data.translation_cache import TranslationCache
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import sha256_file
from hybrid_repro.sources.specs import RawPair
from hybrid_repro.stages import translate as translate_stage
from hybrid_repro.stages import translate_pair as translate_pair_stage
from hybrid_repro.stages.data import run_data
from hybrid_repro.stages.translate import run_translate
from hybrid_repro.stages.translate_pair import receipt_path, run_translate_pair

# Two questions per passage (a passage's sentences are translated once) and passages of two sentences.
DUORC_PAIRS = [RawPair(f"D{i}", f"Why does the ship number {i} leave the harbour?",
                       f"Ship {i // 2} leaves at dawn. The harbour closes at night.") for i in range(4)]
PAIRS = {**FIXTURE_PAIRS, "duorc": DUORC_PAIRS}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """``data/source`` assembled from the fixture shards plus DuoRC, and the raw params (tiny M2M-100), built once."""
    root = tmp_path_factory.mktemp("pairs")
    raw = mini_profile_on_fixtures(build_m2m100(root / "m2m"))
    raw["sources"]["datasets"]["duorc"] = with_stand_ins(read_params_mapping(REPO / "profiles" / "mini.yaml"))[
        "sources"]["datasets"]["duorc"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        params = params_from_dict(raw)
        write_fixture_sources(params.sources, params.seed, PAIRS)
        run_data(params)
    return root, raw


@pytest.fixture
def workspace(corpus, tmp_path, monkeypatch):
    """A working directory of the test's own with a copy of ``data/source``; returns a params builder."""
    root, raw = corpus
    shutil.copytree(root / "data" / "source", tmp_path / "data" / "source")
    monkeypatch.chdir(tmp_path)

    def params(**translate):
        changed = json.loads(json.dumps(raw))
        changed["translate"].update(translate)
        return params_from_dict(changed)

    return params


def _reversing(monkeypatch: pytest.MonkeyPatch) -> None:
    """ReversingEngine behind a fresh NeuralTranslator (with the real cache in translate.cache_dir) for every call of
    either stage."""
    def build(config, *args):
        namespace = {"model": "reversing", "revision": "", "engine": "reversing", "engine_version": "1",
                     "decoding": {}}
        cache = TranslationCache(config.cache_dir / "translations.sqlite", namespace)
        return NeuralTranslator(model_family("m2m100"), ReversingEngine(), cache, batch_size=4, progress=False)

    for stage in (translate_stage, translate_pair_stage):
        monkeypatch.setattr(stage, "build_translator", build)


def _receipt(dataset: str, language: str) -> dict:
    return json.loads(receipt_path(dataset, language).read_text())


def _pair_sentences(dataset: str) -> list[str]:
    """Every sentence of every text of ``dataset``'s examples in data/source, in file order."""
    return [sentence for example in read_jsonl(Path("data/source/train.jsonl")) if example["dataset"] == dataset
            for field in TEXT_FIELDS for sentence in split_sentences(example[field], "en").sentences]


def _tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): sha256_file(p) for p in sorted(path.rglob("*")) if p.is_file()}


# The tiny model never ends a sentence: every output runs to the batch's length budget, ceil(max_length_ratio x
# the longest source in the batch) + max_length_extra, which the pair's batches (one dataset) and the translate
# stage's (every dataset) would set differently. A ratio this small makes the budget 1 + extra in every batch, so
# that a difference could only come from the batches' padding.
BATCH_FREE_BUDGET = {"max_length_ratio": 0.01}


def test_a_pair_fills_the_cache_that_the_translate_stage_then_reads_for_exactly_its_sentences(workspace):
    params = workspace(**BATCH_FREE_BUDGET)
    path = run_translate_pair(params, "wikiqa", "de")
    assert path == Path("data/translations/wikiqa/de.json")
    receipt = _receipt("wikiqa", "de")
    distinct = len(set(_pair_sentences("wikiqa")))
    assert (receipt["dataset"], receipt["language"], receipt["source_language"]) == ("wikiqa", "de", "en")
    assert receipt["examples"] == len(FIXTURE_PAIRS["wikiqa"])
    translation = receipt["translation"]
    assert (translation["unique_sentences"], translation["cache_hits"], translation["translated"]) == (distinct, 0,
                                                                                                     distinct)
    assert translation["seconds"] > 0 and translation["sentences_per_second"] > 0
    assert receipt["translator"] == {
        "backend": "m2m100", "model": params.translate.model_name, "revision": params.translate.model_revision,
        "engine": "transformers", "engine_version": receipt["translator"]["engine_version"],
        "decoding": {"num_beams": 1, "max_length_ratio": 0.01, "max_length_extra": 2, "max_input_tokens": 512}}
    assert receipt["translator"]["engine_version"].startswith("transformers ")
    assert len(receipt["sha256"]) == 64

    run_translate(params)
    metrics = json.loads(params.translate.metrics_path.read_text())
    # Every sentence of the pair, and no other, came from the cache; the check saw what the pair's check saw.
    assert metrics["translation"]["cache_hits"] == distinct
    assert metrics["langid"]["wikiqa"]["de"] == receipt["langid"]
    with_pair = _tree(params.translate.out_dir)

    # The same stage without the pair stage, into an empty cache: the same bytes.
    shutil.rmtree(params.translate.out_dir)
    run_translate(workspace(**BATCH_FREE_BUDGET, cache_dir="other-cache"))
    assert _tree(params.translate.out_dir) == with_pair
    assert json.loads(params.translate.metrics_path.read_text())["translation"]["cache_hits"] == 0

    # Run again, the pair is served whole by the cache and its translations are unchanged.
    run_translate_pair(params, "wikiqa", "de")
    again = _receipt("wikiqa", "de")
    assert (again["translation"]["cache_hits"], again["translation"]["translated"]) == (distinct, 0)
    assert again["translation"]["cache_hit_rate"] == 1.0 and again["sha256"] == receipt["sha256"]


def test_the_digest_covers_each_sentence_and_its_translation_and_changes_with_one(workspace, monkeypatch):
    _reversing(monkeypatch)
    params = workspace()
    run_translate_pair(params, "duorc", "ru")
    expected = hashlib.sha256()
    for sentence in _pair_sentences("duorc"):
        expected.update(json.dumps([sentence, f"[ru] {sentence[::-1]}"], ensure_ascii=False).encode() + b"\n")
    receipt = _receipt("duorc", "ru")
    assert receipt["sha256"] == expected.hexdigest()
    # Two questions share each passage, translated once.
    assert receipt["translation"]["unique_sentences"] == len(set(_pair_sentences("duorc"))) < len(
        _pair_sentences("duorc"))

    cache = TranslationCache(params.translate.cache_dir / "translations.sqlite",
                             {key: value for key, value in receipt["translator"].items() if key != "backend"})
    first = _pair_sentences("duorc")[0]
    cache.store("en", "ru", {first: "another translation"})
    cache.close()
    run_translate_pair(params, "duorc", "ru")
    changed = _receipt("duorc", "ru")
    assert changed["translation"]["translated"] == 0 and changed["sha256"] != receipt["sha256"]


def test_output_with_pairs_equals_output_without_when_each_sentence_translates_differently(workspace, monkeypatch):
    _reversing(monkeypatch)
    params = workspace(low_resource={"th": 0.5})
    for dataset, language in (("wikiqa", "th"), ("duorc", "zh"), ("duorc", "th")):
        run_translate_pair(params, dataset, language)
    run_translate(params)
    with_pairs = _tree(params.translate.out_dir)
    hits = json.loads(params.translate.metrics_path.read_text())["translation"]["cache_hits"]
    assert hits == sum(_receipt(d, lang)["translation"]["unique_sentences"]
                       for d, lang in (("wikiqa", "th"), ("duorc", "zh"), ("duorc", "th")))
    shutil.rmtree(params.translate.out_dir)
    run_translate(workspace(low_resource={"th": 0.5}, cache_dir="other-cache"))
    assert _tree(params.translate.out_dir) == with_pairs
    # A low-resource language: the pair holds the same seeded share of the dataset as data/translated.
    counts = json.loads((params.translate.out_dir / "manifest.json").read_text())["counts"]["train"]
    assert _receipt("wikiqa", "th")["examples"] == counts["wikiqa"]["th"] == 3
    assert _receipt("duorc", "th")["examples"] == counts["duorc"]["th"] == 2


def test_a_pair_without_examples_is_recorded_with_nothing_checked(workspace, monkeypatch):
    _reversing(monkeypatch)
    # round(0.1 * 4) = 0 of DuoRC's examples stay in Thai (WikiQA keeps round(0.1 * 6) = 1).
    run_translate_pair(workspace(low_resource={"th": 0.1}), "duorc", "th")
    receipt = _receipt("duorc", "th")
    assert receipt["examples"] == 0 and receipt["translation"]["unique_sentences"] == 0
    assert receipt["langid"] == {"checked": 0, "wrong": 0, "wrong_rate": None, "detected_instead": {}}


def test_a_pair_above_the_wrong_language_threshold_fails_alone_and_leaves_no_receipt(workspace):
    run_translate_pair(workspace(), "wikiqa", "ar")  # the fixture's threshold (1.0) lets the gibberish through
    before = receipt_path("wikiqa", "ar").read_bytes()
    strict = workspace(langid={"max_wrong_rate": 0.1})
    with pytest.raises(HybridReproError, match=r"wikiqa -> de: translations in the wrong language .*wikiqa/de: "
                                               r"100\.0%.*No receipt written"):
        run_translate_pair(strict, "wikiqa", "de")
    assert not receipt_path("wikiqa", "de").exists()
    assert receipt_path("wikiqa", "ar").read_bytes() == before


@pytest.mark.parametrize("dataset, language, expected", [
    ("mrtydi", "de", r"dataset 'mrtydi' is not machine-translated \(origin 'source-only', role 'train'\): "
                     r"translate-pair translates the machine-translated training datasets of data/source: wikiqa, duorc"),
    ("mmarco", "de", r"dataset 'mmarco' is not machine-translated \(origin 'released'"),
    ("squadshifts", "de", r"'squadshifts' is not machine-translated \(origin 'source-only', role 'validation'\)"),
    ("newsqa", "de", r"dataset 'newsqa' is not in data/source: .*machine-translated training datasets"),
    ("wikiqa", "fr", r"language 'fr' is not in translate.train_languages \(en, ar, zh, de, es, ru, hi, th, tr\)"),
    ("wikiqa", "en", r"'en' is the source language of the corpus: .*nothing to translate"),
], ids=["source-only", "released", "validation", "not-fetched", "not-a-training-language", "source-language"])
def test_refusals_name_what_to_fix_before_any_translation(workspace, dataset, language, expected):
    params = workspace()
    with pytest.raises(HybridReproError, match=expected):
        run_translate_pair(params, dataset, language)
    assert not Path("data/translations").exists() and not params.translate.cache_dir.exists()


def test_a_corpus_other_than_the_papers_is_refused(workspace, tmp_path):
    demo = load_params(REPO / "params.yaml")
    with pytest.raises(HybridReproError, match="paper corpus only .*data.source is 'synthetic'.*hybrid-repro "
                                               "translate"):
        run_translate_pair(demo, "wikiqa", "qde")
    # data.source paper, but data/source still holds another corpus (the data stage has not run since).
    shutil.rmtree("data/source")
    run_data(demo)
    with pytest.raises(HybridReproError, match="holds a 'synthetic' corpus, not the paper corpus .*hybrid-repro data"):
        run_translate_pair(workspace(), "wikiqa", "de")


def test_the_command_reports_a_refusal_in_one_line_with_exit_status_2(workspace, tmp_path):
    params_file = tmp_path / "paper-params.yaml"
    params_file.write_text(yaml.safe_dump(workspace().model_dump(mode="json"), sort_keys=False))
    result = CliRunner().invoke(cli, ["translate-pair", "--params", str(params_file), "--dataset", "mrtydi",
                                      "--language", "de"])
    assert result.exit_code == 2
    assert result.output.startswith("error: dataset 'mrtydi' is not machine-translated") and result.output.count(
        "\n") == 1


def test_a_pair_leaves_released_jsonl_alone_which_the_translate_stage_still_verifies(workspace, monkeypatch):
    """mMARCO's released records are not a pair's to translate: a pair neither hashes nor reads them (at the paper's
    scale ~250 GB per pair), while the translate stage, which passes them through, still refuses a corrupt file."""
    _reversing(monkeypatch)
    params = workspace()
    released = Path("data/source/released.jsonl")
    released.write_bytes(released.read_bytes().replace(b'"mmarco', b'"MMARCO', 1))
    run_translate_pair(params, "wikiqa", "de")
    assert _receipt("wikiqa", "de")["examples"] == len(FIXTURE_PAIRS["wikiqa"])
    with pytest.raises(HybridReproError, match="released.jsonl does not match the checksum"):
        run_translate(params)

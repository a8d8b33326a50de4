"""`data.source: paper`: fixture shards of four kinds of source -> data stage -> translate stage (tiny M2M-100),
with the mini profile's languages: what is translated, kept in English, passed through or held for validation."""

import itertools
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator

import pytest
from paper_sources_fixture import (FIXTURE_PAIRS, MMARCO_LANGUAGES, MMARCO_TRIPLES, MMARCO_WITHOUT_GERMAN,
                                   mini_profile_on_fixtures, mmarco_text, write_fixture_sources)
from tiny_mt_models import build_m2m100

from hybrid_repro.config import params_from_dict
from hybrid_repro.data.jsonl import read_jsonl
from hybrid_repro.data.paper_corpus import released_records
from hybrid_repro.data.source_corpus import answer_negative_share
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import sha256_file
from hybrid_repro.sources.files import triple_source_id
from hybrid_repro.sources.shards import iter_shard_rows, write_source
from hybrid_repro.sources.specs import SPECS, RawPair, passage_id
from hybrid_repro.stages.data import run_data
from hybrid_repro.stages.translate import run_translate


def tree_digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): sha256_file(p) for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The two stages run once, from a folder of their own (the profile's paths are relative)."""
    root = tmp_path_factory.mktemp("paper")
    raw = mini_profile_on_fixtures(build_m2m100(root / "m2m"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        params = params_from_dict(raw)
        write_fixture_sources(params.sources, params.seed)
        run_data(params)
        run_translate(params)
        yield params, root


@pytest.fixture(scope="module")
def train(built):
    params, root = built
    return read_jsonl(root / params.translate.out_dir / "train.jsonl")


def _of(records, dataset):
    return [record for record in records if record["dataset"] == dataset]


def test_qa_sets_to_translate_reach_every_training_language(built, train):
    params, _ = built
    wikiqa = _of(train, "wikiqa")
    assert len(wikiqa) == len(FIXTURE_PAIRS["wikiqa"])
    for record, pair in zip(wikiqa, FIXTURE_PAIRS["wikiqa"]):
        assert list(record["texts"]) == list(params.translate.train_languages)
        assert record["texts"]["en"]["query"] == pair.query and record["texts"]["en"]["positive"] == pair.positive
        assert all(texts["query"] for texts in record["texts"].values())


def test_english_only_sets_stay_in_english(train):
    mrtydi = _of(train, "mrtydi")
    assert len(mrtydi) == len(FIXTURE_PAIRS["mrtydi"]) and all(list(r["texts"]) == ["en"] for r in mrtydi)
    assert [r["texts"]["en"]["negative"] for r in mrtydi] == [pair.negative for pair in FIXTURE_PAIRS["mrtydi"]]


def test_mmarco_rows_pass_through_verbatim_in_every_language_they_have(built, train):
    params, root = built
    mmarco = _of(train, "mmarco")
    assert [record["id"] for record in mmarco] == [f"mmarco/{line}" for line in range(len(MMARCO_TRIPLES))]
    for line, (record, (query, positive, negative)) in enumerate(zip(mmarco, MMARCO_TRIPLES)):
        languages = [lang for lang in MMARCO_LANGUAGES if not (lang == "de" and line == MMARCO_WITHOUT_GERMAN)]
        assert record["texts"] == {lang: {"query": mmarco_text("query", query, lang),
                                          "positive": mmarco_text("passage", positive, lang),
                                          "negative": mmarco_text("passage", negative, lang)} for lang in languages}
    # Never machine-translated, nor checked as if it were: the language check covers the translated sets only.
    metrics = json.loads((root / params.translate.metrics_path).read_text())
    assert set(metrics["langid"]) == {"wikiqa"}


def test_released_languages_outside_the_training_languages_are_left_out(built, tmp_path, monkeypatch):
    params, root = built
    shutil.copytree(root / params.data.out_dir, tmp_path / params.data.out_dir)
    monkeypatch.chdir(tmp_path)
    raw = params.model_dump(mode="json")
    raw["translate"]["train_languages"] = ["en", "ar"]
    run_translate(params_from_dict(raw))
    mmarco = _of(read_jsonl(tmp_path / params.translate.out_dir / "train.jsonl"), "mmarco")
    assert len(mmarco) == len(MMARCO_TRIPLES) and all(list(r["texts"]) == ["en", "ar"] for r in mmarco)


def test_passage_ids_are_shared_across_translations_and_questions_across_negatives(train):
    mmarco = _of(train, "mmarco")
    assert [r["positive_id"] for r in mmarco] == [passage_id("mmarco", str(p)) for _, p, _ in MMARCO_TRIPLES]
    assert [r["negative_id"] for r in mmarco] == [passage_id("mmarco", str(n)) for _, _, n in MMARCO_TRIPLES]
    # Triples 0 and 1 ask one question about one passage: one question id keeps them out of the same batch.
    assert mmarco[0]["question_id"] == mmarco[1]["question_id"] != mmarco[2]["question_id"]
    wikiqa = _of(train, "wikiqa")
    assert [r["positive_id"] for r in wikiqa] == [passage_id("wikiqa", p.positive) for p in FIXTURE_PAIRS["wikiqa"]]
    positives = {r["positive_id"] for r in wikiqa}
    assert all(r["negative_id"] in positives and r["negative_id"] != r["positive_id"] for r in wikiqa)
    assert len({r["id"] for r in train}) == len(train)


def test_validation_is_english_squadshifts(built):
    params, root = built
    val = read_jsonl(root / params.translate.out_dir / "val.jsonl")
    assert len(val) == len(FIXTURE_PAIRS["squadshifts"])
    assert all(r["dataset"] == "squadshifts" and list(r["texts"]) == ["en"] for r in val)


def test_manifests_record_origins_and_per_language_counts(built):
    params, root = built
    source = json.loads((root / params.data.out_dir / "manifest.json").read_text())
    assert source["kind"] == "paper" and source["source_language"] == "en"
    assert {name: (info["origin"], info["role"]) for name, info in source["datasets"].items()} == {
        "wikiqa": ("machine-translated", "train"), "mrtydi": ("source-only", "train"),
        "mmarco": ("released", "train"), "squadshifts": ("source-only", "validation")}
    assert set(source["inputs"]) == set(params.sources.datasets) and "eval.json" not in source["files"]
    translated = json.loads((root / params.translate.out_dir / "manifest.json").read_text())
    languages = params.translate.train_languages
    assert translated["counts"] == {
        "train": {"wikiqa": {lang: 6 for lang in languages}, "mrtydi": {"en": 4},
                  "mmarco": {"en": 5, "ar": 5, "de": 4}},
        "val": {"squadshifts": {"en": 4}}, "eval": {}}
    # No evaluation set is translated: the paper profiles evaluate on the fetched XQuAD-R / MLQA-R.
    assert translated["languages"]["eval"] == [] and not (root / params.translate.out_dir / "eval").exists()
    assert translated["datasets"]["mmarco"]["origin"] == "released"


EXPECTED = Path(__file__).parent / "paper_corpus_expected"


def test_the_streamed_corpus_is_byte_identical_to_the_in_memory_assembly(built):
    """``paper_corpus_expected`` holds what the stage wrote from these fixture shards when it read every source whole
    into memory: streaming changes no byte. Only the fetched manifests' sha256 in ``inputs`` may differ (they hash
    the Parquet shards, whose bytes depend on the pinned pyarrow), so they are compared with the files themselves."""
    params, root = built
    written = root / params.data.out_dir
    for name in ("train.jsonl", "val.jsonl", "released.jsonl"):
        assert (written / name).read_bytes() == (EXPECTED / name).read_bytes(), name
    expected = (EXPECTED / "manifest.json").read_text()
    for name, recorded in json.loads(expected)["inputs"].items():
        actual = sha256_file(root / params.sources.out_dir / name / "manifest.json")
        expected = expected.replace(recorded["manifest_sha256"], actual)
    assert (written / "manifest.json").read_text() == expected


# -- errors: each leaves the previous data/source exactly as it was --------------------------------


@pytest.fixture
def workspace(built, tmp_path, monkeypatch):
    """A copy of the fetched sources and the assembled corpus, for tests that break things."""
    params, root = built
    for folder in (params.sources.out_dir, params.data.out_dir):
        shutil.copytree(root / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    return params


def _corrupt_first_shard(directory: Path) -> None:
    shard = sorted(directory.glob("*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:-10])


def _edit_manifest(directory: Path, **changes) -> None:
    """Set (value) or drop (None) keys of a fetched source's manifest, as an older or other fetch left it."""
    manifest = json.loads((directory / "manifest.json").read_text())
    for key, value in changes.items():
        if value is None:
            manifest.pop(key)
        else:
            manifest[key] = value
    (directory / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("breakage, expected", [
    (shutil.rmtree, "source 'mrtydi' has not been fetched"),
    (_corrupt_first_shard, "source 'mrtydi' .* cannot be verified .* does not match"),
    (lambda d: _edit_manifest(d, revision="9" * 40),
     "fetched with {'revision': '9999999999.*but params give {'revision': '0000000000"),
    (lambda d: _edit_manifest(d, negatives="bm25"), "fetched with {'negatives': 'bm25'}, but params give .*'given'"),
    (lambda d: _edit_manifest(d, max_pairs=5), "fetched with {'max_pairs': 5}, but params give {'max_pairs': 2000}"),
    (lambda d: _edit_manifest(d, seed=99), "fetched with {'seed': 99}"),
    # A manifest from before max_pairs and seed were recorded cannot vouch for them: fetch again.
    (lambda d: _edit_manifest(d, max_pairs=None, seed=None), "lacks max_pairs, seed"),
    (lambda d: _edit_manifest(d, shards=None), "cannot be verified .* lacks shards"),
    (lambda d: _edit_manifest(d, pairs=None, negatives=None), "cannot be verified .* lacks negatives, pairs"),
    (lambda d: _edit_manifest(d, shards=[]), "'shards' must be a non-empty list"),
], ids=["missing", "corrupt-shard", "other-pin", "other-negatives", "other-max-pairs", "other-seed", "old-manifest",
        "no-shards", "no-pairs-negatives", "empty-shards"])
def test_a_missing_unverified_or_stale_source_names_its_fetch_stage(workspace, breakage, expected):
    before = tree_digest(workspace.data.out_dir)
    breakage(workspace.sources.out_dir / "mrtydi")
    with pytest.raises(HybridReproError, match=expected) as caught:
        run_data(workspace)
    assert "run `dvc repro pipelines/paper/dvc.yaml:source@mrtydi`" in str(caught.value)
    assert tree_digest(workspace.data.out_dir) == before
    assert sorted(p.name for p in workspace.data.out_dir.parent.iterdir()) == ["source", "sources"]


def _with_sources(params, **changes):
    """``params`` with ``sources.datasets`` changed: a dict updates a source's settings, None drops the source."""
    raw = params.model_dump(mode="json")
    for name, settings in changes.items():
        if settings is None:
            del raw["sources"]["datasets"][name]
        else:
            raw["sources"]["datasets"][name].update(settings)
    return params_from_dict(raw)


@pytest.mark.parametrize("changes, expected", [
    # The mini -> paper-xlmr switch: the 2,000-pair shards must not pass for the full source.
    ({"wikiqa": {"max_pairs": None}}, "fetched with {'max_pairs': 2000}, but params give {'max_pairs': None}"),
    ({"wikiqa": {"negatives": "random"}},
     "fetched with {'negatives': 'bm25'}, but params give {'negatives': 'random'}"),
], ids=["max-pairs", "negatives"])
def test_shards_fetched_with_other_params_are_stale(workspace, changes, expected):
    with pytest.raises(HybridReproError, match=expected):
        run_data(_with_sources(workspace, **changes))


def test_another_seed_makes_every_fetched_source_stale(workspace):
    raw = workspace.model_dump(mode="json")
    raw["seed"] += 1
    with pytest.raises(HybridReproError, match="fetched with {'seed': "):
        run_data(params_from_dict(raw))


@pytest.mark.parametrize("stale, recorded", [("wikiqa", 2000), ("squadshifts", 1000)], ids=["first", "last"])
def test_staleness_is_found_on_the_manifests_before_any_shard_is_hashed(workspace, monkeypatch, stale, recorded):
    # The last source's manifest too is read before the first source's shards stream into the output.
    hashed = []
    monkeypatch.setattr("hybrid_repro.sources.shards.sha256_file", lambda path: hashed.append(path) or "")
    with pytest.raises(HybridReproError, match=f"fetched with {{'max_pairs': {recorded}}}"):
        run_data(_with_sources(workspace, **{stale: {"max_pairs": 3}}))
    assert hashed == []


def test_rows_in_a_language_the_source_lacks_are_refused(workspace):
    directory = workspace.sources.out_dir / "mrtydi"
    shutil.rmtree(directory)
    directory.mkdir()
    settings = workspace.sources.datasets["mrtydi"]
    pairs = FIXTURE_PAIRS["mrtydi"] + [RawPair("de1", "Wer schrieb Buch 1?", "Buch 1 schrieb Dr. Smith.",
                                               language="de", negative="Katzen schlafen.")]
    write_source(directory, SPECS["mrtydi"], pairs, {"revision": settings.revision}, settings.negatives,
                 workspace.seed, shard_rows=4, max_pairs=settings.max_pairs)
    with pytest.raises(HybridReproError, match=r"holds rows in \['de'\], but mrtydi has only \['en'\]"):
        run_data(workspace)


def test_sources_without_validation_set_are_refused(workspace):
    with pytest.raises(HybridReproError, match="no validation source: add squadshifts"):
        run_data(_with_sources(workspace, squadshifts=None))


def test_sources_without_training_set_are_refused(workspace):
    with pytest.raises(HybridReproError, match="names no training source"):
        run_data(_with_sources(workspace, wikiqa=None, mrtydi=None, mmarco=None))


# -- mMARCO's released records --------------------------------------------------------------------


def _mmarco_rows(tmp_path: Path, pairs: list[RawPair]) -> dict[str, Iterator[dict]]:
    """``pairs`` through the shard writer and reader, as the data stage reads a fetched mMARCO: one stream of rows
    per language."""
    manifest = write_source(tmp_path, SPECS["mmarco"], pairs, {"revision": "0" * 40}, "given", 0, shard_rows=4,
                            max_pairs=None)
    return {language: iter_shard_rows(tmp_path, manifest, language) for language in manifest["pairs"]}


def test_a_training_language_found_only_in_released_records_is_trained_on(workspace):
    """English-only Mr. TyDi and mMARCO: Arabic has no example to translate, but mMARCO's released Arabic."""
    raw = _with_sources(workspace, wikiqa=None).model_dump(mode="json")
    raw["translate"]["train_languages"] = ["en", "ar"]
    params = params_from_dict(raw)
    run_data(params)
    run_translate(params)
    train = read_jsonl(params.translate.out_dir / "train.jsonl")
    assert {dataset: {lang for r in _of(train, dataset) for lang in r["texts"]} for dataset in ("mrtydi", "mmarco")} \
        == {"mrtydi": {"en"}, "mmarco": {"en", "ar"}}


def test_the_answer_negative_share_counts_the_released_records(built):
    params, root = built
    source = root / params.data.out_dir
    train, released = read_jsonl(source / "train.jsonl"), read_jsonl(source / "released.jsonl")
    share = json.loads((source / "manifest.json").read_text())["negatives_that_are_answers"]["train"]
    assert share == answer_negative_share(train + released) != answer_negative_share(train)


def test_a_triple_without_english_keeps_its_question_id_and_place(tmp_path):
    # Triple 1 asks triple 0's question (MS MARCO query 0); its English row is missing.
    pairs = [pair for pair in FIXTURE_PAIRS["mmarco"]
             if not (pair.language == "en" and pair.source_id == triple_source_id(1, "0"))]
    records = list(released_records(SPECS["mmarco"], _mmarco_rows(tmp_path, pairs)))
    assert [record["id"] for record in records] == [f"mmarco/{line}" for line in range(len(MMARCO_TRIPLES))]
    assert list(records[1]["texts"]) == ["ar", "de"]
    assert records[1]["question_id"] == records[0]["question_id"] != records[2]["question_id"]


def test_a_triple_naming_other_passages_in_another_language_is_refused(tmp_path):
    pairs = [replace(pair, passage_key="99") if pair.language == "ar" and pair.source_id == triple_source_id(2, "1")
             else pair for pair in FIXTURE_PAIRS["mmarco"]]
    with pytest.raises(HybridReproError, match="triple 2 names another query or other passages in ar than in en"):
        list(released_records(SPECS["mmarco"], _mmarco_rows(tmp_path, pairs)))


def test_released_rows_need_the_loaders_source_ids(tmp_path):
    pairs = [replace(pair, source_id="7") for pair in FIXTURE_PAIRS["mmarco"][:1]]
    with pytest.raises(HybridReproError, match="'7' is not <line>/<query id>.*source@mmarco"):
        list(released_records(SPECS["mmarco"], _mmarco_rows(tmp_path, pairs)))


def _released_rows(language: str, lines: Iterable[int], consumed: list[int]) -> Iterator[dict]:
    """Rows of triples ``lines`` in ``language`` (query = positive = line, negative = line + 1), counting in
    ``consumed`` how many were taken."""
    for line in lines:
        consumed.append(line)
        yield {"source_id": triple_source_id(line, str(line)), "language": language,
               "passage_id": passage_id("mmarco", str(line)), "negative_id": passage_id("mmarco", str(line + 1)),
               "query": f"{language} q{line}", "positive": f"{language} p{line}", "negative": f"{language} p{line + 1}"}


def test_released_languages_are_merged_on_the_line_without_reading_them_whole():
    # Endless streams: a merge that read a language to its end would never return. German lacks every third triple.
    consumed = {language: [] for language in ("de", "en", "ar")}
    streams = {language: _released_rows(language, itertools.count() if language != "de" else
                                        (line for line in itertools.count() if line % 3), consumed[language])
               for language in consumed}
    records = list(itertools.islice(released_records(SPECS["mmarco"], streams), 6))
    assert [record["id"] for record in records] == [f"mmarco/{line}" for line in range(6)]
    # The spec's language order (en ar ... de), whichever order the streams came in.
    assert [list(record["texts"]) for record in records] == [["en", "ar"] if line % 3 == 0 else ["en", "ar", "de"]
                                                             for line in range(6)]
    assert records[4]["texts"]["de"] == {"query": "de q4", "positive": "de p4", "negative": "de p5"}
    # Each language is read at most a row or two ahead of the records given out.
    assert all(len(lines) <= 8 for lines in consumed.values())


def test_released_rows_out_of_triple_order_are_refused():
    streams = {"en": _released_rows("en", [0, 2, 1], []), "ar": _released_rows("ar", [0, 1, 2], [])}
    with pytest.raises(HybridReproError, match=r"its en rows are not in triple order \(triple 1 after 2\).*"
                                               "source@mmarco"):
        list(released_records(SPECS["mmarco"], streams))

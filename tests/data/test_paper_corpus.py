"""`data.source: paper`: fixture shards of four kinds of source -> data stage -> translate stage (tiny M2M-100),
with the mini profile's languages: what is translated, kept in English, passed through or held for validation."""

import json
import shutil
from pathlib import Path

import pytest
from paper_sources_fixture import (FIXTURE_PAIRS, MMARCO_LANGUAGES, MMARCO_TRIPLES, MMARCO_WITHOUT_GERMAN,
                                   mini_profile_on_fixtures, mmarco_text, write_fixture_sources)
from tiny_mt_models import build_m2m100

from hybrid_repro.config import params_from_dict
from hybrid_repro.data.jsonl import read_jsonl
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import sha256_file
from hybrid_repro.sources.specs import passage_id
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


def _repin(directory: Path) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["revision"] = "9" * 40
    (directory / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("breakage, expected", [
    (shutil.rmtree, "source 'mrtydi' has not been fetched"),
    (_corrupt_first_shard, "source 'mrtydi' .* cannot be verified .* does not match"),
    (_repin, "at revision '9999999999.*but params name 'mrtydi' at '0000000000"),
], ids=["missing", "corrupt-shard", "other-pin"])
def test_a_missing_or_unverified_source_names_its_fetch_stage(workspace, breakage, expected):
    before = tree_digest(workspace.data.out_dir)
    breakage(workspace.sources.out_dir / "mrtydi")
    with pytest.raises(HybridReproError, match=expected) as caught:
        run_data(workspace)
    assert "run `dvc repro pipelines/paper/dvc.yaml:source@mrtydi`" in str(caught.value)
    assert tree_digest(workspace.data.out_dir) == before
    assert sorted(p.name for p in workspace.data.out_dir.parent.iterdir()) == ["source", "sources"]


def test_sources_without_validation_set_are_refused(workspace):
    raw = workspace.model_dump(mode="json")
    del raw["sources"]["datasets"]["squadshifts"]
    with pytest.raises(HybridReproError, match="no validation source: add squadshifts"):
        run_data(params_from_dict(raw))

"""A parallel source corpus on disk and the translate stage's pass-through (backend parallel)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_xquad import build

from hybrid_repro.config import TranslateConfig, params_from_dict
from hybrid_repro.data.jsonl import read_jsonl
from hybrid_repro.data.parallel_corpus import read_parallel_source, write_parallel_source, write_passthrough
from hybrid_repro.data.source_corpus import read_source_corpus
from hybrid_repro.data.translated_corpus import LanguagePlan
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import read_json, write_json


def write_source(directory: Path) -> Path:
    directory.mkdir()
    write_parallel_source(directory, build(), source_language="en", dataset={"name": "xquad", "description": "d"},
                          provenance={"xquad": {"commit": "c"}}, seed=0)
    return directory


def plan(train: tuple[str, ...]) -> LanguagePlan:
    config = TranslateConfig(backend="parallel", train_languages=train, eval_languages=())
    return LanguagePlan.from_config(config, "en", ("en", "xx"))


def test_pass_through_keeps_the_training_languages_and_translates_nothing(tmp_path: Path):
    source = read_parallel_source(write_source(tmp_path / "source"))
    (tmp_path / "out").mkdir()
    manifest = write_passthrough(tmp_path / "out", source, plan(("en",)), seed=0)
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert [r["texts"]["en"] for r in train] == [r["texts"]["en"] for r in source.train]
    assert all(set(r["texts"]) == {"en"} for r in train)
    assert manifest["languages"]["source"] == "en" and manifest["counts"]["eval"] == {}
    assert manifest["backend"]["name"] == "parallel"


def test_a_training_language_without_examples_is_refused(tmp_path: Path):
    source = read_parallel_source(write_source(tmp_path / "source"))
    source.train[:] = [{**r, "texts": {"en": r["texts"]["en"]}} for r in source.train]
    with pytest.raises(HybridReproError, match=r"\['xx'\] have no examples"):
        write_passthrough(tmp_path, source, plan(("en", "xx")), seed=0)


def test_edited_files_and_the_wrong_backend_are_caught(tmp_path: Path):
    directory = write_source(tmp_path / "source")
    with pytest.raises(HybridReproError, match="set translate.backend: parallel"):
        read_source_corpus(directory)
    (directory / "val.jsonl").write_text("{}\n", encoding="utf-8")
    with pytest.raises(HybridReproError, match="does not match the checksum"):
        read_parallel_source(directory)
    manifest = read_json(directory / "manifest.json")
    write_json(directory / "manifest.json", {**manifest, "kind": "synthetic"})
    with pytest.raises(HybridReproError, match="set translate.backend to lexicon"):
        read_parallel_source(directory)


def test_parallel_backend_writes_no_evaluation_set_and_takes_no_model():
    with pytest.raises(ValueError, match="leave eval_languages empty"):
        TranslateConfig(backend="parallel", train_languages=("en",), eval_languages=("en",))
    with pytest.raises(ValueError, match="only used by the nllb, m2m100 and marian"):
        TranslateConfig(backend="parallel", train_languages=("en",), eval_languages=(), model_revision="a" * 40)


def test_params_pair_the_xquad_source_with_the_parallel_backend_and_refuse_xquad_r():
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "profiles" / "me5-xquad.yaml").read_text())
    parallel = raw["translate"]
    raw["translate"] = {**parallel, "backend": "lexicon", "eval_languages": ["en"]}
    with pytest.raises(HybridReproError, match="data.source 'xquad' and translate.backend 'lexicon' do not fit"):
        params_from_dict(raw)
    raw["translate"] = parallel
    raw["evaluate"] = {**raw["evaluate"], "datasets": ["mlqa-r", "xquad-r"]}
    with pytest.raises(HybridReproError, match="xquad-r, which LAReQA built from the XQuAD questions"):
        params_from_dict(raw)

"""params.yaml validation: every bad value is caught on load with a message naming the key."""

from pathlib import Path

import pytest
import yaml

from hybrid_repro.config import load_params, params_from_dict
from hybrid_repro.errors import HybridReproError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_committed_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.profile == "demo"
    assert set(params.runs) >= {"x-x-mono", "x-y", "hybrid"}


def test_mono_probability_follows_strategy(raw):
    params = params_from_dict(raw)
    assert params.run("x-x-mono").mono_probability == 1.0
    assert params.run("x-y").mono_probability == 0.0
    assert params.run("hybrid").mono_probability == 0.5


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (("runs", "hybrid", "alpha"), 1.5, "runs.hybrid.alpha"),
        (("runs", "x-y", "strategy"), "x-z", "runs.x-y.strategy"),
        (("sampler", "batch_size"), 1, "sampler.batch_size"),
        (("train", "lr"), -1e-4, "train.lr"),
        (("model", "source"), "ftp", "model.source"),
        (("profile",), "paper-huge", "profile"),
        (("loss", "impl"), "cuda", "loss.impl"),
        (("evaluate", "candidate_text"), "paragraph", "evaluate.candidate_text"),
        (("train", "lrr"), 0.1, "train.lrr"),
    ],
)
def test_bad_values_name_the_key(raw, path, value, expected):
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(HybridReproError) as info:
        params_from_dict(raw)
    assert expected in str(info.value)


def test_allowed_values_are_listed(raw):
    raw["runs"]["x-y"]["strategy"] = "x-z"
    with pytest.raises(HybridReproError, match="x-x-mono.*x-y.*hybrid"):
        params_from_dict(raw)


def test_hybrid_needs_alpha_and_baselines_refuse_it(raw):
    raw["runs"]["hybrid"].pop("alpha")
    with pytest.raises(HybridReproError, match="needs alpha"):
        params_from_dict(raw)
    raw["runs"]["hybrid"]["alpha"] = 0.5
    raw["runs"]["x-y"]["alpha"] = 0.3
    with pytest.raises(HybridReproError, match="only used by strategy 'hybrid'"):
        params_from_dict(raw)


def test_hub_model_needs_a_pinned_revision(raw):
    raw["model"].update(source="hub", name="xlm-roberta-base")
    with pytest.raises(HybridReproError, match="pinned revision"):
        params_from_dict(raw)


def test_unknown_run_lists_defined_runs(raw):
    params = params_from_dict(raw)
    with pytest.raises(HybridReproError, match="x-x-mono"):
        params.run("nope")


def test_unreadable_params(tmp_path):
    with pytest.raises(HybridReproError, match="not found"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1, 2\n")
    with pytest.raises(HybridReproError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(HybridReproError, match="mapping"):
        load_params(bad)


def test_run_names_must_be_dvc_safe(raw):
    raw["runs"]["hybrid-0.4"] = {"strategy": "hybrid", "alpha": 0.4}
    with pytest.raises(HybridReproError, match="no '.'"):
        params_from_dict(raw)


def test_validation_languages_default_to_the_source_language_only(raw):
    params = params_from_dict(raw)
    assert params.train.val_languages is None and params.train.val_mono_probability == 1.0


@pytest.mark.parametrize(
    "train, expected",
    [
        ({"val_languages": ["qen", "qxx"]}, r"subset of translate.train_languages; not training languages: \['qxx'\]"),
        ({"val_languages": []}, "non-empty subset"),
        ({"val_languages": ["qen"], "val_mono_probability": 0.5}, "set train.val_mono_probability to 1"),
        ({"val_mono_probability": 0.5}, "source language only"),
    ],
)
def test_bad_validation_languages_are_refused(raw, train, expected):
    raw["train"].update(train)
    with pytest.raises(HybridReproError, match=expected):
        params_from_dict(raw)


def test_multilingual_validation_may_mix_strategies(raw):
    raw["train"].update(val_languages=["qen", "qde"], val_mono_probability=0.5)
    assert params_from_dict(raw).train.val_languages == ("qen", "qde")

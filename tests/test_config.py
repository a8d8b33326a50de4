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


def _set(raw: dict, dotted: str, value) -> dict:
    node = raw
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return raw


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("loss.temperature", float("inf"), "loss.temperature: Input should be a finite number"),
        ("train.lr", float("nan"), "train.lr: Input should be a finite number"),
        ("translate.low_resource", {"qar": float("nan")}, "translate.low_resource.qar: Input should be a finite"),
        ("train.max_steps", 1e18, "train.max_steps: Input should be less than or equal to 1000000"),
        ("evaluate.datasets", [], "evaluate.datasets: Tuple should have at least 1 item"),
        ("evaluate.datasets", ["squad"], "evaluate.datasets.0: Input should be 'synth-r', 'xquad-r' or 'mlqa-r'"),
        ("translate.eval_languages", [], "translate.eval_languages must name at least one language: data.source "
                                         "synthetic"),
        ("seed", -1, "seed: Input should be greater than or equal to 0"),
        ("seed", 2**32, "seed: Input should be less than 4294967296"),
        ("runs.x-y.seed", 2**40, "runs.x-y.seed: Input should be less than 4294967296"),
        ("model.max_query_length", 100_000, "model.max_query_length: Input should be less than or equal to 8192"),
        ("model.max_passage_length", 9000, "model.max_passage_length: Input should be less than or equal to 8192"),
        ("runs.hybrid.alpha", float("nan"), r"runs.hybrid.alpha: alpha must be a number in \[0, 1\], got nan"),
        ("runs.hybrid.alpha", "half", r"runs.hybrid.alpha: alpha must be a number in \[0, 1\]"),
        # Values that would let a run finish and learn nothing: the loss flat at ln(batch), or no weight moving.
        ("loss.temperature", 1e30, "loss.temperature: Input should be less than or equal to 1"),
        ("loss.temperature", 1e-9, "loss.temperature: Input should be greater than or equal to 0.001"),
        ("train.lr", 1e-12, "train.lr: Input should be greater than or equal to 0.0000001"),
        ("train.lr", 10.0, "train.lr: Input should be less than or equal to 1"),
        ("train.grad_clip", 1e-30, "train.grad_clip: Input should be greater than or equal to 0.001"),
        ("train.weight_decay", 1e3, "train.weight_decay: Input should be less than or equal to 1"),
    ],
)
def test_values_refused_on_load(raw, key, value, expected):
    with pytest.raises(HybridReproError, match=expected):
        params_from_dict(_set(raw, key, value))


@pytest.mark.parametrize("section", ["profile", "seed", "data", "model", "loss", "sampler", "train", "evaluate",
                                     "report", "runs", "translate"])
def test_every_section_is_required(raw, section):
    del raw[section]
    with pytest.raises(HybridReproError, match=f"{section}: section missing: a profile is a complete file"):
        params_from_dict(raw)


@pytest.mark.parametrize(
    "key, suggestion",
    [("train.lrr", "lr"), ("runs.hybrid.alpah", "alpha"), ("sampler.batch_sizee", "batch_size"), ("modle", "model"),
     ("model.scratch.hidden", "hidden_size")],
)
def test_unknown_keys_get_a_suggestion(raw, key, suggestion):
    with pytest.raises(HybridReproError, match=f"{key}: unknown key; did you mean '{suggestion}'\\? valid keys"):
        params_from_dict(_set(raw, key, 1))


@pytest.mark.parametrize("revision", ["main", "v1.0", "0123abc", "0123456789ABCDEF0123456789ABCDEF01234567"])
def test_revisions_must_be_commit_hashes(raw, revision):
    raw["model"].update(source="hub", name="org/model", revision=revision)
    with pytest.raises(HybridReproError, match=f"revision '{revision}' must be a full 40-character commit hash"):
        params_from_dict(raw)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["translate"].update(backend="nllb", model_revision=revision)
    with pytest.raises(HybridReproError, match=f"model_revision '{revision}' must be a full 40-character"):
        params_from_dict(raw)
    raw["translate"]["model_revision"] = "0123456789abcdef0123456789abcdef01234567"
    assert params_from_dict(raw).translate.model_revision == raw["translate"]["model_revision"]


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda text: text.replace(b"seed: 13\n", b"seed: 13\nseed: 14\n"),
         "not valid YAML: line 5, column 1: duplicate key 'seed' \\(first given on line 4\\)"),
        (lambda text: text.replace(b"  batch_size: 32\n", b"  batch_size: 32\n  batch_size: 64\n"),
         "duplicate key 'batch_size'"),
        (lambda text: text.replace(b"profile: demo", b"profile: d\xffmo"), r"not valid UTF-8 \(byte offset \d+\)"),
        (lambda text: text.replace(b"# Demo", b"# D\x00emo"), "contains a NUL byte"),
    ],
    ids=["duplicate-top-level", "duplicate-nested", "invalid-utf8", "nul-byte"],
)
def test_unreadable_params_text_is_a_one_line_error(tmp_path, edit, expected):
    bad = tmp_path / "params.yaml"
    bad.write_bytes(edit((REPO / "params.yaml").read_bytes()))
    with pytest.raises(HybridReproError, match=expected) as info:
        load_params(bad)
    assert "\n" not in str(info.value)

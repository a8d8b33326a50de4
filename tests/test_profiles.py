"""Profiles are complete params files; the committed params.yaml is the demo profile. Every profile validates
offline and expands its DVC grid, so a typo in one fails here; the paper profiles refuse to run until their hub
commit hashes (unknown where they were written) are set."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

from hybrid_repro.sources.specs import SPECS
from hybrid_repro.config import PROFILES, load_params, params_from_dict, read_params_mapping
from hybrid_repro.errors import HybridReproError
from paper_sources_fixture import mini_profile_on_fixtures, with_stand_ins, write_fixture_sources
from tiny_bert import tiny_local_bert
from tiny_mt_models import build_m2m100

REPO = Path(__file__).resolve().parents[1]
PROFILE_FILES = sorted((REPO / "profiles").glob("*.yaml"))
PAPER_PROFILES = [path for path in PROFILE_FILES if path.stem in ("paper-xlmr", "paper-labse", "mini")]


def test_every_known_profile_has_a_file():
    assert sorted(p.stem for p in PROFILE_FILES) == sorted(PROFILES)


def test_demo_profile_is_valid_and_names_itself():
    assert load_params(REPO / "profiles" / "demo.yaml").profile == "demo"


def test_params_yaml_is_the_demo_profile():
    assert (REPO / "params.yaml").read_text() == (REPO / "profiles" / "demo.yaml").read_text()


def test_me5_xquad_profile_runs_its_data_stages_and_a_training_step_offline(tmp_path: Path, monkeypatch):
    """The profile's own settings on fixture XQuAD files: fetch (mirror), parallel corpus, pass-through, one step."""
    from xquad_fixture import LANGUAGES, write_xquad_mirror

    from hybrid_repro.config import params_from_dict
    from hybrid_repro.data.jsonl import read_jsonl
    from hybrid_repro.stages.data import run_data
    from hybrid_repro.stages.train import run_train
    from hybrid_repro.stages.translate import run_translate

    write_xquad_mirror(tmp_path / "mirror", monkeypatch)
    monkeypatch.chdir(tmp_path)  # the profile's output paths, relative, land under tmp_path
    raw = yaml.safe_load((REPO / "profiles" / "me5-xquad.yaml").read_text())
    raw["data"]["xquad"]["val_articles"] = 1
    raw["sampler"]["batch_size"] = 4
    raw["train"].update(max_steps=1, eval_every=1, checkpoint_every=1)
    run_data(params_from_dict(raw))
    run_translate(params_from_dict(raw))

    out = tmp_path / "experiments" / "me5-xquad"
    train = read_jsonl(out / "data" / "translated" / "train.jsonl")
    val = read_jsonl(out / "data" / "translated" / "val.jsonl")
    assert len(train) == 12 and len(val) == 4  # 4 articles x 4 questions, one article held out
    assert all(set(record["texts"]) == set(LANGUAGES) for record in train)
    assert all(set(record["texts"]) == {"en"} for record in val)

    texts = [text for record in train for fields in record["texts"].values() for text in fields.values()]
    raw["model"]["path"] = str(tiny_local_bert(tmp_path / "tiny-bert", texts))
    params = params_from_dict(raw)
    run_name = "hybrid-seed1"
    run_train(params, run_name, progress_bar=False)
    summary = yaml.safe_load((out / "metrics" / "train" / f"{run_name}.json").read_text())
    assert summary["steps"] == 1 and summary["best_val_loss"] > 0
    assert (out / "models" / run_name / "encoder.json").is_file()


def test_mini_profile_runs_data_translate_and_a_training_step_on_fixture_sources(tmp_path: Path, monkeypatch):
    """The profile's own settings on fixture shards of four sources, a tiny M2M-100 for its translator and a tiny
    BERT for its encoder: assemble, translate into the nine languages, one hybrid step."""
    from hybrid_repro.data.jsonl import read_jsonl
    from hybrid_repro.stages.data import run_data
    from hybrid_repro.stages.train import run_train
    from hybrid_repro.stages.translate import run_translate

    raw = mini_profile_on_fixtures(build_m2m100(tmp_path / "m2m"))
    monkeypatch.chdir(tmp_path)  # the profile's output paths, relative, land under tmp_path
    raw["sampler"]["batch_size"] = 4
    raw["train"].update(max_steps=1, eval_every=1, checkpoint_every=1)
    params = params_from_dict(raw)
    write_fixture_sources(params.sources, params.seed)
    run_data(params)
    run_translate(params)

    train = read_jsonl(tmp_path / "data" / "translated" / "train.jsonl")
    assert {lang for record in train for lang in record["texts"]} == set(params.translate.train_languages)
    texts = [text for record in train for fields in record["texts"].values() for text in fields.values()]
    # The stand-in encoder has 128 positions; the profile's passages may take 256 tokens.
    raw["model"].update(source="local", path=str(tiny_local_bert(tmp_path / "tiny-bert", texts)), name=None,
                        revision=None, max_passage_length=128)
    params = params_from_dict(raw)
    run_train(params, "hybrid", progress_bar=False)
    summary = yaml.safe_load((tmp_path / "metrics" / "train" / "hybrid.json").read_text())
    assert summary["steps"] == 1 and summary["best_val_loss"] > 0
    assert (tmp_path / "models" / "hybrid" / "encoder.json").is_file()


@pytest.mark.parametrize("path", PAPER_PROFILES, ids=lambda p: p.stem)
def test_paper_profile_refuses_to_run_until_pin_resolves_its_null_pins_and_names_each(path):
    """The committed profiles pin every model and every source public sources agree on; the four sources read
    from the hub's Parquet conversion stay null until `hybrid-repro pin` looks their commits up."""
    with pytest.raises(HybridReproError) as caught:
        load_params(path)
    message = str(caught.value)
    assert "translate: Value error" not in message  # one readable line per key, not pydantic's wording
    assert "model_revision" not in message and "needs both name and a pinned revision" not in message
    datasets = read_params_mapping(path)["sources"]["datasets"]
    unresolved = {name for name, source in datasets.items() if source.get("revision", "") is None}
    assert unresolved == {"mrtydi", "mfaq", "squadshifts", "yahoo-answers-qa"}
    for name in datasets:
        named = f"sources.datasets.{name}.revision is required and has no default" in message
        assert named == (name in unresolved), name
    assert "refs%2Fconvert%2Fparquet" in message and "hybrid-repro pin" in message
    assert datasets["entityquestions"]["sha256"] is None  # recorded at the first download


@pytest.mark.parametrize("path", PAPER_PROFILES, ids=lambda p: p.stem)
def test_paper_profile_with_pins_is_valid_and_follows_the_paper(path):
    params = params_from_dict(with_stand_ins(read_params_mapping(path)), str(path))
    assert params.profile == path.stem and params.data.source == "paper"
    assert params.translate.train_languages == ("en", "ar", "zh", "de", "es", "ru", "hi", "th", "tr")
    assert params.train.val_languages == ("en",) and params.train.patience is not None
    assert (params.model.source, params.sources.datasets["mmarco"].negatives) == ("hub", "given")
    assert {run.strategy for run in params.runs.values()} == {"x-x-mono", "x-y", "hybrid"}
    assert {run.alpha for run in params.runs.values() if run.strategy == "hybrid"} == {0.5}
    if path.stem != "mini":
        assert (params.train.lr, params.train.weight_decay, params.sampler.batch_size) == (3e-5, 0.01, 100)
        assert len(params.runs) == 9 and len({params.run_seed(name) for name in params.runs}) == 3
        assert set(params.sources.datasets) == {"wikiqa", "duorc", "newsqa", "natural-questions", "yahoo-answers-qa",
                                                "entityquestions", "mrtydi", "mfaq", "mmarco", "squadshifts"}
        assert all(source.max_pairs is None for source in params.sources.datasets.values())
    if path.stem == "paper-labse":
        assert (params.model.name, params.model.pooling) == ("sentence-transformers/LaBSE", "pooler")


@pytest.mark.parametrize("path", PAPER_PROFILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("key, value, expected", [
    ("eval_languages", ["en"], "translate.eval_languages is used by data.source synthetic only .* remove it"),
    ("datasets", ["mlqa-r", "synth-r"], "evaluate.datasets names synth-r, .* which data.source 'paper' does not "
                                        "write: evaluate on xquad-r or mlqa-r"),
])
def test_paper_profile_refuses_an_evaluation_set_it_cannot_have(path, key, value, expected):
    raw = with_stand_ins(read_params_mapping(path))
    raw["translate" if key == "eval_languages" else "evaluate"][key] = value
    with pytest.raises(HybridReproError, match=expected):
        params_from_dict(raw, str(path))


@pytest.mark.parametrize("key, value, expected", [
    ("eval_languages", ["en"], "backend 'parallel' writes training data only: leave eval_languages empty"),
    ("datasets", ["synth-r"], "which data.source 'xquad' does not write: evaluate on mlqa-r$"),
])
def test_xquad_profile_refuses_an_evaluation_set_it_cannot_have(key, value, expected):
    raw = read_params_mapping(REPO / "profiles" / "me5-xquad.yaml")
    raw["translate" if key == "eval_languages" else "evaluate"][key] = value
    with pytest.raises(HybridReproError, match=expected):
        params_from_dict(raw, "me5-xquad.yaml")


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: p.stem)
def test_profile_expands_its_dvc_grid(path, tmp_path):
    """DVC itself resolves the root pipeline and the paper-sources pipeline with the profile as params.yaml."""
    Repo.init(str(tmp_path), no_scm=True)
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "pipelines" / "paper").mkdir(parents=True)
    shutil.copy(REPO / "pipelines" / "paper" / "dvc.yaml", tmp_path / "pipelines" / "paper" / "dvc.yaml")
    raw = with_stand_ins(read_params_mapping(path))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    stages = {stage.addressing.split(":")[-1]: stage for stage in Repo(str(tmp_path)).index.stages}
    for run in raw["runs"]:
        assert {f"train@{run}", f"evaluate@{run}"} <= set(stages)
    sources = sorted(name.removeprefix("source@") for name in stages if name.startswith("source@"))
    assert sources == sorted(SPECS) and stages["models"].cmd == "hybrid-repro fetch-models"
    if "sources" in raw:
        # The pipeline spells out its sources and their output directory; a profile must agree with both.
        assert set(raw["sources"]["datasets"]) <= set(sources)
        for name in raw["sources"]["datasets"]:
            stage = stages[f"source@{name}"]
            assert stage.cmd == f"hybrid-repro source --source {name}"
            assert [str(out) for out in stage.outs] == [f"{raw['sources']['out_dir']}/{name}"]
        # And DVC plans the opt-in pipeline with this profile's params (a second or so; its code deps must exist).
        # Its translate@ stages depend on the root data stage, which DVC plans too; a dry run stops at a dependency
        # that is missing, so the root check stage's marker and data/source stand in for what they would write.
        (tmp_path / "hybrid_repro").symlink_to(REPO / "hybrid_repro", target_is_directory=True)
        (tmp_path / ".check").mkdir()
        (tmp_path / ".check" / "params.ok").touch()
        (tmp_path / "data" / "source").mkdir(parents=True)
        dry = subprocess.run([sys.executable, "-m", "dvc", "repro", "--dry", "pipelines/paper/dvc.yaml"],
                             cwd=tmp_path, capture_output=True, text=True)
        assert dry.returncode == 0, dry.stderr
        assert all(f"source@{name}'" in dry.stdout for name in raw["sources"]["datasets"])
        assert dry.stdout.count("pipelines/paper/dvc.yaml:translate@") == 48

"""The `translate@DATASET-LANGUAGE` matrix of pipelines/paper/dvc.yaml: 48 pair stages as DVC expands them, their
datasets and languages those of the paper profiles, their params keys ones DVC can find in every paper profile, and
the root pipeline untouched by them under the demo params."""

import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
import yaml
from dvc.repo import Repo
from paper_sources_fixture import with_stand_ins

from hybrid_repro.config import TranslateConfig, read_params_mapping
from hybrid_repro.sources.specs import SPECS

ROOT = Path(__file__).resolve().parents[1]
PAPER_PIPELINE = "pipelines/paper/dvc.yaml"
PAPER_PROFILES = [ROOT / "profiles" / f"{name}.yaml" for name in ("paper-xlmr", "paper-labse", "mini")]
# What translate-pair reads of `translate` (hybrid_repro/stages/translate_pair.py and the translator it builds).
READ_KEYS = {"backend", "engine", "model_name", "model_revision", "num_beams", "max_length_ratio", "max_length_extra",
             "max_input_tokens", "train_languages", "low_resource", "langid"}


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory):
    """A DVC repository holding the two pipelines and the demo params, as a clone has them."""
    root = tmp_path_factory.mktemp("pipelines")
    Repo.init(str(root), no_scm=True)
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    (root / "pipelines" / "paper").mkdir(parents=True)
    shutil.copy(ROOT / PAPER_PIPELINE, root / PAPER_PIPELINE)
    return root


def _file(stage, repo_root: Path) -> str:
    """The dvc.yaml that defines ``stage``, relative to the repository (DVC's addresses are relative to the working
    directory)."""
    return str(Path(stage.path).relative_to(repo_root))


def _pair_stages(repo_root: Path) -> dict:
    return {stage.name: stage for stage in Repo(str(repo_root)).index.stages
            if _file(stage, repo_root) == PAPER_PIPELINE and stage.name.startswith("translate@")}


def test_the_matrix_expands_to_one_stage_per_machine_translated_dataset_and_training_language(demo_repo):
    datasets = [name for name, spec in SPECS.items() if spec.translate]
    for profile in PAPER_PROFILES:
        params = read_params_mapping(profile)
        languages = [lang for lang in params["translate"]["train_languages"] if lang != "en"]
        assert sorted(languages) == ["ar", "de", "es", "hi", "ru", "th", "tr", "zh"], profile.stem
        assert set(datasets) <= set(params["sources"]["datasets"]), profile.stem
    stages = _pair_stages(demo_repo)
    assert len(stages) == 48 == len(datasets) * len(languages)
    for dataset in datasets:
        for language in languages:
            stage = stages[f"translate@{dataset}-{language}"]
            assert stage.cmd == f"hybrid-repro translate-pair --dataset {dataset} --language {language}"
            assert [str(out) for out in stage.outs] == [f"data/translations/{dataset}/{language}.json"]
            assert not stage.outs[0].use_cache
            assert {"data/source", "hybrid_repro/data", "hybrid_repro/stages/translate_pair.py",
                    "hybrid_repro/config.py"} <= {
                str(dep) for dep in stage.deps}


def test_the_params_are_translate_keys_every_paper_profile_sets_and_all_it_reads_that_they_set():
    stage = yaml.safe_load((ROOT / PAPER_PIPELINE).read_text())["stages"]["translate"]
    (listed,) = [entry["params.yaml"] for entry in stage["params"]]
    keys = {key.removeprefix("translate.") for key in listed if key.startswith("translate.")}
    assert set(listed) == {"seed"} | {f"translate.{key}" for key in keys}
    assert keys <= READ_KEYS <= set(TranslateConfig.model_fields)
    for profile in PAPER_PROFILES:
        translate = read_params_mapping(profile)["translate"]
        # DVC refuses a listed key that params.yaml lacks; a key the stage reads that a profile sets must be listed.
        assert keys <= set(translate), profile.stem
        assert READ_KEYS & set(translate) <= keys, profile.stem


def test_the_root_pipeline_neither_runs_nor_waits_for_the_pairs(demo_repo):
    graph = Repo(str(demo_repo)).index.graph
    root_stages = [stage for stage in graph if _file(stage, demo_repo) == "dvc.yaml"]
    assert {stage.name for stage in root_stages} >= {"check", "data", "translate", "report", "train@hybrid"}
    for stage in root_stages:
        # DVC's graph points from a stage to the stages it depends on: its descendants run before it.
        assert {_file(upstream, demo_repo) for upstream in nx.descendants(graph, stage)} <= {"dvc.yaml"}, stage.name
    status = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=demo_repo, capture_output=True, text=True)
    assert status.returncode == 0, status.stderr


def test_the_pairs_follow_the_root_data_stage_under_a_paper_profile(tmp_path):
    """With a paper profile active, the data stage of the root pipeline is each pair's upstream (a cross-file
    dependency), so `dvc repro pipelines/paper/dvc.yaml` assembles data/source before translating."""
    Repo.init(str(tmp_path), no_scm=True)
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "pipelines" / "paper").mkdir(parents=True)
    shutil.copy(ROOT / PAPER_PIPELINE, tmp_path / PAPER_PIPELINE)
    raw = with_stand_ins(read_params_mapping(ROOT / "profiles" / "mini.yaml"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    graph = Repo(str(tmp_path)).index.graph
    pairs = [stage for stage in graph if stage.name.startswith("translate@")]
    assert len(pairs) == 48
    for stage in pairs:
        assert {(_file(s, tmp_path), s.name) for s in nx.descendants(graph, stage)} == {("dvc.yaml", "check"),
                                                                                        ("dvc.yaml", "data")}

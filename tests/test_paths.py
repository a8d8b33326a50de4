"""Output paths in params: only directories strictly inside the project, apart from each other and
from the project's inputs, are accepted; everything else stops on load with the key named."""

import os
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hybrid_repro.cli import cli
from hybrid_repro.config import Params, load_params, params_from_dict
from hybrid_repro.errors import HybridReproError
from hybrid_repro.paths import guard_output, safe_name
from hybrid_repro.stages.baselines import load_baselines_params
from hybrid_repro.stages.translate_pair import receipt_path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """An empty project directory as the working directory, with a directory outside it."""
    (tmp_path / "outside").mkdir()
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def load_with(section: str, key: str, value: str) -> Params:
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw.setdefault(section, {})[key] = value
    return params_from_dict(raw)


def test_committed_params_are_accepted(project):
    params = load_with("report", "out_dir", "reports")
    assert params.report.out_dir == Path("reports")


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("data", "out_dir", ".", r"data\.out_dir: '\.' names the project root itself"),
        ("report", "out_dir", "", r"report\.out_dir: '\.' names the project root itself"),
        ("data", "out_dir", "..", r"data\.out_dir: '\.\.' contains '\.\.'; outputs must stay inside"),
        ("evaluate", "out_dir", "results/../..", r"evaluate\.out_dir: .* contains '\.\.'"),
        ("translate", "out_dir", "data/../translated", r"translate\.out_dir: .* contains '\.\.'"),
        ("train", "model_dir", "/tmp/models", r"train\.model_dir: '/tmp/models' is absolute"),
        ("report", "out_dir", os.path.expanduser("~"), r"report\.out_dir: .* is absolute"),
        ("train", "model_dir", "data/translated/models", r"translate\.out_dir .* and train\.model_dir .* overlap"),
        ("data", "out_dir", "data", r"data\.out_dir .* and translate\.out_dir .* overlap"),
        ("report", "out_dir", "results", r"evaluate\.out_dir .* and report\.out_dir .* overlap"),
        ("train", "metrics_dir", "models", r"train\.model_dir .* and train\.metrics_dir .* overlap"),
        ("report", "out_dir", "hybrid_repro/reports", r"report\.out_dir .* overlaps the project's own hybrid_repro"),
        ("evaluate", "out_dir", ".git", r"evaluate\.out_dir .* overlaps the project's own \.git"),
        ("translate", "out_dir", "data/lareqa/translated", r"overlaps the project's own data/lareqa"),
        ("report", "out_dir", "docs", r"overlaps the project's own docs"),
    ],
    ids=["dot", "empty", "dotdot", "escape", "inner-dotdot", "absolute", "home", "nested-in-input",
         "contains-output", "same-as-input", "same-dir", "in-code", "git", "in-fetched-data", "docs"],
)
def test_bad_output_paths_are_refused_naming_the_key(project, section, key, value, message):
    with pytest.raises(HybridReproError, match=message):
        load_with(section, key, value)
    assert sorted(p.name for p in project.iterdir()) == []  # nothing created, nothing removed


def test_symlink_pointing_outside_is_refused(project):
    (project / "link").symlink_to(project.parent / "outside")
    with pytest.raises(HybridReproError, match=r"report\.out_dir: 'link/reports' resolves to .*outside"):
        load_with("report", "out_dir", "link/reports")


def test_symlink_to_the_project_itself_is_refused(project):
    (project / "here").symlink_to(project)
    with pytest.raises(HybridReproError, match=r"data\.out_dir: 'here' resolves to"):
        load_with("data", "out_dir", "here")


def test_symlink_inside_the_project_is_accepted(project):
    (project / "big-disk").mkdir()
    (project / "results").symlink_to(project / "big-disk")
    assert load_with("evaluate", "out_dir", "results/runs").evaluate.out_dir == Path("results/runs")


def test_two_spellings_of_one_directory_overlap(project):
    (project / "models").mkdir()
    (project / "alias").symlink_to(project / "models")
    with pytest.raises(HybridReproError, match="train.model_dir .* and train.metrics_dir .* overlap"):
        load_with("train", "metrics_dir", "alias")


def test_baselines_pipeline_outputs_are_checked_too(project):
    from hybrid_repro.stages.baselines import BaselinesConfig

    with pytest.raises(ValueError, match=r"out_dir\n.*'/tmp/baselines' is absolute"):
        BaselinesConfig(out_dir="/tmp/baselines")
    with pytest.raises(ValueError, match=r"doc_path\n.*contains '\.\.'"):
        BaselinesConfig(doc_path="../baselines.md")


@pytest.mark.parametrize("target", ["README.md", "params.yaml", "hybrid_repro/config.py", "dvc.lock", "Makefile"])
def test_translate_metrics_path_cannot_name_a_project_file(project, target):
    with pytest.raises(HybridReproError, match=r"translate\.metrics_path \(.*\) overlaps the project's own"):
        load_with("translate", "metrics_path", target)


def test_outputs_left_at_their_defaults_are_checked_too(project):
    (project / "checkpoints").symlink_to(project.parent / "outside")
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["train"].pop("checkpoint_dir", None)  # the default, "checkpoints": a link out of the project
    with pytest.raises(HybridReproError, match=r"checkpoint_dir: 'checkpoints' resolves to .* through a symbolic link"):
        params_from_dict(raw)


def _project_with_pipelines(project: Path) -> None:
    for name in ("dvc.yaml", "pipelines/me5-xquad/dvc.yaml", "profiles/me5-xquad.yaml"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text((REPO / name).read_text())


def test_an_output_may_not_replace_another_pipelines_results(project):
    _project_with_pipelines(project)
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["report"]["out_dir"] = "experiments/me5-xquad/reports"  # holds the marker: only the params can refuse it
    (project / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(HybridReproError, match=r"report\.out_dir \(experiments/me5-xquad/reports\) overlaps "
                                               r"experiments/me5-xquad/reports, an output of "
                                               r"pipelines/me5-xquad/dvc\.yaml, which does not read params\.yaml"):
        load_params(project / "params.yaml")
    assert load_params(project / "profiles" / "me5-xquad.yaml").report.out_dir == Path("experiments/me5-xquad/reports")


@pytest.mark.parametrize("target", ["params.yaml", "README.md"])
def test_check_out_cannot_overwrite_a_project_file(project, target):
    (project / target).write_text("kept\n")
    shutil.copy(REPO / "params.yaml", project / "my-params.yaml")
    result = CliRunner().invoke(cli, ["check", "--params", "my-params.yaml", "--dvc-file", str(REPO / "dvc.yaml"),
                                      "--out", target])
    assert result.exit_code == 2 and "check --out" in result.output and "overlaps the project's own" in result.output
    assert (project / target).read_text() == "kept\n"


@pytest.mark.parametrize("name", ["../..", "/etc", ".", "a/b", "", None, 7])
def test_names_read_from_files_never_become_paths(name):
    with pytest.raises(HybridReproError, match="is not a name"):
        safe_name(name, "eval.json dataset")
    with pytest.raises(HybridReproError, match="is not a name"):
        receipt_path(name, "de") if isinstance(name, str) else safe_name(name, "x")
    assert safe_name("natural-questions", "dataset") == "natural-questions"


def test_an_output_path_with_a_component_too_long_for_the_file_system_is_refused(project):
    with pytest.raises(HybridReproError, match=r"has a component of 300 bytes, longer than the 255"):
        load_with("evaluate", "out_dir", "results/" + "r" * 300)
    with pytest.raises(HybridReproError, match=r"check --out: .* has a component of 300 bytes"):
        guard_output(Path(".check/" + "k" * 300), "check --out")


def test_an_opt_in_pipelines_params_may_not_replace_another_pipelines_output_either(project):
    """pipelines/lareqa/params.yaml's outputs are checked like the root params': `reports` is the root report's."""
    for name in ("dvc.yaml", "pipelines/lareqa/dvc.yaml", "pipelines/lareqa/params.yaml"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text((REPO / name).read_text())
    assert load_baselines_params(project / "pipelines/lareqa/params.yaml").doc_path == Path("docs/baselines.md")
    params = project / "pipelines/lareqa/params.yaml"
    params.write_text(params.read_text().replace("out_dir: baselines", "out_dir: reports"))
    with pytest.raises(HybridReproError, match=r"baselines\.out_dir \(reports\) overlaps reports, an output of dvc\.yaml"):
        load_baselines_params(params)


def test_base_model_out_cannot_name_a_project_folder(project):
    (project / "docs").mkdir()
    (project / "docs" / "kept.md").write_text("kept\n")
    result = CliRunner().invoke(cli, ["base-model", "--out", "docs"])
    assert result.exit_code == 2 and "base-model --out" in result.output and "overlaps the project's own docs" in result.output
    assert (project / "docs" / "kept.md").read_text() == "kept\n"

"""Stage `check`: the whole params file and every dvc.yaml stage's params keys, validated before any other stage."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hybrid_repro.cli import cli
from hybrid_repro.errors import HybridReproError
from hybrid_repro.stages.check import CHECK_CONTENT, CHECK_OUTPUT, run_check, stage_param_keys

REPO = Path(__file__).resolve().parents[2]


def test_committed_params_and_pipeline_pass_with_a_constant_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outputs lie inside the project: here, the test's folder
    out = Path("params.ok")
    params = run_check(REPO / "params.yaml", REPO / "dvc.yaml", out)
    assert out.read_text(encoding="utf-8") == CHECK_CONTENT
    # The output must not change with the parameters, or every stage would re-run after any edit.
    other = tmp_path / "params.yaml"
    other.write_text((REPO / "params.yaml").read_text(encoding="utf-8").replace("seed: 13", "seed: 14"))
    run_check(other, REPO / "dvc.yaml", out)
    assert out.read_text(encoding="utf-8") == CHECK_CONTENT and params.seed == 13


def test_every_other_stage_depends_on_the_check():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert stages["check"]["params"] == [{"params.yaml": None}], "check must track the whole params file"
    for name, stage in stages.items():
        if name != "check":
            assert str(CHECK_OUTPUT) in stage.get("do", stage)["deps"], name


def test_foreach_stages_expand_over_the_runs():
    stages = {"train": {"foreach": "${runs}", "do": {"params": ["seed", "runs.${key}", {"other.yaml": ["k"]}]}},
              "report": {"params": ["runs"]}}
    assert stage_param_keys(stages, ["a", "b"]) == {
        "train@a": ["seed", "runs.a"], "train@b": ["seed", "runs.b"], "report": ["runs"]}


def test_a_stage_param_missing_from_the_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    pipeline["stages"]["train"]["do"]["params"].append("train.num_threads")  # has a code default, not in the file
    dvc_file = tmp_path / "dvc.yaml"
    dvc_file.write_text(yaml.safe_dump(pipeline), encoding="utf-8")
    with pytest.raises(HybridReproError, match="stage train@x-x-mono lists params train.num_threads, which .* does not"):
        run_check(REPO / "params.yaml", dvc_file, Path("params.ok"))
    assert not (tmp_path / "params.ok").exists()


def test_cli_bad_value_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "params.yaml"
    bad.write_text((REPO / "params.yaml").read_text(encoding="utf-8").replace("batch_size: 32", "batch_size: -4"))
    result = CliRunner().invoke(cli, ["check", "--params", str(bad), "--dvc-file", str(REPO / "dvc.yaml")])
    assert result.exit_code == 2
    assert result.output.startswith("error: invalid parameters") and "sampler.batch_size" in result.output
    assert not (tmp_path / CHECK_OUTPUT).exists()
    good = CliRunner().invoke(cli, ["check", "--params", str(REPO / "params.yaml"), "--dvc-file", str(REPO / "dvc.yaml")])
    assert good.exit_code == 0, good.output
    assert (tmp_path / CHECK_OUTPUT).read_text(encoding="utf-8") == CHECK_CONTENT

"""The CLI: help everywhere, one-line errors with exit status 2, tracebacks only with --debug."""

import pytest
from click.testing import CliRunner

from hybrid_repro.cli import cli

COMMANDS = ["check", "data", "translate", "train", "evaluate", "evaluate-base", "report", "env"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_bad_params_give_one_line_error_and_exit_2(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("profile: nope\n")
    result = CliRunner().invoke(cli, ["data", "--params", str(bad)])
    assert result.exit_code == 2
    assert result.output.startswith("error: invalid parameters")
    assert "Traceback" not in result.output


def test_debug_shows_the_exception(tmp_path):
    result = CliRunner().invoke(cli, ["--debug", "report", "--params", str(tmp_path / "missing.yaml")])
    assert result.exit_code != 0
    assert "not found" in str(result.exception)


def test_unknown_run_is_reported(tmp_path):
    from pathlib import Path

    params = Path(__file__).resolve().parents[1] / "params.yaml"
    result = CliRunner().invoke(cli, ["train", "--params", str(params), "--run", "nope"])
    assert result.exit_code == 2
    assert "unknown run 'nope'" in result.output


def test_env_prints_versions():
    result = CliRunner().invoke(cli, ["env"])
    assert result.exit_code == 0
    for key in ("python", "torch", "triton", "transformers", "dvc", "device", "git_revision"):
        assert f"{key}:" in result.output


def test_check_writes_the_marker_the_pipeline_names(tmp_path, monkeypatch):
    """Each pipeline has its own check marker (two pipelines may not share an output)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", "--params", str(root / "profiles" / "me5-xquad.yaml"), "--dvc-file",
                                      str(root / "pipelines" / "me5-xquad" / "dvc.yaml"), "--out", "marks/me5.ok"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "marks" / "me5.ok").is_file() and not (tmp_path / ".check").exists()

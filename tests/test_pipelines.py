"""Every DVC pipeline in the repository calls real CLI commands with options that parse."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from hybrid_repro.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = [ROOT / "dvc.yaml", *sorted((ROOT / "pipelines").glob("*/dvc.yaml"))]


def _stage_commands(pipeline: Path) -> list[tuple[str, str]]:
    """(stage name, command) pairs, with foreach placeholders filled by a sample value."""
    stages = yaml.safe_load(pipeline.read_text())["stages"]
    commands = []
    for name, stage in stages.items():
        body = stage.get("do", stage)
        commands.append((name, body["cmd"].replace("${key}", "x-y").replace("${item}", "xquad-r")))
    return commands


@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda path: str(path.relative_to(ROOT)))
def test_stage_commands_parse(pipeline):
    for stage, command in _stage_commands(pipeline):
        program, subcommand, *args = shlex.split(command)
        assert program == "hybrid-repro", f"{stage}: {command}"
        context = click.Context(cli)
        command_obj = cli.get_command(context, subcommand)
        assert command_obj is not None, f"{stage}: unknown command {subcommand!r}"
        command_obj.make_context(subcommand, args, parent=context)  # raises on an unknown or malformed option


def test_kernel_benchmark_is_opt_in():
    root_stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert "bench-kernel" not in root_stages, "a plain `dvc repro` must not time the kernel"
    kernel = yaml.safe_load((ROOT / "pipelines/kernel/dvc.yaml").read_text())["stages"]["bench-kernel"]
    # cache: false keeps the results in git, next to the lock that pins them.
    assert kernel["outs"] == [{"benchmarks/kernel": {"cache": False}}]


def _locked_stage(stage: str) -> bool:
    """Whether a `dvc status` stage name (``train@x-y``, ``pipelines/lareqa/dvc.yaml:fetch@x``) has an entry in its
    pipeline's committed dvc.lock: the opt-in kernel pipeline has no lock, and a grid finished over several
    sittings (pipelines/me5-xquad) locks only the runs that have run."""
    dvc_file, _, name = stage.rpartition(":")
    lock = (ROOT / dvc_file).parent / "dvc.lock" if dvc_file else ROOT / "dvc.lock"
    return lock.is_file() and name in (yaml.safe_load(lock.read_text()) or {}).get("stages", {})


def test_dvc_lock_records_the_current_code():
    """Every code dependency (under hybrid_repro/ or kernels/) of every locked stage hashes, by DVC's own
    hashing, to what dvc.lock records: a fresh clone's `dvc status` shows no code change."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: dvc.lock describes the tree it was committed with, not this copy")
    dvc = Path(sys.executable).with_name("dvc")
    result = subprocess.run([str(dvc), "status", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    assert result.returncode == 0, result.stderr
    stale = sorted(
        f"{stage}: {path} {state}"
        for stage, changes in json.loads(result.stdout).items() if _locked_stage(stage)
        for change in changes if isinstance(change, dict)
        for path, state in change.get("changed deps", {}).items() if path.split("/")[0] in ("hybrid_repro", "kernels"))
    assert not stale, ("dvc.lock is stale for code: re-run the stages (or `dvc commit` them once their outputs are "
                       "shown unchanged) and commit dvc.lock:\n" + "\n".join(stale))


def test_miracl_pipeline_is_opt_in_and_resumable():
    root_stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert not any("miracl" in stage.get("do", stage)["cmd"] for stage in root_stages.values())
    miracl = yaml.safe_load((ROOT / "pipelines/miracl/dvc.yaml").read_text())["stages"]
    # persist: DVC must not delete finished shards before re-running an interrupted encoding.
    assert miracl["encode"]["outs"] == [{"miracl/embeddings/${item.run}/${item.lang}": {"persist": True}}]
    assert set(miracl["encode"]["matrix"]) == {"run", "lang"} and miracl["fetch"]["foreach"] == "${miracl.languages}"


def _outs(stage: dict) -> list[str]:
    return [next(iter(out)) if isinstance(out, dict) else out for out in stage.get("do", stage).get("outs", [])]


def test_me5_xquad_pipeline_reads_its_profile_and_writes_where_the_profile_says():
    """The pipeline names its outputs; the stages write where profiles/me5-xquad.yaml says: the two must agree."""
    from hybrid_repro.config import load_params

    params = load_params(ROOT / "profiles/me5-xquad.yaml")
    stages = yaml.safe_load((ROOT / "pipelines/me5-xquad/dvc.yaml").read_text())["stages"]
    assert all("--params profiles/me5-xquad.yaml" in stage.get("do", stage)["cmd"] for stage in stages.values())
    train = params.train
    assert _outs(stages["data"]) == [str(params.data.out_dir)]
    assert _outs(stages["translate"]) == [str(params.translate.out_dir)]
    assert [next(iter(m)) for m in stages["translate"]["metrics"]] == [str(params.translate.metrics_path)]
    assert _outs(stages["train"]) == [f"{train.model_dir}/${{key}}", f"{train.metrics_dir}/${{key}}",
                                      f"{train.checkpoint_dir}/${{key}}"]
    assert _outs(stages["evaluate"]) == [f"{params.evaluate.out_dir}/${{key}}"]
    assert _outs(stages["evaluate-base"]) == [str(params.report.baseline_results)]
    assert params.report.baseline_results.parent == params.evaluate.out_dir  # under the report stage's dependency
    assert _outs(stages["report"]) == [str(params.report.out_dir)]
    assert "experiments/me5-xquad/results" in stages["report"]["deps"]

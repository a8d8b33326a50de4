"""benchmarks/gpu_check.sh rehearsed on CPU, so the one-call GPU check does not rot between GPU sessions."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.interpreter
def test_gpu_check_dry_run_writes_every_result(tmp_path):
    env = {**os.environ, "GPU_CHECK_DRY_RUN": "1", "PYTHON": sys.executable}
    env.pop("OUT", None)
    before = _checkout_file_times()
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(tmp_path)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    after = _checkout_file_times()
    touched = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    assert not touched, f"the check wrote into the checkout's files: {sorted(touched)}"
    steps = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == ["env", "gpu_tests", "bench_fp32", "training"]
    assert all(s["exit_status"] == 0 for s in steps)
    assert (tmp_path / "gpu_tests.xml").is_file()
    bench = json.loads((tmp_path / "bench-fp32" / "results.json").read_text())
    assert bench["gpu_timing"] is False
    training = json.loads((tmp_path / "training.json").read_text())
    assert training["runs"]["torch"]["steps"] == 3 and training["runs"]["torch"]["loss_impl"] == "torch"
    assert not list(REPO.glob(".gpu_check.*")), "the script left its work folder in the repository"


# What the script could overwrite: the checkout's tracked files and the root pipeline's outputs (DVC's, so not in
# git). Other pipelines' folders are left out: a run of theirs may write there while this test runs.
ROOT_OUTPUTS = ("data/source", "data/translated", "metrics", "models", "checkpoints", "results", "reports",
                ".cache/translation")
OTHER_PIPELINES = ("experiments/", "pipelines/")


def _checkout_file_times() -> dict[str, int]:
    """Modification time of every file of the checkout the script must leave alone."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True)
    tracked = listed.stdout.decode().split("\0") if listed.returncode == 0 else []
    paths = {REPO / name for name in tracked if name and not name.startswith(OTHER_PIPELINES)}
    for folder in ROOT_OUTPUTS:
        paths.update(path for path in (REPO / folder).rglob("*") if path.is_file())
    return {str(path.relative_to(REPO)): path.stat().st_mtime_ns for path in paths if path.exists()}

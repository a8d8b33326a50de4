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
    tracked_before = _tracked_file_times()
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(tmp_path)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    touched = {path for path, mtime in _tracked_file_times().items() if tracked_before.get(path) != mtime}
    assert not touched, f"the check wrote into the checkout's tracked files: {sorted(touched)}"
    steps = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == ["env", "gpu_tests", "bench_fp32", "training"]
    assert all(s["exit_status"] == 0 for s in steps)
    assert (tmp_path / "gpu_tests.xml").is_file()
    bench = json.loads((tmp_path / "bench-fp32" / "results.json").read_text())
    assert bench["gpu_timing"] is False
    training = json.loads((tmp_path / "training.json").read_text())
    assert training["runs"]["torch"]["steps"] == 3 and training["runs"]["torch"]["loss_impl"] == "torch"
    assert not list(REPO.glob(".gpu_check.*")), "the script left its work folder in the repository"


def _tracked_file_times() -> dict[str, int]:
    """Modification time of every file git tracks in the checkout (empty outside a git checkout)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True)
    if listed.returncode != 0:
        return {}
    paths = [name for name in listed.stdout.decode().split("\0") if name]
    return {path: (REPO / path).stat().st_mtime_ns for path in paths if (REPO / path).exists()}

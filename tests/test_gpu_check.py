"""benchmarks/gpu_check.sh rehearsed on CPU, as the lent GPU will run it, so the check does not rot between loans.

The rehearsal builds a virtual environment holding only torch, triton and numpy (with what torch itself needs, the
packages every GPU image has), downloads the wheels of benchmarks/gpu_wheels.txt for this Python, and runs both parts
of the check with tiny shapes. A package the check imports but does not carry, a result it does not bring back in its
one archive per part, or a plan over the device's time budget fails here instead of on the loan.
"""

import json
import re
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 480  # one device command; two such commands fill a loan
MAX_FILES = 8  # what the device tool brings back from $OUT
STEPS = {1: ["install", "env", "gpu_tests", "bench_bf16", "bench_symmetric"],
         2: ["install", "env", "bench_compile", "bench_small", "training"]}
RESULTS = {1: ["gpu_tests.xml", "bench-bf16/results.json", "bench-symmetric/results.json", "summary.json"],
           2: ["bench-compile/results.json", "bench-small/results.json", "training.json", "summary.json"]}


def _distribution_closure(names: list[str]) -> list[metadata.Distribution]:
    """The installed distributions ``names`` need at run time (extras left out), themselves included."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen[key] = dist = metadata.distribution(name)
        for requirement in dist.requires or []:
            requirement, _, marker = requirement.partition(";")
            if marker and not Marker(marker).evaluate({"extra": ""}):
                continue
            todo.append(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))
    return list(seen.values())


def _gpu_image_like_python(root: Path) -> Path:
    """A fresh virtual environment that sees torch, triton and numpy (and torch's own needs) and nothing else."""
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    image = root / "image"
    image.mkdir()
    for dist in _distribution_closure(["torch", "triton", "numpy"]):
        for top in {Path(str(name)).parts[0] for name in dist.files or []}:
            source = Path(dist.locate_file(top))
            if top.endswith(".pth") or top in ("..", "__pycache__") or not source.exists():
                continue
            if not (image / top).exists():
                (image / top).symlink_to(source)
    site = next((root / "lib").glob("python*/site-packages"))
    (site / "gpu_image.pth").write_text(f"{image}\n")
    return root / "bin" / "python"


def _checkout_file_times() -> dict[str, int]:
    """Modification time of every file of the checkout the script must leave alone: the tracked files and the
    root pipeline's outputs. Other pipelines' folders are left out: a run of theirs may write while this runs."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True)
    tracked = listed.stdout.decode().split("\0") if listed.returncode == 0 else []
    paths = {REPO / name for name in tracked if name and not name.startswith(("experiments/", "pipelines/"))}
    for folder in ("data/source", "data/translated", "metrics", "models", "checkpoints", "results", "reports"):
        paths.update(path for path in (REPO / folder).rglob("*") if path.is_file())
    return {str(path.relative_to(REPO)): path.stat().st_mtime_ns for path in paths if path.exists()}


@pytest.fixture(scope="module")
def rehearsal_python(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu-image")
    python = _gpu_image_like_python(root / "venv")
    wheels = root / "wheels"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    fetched = subprocess.run(["bash", "benchmarks/gpu_wheels.sh", str(wheels), version], cwd=REPO,
                             capture_output=True, text=True, timeout=600)
    # Only an unreachable index skips (a user's offline clone); any other failure, such as a wheel missing from the
    # index for this Python, fails the rehearsal.
    unreachable = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                   "Failed to establish a new connection")
    if fetched.returncode != 0 and any(reason in fetched.stderr for reason in unreachable):
        pytest.skip(f"the package index is unreachable, so the carried wheels cannot be fetched: "
                    f"{fetched.stderr.strip().splitlines()[-1:]}")
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    return python, wheels


def test_the_environment_sees_only_what_the_gpu_image_guarantees(rehearsal_python):
    python, _ = rehearsal_python
    probe = "import importlib.util as u; print([m for m in ('torch', 'triton', 'numpy', 'yaml', 'pydantic', " \
            "'transformers', 'click') if u.find_spec(m)])"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "['torch', 'triton', 'numpy']"


@pytest.mark.slow
@pytest.mark.interpreter
@pytest.mark.parametrize("part", [1, 2])
def test_gpu_check_dry_run_brings_every_result_back_in_one_archive(rehearsal_python, tmp_path, part):
    python, wheels = rehearsal_python
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GPU_CHECK_DRY_RUN": "1", "GPU_CHECK_WHEELS": str(wheels),
           "PYTHON": str(python), "GPU_CHECK_REVISION": "rehearsal"}
    out = tmp_path / "out"
    before = _checkout_file_times()
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(part), str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=2 * BUDGET_S)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    touched = {path for path, mtime in _checkout_file_times().items() if before.get(path) != mtime}
    assert not touched, f"the check wrote into the checkout's files: {sorted(touched)}"
    assert not list(REPO.glob(".gpu_check.*")), "the script left its work folder in the repository"

    returned = [path for path in out.rglob("*") if path.is_file()]
    assert [path.name for path in returned] == [f"gpu_check_part{part}.tar.gz"]
    assert len(returned) <= MAX_FILES
    with tarfile.open(returned[0]) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    results = tmp_path / "unpacked" / f"gpu_check_part{part}"
    steps = [json.loads(line) for line in (results / "steps.jsonl").read_text().splitlines()]
    assert [step["step"] for step in steps] == STEPS[part]
    assert all(step["exit_status"] == 0 for step in steps), steps
    assert sum(step["limit_s"] for step in steps) <= BUDGET_S
    summary = json.loads((results / "summary.json").read_text())
    assert summary["failed_steps"] == 0 and summary["seconds"] <= BUDGET_S and summary["revision"] == "rehearsal"
    for name in RESULTS[part]:
        assert (results / name).is_file(), name
    if part == 1:
        bench = json.loads((results / "bench-bf16" / "results.json").read_text())
        assert bench["gpu_timing"] is False and bench["interpreter_check"]["status"] == "ok"
        assert {cell["provider"] for cell in bench["cells"]} == {"triton", "torch-bf16", "torch-fp32", "inf-cl"}
    else:
        training = json.loads((results / "training.json").read_text())
        assert training["runs"]["torch"]["steps"] == 3 and training["runs"]["torch"]["loss_impl"] == "torch"

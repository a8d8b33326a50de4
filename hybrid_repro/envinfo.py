"""Versions and device, for bug reports and for stamping benchmark results."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_revision(repo: Path | None = None) -> str:
    """The checked-out commit (with '-dirty' if the tree has changes), or 'unknown' outside git."""
    cwd = repo or Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"cuda: {props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def environment_summary() -> dict[str, str]:
    """Everything `hybrid-repro env` prints, as a dict (also embedded in benchmark JSON)."""
    return {
        "python": platform.python_version(),
        "hybrid-repro": _version("hybrid-repro"),
        "torch": _version("torch"),
        "triton": _version("triton"),
        "transformers": _version("transformers"),
        "dvc": _version("dvc"),
        "device": device_description(),
        "git_revision": git_revision(),
    }

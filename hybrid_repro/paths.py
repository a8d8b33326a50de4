"""Which output paths the parameters may name.

Every stage replaces its output directories as a whole, so a configured output path decides what
gets deleted. A path is accepted only if it names a directory strictly inside the project (the
working directory, where DVC runs the stages): relative, no ``..`` component, not ``.``, and still
inside once symbolic links are resolved (a link pointing outside is refused). Across keys, no output
may equal or contain another, nor equal, contain or sit inside one of the project's own inputs
(:data:`PROJECT_INPUTS`).
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Annotated, Mapping

from pydantic import AfterValidator

PROJECT_INPUTS = (".git", ".dvc", "hybrid_repro", "kernels", "tests", "profiles", "pipelines", "docs",
                  "params.yaml", "dvc.yaml", "dvc.lock", "data/lareqa")
"""Paths no stage of the main pipeline writes: version control, code, parameters, documentation and
the fetched LAReQA files (``data/lareqa``, written only by ``pipelines/lareqa``)."""


def check_output_path(path: Path) -> Path:
    """Return ``path`` if it names a path strictly inside the working directory, else raise ValueError."""
    if path.is_absolute():
        raise ValueError(f"{str(path)!r} is absolute; give a path relative to the project root, e.g. 'results'")
    if ".." in path.parts:
        raise ValueError(f"{str(path)!r} contains '..'; outputs must stay inside the project")
    if not path.parts:
        raise ValueError(f"{str(path)!r} names the project root itself; give a subdirectory, e.g. 'results'")
    root = Path.cwd().resolve()
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise ValueError(f"{str(path)!r} resolves to {resolved} through a symbolic link, outside the project "
                         f"{root}; give a plain directory inside it")
    return path


OutputPath = Annotated[Path, AfterValidator(check_output_path)]
"""A parameter naming an output (a directory, or a file such as ``docs/baselines.md``), checked by
:func:`check_output_path` on load."""


def check_disjoint_outputs(outputs: Mapping[str, Path], inputs: tuple[str, ...] = PROJECT_INPUTS) -> None:
    """Raise ValueError if two outputs overlap (one equals or contains the other) or one overlaps an input.

    ``outputs`` maps each parameter key to its (already checked, relative) path; paths are compared
    after resolving symbolic links, so two spellings of one directory count as the same.
    """
    root = Path.cwd().resolve()
    resolved = {key: (root / path).resolve() for key, path in outputs.items()}
    keys = list(resolved)
    for i, key in enumerate(keys):
        for other in keys[i + 1:]:
            if _overlap(resolved[key], resolved[other]):
                raise ValueError(f"{key} ({outputs[key]}) and {other} ({outputs[other]}) overlap: writing one "
                                 "would replace the other; give them separate directories")
        for name in inputs:
            if _overlap(resolved[key], (root / name).resolve()):
                raise ValueError(f"{key} ({outputs[key]}) overlaps the project's own {name}, which the "
                                 "pipeline reads and never writes; choose another directory")


def _overlap(a: PurePath, b: PurePath) -> bool:
    return a.is_relative_to(b) or b.is_relative_to(a)

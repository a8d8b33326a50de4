"""Which output paths the parameters may name.

Every stage replaces its output directories as a whole, so a configured output path decides what
gets deleted. A path is accepted only if it names a directory strictly inside the project (the
working directory, where DVC runs the stages): relative, no ``..`` component, not ``.``, and still
inside once symbolic links are resolved (a link pointing outside is refused). Across keys, no output
may equal or contain another, nor equal, contain or sit inside one of the project's own inputs
(:data:`PROJECT_INPUTS`).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath
from typing import Annotated, Any, Mapping

import yaml
from pydantic import AfterValidator

from hybrid_repro.errors import HybridReproError

PROJECT_INPUTS = (".git", ".dvc", ".ci", "hybrid_repro", "kernels", "tests", "profiles", "pipelines", "docs",
                  "params.yaml", "dvc.yaml", "dvc.lock", "data/lareqa", "README.md", "LICENSE", "CITATION.cff",
                  "Makefile", "pyproject.toml", "requirements.txt", ".gitignore", ".dvcignore")
"""Paths no stage of the main pipeline writes: version control, code, parameters, documentation, the project's
top-level files and the fetched LAReQA files (``data/lareqa``, written only by ``pipelines/lareqa``)."""
# The longest file name, in bytes, that common file systems (ext4, xfs, btrfs, tmpfs, APFS) allow.
NAME_MAX = 255
# Names read from data files or manifests that become path components (datasets, languages): never '..', '/', '.'.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


def check_output_path(path: Path) -> Path:
    """Return ``path`` if it names a path strictly inside the working directory, else raise ValueError."""
    if path.is_absolute():
        raise ValueError(f"{str(path)!r} is absolute; give a path relative to the project root, e.g. 'results'")
    if ".." in path.parts:
        raise ValueError(f"{str(path)!r} contains '..'; outputs must stay inside the project")
    if not path.parts:
        raise ValueError(f"{str(path)!r} names the project root itself; give a subdirectory, e.g. 'results'")
    long = [part for part in path.parts if len(part.encode()) > NAME_MAX]
    if long:
        raise ValueError(f"{str(path)!r} has a component of {len(long[0].encode())} bytes, longer than the "
                         f"{NAME_MAX} a file system allows; shorten it")
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


def guard_output(path: Path, what: str) -> Path:
    """The check every output a command option names gets (``check --out``, ``score --out``, ...): inside the
    project and not one of its inputs; a :class:`HybridReproError` naming ``what`` otherwise."""
    try:
        check_output_path(path)
        check_disjoint_outputs({what: path})
    except ValueError as exc:
        raise HybridReproError(f"{what}: {exc}") from exc
    return path


def safe_name(value: Any, what: str) -> str:
    """``value`` if it can be a path component (a dataset or language name read from a file), else an error."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise HybridReproError(f"{what} {value!r} is not a name (letters, digits, '-' and '_'); the file is corrupt or "
                               "was edited by hand: rerun the stage that wrote it")
    return value


def declared_outputs(root: Path) -> dict[Path, tuple[set[str], list[str]]]:
    """Per ``dvc.yaml`` of the project (the root one and ``pipelines/*/dvc.yaml``): the params files its stages read
    and the outputs they declare, relative to the project root (a templated path cut before its first ``${``)."""
    found = {}
    for dvc_file in [root / "dvc.yaml", *sorted((root / "pipelines").glob("*/dvc.yaml"))]:
        if not dvc_file.is_file():
            continue
        stages = (yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}).get("stages") or {}
        params_files, outs = set(), []
        for stage in stages.values():
            body = stage.get("do", stage)
            base = (dvc_file.parent / body.get("wdir", ".")).resolve()
            for entry in body.get("params") or []:
                names = entry if isinstance(entry, dict) else {"params.yaml": None}
                params_files.update(str((base / name).resolve().relative_to(root)) for name in names)
            for kind in ("outs", "metrics", "plots"):
                for entry in body.get(kind) or []:
                    for name in (entry if isinstance(entry, dict) else [entry]):
                        name = str(name).split("${", 1)[0].rstrip("/")
                        if name:
                            outs.append(str((base / name).resolve().relative_to(root)))
        found[dvc_file] = (params_files, outs)
    return found


def check_foreign_outputs(outputs: Mapping[str, Path], params_path: Path) -> None:
    """Raise ValueError if an output of the params file ``params_path`` overlaps an output declared by a pipeline
    that does not read that file (another pipeline's committed results, which its ownership marker would not
    protect). A profile no pipeline reads in place counts as ``params.yaml``, where it is copied to run. Only in a
    project: without a ``dvc.yaml`` in the working directory there is nothing to compare."""
    root = Path.cwd().resolve()
    try:
        own = str(params_path.resolve().relative_to(root))
    except ValueError:
        return  # a params file outside the project (a test's, say) belongs to no pipeline here
    declared = declared_outputs(root)
    if not any(own in params_files for params_files, _ in declared.values()):
        own = "params.yaml"  # a profile no pipeline reads in place is one to copy over params.yaml
    for dvc_file, (params_files, outs) in declared.items():
        if own in params_files:
            continue
        for key, path in outputs.items():
            for out in outs:
                if _overlap((root / path).resolve(), root / out):
                    raise ValueError(f"{key} ({path}) overlaps {out}, an output of {dvc_file.relative_to(root)}, "
                                     f"which does not read {own}: choose a directory of this pipeline's own")

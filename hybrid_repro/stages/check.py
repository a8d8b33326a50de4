"""Stage ``check``: validate the whole params file and the DVC stage grid before any other stage runs.

Under ``dvc repro`` a stage's previous outputs are removed before its command runs, so a typo that
only the ``train`` stage noticed would already have cost the trained model. Every other stage
depends on this stage's output, and this stage tracks every section of ``params.yaml``: a bad
value fails here, before DVC touches any other stage.

The output's content is constant, so a successful check never makes other stages re-run: DVC sees
their dependency unchanged and decides on their own parameters, as without this stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybrid_repro.config import Params, checked_params, read_params_mapping
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_file
from hybrid_repro.paths import guard_output

CHECK_OUTPUT = Path(".check/params.ok")
CHECK_CONTENT = "params.yaml and the dvc.yaml stage grid passed `hybrid-repro check`\n"


def stage_param_keys(dvc_stages: dict[str, Any], runs: list[str]) -> dict[str, list[str]]:
    """Stage name (``train@hybrid`` for foreach stages) -> the params keys it lists, ``${key}`` expanded."""
    keys: dict[str, list[str]] = {}
    for name, stage in dvc_stages.items():
        if isinstance(stage, dict) and "foreach" in stage:
            if stage["foreach"] != "${runs}":
                raise HybridReproError(f"dvc.yaml stage {name!r} loops over {stage['foreach']!r}; "
                                       "`hybrid-repro check` knows only `foreach: ${runs}`")
            for run in runs:
                keys[f"{name}@{run}"] = [key.replace("${key}", run) for key in _param_names(stage.get("do", {}))]
        else:
            keys[name] = _param_names(stage)
    return keys


def _param_names(stage: Any) -> list[str]:
    names = []
    for entry in stage.get("params", []) if isinstance(stage, dict) else []:
        # An entry is a key of params.yaml, or {file: [keys]} for another file (not checked here).
        if isinstance(entry, str):
            names.append(entry)
    return names


def _has_key(raw: dict[str, Any], dotted: str) -> bool:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def run_check(params_path: Path, dvc_file: Path, out: Path = CHECK_OUTPUT) -> Params:
    """Validate ``params_path`` and that every params key ``dvc_file`` names exists in it; write ``out``."""
    guard_output(out, "check --out")
    raw = read_params_mapping(params_path)
    params = checked_params(raw, params_path)
    dvc = read_params_mapping(dvc_file)
    if not isinstance(dvc, dict) or not isinstance(dvc.get("stages"), dict):
        raise HybridReproError(f"{dvc_file} has no `stages` mapping")
    for stage, keys in stage_param_keys(dvc["stages"], list(params.runs)).items():
        missing = [key for key in keys if not _has_key(raw, key)]
        if missing:
            raise HybridReproError(f"dvc.yaml stage {stage} lists params {', '.join(missing)}, "
                                   f"which {params_path} does not define")
    with atomic_output_file(out) as handle:
        handle.write(CHECK_CONTENT)
    return params

"""Corrupt or inconsistent stage inputs through the CLI: one line on stderr naming the file and the fix, exit 2.

Each case damages one input the way a cut copy, a stray edit or a half-finished transfer does, then
runs the stage command that reads it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml
from click.testing import CliRunner

from hybrid_repro.cli import cli
from hybrid_repro.modeling.encoder import Encoder

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests" / "training"), str(REPO / "tests" / "stages")]
from test_evaluate_stage import LANGUAGES as EVAL_LANGUAGES, write_eval_manifest, write_tiny_lareqa  # noqa: E402
from test_trainer import tiny_params, tiny_raw, write_manifest, write_tiny_data  # noqa: E402

RUN = "x-y"
# Output paths in params must be relative to the working directory: run from pytest's base temporary folder.
pytestmark = pytest.mark.usefixtures("in_basetemp")


def _run(root: Path, command: str) -> str:
    """Run ``command --run x-y`` on params under ``root``; return its output, which must be one error line."""
    raw = tiny_raw(root)
    raw["translate"]["eval_languages"] = list(EVAL_LANGUAGES)
    raw["evaluate"].update(out_dir=os.path.relpath(root / "results"), cache_dir=os.path.relpath(root / "cache"))
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = CliRunner().invoke(cli, [command, "--params", str(params_file), "--run", RUN])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    return result.output


def _cut_last_lines(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")


def _duplicate_lines(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8") * 2, encoding="utf-8")


def _replace_bytes(path: Path, old: bytes, new: bytes) -> None:
    path.write_bytes(path.read_bytes().replace(old, new, 1))


def _recorded_with_bytes(path: Path, old: bytes, new: bytes) -> None:
    """Replace the first ``old`` in ``path`` by ``new`` and record the checksums as if the stage had written it."""
    _replace_bytes(path, old, new)
    write_manifest(path.parent)


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda data: _cut_last_lines(data / "train.jsonl"),
         r"train.jsonl does not match its sha256 in .*manifest.json \(cut, duplicated or edited\): re-run the translate"),
        (lambda data: _duplicate_lines(data / "val.jsonl"), r"val.jsonl does not match its sha256"),
        (lambda data: (data / "manifest.json").unlink(), r"manifest.json is missing, so the translated data cannot"),
        (lambda data: _recorded_with_bytes(data / "train.jsonl", b"where", b"wh\xffre"), r"train.jsonl is not valid UTF-8"),
        (lambda data: _recorded_with_bytes(data / "val.jsonl", b"where", b"wh\x00re"), r"val.jsonl contains a NUL byte"),
        (lambda data: _replace_bytes(data / "manifest.json", b'"xa"', b'"xz"'),
         r"translated with train languages \['xz', 'xb', 'xc'\], but params name translate.train_languages"),
    ],
    ids=["cut", "duplicated", "no-manifest", "invalid-utf8", "nul-byte", "other-languages"],
)
def test_train_refuses_training_data_the_manifest_does_not_vouch_for(tmp_path, damage: Callable, expected):
    write_tiny_data(tmp_path)
    damage(tmp_path / "data")
    output = _run(tmp_path, "train")
    assert re.search(expected, output), output
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "models").exists()


def _saved_encoder(root: Path) -> Path:
    """A tiny encoder saved where ``evaluate --run x-y`` looks, and the synth-r files with their manifest."""
    write_tiny_lareqa(root / "data" / "eval" / "synth-r")
    write_eval_manifest(root / "data")
    model_dir = root / "models" / RUN
    Encoder.build(tiny_params(root).model, ["where is zorbal", "zorbal the city of"] * 3, seed=0).save(model_dir)
    return model_dir


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _pickle_in_place_of_safetensors(model_dir: Path) -> None:
    (model_dir / "model.safetensors").unlink()
    torch.save({"weights": torch.zeros(2)}, model_dir / "pytorch_model.bin")


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda root, model: (root / "data" / "eval" / "synth-r" / "de.json").unlink(),
         r"de.json is missing \(listed in .*manifest.json\): re-run the translate stage"),
        (lambda root, model: (root / "data" / "eval" / "synth-r" / "xx.json").write_text("{}"),
         r"xx.json was not written by the translate stage"),
        (lambda root, model: _truncate(root / "data" / "eval" / "synth-r" / "fr.json"),
         r"fr.json does not match its sha256"),
        (lambda root, model: _truncate(model / "model.safetensors"),
         r"cannot load the encoder in .*: Error while deserializing header.*; re-run the train stage"),
        (lambda root, model: _pickle_in_place_of_safetensors(model),
         r"holds no model.safetensors \(found pytorch_model.bin, which is not loaded\): re-run the train stage"),
        (lambda root, model: _replace_bytes(model / "encoder.json", b"{", b"{\x00"), r"encoder.json contains a NUL byte"),
    ],
    ids=["deleted-language", "foreign-language", "cut-language-file", "truncated-safetensors", "pickled-weights",
         "nul-in-settings"],
)
def test_evaluate_refuses_damaged_inputs(tmp_path, damage: Callable, expected):
    model_dir = _saved_encoder(tmp_path)
    damage(tmp_path, model_dir)
    output = _run(tmp_path, "evaluate")
    assert re.search(expected, output), output
    assert not (tmp_path / "results").exists()

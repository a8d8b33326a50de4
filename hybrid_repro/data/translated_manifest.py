"""Verify the translate stage's outputs against the ``manifest.json`` it wrote, before a stage uses them.

The manifest records the languages and the sha256 of every file (layout:
:mod:`hybrid_repro.data.translated_corpus`). A file cut at a line boundary or with duplicated lines
is still valid JSON Lines, and a deleted language file just shrinks the evaluation: only the
checksums and the recorded language set tell them apart from the real outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import read_json, sha256_file

MANIFEST = "manifest.json"
RERUN = "re-run the translate stage (`dvc repro translate` or `hybrid-repro translate`)"


def manifest_files(out_dir: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``out_dir`` but the manifest: its ``files`` entry."""
    return {str(path.relative_to(out_dir)): sha256_file(path)
            for path in sorted(out_dir.rglob("*")) if path.is_file() and path != out_dir / MANIFEST}


def read_manifest(data_dir: Path) -> dict[str, Any]:
    """The manifest of the translated data in ``data_dir``; missing or malformed is an error."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise HybridReproError(f"{path} is missing, so the translated data cannot be verified: {RERUN}")
    manifest = read_json(path)
    if not (isinstance(manifest, dict) and isinstance(manifest.get("files"), dict)
            and isinstance(manifest.get("languages"), dict)):
        raise HybridReproError(f"{path} lacks the files and languages it should record: {RERUN}")
    return manifest


def _check_languages(manifest: dict[str, Any], kind: str, expected: Sequence[str], data_dir: Path) -> None:
    recorded = manifest["languages"].get(kind)
    if recorded != list(expected):
        raise HybridReproError(f"{data_dir} was translated with {kind} languages {recorded}, but params name "
                               f"translate.{kind}_languages {list(expected)}: {RERUN}")


def _check_files(data_dir: Path, manifest: dict[str, Any], names: Iterable[str]) -> None:
    for name in names:
        path = data_dir / name
        expected = manifest["files"].get(name)
        if expected is None:
            raise HybridReproError(f"{path} is not listed in {data_dir / MANIFEST}: {RERUN}")
        if not path.is_file():
            raise HybridReproError(f"{path} is missing (listed in {data_dir / MANIFEST}): {RERUN}")
        if sha256_file(path) != expected:
            raise HybridReproError(f"{path} does not match its sha256 in {data_dir / MANIFEST} "
                                   f"(cut, duplicated or edited): {RERUN}")


class VerifiedTrainingData(NamedTuple):
    """What the train stage learns from the manifest after checking the two splits against it."""

    source_language: str
    """The corpus's source language: the default validation language."""
    sha256: tuple[str, str]
    """The checked sha256 of ``train.jsonl`` and ``val.jsonl`` (part of the checkpoint fingerprint)."""


def verify_training_data(data_dir: Path, train_languages: Sequence[str]) -> VerifiedTrainingData:
    """Check that ``train.jsonl`` and ``val.jsonl`` are exactly what the translate stage wrote for
    ``train_languages``."""
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    _check_languages(manifest, "train", train_languages, data_dir)
    _check_files(data_dir, manifest, ("train.jsonl", "val.jsonl"))
    source = manifest["languages"].get("source")
    if not isinstance(source, str) or source not in train_languages:
        raise HybridReproError(f"{data_dir / MANIFEST} names no source language among the training languages: {RERUN}")
    return VerifiedTrainingData(source, (manifest["files"]["train.jsonl"], manifest["files"]["val.jsonl"]))


def verify_eval_dataset(data_dir: Path, dataset: str, eval_languages: Sequence[str]) -> None:
    """``eval/<dataset>/`` holds exactly the language files the translate stage wrote for ``eval_languages``."""
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    _check_languages(manifest, "eval", eval_languages, data_dir)
    expected = [f"eval/{dataset}/{lang}.json" for lang in eval_languages]
    present = {str(path.relative_to(data_dir)) for path in (data_dir / "eval" / dataset).glob("*.json")}
    foreign = sorted(present - set(expected))
    if foreign:
        raise HybridReproError(f"{data_dir / foreign[0]} was not written by the translate stage "
                               f"(not in {data_dir / MANIFEST}): remove it or {RERUN}")
    _check_files(data_dir, manifest, expected)

"""Stage `data`: the source corpus directory, its determinism and its failure behaviour."""

import json
import os
from pathlib import Path

import pytest
import yaml

from hybrid_repro.config import Params, params_from_dict
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import OUTPUT_MARKER, sha256_file
from hybrid_repro.stages import data as data_stage
from hybrid_repro.stages.data import run_data

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("in_basetemp")
SMALL_SYNTHETIC = {
    "n_topics": 8,
    "entities_per_topic": 4,
    "train_paragraphs": {"synth-qa": 30, "synth-faq": 10, "synth-kw": 8},
    "val_paragraphs": 6,
    "eval_articles": 3,
    "paragraphs_per_article": 3,
}


def small_params(root: Path, seed: int = 13, translate: dict | None = None) -> Params:
    """The committed params.yaml with a small corpus and outputs under ``root`` (given relative to the
    working directory, as params require)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["seed"] = seed
    raw["data"]["synthetic"] = SMALL_SYNTHETIC
    raw["data"]["out_dir"] = os.path.relpath(root / "source")
    raw["translate"]["out_dir"] = os.path.relpath(root / "translated")
    raw["translate"]["metrics_path"] = os.path.relpath(root / "metrics" / "translate.json")
    raw["translate"].update(translate or {})
    return params_from_dict(raw)


def tree_digest(path: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``path`` (empty if it does not exist)."""
    return {str(p.relative_to(path)): sha256_file(p) for p in sorted(path.rglob("*")) if p.is_file()}


def test_writes_corpus_with_verified_manifest(tmp_path):
    params = small_params(tmp_path)
    run_data(params)
    out = params.data.out_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(tree_digest(out)) == {"manifest.json", OUTPUT_MARKER, *manifest["files"]}
    assert all(sha256_file(out / name) == digest for name, digest in manifest["files"].items())
    assert manifest["kind"] == "synthetic" and manifest["source_language"] == "qen"
    q = params.data.synthetic.questions_per_paragraph
    assert {n: d["train"] for n, d in manifest["datasets"].items()} == {
        n: p * q for n, p in SMALL_SYNTHETIC["train_paragraphs"].items()
    }
    assert manifest["datasets"]["synth-faq"]["multilingual"] is False
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    first, second, other = (small_params(tmp_path / name, seed) for name, seed in (("a", 1), ("b", 1), ("c", 2)))
    for params in (first, second, other):
        run_data(params)
    assert tree_digest(first.data.out_dir) == tree_digest(second.data.out_dir)
    assert tree_digest(first.data.out_dir)["train.jsonl"] != tree_digest(other.data.out_dir)["train.jsonl"]


def test_failure_while_writing_leaves_previous_output_untouched(tmp_path, monkeypatch):
    params = small_params(tmp_path)
    run_data(params)
    before = tree_digest(params.data.out_dir)

    def fail_half_way(out_dir, corpus, source_language, seed):
        (out_dir / "train.jsonl").write_text("partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(data_stage, "write_source_corpus", fail_half_way)
    with pytest.raises(RuntimeError, match="disk full"):
        run_data(small_params(tmp_path, seed=99))
    assert tree_digest(params.data.out_dir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]


def test_failure_on_first_run_leaves_no_output(tmp_path, monkeypatch):
    monkeypatch.setattr(data_stage, "generate_corpus", lambda config, seed: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        run_data(small_params(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(HybridReproError, match="cannot create directory"):
        run_data(small_params(blocker))

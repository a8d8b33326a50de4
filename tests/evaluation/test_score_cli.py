"""`hybrid-repro score`: a TREC run file in, a table (and optionally the metrics JSON) out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_lareqa_loader import pool_dir  # noqa: F401  (fixture)

from hybrid_repro.cli import cli
from hybrid_repro.evaluation.lareqa import load_lareqa
from hybrid_repro.evaluation.runfile import setting_rankings, write_run_file
from hybrid_repro.io import sha256_file


@pytest.fixture()
def mul_run(pool_dir: Path, tmp_path: Path) -> Path:  # noqa: F811
    dataset = load_lareqa(pool_dir)
    scores = torch.from_numpy(np.random.default_rng(3).random((len(dataset.questions), len(dataset.candidates))))
    path = tmp_path / "mul.trec"
    write_run_file(path, setting_rankings(dataset, lambda idx: scores[idx], "mul", progress=False))
    return path


def score(*args: str):
    return CliRunner().invoke(cli, ["score", *args])


def test_scores_a_run_prints_a_table_and_writes_metrics(pool_dir: Path, mul_run: Path, tmp_path: Path,  # noqa: F811
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)  # --out lies inside the project: here, the test's folder
    out = Path("metrics.json")
    result = score(str(mul_run), "--data", str(pool_dir), "--setting", "mul", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["mini-r", "mul", "n", "map", "map@20", "r@10", "mrr", "rank_distance"]
    assert [line.split()[:2] for line in lines[2:]] == [["de", "2"], ["en", "2"], ["zh", "1"], ["mean", "5"]]
    metrics = json.loads(out.read_text())
    assert list(metrics["settings"]) == ["mul"]
    assert metrics["run_sha256"] == sha256_file(mul_run)
    assert f"{metrics['settings']['mul']['mean']['map']:15.4f}".strip() == lines[-1].split()[2]


def test_cross_lingual_target_and_pairs(pool_dir: Path, mul_run: Path, tmp_path: Path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    out = Path("cr.json")
    result = score(str(mul_run), "--data", str(pool_dir), "--setting", "cr", "--target", "zh", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert set(json.loads(out.read_text())["settings"]["cr"]["per_pair"]) == {"de-zh", "en-zh"}


def test_problems_exit_with_status_2_and_one_line(pool_dir: Path, tmp_path: Path):  # noqa: F811
    partial = tmp_path / "partial.trec"
    partial.write_text("a_en Q0 en_1_1 1 2.0 t\na_en Q0 de_1_1 2 1.0 t\n")
    result = score(str(partial), "--data", str(pool_dir), "--setting", "mul")
    assert result.exit_code == 2
    assert "error: run has no ranking for 4 of the 5 queries" in result.output
    allowed = score(str(partial), "--data", str(pool_dir), "--setting", "mul", "--allow-missing-queries")
    assert allowed.exit_code == 0
    assert allowed.output.splitlines()[2].split()[:3] == ["en", "1", "0.6667"]  # (1/1 + 2/2) / 3 relevant
    foreign = tmp_path / "foreign.trec"
    foreign.write_text("x_fr Q0 en_1_1 1 2.0 t\n")
    result = score(str(foreign), "--data", str(pool_dir), "--setting", "mo")
    assert result.exit_code == 2 and "query id(s) not in mini-r" in result.output

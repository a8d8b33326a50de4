"""Cr. heatmap: the matrix it draws and the PNG it writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_settings_lareqa import HAND, hand_score_rows

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.heatmap import cross_lingual_matrix, write_cr_heatmap
from hybrid_repro.evaluation.settings import evaluate_score_rows


@pytest.fixture(scope="module")
def metrics() -> dict:
    return evaluate_score_rows(HAND, hand_score_rows, progress=False).to_metrics_json()


def test_matrix_holds_cr_pairs_with_mo_on_the_diagonal(metrics: dict):
    languages, matrix = cross_lingual_matrix(metrics)
    assert languages == ["de", "en", "zh"]
    expected = [[2 / 3, 0.625, 0.5], [2 / 3, 0.75, 1.0], [1 / 3, 1.0, 0.5]]
    np.testing.assert_allclose(matrix, expected)
    without_mo = {**metrics, "settings": {"cr": metrics["settings"]["cr"]}}
    assert np.isnan(np.diag(cross_lingual_matrix(without_mo)[1])).all()


def test_writes_a_png(metrics: dict, tmp_path: Path):
    path = tmp_path / "plots" / "cr.png"
    write_cr_heatmap(path, metrics, metric="r@1")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["cr.png"]


def test_needs_the_cr_setting(metrics: dict, tmp_path: Path):
    with pytest.raises(HybridReproError, match="no 'cr' setting"):
        write_cr_heatmap(tmp_path / "x.png", {**metrics, "settings": {"mo": metrics["settings"]["mo"]}})

"""Report tables and plots from evaluation metrics JSON."""

from pathlib import Path

import os

import pytest
import yaml

from hybrid_repro.config import params_from_dict
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import write_json
from hybrid_repro.report import map_table, rank_distance_table, recall_table, render_markdown
from hybrid_repro.stages.report import run_report

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("in_basetemp")
LANGS = ("aa", "bb")


def fake_metrics(dataset: str, base: float) -> dict:
    per_lang = {lang: {"map": base, "map@20": base, "r@1": base - 0.1, "r@10": base + 0.1, "mrr": base,
                       "rank_distance": 100 * base + i} for i, lang in enumerate(LANGS)}
    return {
        "dataset": dataset,
        "settings": {
            "mo": {"mean": {"map": base, "map@20": base, "r@1": base - 0.1, "mrr": base},
                   "per_language": per_lang, "n_queries": {lang: 10 for lang in LANGS}},
            "cr": {"mean": {"map": base - 0.2, "map@20": base, "r@1": base - 0.3, "mrr": base},
                   "per_language": per_lang, "per_pair": {}},
            "mul": {"mean": {"map": base - 0.3, "map@20": base, "r@10": base + 0.05, "mrr": base,
                             "rank_distance": 100 * base + 0.5},
                    "per_language": per_lang, "n_queries": {lang: 10 for lang in LANGS}},
        },
    }


RESULTS = {"x-x-mono": {"ds": fake_metrics("ds", 0.8)}, "x-y": {"ds": fake_metrics("ds", 0.7)}}


def test_map_table_has_one_row_per_run_and_paper_columns():
    table = map_table(RESULTS).splitlines()
    assert table[0] == "| Run | ds Mo. | ds Cr. | ds Mul. |"
    assert table[2] == "| x-x-mono | 0.800 | 0.600 | 0.500 |"
    assert table[3] == "| x-y | 0.700 | 0.500 | 0.400 |"


def test_recall_and_rank_distance_tables():
    assert "| x-x-mono | 0.700 | 0.500 | 0.850 |" in recall_table(RESULTS)
    assert "| x-y | 70.5 |" in rank_distance_table(RESULTS)


def test_missing_metric_is_a_clear_error():
    broken = {"r": {"ds": fake_metrics("ds", 0.5)}}
    del broken["r"]["ds"]["settings"]["mul"]["mean"]["rank_distance"]
    with pytest.raises(HybridReproError, match="settings.mul.mean.rank_distance"):
        render_markdown(broken)


def test_report_stage_writes_tables_and_plots(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["evaluate"].update(out_dir=os.path.relpath(tmp_path / "results"), datasets=["ds"])
    raw["report"] = {"out_dir": os.path.relpath(tmp_path / "reports")}
    raw["runs"] = {"x-x-mono": {"strategy": "x-x-mono"}, "x-y": {"strategy": "x-y"}}
    params = params_from_dict(raw)
    for run, by_ds in RESULTS.items():
        write_json(tmp_path / "results" / run / "ds" / "metrics.json", by_ds["ds"])
    run_report(params)
    out = tmp_path / "reports"
    assert "| x-y | 0.700 | 0.500 | 0.400 |" in (out / "results.md").read_text()
    for png in ("mean_map_by_setting.png", "rank_distance_by_language.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_stage_without_results_writes_nothing(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["evaluate"]["out_dir"] = os.path.relpath(tmp_path / "results")
    raw["report"] = {"out_dir": os.path.relpath(tmp_path / "reports")}
    with pytest.raises(HybridReproError, match="run the stage that produces it"):
        run_report(params_from_dict(raw))
    assert not (tmp_path / "reports").exists()

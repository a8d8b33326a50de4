"""Stage `report` on fixture evaluation outputs: seeds grouped, tests run, every file written atomically."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from hybrid_repro.config import params_from_dict
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import write_json
from hybrid_repro.stages.evaluate import write_per_query
from hybrid_repro.stages.report import run_report

# Output paths in params must be relative to the working directory: run from pytest's base temporary folder.
pytestmark = pytest.mark.usefixtures("in_basetemp")

REPO = Path(__file__).resolve().parents[2]
LANGS = ("aa", "bb")
QUERIES = 40
PNG = b"\x89PNG\r\n\x1a\n"


def write_run(directory: Path, dataset: str, level: float, seed: int) -> None:
    """metrics.json and per_query.parquet of one run whose per-query AP is about ``level``, consistently."""
    rng = np.random.default_rng(seed)
    rows, settings = [], {}
    for setting, offset in (("mo", 0.0), ("cr", -0.2), ("mul", -0.3)):
        per_language = {}
        for lang in LANGS:
            targets = [t for t in LANGS if t != lang] if setting == "cr" else ["*" if setting == "mul" else lang]
            ap = np.clip(level + offset + rng.normal(0, 0.05, QUERIES), 0, 1)
            for i, value in enumerate(ap):
                rows += [{"setting": setting, "qid": f"{i}_{lang}", "query_language": lang, "target_language": t,
                          "map": float(value)} for t in targets]
            per_language[lang] = {"map": float(ap.mean()), "r@1": float(ap.mean()) - 0.1,
                                  "r@10": float(ap.mean()) + 0.1, "rank_distance": 100 * (1 - float(ap.mean()))}
        mean = {key: float(np.mean([row[key] for row in per_language.values()])) for key in per_language["aa"]}
        settings[setting] = {"mean": mean, "per_language": per_language, "n_queries": {lang: QUERIES for lang in LANGS}}
    write_json(directory / dataset / "metrics.json", {"dataset": dataset, "settings": settings})
    write_per_query(directory / dataset / "per_query.parquet", rows)


def make_params(tmp_path: Path, runs: dict, dataset: str = "synth-r", **report) -> object:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["evaluate"].update(out_dir=os.path.relpath(tmp_path / "results"), datasets=[dataset])
    raw["report"] = {"out_dir": os.path.relpath(tmp_path / "reports"), "permutations": 999, **report}
    raw["runs"] = runs
    return params_from_dict(raw)


def test_demo_shaped_runs_one_seed_each(tmp_path):
    runs = {"x-x-mono": {"strategy": "x-x-mono"}, "x-y": {"strategy": "x-y"},
            "hybrid": {"strategy": "hybrid", "alpha": 0.5}}
    for seed, (run, level) in enumerate((("x-x-mono", 0.5), ("x-y", 0.5), ("hybrid", 0.7))):
        write_run(tmp_path / "results" / run, "synth-r", level, seed)
    run_report(make_params(tmp_path, runs))
    out = tmp_path / "reports"
    markdown = (out / "results.md").read_text()
    assert "Every strategy has one seed, so no standard deviation" in markdown
    assert "paper," not in markdown  # synth-r is not one of the paper's datasets
    assert "±" not in markdown.split("## Paired significance")[0]
    # hybrid is 0.2 AP above both baselines on 80 queries: significant against both, in every setting.
    hybrid_row = next(line for line in markdown.splitlines() if line.startswith("| hybrid α=0.5 | 1 |"))
    assert hybrid_row.count("†‡") == 3
    summary = json.loads((out / "summary.json").read_text())
    assert [g["label"] for g in summary["groups"]] == ["x-x-mono", "x-y", "hybrid α=0.5"]
    comparisons = summary["significance"]["comparisons"]
    assert len(comparisons) == 9 and all(c["p_holm"] >= c["p_value"] for c in comparisons)
    for name in ("mean_map_by_setting.png", "rank_distance_by_language.png", "alpha_sweep.png"):
        assert (out / name).read_bytes()[:8] == PNG


def test_seeds_give_spread_and_zero_shot_comes_first_with_paper_rows(tmp_path):
    runs = {f"{strategy}-s{seed}": {"strategy": strategy, "seed": seed} for strategy in ("x-x-mono", "x-y")
            for seed in (1, 2)}
    for i, run in enumerate(runs):
        write_run(tmp_path / "results" / run, "mlqa-r", 0.5 + 0.01 * i, i)
    write_run(tmp_path / "results" / "zero-shot", "mlqa-r", 0.3, 99)
    run_report(make_params(tmp_path, runs, "mlqa-r", baseline_results=str(tmp_path / "results" / "zero-shot")))
    out = tmp_path / "reports"
    markdown = (out / "results.md").read_text()
    table = markdown.split("## Mean mAP")[1].split("\n\n")[1].splitlines()
    assert table[2].startswith("| zero-shot encoder | zero-shot | 0.3")
    assert table[3].startswith("| x-x-mono | 2 |") and " ± " in table[3]
    assert "| paper, LaBSE: hybrid | 1 | 0.686 | 0.681 | 0.579 |" in table
    assert "compare the pattern, not the level" in markdown
    assert not (out / "alpha_sweep.png").exists()  # no hybrid run: nothing to sweep
    summary = json.loads((out / "summary.json").read_text())
    assert summary["groups"][1]["seeds"] == [1, 2]
    assert summary["groups"][1]["statistics"]["mlqa-r"]["mo"]["mean"]["map"]["n"] == 2
    assert len(summary["significance"]["comparisons"]) == 3  # zero-shot is not tested


def test_same_strategy_and_seed_twice_is_an_error(tmp_path):
    runs = {"a": {"strategy": "x-y", "seed": 3}, "b": {"strategy": "x-y", "seed": 3}}
    for run in runs:
        write_run(tmp_path / "results" / run, "synth-r", 0.5, 0)
    with pytest.raises(HybridReproError, match="share strategy 'x-y' and a seed"):
        run_report(make_params(tmp_path, runs))
    assert not (tmp_path / "reports").exists()


def test_missing_zero_shot_results_name_the_key(tmp_path):
    runs = {"x-y": {"strategy": "x-y"}}
    write_run(tmp_path / "results" / "x-y", "synth-r", 0.5, 0)
    with pytest.raises(HybridReproError, match="report.baseline_results"):
        run_report(make_params(tmp_path, runs, baseline_results=str(tmp_path / "nowhere")))


def test_report_stage_without_results_writes_nothing(tmp_path):
    with pytest.raises(HybridReproError, match="no run has results in .* yet: evaluate at least one of x-y"):
        run_report(make_params(tmp_path, {"x-y": {"strategy": "x-y"}}))
    assert not (tmp_path / "reports").exists()


def test_a_single_strategy_is_reported_without_tests(tmp_path):
    write_run(tmp_path / "results" / "x-y", "synth-r", 0.5, 0)
    run_report(make_params(tmp_path, {"x-y": {"strategy": "x-y"}}))
    markdown = (tmp_path / "reports" / "results.md").read_text()
    assert "No significance test: fewer than two strategies." in markdown
    assert "## Paired significance" not in markdown


def test_partial_grid_reports_the_finished_runs_and_names_the_rest(tmp_path):
    """A grid finished over several sittings: the report covers what has run and says what has not."""
    runs = {"x-y-s1": {"strategy": "x-y", "seed": 1}, "x-y-s2": {"strategy": "x-y", "seed": 2},
            "hybrid-s1": {"strategy": "hybrid", "alpha": 0.5, "seed": 1}}
    write_run(tmp_path / "results" / "x-y-s1", "synth-r", 0.5, 0)
    write_run(tmp_path / "results" / "hybrid-s1", "synth-r", 0.6, 1)
    (tmp_path / "results" / "x-y-s2").mkdir()  # an evaluation that never finished leaves no metrics.json
    run_report(make_params(tmp_path, runs))
    markdown = (tmp_path / "reports" / "results.md").read_text()
    assert markdown.splitlines()[2].startswith("**Partial grid.** Not run yet: x-y-s2. ")
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["pending_runs"] == ["x-y-s2"]
    assert [(g["label"], g["runs"]) for g in summary["groups"]] == [("x-y", ["x-y-s1"]), ("hybrid α=0.5", ["hybrid-s1"])]
    write_run(tmp_path / "results" / "x-y-s2", "synth-r", 0.5, 2)
    run_report(make_params(tmp_path, runs))
    assert "Partial grid" not in (tmp_path / "reports" / "results.md").read_text()
    assert json.loads((tmp_path / "reports" / "summary.json").read_text())["pending_runs"] == []

"""Stage ``report``: collect every run's metrics and write ``reports/``."""

from __future__ import annotations

from hybrid_repro.config import Params
from hybrid_repro.io import atomic_output_dir, read_json, write_json
from hybrid_repro.report import (
    plot_map_by_setting,
    plot_rank_distance_by_language,
    render_markdown,
)


def collect_results(params: Params) -> dict[str, dict[str, dict]]:
    """run -> dataset -> metrics JSON, for every run and dataset named in params."""
    return {
        run: {
            dataset: read_json(params.evaluate.out_dir / run / dataset / "metrics.json")
            for dataset in params.evaluate.datasets
        }
        for run in params.runs
    }


def run_report(params: Params) -> None:
    results = collect_results(params)
    with atomic_output_dir(params.report.out_dir) as out:
        (out / "results.md").write_text(render_markdown(results), encoding="utf-8")
        write_json(out / "summary.json", {
            run: {ds: {s: m["settings"][s]["mean"] for s in ("mo", "cr", "mul")} for ds, m in by_ds.items()}
            for run, by_ds in results.items()
        })
        plot_map_by_setting(results, out / "mean_map_by_setting.png")
        plot_rank_distance_by_language(results, out / "rank_distance_by_language.png")

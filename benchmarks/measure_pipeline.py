"""Measure wall time and peak memory of every stage of the demo pipeline.

Runs ``dvc repro --force --single-item STAGE`` for each stage in pipeline order and records, per
stage, the wall time and the peak resident memory of the process tree (``os.wait4`` rusage covers
the dvc process and the stage command it waits for). Writes ``benchmarks/pipeline_demo_cpu.json``.

Usage (from the repository root, inside the project's virtual environment):
    python benchmarks/measure_pipeline.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_repro.envinfo import environment_summary  # noqa: E402


def stage_names() -> list[str]:
    listing = subprocess.run(["dvc", "stage", "list", "--name-only"], capture_output=True, text=True, check=True)
    names = [line.strip() for line in listing.stdout.splitlines() if line.strip()]
    order = ["data", "translate", "train", "evaluate", "report"]
    return sorted(names, key=lambda name: (order.index(name.split("@")[0]), name))


def measure(stage: str) -> dict:
    start = time.perf_counter()
    process = subprocess.Popen(["dvc", "repro", "--force", "--single-item", stage])
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage} failed")
    # ru_maxrss is in KiB on Linux.
    return {"stage": stage, "wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    rows = [measure(stage) for stage in stage_names()]
    result = {
        "what": "demo dvc pipeline, each stage forced once in order",
        "machine": {"cpu_cores": os.cpu_count(), **environment_summary()},
        "stages": rows,
        "total_wall_s": round(sum(row["wall_s"] for row in rows), 2),
        "max_peak_rss_mib": max(row["peak_rss_mib"] for row in rows),
    }
    out = Path(__file__).with_name("pipeline_demo_cpu.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['stage']:<24} {row['wall_s']:>8.1f} s {row['peak_rss_mib']:>9.1f} MiB")
    print(f"{'total':<24} {result['total_wall_s']:>8.1f} s")


if __name__ == "__main__":
    main()

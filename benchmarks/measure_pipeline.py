"""Measure wall time and peak memory of every stage of the demo pipeline.

Measures a cold run, as on a fresh clone: it first deletes the training checkpoints (a forced
``train`` stage would otherwise find its finished run there and only rewrite the outputs) and the
evaluation embedding cache. Then it runs ``dvc repro --force --single-item STAGE`` for each stage in
pipeline order and records, per stage, the wall time, the peak resident memory of the process tree
(``os.wait4`` rusage covers the dvc process and the stage command it waits for) and the share of CPU
time the hypervisor stole during the stage (``steal`` in ``/proc/stat``): on a shared virtual
machine a high steal share means the wall time says more about the neighbours than about the code.
Writes ``benchmarks/pipeline_demo_cpu.json``.

Usage (from the repository root, inside the project's virtual environment):
    python benchmarks/measure_pipeline.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_repro.config import load_params  # noqa: E402
from hybrid_repro.envinfo import environment_summary  # noqa: E402

CHECKPOINTS = Path("checkpoints")  # the persistent train outputs declared in dvc.yaml


def stage_names() -> list[str]:
    listing = subprocess.run(["dvc", "stage", "list", "--name-only"], capture_output=True, text=True, check=True)
    names = [line.strip() for line in listing.stdout.splitlines() if line.strip()]
    order = ["data", "translate", "train", "evaluate", "report"]
    return sorted(names, key=lambda name: (order.index(name.split("@")[0]), name))


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs since boot, from the first line of /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice, already inside user/nice]
    return fields[7], sum(fields[:8])


def measure(stage: str) -> dict:
    steal_before, total_before = cpu_ticks()
    start = time.perf_counter()
    process = subprocess.Popen(["dvc", "repro", "--force", "--single-item", stage])
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    steal_after, total_after = cpu_ticks()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage} failed")
    steal_share = (steal_after - steal_before) / max(1, total_after - total_before)
    # ru_maxrss is in KiB on Linux.
    return {"stage": stage, "wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "cpu_steal_share": round(steal_share, 3)}


def clear_warm_state() -> None:
    for folder in (CHECKPOINTS, load_params("params.yaml").evaluate.cache_dir):
        if folder.exists():
            print(f"measure: deleting {folder} so every stage starts cold")
            shutil.rmtree(folder)


def main() -> None:
    clear_warm_state()
    rows = [measure(stage) for stage in stage_names()]
    result = {
        "what": ("demo dvc pipeline from a cold start (no checkpoints, no embedding cache), "
                 "each stage forced once in order"),
        "machine": {"cpu_cores": os.cpu_count(), **environment_summary()},
        "stages": rows,
        "total_wall_s": round(sum(row["wall_s"] for row in rows), 2),
        "max_peak_rss_mib": max(row["peak_rss_mib"] for row in rows),
    }
    out = Path(__file__).with_name("pipeline_demo_cpu.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['stage']:<24} {row['wall_s']:>8.1f} s {row['peak_rss_mib']:>9.1f} MiB "
              f"{100 * row['cpu_steal_share']:>5.1f} % stolen")
    print(f"{'total':<24} {result['total_wall_s']:>8.1f} s")


if __name__ == "__main__":
    main()

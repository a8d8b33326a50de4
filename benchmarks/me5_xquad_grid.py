"""What the me5-xquad grid cost on this machine, measured by its own runs: training and MLQA-R encoding throughput.

Reads, for every run of ``profiles/me5-xquad.yaml`` that has finished:

* ``<train.metrics_dir>/<run>.json``, written by the train stage: steps, wall and training time, mean
  triplets per second (3 texts each: query, positive, hard negative);
* the captured output of its ``dvc repro pipelines/me5-xquad/dvc.yaml:evaluate@<run>`` call
  (``--logs``: one ``evaluate@<run>.log`` per run, and ``evaluate-base.log``), whose last line
  ``(wrote ... in <s>s)`` is the evaluate stage's own wall time (encoding MLQA-R's questions and
  candidates, exact ranking, writing the outputs);
* the driver's log (``--logs``/grid.log: ``=== <time> <target> rc=<rc> <s> s`` per call, with the load
  average at its start), for the wall time of each whole call (train + evaluate + DVC's bookkeeping).

It writes ``--out`` (JSON) with the machine. The machine is shared: the load average at the start of each
call says how busy it was (2 cores: a load above 2 means other jobs competed).

Usage (repository root, inside .venv, after some runs):
    python benchmarks/me5_xquad_grid.py --logs /path/to/grid-logs --out benchmarks/me5_xquad_grid_cpu.json
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from eval_speed import machine  # noqa: E402

from hybrid_repro.config import load_params  # noqa: E402
from hybrid_repro.evaluation.lareqa import load_lareqa  # noqa: E402
from hybrid_repro.io import read_json, write_json  # noqa: E402

PROFILE = REPO / "profiles" / "me5-xquad.yaml"
CALL_LINE = re.compile(r"^=== (\S+) (\S+) rc=(\d+) (\d+) s$")
START_LINE = re.compile(r"^=== (\S+) (\S+) \(load ([\d.]+) ([\d.]+) ([\d.]+)\)$")
EVALUATE_LINE = re.compile(r"\(wrote \S+ in ([\d.]+)s\)")


def driver_calls(grid_log: Path) -> dict[str, dict]:
    """target -> {"seconds", "load_at_start"} for every call of the driver that finished with rc 0."""
    calls, loads = {}, {}
    for line in grid_log.read_text().splitlines():
        if match := START_LINE.match(line):
            loads[match[2]] = [float(match[i]) for i in (3, 4, 5)]
        elif (match := CALL_LINE.match(line)) and match[3] == "0":
            calls[match[2]] = {"seconds": int(match[4]), "load_at_start": loads.get(match[2])}
    return calls


def evaluate_seconds(log: Path) -> float | None:
    found = EVALUATE_LINE.findall(log.read_text(errors="replace")) if log.is_file() else []
    return float(found[-1]) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=Path, required=True, help="folder of grid.log and the per-call logs")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "me5_xquad_grid_cpu.json")
    args = parser.parse_args()
    params = load_params(PROFILE)
    dataset = load_lareqa(Path("data/lareqa/mlqa-r"), candidate_text=params.evaluate.candidate_text, name="mlqa-r")
    texts = len(dataset.questions.text) + len(dataset.candidates.sentence)
    calls = driver_calls(args.logs / "grid.log")
    runs = {}
    for name in params.runs:
        summary_path = params.train.metrics_dir / f"{name}.json"
        if not summary_path.is_file():
            continue
        summary = read_json(summary_path)
        seconds = evaluate_seconds(args.logs / f"evaluate@{name}.log")
        runs[name] = {
            "steps": summary["steps"], "train_wall_s": summary["wall_time_s"], "train_time_s": summary["train_time_s"],
            "triplets_per_s": summary["mean_triplets_per_s"],
            "evaluate_wall_s": seconds, "mlqa_texts_per_s": round(texts / seconds, 1) if seconds else None,
            "call": calls.get(f"evaluate@{name}"),
        }
    base = evaluate_seconds(args.logs / "evaluate-base.log")
    finished = [run for run in runs.values() if run["call"]]
    write_json(args.out, {
        "benchmark": "the me5-xquad grid's own runs on this machine (train stage summaries and stage logs)",
        "profile": {"batch_size": params.sampler.batch_size, "max_steps": params.train.max_steps,
                    "max_query_length": params.model.max_query_length,
                    "max_passage_length": params.model.max_passage_length,
                    "evaluate_batch_size": params.evaluate.batch_size},
        "mlqa_r_texts": texts,
        "runs": runs,
        "evaluate_base": {"evaluate_wall_s": base, "mlqa_texts_per_s": round(texts / base, 1) if base else None,
                          "call": calls.get("evaluate-base")},
        "median": {
            "call_s": statistics.median(run["call"]["seconds"] for run in finished) if finished else None,
            "triplets_per_s": statistics.median(run["triplets_per_s"] for run in runs.values()) if runs else None,
            "mlqa_texts_per_s": statistics.median(run["mlqa_texts_per_s"] for run in runs.values()
                                                  if run["mlqa_texts_per_s"]) if runs else None,
        },
        "machine": machine(),
    })
    print(f"wrote {args.out}: {len(runs)} runs")


if __name__ == "__main__":
    main()

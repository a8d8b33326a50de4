"""Speed and memory of the LAReQA evaluation on XQuAD-R from cached embeddings.

Random unit-norm float32 embeddings (d = 768, as for a base-size encoder) stand in for a model:
the ranking work does not depend on what the vectors mean. The script writes them to an embedding
cache, then measures in a fresh process (so peak RSS is that of the evaluation alone) the time to
load the dataset, read the embeddings back from the cache, rank every question in all three
settings with every metric, and build the metrics document and per-query rows.

    python benchmarks/eval_speed.py [--threads 2] [--out benchmarks/eval_speed_cpu.json]

Needs the pinned XQuAD-R files (HYBRID_REPRO_SHARED_DATA or ../shared/data from the repository root).
Goal on a 2-core CPU: <= 30 s and <= 2 GB peak RSS for the ranking and metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DIM = 768
BUDGET = {"seconds": 30.0, "peak_rss_mb": 2048.0}


def xquad_r_dir() -> Path:
    root = Path(os.environ.get("HYBRID_REPRO_SHARED_DATA", REPO.parent / "shared" / "data"))
    directory = root / "xquad-r"
    if not directory.is_dir():
        sys.exit(f"XQuAD-R not found at {directory}: set HYBRID_REPRO_SHARED_DATA to the pinned data mirror")
    return directory


def cache_fields(dataset, kind: str) -> dict:
    return {"fingerprint": f"random-normal-d{DIM}", "dataset": dataset.name, "checksums": dataset.checksums, "kind": kind}


def prepare(cache_dir: Path) -> None:
    """Write random unit vectors for XQuAD-R's questions and candidates into the cache."""
    import numpy as np

    from hybrid_repro.evaluation.encode import EmbeddingCache
    from hybrid_repro.evaluation.lareqa import load_lareqa

    dataset = load_lareqa(xquad_r_dir())
    rng = np.random.default_rng(0)
    cache = EmbeddingCache(cache_dir)
    for kind, rows in (("query", len(dataset.questions)), ("passage", len(dataset.candidates))):
        emb = rng.standard_normal((rows, DIM), dtype=np.float32)
        cache.store(cache_fields(dataset, kind), emb / np.linalg.norm(emb, axis=1, keepdims=True))


def measure(cache_dir: Path, threads: int) -> dict:
    """Run in the child process: time each phase and report the peak RSS."""
    import torch

    torch.set_num_threads(threads)
    from hybrid_repro.evaluation.encode import EmbeddingCache
    from hybrid_repro.evaluation.lareqa import load_lareqa
    from hybrid_repro.evaluation.settings import evaluate_embeddings

    phases = {}
    start = time.perf_counter()
    dataset = load_lareqa(xquad_r_dir())
    phases["load_dataset_s"] = time.perf_counter() - start

    start = time.perf_counter()
    cache = EmbeddingCache(cache_dir)
    queries, candidates = (cache.load(cache_fields(dataset, kind)) for kind in ("query", "passage"))
    phases["read_cache_s"] = time.perf_counter() - start

    start = time.perf_counter()
    result = evaluate_embeddings(dataset, queries, candidates, progress=False)
    phases["rank_and_metrics_s"] = time.perf_counter() - start

    start = time.perf_counter()
    metrics = result.to_metrics_json()
    rows = result.per_query_rows()
    phases["metrics_json_and_rows_s"] = time.perf_counter() - start

    return {
        "queries": len(dataset.questions),
        "candidates": len(dataset.candidates),
        "per_query_rows": len(rows),
        "mean_map": {setting: metrics["settings"][setting]["mean"]["map"] for setting in metrics["settings"]},
        "phases": phases,
        "evaluation_s": phases["read_cache_s"] + phases["rank_and_metrics_s"] + phases["metrics_json_and_rows_s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
    }


def machine() -> dict:
    """CPU model and usable cores, then the versions and git revision of ``hybrid-repro env``."""
    import numpy

    from hybrid_repro.envinfo import environment_summary

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores_available": len(os.sched_getaffinity(0)), "platform": platform.platform(),
            "numpy": numpy.__version__, **environment_summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "eval_speed_cpu.json")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.threads)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(tmp))
        child = subprocess.run(
            [sys.executable, __file__, "--measure", tmp, "--threads", str(args.threads)],
            check=True, capture_output=True, text=True,
        )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    report = {
        "benchmark": "LAReQA evaluation of XQuAD-R (all settings, every metric) from cached random embeddings",
        "embedding_dim": DIM,
        "machine": machine(),
        **result,
        "budget": BUDGET,
        "within_budget": result["evaluation_s"] <= BUDGET["seconds"] and result["peak_rss_mb"] <= BUDGET["peak_rss_mb"],
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

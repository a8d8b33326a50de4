"""Memory and time of opening a training split (``hybrid_repro.training.triplets.TrainingExamples``).

Writes a generated ``train.jsonl`` in the translate stage's layout (mMARCO-like records: a query of 8
words, a positive and a negative passage of 60 words, in seven languages, every passage id distinct),
opens it in a child process, samples one batch of texts, and records the child's peak resident memory
beside that of a child that only imports the module. The difference over the number of examples is what
training holds per example; the file size over the same number is what the texts would have cost held.

Usage (repository root, inside .venv):
    python benchmarks/training_examples_memory.py --examples 20000 --examples 200000 \
        --out benchmarks/training_examples_memory_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LANGUAGES = ("en", "ar", "zh", "de", "es", "ru", "hi")
WORDS = [f"w{index}" for index in range(5000)]
# Peak memory from /proc (VmHWM): ru_maxrss would carry over the parent's size across fork and exec.
CHILD = """
import re, sys, time
from pathlib import Path
from hybrid_repro.training.triplets import TrainingExamples
started = time.perf_counter()
batch = 0
if sys.argv[2] == "open":
    with TrainingExamples.open(sys.argv[1]) as examples:
        opened = time.perf_counter() - started
        step = max(1, len(examples) // 100)
        batch = sum(len(examples[i].texts) for i in range(0, len(examples), step))
else:
    opened = 0.0
peak = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)
print(opened, peak, batch)
"""


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def write_split(path: Path, count: int) -> None:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as handle:
        for index in range(count):
            record = {"id": f"mmarco/{index}", "question_id": f"mmarco/q{index:016x}", "dataset": "mmarco",
                      "positive_id": f"mmarco/p{2 * index:016x}", "negative_id": f"mmarco/p{2 * index + 1:016x}",
                      "texts": {lang: {"query": f"{lang} {_text(rng, 8)}", "positive": f"{lang} {_text(rng, 60)}",
                                       "negative": f"{lang} {_text(rng, 60)}"} for lang in LANGUAGES}}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def measure(count: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-examples-") as scratch:
        path = Path(scratch) / "train.jsonl"
        write_split(path, count)
        results = {}
        for mode in ("import", "open"):
            started = time.perf_counter()
            child = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], cwd=REPO,
                                   capture_output=True, text=True)
            if child.returncode:
                raise SystemExit(f"opening {count} examples failed:\n{child.stderr}")
            opened, peak_kib, _ = child.stdout.split()[-3:]
            results[mode] = {"open_seconds": round(float(opened), 2), "peak_rss_mib": round(int(peak_kib) / 1024, 1),
                             "process_seconds": round(time.perf_counter() - started, 2)}
        held = (results["open"]["peak_rss_mib"] - results["import"]["peak_rss_mib"]) * 2**20
        return {"examples": count, "languages": len(LANGUAGES), "file_bytes": path.stat().st_size,
                "open": results["open"], "imports_only": results["import"],
                "held_bytes_per_example": round(held / count), "file_bytes_per_example": round(path.stat().st_size / count)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    runs = [measure(count) for count in args.examples]
    record = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average_1m": round(os.getloadavg()[0], 2)},
              "note": "shared 2-core CPU; wall times include other people's jobs", "runs": runs}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()

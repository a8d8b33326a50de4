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
import random
import tempfile
from pathlib import Path

from peak_memory import run_child, write_record

LANGUAGES = ("en", "ar", "zh", "de", "es", "ru", "hi")
WORDS = [f"w{index}" for index in range(5000)]
CHILD = """
import sys, time
from hybrid_repro.training.triplets import TrainingExamples
started = time.perf_counter()
if sys.argv[2] == "open":
    with TrainingExamples.open(sys.argv[1]) as examples:
        opened = time.perf_counter() - started
        step = max(1, len(examples) // 100)
        sum(len(examples[i].texts) for i in range(0, len(examples), step))
else:
    opened = 0.0
print(opened)
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
            (opened,), peak_kib, seconds = run_child(CHILD, [str(path), mode], f"opening {count} examples")
            results[mode] = {"open_seconds": round(float(opened), 2), "peak_rss_mib": round(peak_kib / 1024, 1),
                             "process_seconds": seconds}
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
    write_record(args.out, runs)


if __name__ == "__main__":
    main()

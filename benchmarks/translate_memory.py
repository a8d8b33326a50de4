"""Peak memory of the ``translate`` stage on a generated paper corpus, at several sizes of ``released.jsonl``.

Writes a ``kind: paper`` source corpus (the layout of :mod:`hybrid_repro.data.source_corpus`) straight to
disk, one record at a time: a machine-translated QA set and an English-only set of ``--pairs`` pairs each, a
validation set of 200 pairs, and ``--released`` mMARCO-like records per size, each in mMARCO's seven
languages, all of them training languages of the ``mini`` profile (queries of 8 words, passages of 60, as
``benchmarks/paper_assembly.py``). The stage runs as the ``mini`` profile sets it, with a tiny randomly
initialised M2M-100 (``tests/tiny_mt_models.py``; no download) translating the QA set into the eight other
languages, in a child process whose peak resident memory (VmHWM) is recorded, beside that of a child that only
imports the stage. ``--compare-with DIR`` measures the package in ``DIR`` (e.g. an export of an earlier commit:
``git archive REV hybrid_repro | tar -x -C DIR``) on the same corpora, put first on the child's ``sys.path``
(the child reports the package it ran); ``--compare-up-to`` limits it to the smaller sizes.

Usage (repository root, inside .venv):
    python benchmarks/translate_memory.py --released 10000 --released 40000 --released 160000 \
        --out benchmarks/translate_memory_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from paper_sources_fixture import with_stand_ins  # noqa: E402
from peak_memory import run_child, write_record  # noqa: E402
from tiny_mt_models import build_m2m100  # noqa: E402

WORDS = [f"w{index}" for index in range(5000)]
MMARCO_LANGUAGES = ("en", "ar", "zh", "de", "es", "ru", "hi")
VALIDATION_PAIRS = 200
CHILD = """
import sys, time
from pathlib import Path
sys.path[:0] = sys.argv[3:]  # another package, ahead of the checkout in the working directory
from hybrid_repro.config import load_params
from hybrid_repro.stages.translate import run_translate
params = load_params(sys.argv[1])
started = time.perf_counter()
if sys.argv[2] == "run":
    run_translate(params)
import hybrid_repro
print(Path(hybrid_repro.__file__).parent.parent, time.perf_counter() - started)
"""


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=words))


def _examples(dataset: str, count: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(count):
        yield {"id": f"{dataset}/{i}", "question_id": f"{dataset}/q{i}", "dataset": dataset, "query": _text(rng, 8),
               "positive": _text(rng, 60), "negative": _text(rng, 60), "positive_id": f"{dataset}:p{i}",
               "negative_id": f"{dataset}:p{i + 1}"}


def _released(count: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(count):
        query, positive, negative = _text(rng, 8), _text(rng, 60), _text(rng, 60)
        yield {"id": f"mmarco/{i}", "question_id": f"mmarco:q{i}", "dataset": "mmarco",
               "positive_id": f"mmarco:p{i}", "negative_id": f"mmarco:p{i + 1}",
               "texts": {lang: {"query": f"{lang} {query}", "positive": f"{lang} {positive}",
                                "negative": f"{lang} {negative}"} for lang in MMARCO_LANGUAGES}}


def write_source(out: Path, pairs: int, released: int) -> dict[str, int]:
    """The source corpus under ``out``, written one record at a time; its file sizes."""
    from hybrid_repro.data.jsonl import write_jsonl
    from hybrid_repro.io import sha256_file, write_json

    rng = random.Random(0)
    out.mkdir(parents=True)
    write_jsonl(out / "train.jsonl", (e for dataset in ("wikiqa", "mrtydi") for e in _examples(dataset, pairs, rng)))
    write_jsonl(out / "val.jsonl", _examples("squadshifts", VALIDATION_PAIRS, rng))
    write_jsonl(out / "released.jsonl", _released(released, rng))
    dataset = {"multilingual": True, "origin": "machine-translated", "role": "train", "train": pairs, "val": 0}
    files = ("train.jsonl", "val.jsonl", "released.jsonl")
    write_json(out / "manifest.json", {
        "kind": "paper", "source_language": "en", "seed": 13,
        "datasets": {"wikiqa": dataset,
                     "mrtydi": {**dataset, "multilingual": False, "origin": "source-only"},
                     "mmarco": {**dataset, "origin": "released", "train": released},
                     "squadshifts": {"multilingual": False, "origin": "source-only", "role": "validation",
                                     "train": 0, "val": VALIDATION_PAIRS}},
        "files": {name: sha256_file(out / name) for name in files}})
    return {name: (out / name).stat().st_size for name in files}


def _params(root: Path, model: Path) -> Path:
    raw = with_stand_ins(yaml.safe_load((REPO / "profiles" / "mini.yaml").read_text()))
    raw["data"]["out_dir"] = str((root / "source").relative_to(REPO))
    # The tiny model's short greedy outputs (as the tests run it); its 128 positions bound the input.
    raw["translate"].update(model_name=str(model), num_beams=1, max_length_ratio=0.25, max_length_extra=2,
                            max_input_tokens=100, cache_dir=str(root / "cache"),
                            out_dir=str((root / "translated").relative_to(REPO)),
                            metrics_path=str((root / "translate.json").relative_to(REPO)),
                            langid={"max_wrong_rate": 1.0})
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _child(params: Path, mode: str, code: Optional[Path]) -> dict[str, Any]:
    (package, stage_seconds), peak_kib, seconds = run_child(
        CHILD, [str(params), mode, *([str(code)] if code else [])], f"the translate stage ({mode}, code {code or REPO})")
    if Path(package) != (code or REPO):
        raise SystemExit(f"the child ran the package in {package}, not {code or REPO}")
    return {"stage_seconds": round(float(stage_seconds), 2), "peak_rss_mib": peak_kib // 1024,
            "process_seconds": seconds}


def measure(root: Path, model: Path, pairs: int, released: int, codes: dict[str, Optional[Path]]) -> dict[str, Any]:
    """Write the corpus with ``released`` records and measure the stage of every package in ``codes`` on it."""
    from hybrid_repro.io import sha256_file

    source_bytes = write_source(root / "source", pairs, released)
    params = _params(root, model)
    results: dict[str, Any] = {"released_records": released, "source_bytes": source_bytes}
    for label, code in codes.items():
        shutil.rmtree(root / "cache", ignore_errors=True)  # every run translates afresh
        run = _child(params, "run", code)
        metrics = json.loads((root / "translate.json").read_text())
        run["translated_sentences"] = metrics["translation"]["translated"]
        run["translation_seconds"] = metrics["translation"]["seconds"]
        run["output"] = {path.name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
                         for path in sorted((root / "translated").iterdir()) if path.suffix == ".jsonl"}
        results[label] = {"translate": run, "imports_only": _child(params, "import", code)}
    shutil.rmtree(root / "source")
    shutil.rmtree(root / "translated")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--released", type=int, action="append", required=True, help="records of released.jsonl")
    parser.add_argument("--pairs", type=int, default=300, help="pairs of the QA set to translate and of the "
                                                                 "English-only set")
    parser.add_argument("--compare-with", type=Path, help="another hybrid_repro package to measure (its parent)")
    parser.add_argument("--compare-label", default="compared")
    parser.add_argument("--compare-up-to", type=int, help="measure --compare-with only up to this many records")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.chdir(REPO)  # the stage's output paths are relative to the project root
    runs = []
    with tempfile.TemporaryDirectory(prefix=".bench-translate-", dir=REPO) as scratch:
        root = Path(scratch)
        model = build_m2m100(root / "m2m100")
        for released in args.released:
            codes: dict[str, Optional[Path]] = {"this": None}
            if args.compare_with and (args.compare_up_to is None or released <= args.compare_up_to):
                codes[args.compare_label] = args.compare_with.resolve()
            runs.append(measure(root, model, args.pairs, released, codes))
    write_record(args.out, runs,
                 corpus={"pairs_to_translate": args.pairs, "english_only_pairs": args.pairs,
                         "validation_pairs": VALIDATION_PAIRS, "released_languages": list(MMARCO_LANGUAGES),
                         "query_words": 8, "passage_words": 60})


if __name__ == "__main__":
    main()

"""Time and memory of the ``data`` stage assembling the paper's sources (``data.source: paper``).

Writes generated shards for every source of the ``mini`` profile with the real shard writer, at the
profile's sizes times ``--scale`` (2,000 pairs per English source, 1,000 SQuADShifts pairs, 2,000
mMARCO triples in each of its seven languages), then runs the real data stage in a child process
and records its wall time and peak resident memory, beside the peak of a child that only imports
the stage (the interpreter and libraries). The texts are generated: queries of 8 words, passages
of 60 (MS MARCO's passages average about that; DuoRC's and NewsQA's are far longer), so the
memory per row is that of short rows. Mined negatives are ``random`` (mining is the source stage's
cost, not this one's); the stage reads the same shards either way. Shards hold the profile's
``sources.shard_rows`` (50,000) rows at most, so from scale 10 on a source spans several row groups
and from scale 30 on several shards: the stage streams them, and its peak should stay nearly flat
as the scale grows (docs/data.md).

Usage (repository root, inside .venv; scale 100 writes about 2.8 GB of JSON Lines in a temporary folder):
    python benchmarks/paper_assembly.py --scale 1 --scale 10 --scale 30 --scale 100 \
        --out benchmarks/paper_assembly_cpu.json
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# The paper profiles' unset pins get the tests' stand-ins (tests/paper_sources_fixture.py): one definition of them.
sys.path.insert(0, str(REPO / "tests"))
from paper_sources_fixture import with_stand_ins  # noqa: E402
from peak_memory import run_child, write_record  # noqa: E402

WORDS = [f"w{index}" for index in range(5000)]
CHILD = """
import sys, time
from hybrid_repro.config import load_params
from hybrid_repro.stages.data import run_data
params = load_params(sys.argv[1])
started = time.perf_counter()
if sys.argv[2] == "run":
    run_data(params)
print(time.perf_counter() - started)
"""

def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _pairs(spec, count: int, rng: random.Random):
    from hybrid_repro.sources.files import triple_source_id
    from hybrid_repro.sources.specs import RawPair

    if len(spec.languages) == 1:
        return [RawPair(str(i), _text(rng, 8), _text(rng, 60), passage_key=str(i),
                        negative=_text(rng, 60) if spec.gives_negatives else None,
                        negative_key=f"n{i}" if spec.gives_negatives else None) for i in range(count)]
    queries = [_text(rng, 8) for _ in range(count)]
    passages = [_text(rng, 60) for _ in range(count + 1)]
    return [RawPair(triple_source_id(i, str(i)), f"{lang} {queries[i]}", f"{lang} {passages[i]}", language=lang,
                    negative=f"{lang} {passages[i + 1]}", passage_key=str(i), negative_key=str(i + 1))
            for lang in spec.languages for i in range(count)]


def _profile(root: Path, scale: int) -> Path:
    raw = with_stand_ins(yaml.safe_load((REPO / "profiles" / "mini.yaml").read_text()))  # nothing is fetched
    raw["sources"]["out_dir"] = str((root / "sources").relative_to(REPO))
    raw["data"]["out_dir"] = str((root / "source").relative_to(REPO))
    for settings in raw["sources"]["datasets"].values():
        settings["max_pairs"] *= scale
        if settings["negatives"] == "bm25":
            settings["negatives"] = "random"
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def measure(scale: int) -> dict:
    """Write the shards at ``scale`` and measure the data stage on them."""
    from hybrid_repro.config import load_params
    from hybrid_repro.sources.shards import write_source
    from hybrid_repro.sources.specs import SPECS

    with tempfile.TemporaryDirectory(prefix=".bench-assembly-", dir=REPO) as scratch:
        root = Path(scratch)
        params_path = _profile(root, scale)
        params = load_params(params_path)
        rng = random.Random(0)
        rows = 0
        for name, settings in params.sources.datasets.items():
            spec, directory = SPECS[name], params.sources.out_dir / name
            directory.mkdir(parents=True)
            manifest = write_source(directory, spec, _pairs(spec, settings.max_pairs, rng),
                                    {spec.pin_key: getattr(settings, spec.pin_key)}, settings.negatives, params.seed,
                                    params.sources.shard_rows, max_pairs=settings.max_pairs)
            rows += sum(manifest["pairs"].values())
        results = {}
        for mode in ("import", "run"):
            (stage_seconds,), peak_kib, seconds = run_child(CHILD, [str(params_path), mode],
                                                            f"the data stage at scale {scale}")
            results[mode] = {"stage_seconds": round(float(stage_seconds), 2), "peak_rss_mib": peak_kib // 1024,
                             "process_seconds": seconds}
        sizes = {path.name: path.stat().st_size for path in params.data.out_dir.iterdir() if path.is_file()}
        return {"scale": scale, "source_rows": rows, "assembly": results["run"], "imports_only": results["import"],
                "output_bytes": sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.chdir(REPO)  # the stage's output paths are relative to the project root
    runs = [measure(scale) for scale in args.scale]
    write_record(args.out, runs)


if __name__ == "__main__":
    main()

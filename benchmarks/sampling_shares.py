"""Realised batch composition of the demo's runs over many epochs: what the sampler's rules give in practice.

For each run of ``params.yaml`` it plans ``--epochs`` epochs of the run's sampler over
``data/translated/train.jsonl`` (planning only, no training) and records batches per epoch, the share of
the training examples an epoch uses, the realised monolingual share, the share of each language among
monolingual batches and of each dataset among all batches. Writes ``benchmarks/sampling_shares_demo.json``.

Usage (repository root, inside the virtual environment, after the data and translate stages):
    python benchmarks/sampling_shares.py [--epochs 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_repro.config import load_params  # noqa: E402
from hybrid_repro.io import write_json  # noqa: E402
from hybrid_repro.stages.train import run_sampler  # noqa: E402
from hybrid_repro.training.composition import shares  # noqa: E402
from hybrid_repro.training.triplets import read_training_examples  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/sampling_shares_demo.json"))
    args = parser.parse_args()
    params = load_params()
    with read_training_examples(params.translate.out_dir / "train.jsonl") as split:
        examples = split.metas
    result = {"epochs": args.epochs, "training_examples": len(examples), "batch_size": params.sampler.batch_size,
              "train_languages": list(params.translate.train_languages), "runs": {}}
    for name in params.runs:
        sampler = run_sampler(params, name, examples)
        per_epoch, languages, datasets = [], Counter(), Counter()
        for epoch in range(args.epochs):
            batches = sampler.epoch_batches(epoch)
            per_epoch.append(len(batches))
            datasets.update(batch.dataset for batch in batches)
            languages.update(batch.items[0].query_lang for batch in batches if batch.strategy == "mono")
        total, n_mono = sum(per_epoch), sum(languages.values())
        result["runs"][name] = {
            "expected_monolingual_share": params.run(name).mono_probability,
            "batches": total,
            "batches_per_epoch": {"mean": round(statistics.mean(per_epoch), 2), "min": min(per_epoch),
                                  "max": max(per_epoch)},
            "share_of_examples_used_per_epoch": round(total * params.sampler.batch_size / args.epochs / len(examples), 4),
            "monolingual_share": round(n_mono / total, 4),
            "monolingual_languages": shares(languages, n_mono) if n_mono else {},
            "datasets": shares(datasets, total),
        }
    write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

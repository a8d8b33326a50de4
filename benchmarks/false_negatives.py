"""Count in-batch false negatives the demo runs would meet, before the loss masks them.

For a translated corpus (``data/translated`` by default) and each run of ``params.yaml``, it plans the
batches of ``train.max_steps`` steps with the run's sampler, exactly as training does, and counts the
(query, passage column) pairs whose passage holds the query's answer: the answer's translation as another
triplet's hard negative, or the same passage. Passage identity is the passage's source-language text
(every sentence of the synthetic corpus is unique), so the same measurement applies to corpora written
before passages carried ``positive_id``/``negative_id``. Pairs are counted among the hard-negative columns
(``positives_as_negatives: false``, Eq. 1); that the loss drops exactly these columns is tested in
``tests/training/test_triplets.py`` against a hand computation.

Usage (repository root, inside the virtual environment; the data and translate stages must have run):
    python benchmarks/false_negatives.py [--data data/translated] [--out benchmarks/false_negatives_demo.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_repro.config import load_params  # noqa: E402
from hybrid_repro.data.jsonl import read_jsonl  # noqa: E402
from hybrid_repro.io import read_json, write_json  # noqa: E402
from hybrid_repro.stages.train import run_sampler  # noqa: E402
from hybrid_repro.training.triplets import TrainingExamples, TripletLookup  # noqa: E402


def examples_with_text_identities(path: Path, source: str) -> TrainingExamples:
    """The split's examples, each passage identified by its source-language text."""
    return TrainingExamples.from_records(
        {**record, "positive_id": record["texts"][source]["positive"], "negative_id": record["texts"][source]["negative"]}
        for record in read_jsonl(path))


def measure_run(examples, lookup, params, run_name: str) -> dict:
    sampler = run_sampler(params, run_name, examples.metas)
    batches = itertools.islice((b for epoch in itertools.count() for b in sampler.epoch_batches(epoch)),
                               params.train.max_steps)
    pairs = translations = with_any = total = 0
    for batch in batches:
        texts = lookup(batch)
        found = texts.false_negatives(positives_as_negatives=False)
        pairs += found
        with_any += found > 0
        total += 1
        answer_language = {texts.positive_ids[i]: item.passage_lang for i, item in enumerate(batch.items)}
        translations += sum(1 for item, identity in zip(batch.items, texts.negative_ids)
                            if identity in answer_language and answer_language[identity] != item.passage_lang)
    return {"batches": total, "false_negative_pairs": pairs, "of_which_translations": translations,
            "batches_with_false_negatives": with_any}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/translated"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/false_negatives_demo.json"))
    args = parser.parse_args()
    params = load_params(args.params)
    source = read_json(args.data / "manifest.json")["languages"]["source"]
    examples = examples_with_text_identities(args.data / "train.jsonl", source)
    positives = set(examples.positive_ids.tolist())
    result = {
        "data": str(args.data),
        "negatives_that_are_answers": round(sum(n in positives for n in examples.negative_ids.tolist()) / len(examples), 4),
        "runs": {name: measure_run(examples, TripletLookup(examples), params, name) for name in params.runs},
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

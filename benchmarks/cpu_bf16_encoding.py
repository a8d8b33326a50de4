"""bf16 encoding on a CPU with bf16 units: how much faster, and how far the MLQA-R metrics move.

The unchanged multilingual-e5-small of ``profiles/me5-xquad.yaml`` (its encoding settings and batch size)
encodes all of MLQA-R's questions and candidate sentences under ``torch.autocast("cpu", bfloat16)``; the
exact evaluation scores them, and each setting's mean mAP is compared with the float32 evaluation of the
same encoder that the ``evaluate-base`` stage of ``pipelines/me5-xquad`` wrote (``--fp32-metrics``). The
issue's bar: bf16 is worth offering only if no mean mAP moves by 0.001 or more.

Speed is compared on a sample (``--sample`` questions and as many candidates, the longest texts
included as in the full set's length order), float32 and bf16 alternating ``--repeats`` times so that
both meet the same load on a shared machine; wall and process CPU time are recorded for each.

Usage (repository root, inside .venv; the evaluate-base stage must have run):
    python benchmarks/cpu_bf16_encoding.py --out benchmarks/cpu_bf16_encoding.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from eval_speed import machine  # noqa: E402

from hybrid_repro.config import load_params  # noqa: E402
from hybrid_repro.evaluation.encode import encode_dataset  # noqa: E402
from hybrid_repro.evaluation.lareqa import load_lareqa  # noqa: E402
from hybrid_repro.evaluation.ranking import embedding_scorer  # noqa: E402
from hybrid_repro.evaluation.settings import SETTINGS, check_embeddings, evaluate_score_rows  # noqa: E402
from hybrid_repro.io import read_json, write_json  # noqa: E402
from hybrid_repro.modeling.encoder import Encoder  # noqa: E402

PROFILE = REPO / "profiles" / "me5-xquad.yaml"
MAP_BAR = 0.001


def precision_context(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def timed_encode(encoder: Encoder, texts: list[str], kind: str, batch_size: int, precision: str) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    with precision_context(precision):
        encoder.encode(texts, kind, batch_size, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "texts_per_s": round(len(texts) / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fp32-metrics", type=Path, default=Path("experiments/me5-xquad/results/base/mlqa-r/metrics.json"))
    parser.add_argument("--sample", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "cpu_bf16_encoding.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params(PROFILE)
    encoder = Encoder.build(params.model, None, seed=0)
    dataset = load_lareqa(Path("data/lareqa/mlqa-r"), candidate_text=params.evaluate.candidate_text, name="mlqa-r")
    batch_size = params.evaluate.batch_size

    # Speed on a sample: every k-th question and candidate, so the length mix is the full set's.
    questions = list(dataset.questions.text)[:: max(1, len(dataset.questions.text) // args.sample)][: args.sample]
    candidates = list(dataset.candidates.sentence)[:: max(1, len(dataset.candidates.sentence) // args.sample)][: args.sample]
    speed: dict[str, list] = {"fp32": [], "bf16": []}
    for _ in range(args.repeats):
        for precision in ("fp32", "bf16"):
            speed[precision].append({"query": timed_encode(encoder, questions, "query", batch_size, precision),
                                     "passage": timed_encode(encoder, candidates, "passage", batch_size, precision)})

    # Metrics on the whole of MLQA-R in bf16, against the stage's float32 evaluation.
    started = time.perf_counter()
    with precision_context("bf16"):
        encoded = encode_dataset(encoder, dataset, batch_size=batch_size, cache_dir=None, progress=True)
    encode_seconds = time.perf_counter() - started
    check_embeddings(dataset, encoded.queries, encoded.candidates)
    bf16 = evaluate_score_rows(dataset, embedding_scorer(encoded.queries, encoded.candidates)).to_metrics_json()
    fp32 = read_json(args.fp32_metrics)
    moves = {setting: {metric: round(bf16["settings"][setting]["mean"][metric] - value, 6)
                       for metric, value in fp32["settings"][setting]["mean"].items()} for setting in SETTINGS}
    largest = max(abs(moves[setting]["map"]) for setting in SETTINGS)
    texts = len(dataset.questions.text) + len(dataset.candidates.sentence)
    write_json(args.out, {
        "benchmark": "multilingual-e5-small encoding on CPU: float32 against torch.autocast bfloat16",
        "encoding": {"batch_size": batch_size, "max_query_length": params.model.max_query_length,
                     "max_passage_length": params.model.max_passage_length, "torch_threads": args.threads},
        "speed_sample": {"questions": len(questions), "candidates": len(candidates), "runs": speed},
        "speed_ratio_bf16_over_fp32": {
            kind: round(float(np.median([r[kind]["texts_per_s"] for r in speed["bf16"]]))
                        / float(np.median([r[kind]["texts_per_s"] for r in speed["fp32"]])), 2)
            for kind in ("query", "passage")},
        "mlqa_r_bf16": {"texts": texts, "encode_wall_s": round(encode_seconds, 1),
                        "texts_per_s": round(texts / encode_seconds, 1),
                        "mean_map": {s: bf16["settings"][s]["mean"]["map"] for s in SETTINGS}},
        "mlqa_r_fp32_mean_map": {s: fp32["settings"][s]["mean"]["map"] for s in SETTINGS},
        "bf16_minus_fp32": moves,
        "largest_map_move": largest,
        "within_bar": largest < MAP_BAR,
        "bar": f"every setting's mean mAP within {MAP_BAR} of float32",
        "load_average_after": os.getloadavg(),
        "machine": machine(),
    })
    print(f"wrote {args.out}: largest mean mAP move {largest:.5f}")


if __name__ == "__main__":
    main()

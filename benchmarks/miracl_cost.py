"""Cost of the MIRACL evaluation on CPU: search memory against corpus size, encoding throughput.

1. Exact search (``hybrid_repro.evaluation.exact_search``) of random unit-norm queries (d = 768,
   as for a base-size encoder) over synthetic float16 corpora of two sizes, each in a fresh process,
   chunk by chunk as the search stage reads its shards. Peak RSS must not grow with the corpus.
   Each size runs twice: with glibc's default allocator settings, whose dynamic mmap threshold
   lets freed chunk-sized buffers fragment the heap (a few tens of MB more peak RSS over a longer
   run, not data kept), and with ``MALLOC_MMAP_THRESHOLD_`` fixed at 1 MiB, which returns every
   chunk-sized buffer to the system when freed and shows the memory the search itself holds.
2. Passage encoding throughput of the demo profile's scratch encoder (profiles/demo.yaml
   ``model``), on synthetic passages long enough to fill its ``max_passage_length``.
3. An extrapolation to the paper's full MIRACL corpora (57.5M passages in the 15 languages,
   PAPER.md section 3), labelled as an estimate and with the way it is made.

    python benchmarks/miracl_cost.py [--threads 2] [--out benchmarks/miracl_cost_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from eval_speed import machine

REPO = Path(__file__).resolve().parents[1]
DIM = 768
QUERIES = 512
CHUNK = 8192
SIZES = (100_000, 800_000)
PAPER_PASSAGES = 57_500_000  # PAPER.md section 3: the 15 languages' corpora together
ENCODE_PASSAGES = 2048
FIXED_MMAP = {"MALLOC_MMAP_THRESHOLD_": "1048576"}


def search_child(n_passages: int, threads: int) -> dict:
    """Run in a fresh process: search ``n_passages`` random fp16 passages; time and peak RSS."""
    import numpy as np
    import torch

    from hybrid_repro.evaluation.exact_search import exact_search

    torch.set_num_threads(threads)
    rng = np.random.default_rng(1)  # chunk seeds are multiples of CHUNK: queries must not repeat a chunk's rows
    queries = rng.standard_normal((QUERIES, DIM), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    def chunks():
        # Generated chunk by chunk, like shards read one at a time: nothing holds the whole corpus.
        for start in range(0, n_passages, CHUNK):
            size = min(CHUNK, n_passages - start)
            embeddings = np.random.default_rng(start).standard_normal((size, DIM), dtype=np.float32)
            embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
            yield embeddings.astype(np.float16), np.asarray([f"{start + i}#0" for i in range(size)])

    started = time.perf_counter()
    result = exact_search(queries, chunks(), k=100)
    seconds = time.perf_counter() - started
    return {"passages": n_passages, "queries": QUERIES, "chunk_size": CHUNK, "search_s": round(seconds, 2),
            "top1_mean_score": float(result.scores[:, 0].mean()),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def encode_throughput(threads: int) -> dict:
    """Passages per second of the demo scratch encoder (weights untrained: speed does not depend on them)."""
    import numpy as np
    import torch

    from hybrid_repro.config import load_params
    from hybrid_repro.modeling.encoder import Encoder

    torch.set_num_threads(threads)
    model_cfg = load_params(REPO / "profiles" / "demo.yaml").model
    rng = np.random.default_rng(0)
    words = [f"word{i}" for i in range(3000)]
    passages = [" ".join(rng.choice(words, size=80)) for _ in range(ENCODE_PASSAGES)]
    encoder = Encoder.build(model_cfg, passages[:500], seed=0)
    encoder.encode(passages[:64], "passage", batch_size=64, progress=False)  # warm-up
    started = time.perf_counter()
    encoder.encode(passages, "passage", batch_size=64, progress=False)
    seconds = time.perf_counter() - started
    non_embedding = sum(p.numel() for name, p in encoder.model.named_parameters() if "embeddings" not in name)
    return {"encoder": "demo scratch BERT (profiles/demo.yaml model)", "passages": ENCODE_PASSAGES,
            "tokens_per_passage": model_cfg.max_passage_length, "batch_size": 64, "seconds": round(seconds, 2),
            "passages_per_s": round(ENCODE_PASSAGES / seconds, 1), "non_embedding_parameters": non_embedding}


def extrapolate(search: list[dict], encode: dict) -> dict:
    """Full-MIRACL estimate from the measurements; every step is written out."""
    largest = max(_by_allocator(search)["glibc default"], key=lambda row: row["passages"])
    pair_rate = largest["passages"] * largest["queries"] / largest["search_s"]
    from hybrid_repro.evaluation.miracl_data import OFFICIAL_DEV_QUERIES

    dev_queries = sum(OFFICIAL_DEV_QUERIES.values())
    return {
        "label": "ESTIMATE, not a measurement",
        "method": ("linear scaling of the CPU measurements above to 57.5M passages (PAPER.md) and the 15 languages' "
                   f"{dev_queries} official dev queries. Search scores each query against its own language's "
                   "corpus, so the total work is below queries x all passages; the estimate uses that upper bound."),
        "demo_encoder_cpu_hours": round(PAPER_PASSAGES / encode["passages_per_s"] / 3600, 1),
        "search_cpu_hours_upper_bound": round(dev_queries * PAPER_PASSAGES / pair_rate / 3600, 1),
        "base_encoder_note": ("a base-size encoder (XLM-R base, LaBSE: about 85M non-embedding parameters) at 256 "
                              "tokens per passage costs about (85M x 256) / (demo parameters x demo tokens) times "
                              "the demo encoder per passage; no GPU was available to measure it, so no GPU-hours "
                              "figure is given"),
        "base_encoder_flop_ratio": round(85e6 * 256 / (encode["non_embedding_parameters"]
                                                       * encode["tokens_per_passage"]), 1),
        "embedding_storage_gb_fp16_d768": round(PAPER_PASSAGES * DIM * 2 / 1e9, 1),
    }


def _by_allocator(search: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in search:
        grouped.setdefault(row["allocator"], []).append(row)
    return grouped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "miracl_cost_cpu.json")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(search_child(args.child, args.threads)))
        return
    search = []
    for allocator, extra_env in (("glibc default", {}), ("MALLOC_MMAP_THRESHOLD_=1048576", FIXED_MMAP)):
        for size in SIZES:
            output = subprocess.run([sys.executable, __file__, "--child", str(size), "--threads", str(args.threads)],
                                    check=True, capture_output=True, text=True, env={**os.environ, **extra_env}).stdout
            search.append({"allocator": allocator, **json.loads(output.strip().splitlines()[-1])})
            print(search[-1])
    encode = encode_throughput(args.threads)
    print(encode)
    document = {"benchmark": "MIRACL evaluation cost on CPU (synthetic corpora)", "machine": machine(),
                "torch_threads": args.threads, "search": search,
                "search_peak_rss_growth_mb": {
                    allocator: round(rows[-1]["peak_rss_mb"] - rows[0]["peak_rss_mb"], 1)
                    for allocator, rows in _by_allocator(search).items()},
                "encode": encode, "full_miracl_estimate": extrapolate(search, encode)}
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

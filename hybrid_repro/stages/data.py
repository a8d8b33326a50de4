"""Stage ``data``: generate the synthetic source corpus into ``params.data.out_dir``."""

from __future__ import annotations

import time

from hybrid_repro.config import Params
from hybrid_repro.data.languages import SOURCE_LANGUAGE
from hybrid_repro.data.source_corpus import write_source_corpus
from hybrid_repro.data.synthetic import generate_corpus
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_dir


def run_data(params: Params) -> None:
    """Write the source corpus (``train.jsonl``, ``val.jsonl``, ``eval.json``, ``lexicon.json``,
    ``manifest.json``) for ``params.data`` and ``params.seed``; the directory appears only when complete."""
    if params.data.source == "paper":
        # The paper's sources are fetched by pipelines/paper/dvc.yaml (source@NAME); turning their shards into
        # the translate stage's input is the step still to build (docs/data.md, "Status").
        raise HybridReproError("data.source 'paper': fetch the sources with `dvc repro pipelines/paper/dvc.yaml`; "
                               "the root data stage cannot yet assemble them for translation (docs/data.md, Status)")
    started = time.perf_counter()
    corpus = generate_corpus(params.data.synthetic, params.seed)
    with atomic_output_dir(params.data.out_dir) as tmp:
        manifest = write_source_corpus(tmp, corpus, SOURCE_LANGUAGE, params.seed)
    counts = ", ".join(f"{name} {info['train']}" for name, info in manifest["datasets"].items())
    print(
        f"data: wrote {params.data.out_dir} in {time.perf_counter() - started:.1f}s "
        f"(train examples: {counts}; val {len(corpus.val)}; eval questions {manifest['eval']['questions']})"
    )

"""Stage ``translate``: render ``data/source`` into every language of ``params.translate``.

``backend: parallel`` translates nothing: the source corpus is already parallel (``data.source:
xquad``) and the stage keeps its training languages (:mod:`hybrid_repro.data.parallel_corpus`).
"""

from __future__ import annotations

import time

from hybrid_repro.config import Params
from hybrid_repro.data.source_corpus import read_source_corpus
from hybrid_repro.data.translate import build_translator
from hybrid_repro.data.translated_corpus import LanguagePlan, write_translated_corpus
from hybrid_repro.io import atomic_output_dir


def run_translate(params: Params) -> None:
    """Verify the source corpus, translate it and write ``params.translate.out_dir`` atomically
    (layout: :mod:`hybrid_repro.data.translated_corpus`)."""
    started = time.perf_counter()
    config = params.translate
    if config.backend == "parallel":
        _pass_through(params)
        print(f"translate: wrote {config.out_dir} in {time.perf_counter() - started:.1f}s (parallel corpus: "
              f"training languages {', '.join(config.train_languages)}, no translation)")
        return
    source = read_source_corpus(params.data.out_dir)
    translator = build_translator(config, source.kind, source.source_language, source.lexicon)
    plan = LanguagePlan.from_config(config, source.source_language, translator.known_languages())
    backend = {"name": config.backend, "model_name": config.model_name, "model_revision": config.model_revision}
    with atomic_output_dir(config.out_dir) as tmp:
        manifest = write_translated_corpus(tmp, source, plan, translator, params.seed, backend)
    train_counts = manifest["counts"]["train"]
    per_language = {lang: sum(c.get(lang, 0) for c in train_counts.values()) for lang in plan.train}
    print(
        f"translate: wrote {config.out_dir} in {time.perf_counter() - started:.1f}s "
        f"(training examples per language: {per_language}; eval languages: {', '.join(plan.eval)})"
    )


def _pass_through(params: Params) -> None:
    from hybrid_repro.data.parallel_corpus import read_parallel_source, write_passthrough

    source = read_parallel_source(params.data.out_dir)
    plan = LanguagePlan.from_config(params.translate, source.source_language, source.languages)
    with atomic_output_dir(params.translate.out_dir) as tmp:
        write_passthrough(tmp, source, plan, params.seed)

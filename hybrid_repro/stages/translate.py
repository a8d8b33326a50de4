"""Stage ``translate``: render ``data/source`` into every language of ``params.translate``.

Besides ``data/translated`` (:mod:`hybrid_repro.data.translated_corpus`) the stage writes
``translate.metrics_path``: for the neural backends the translation counts (sentences, distinct,
cache hits and hit rate, translated, cut at the input limit, sentences per second) and the
wrong-language rate of each (dataset, language) output (:mod:`hybrid_repro.data.langid_check`).
Before translating anything it checks that the model has a token for every target language.
"""

from __future__ import annotations

import time
from typing import Any

from hybrid_repro.config import Params
from hybrid_repro.data.langid_check import check_languages
from hybrid_repro.data.neural_translate import NeuralTranslator
from hybrid_repro.data.source_corpus import read_source_corpus
from hybrid_repro.data.translate import build_translator
from hybrid_repro.data.translated_corpus import LanguagePlan, translated_texts, write_translated_corpus
from hybrid_repro.io import atomic_output_dir, write_json

LEXICON_LANGID_SKIPPED = {
    "skipped": "the lexicon backend writes synthetic languages, which no language detector knows"
}


def run_translate(params: Params) -> None:
    """Verify the source corpus, translate it and write ``params.translate.out_dir`` atomically,
    then the stage metrics."""
    started = time.perf_counter()
    config = params.translate
    source = read_source_corpus(params.data.out_dir)
    translator = build_translator(config, source.kind, source.source_language, source.lexicon)
    plan = LanguagePlan.from_config(config, source.source_language, translator.known_languages())
    neural = isinstance(translator, NeuralTranslator)
    if neural:
        translator.check_targets([lang for lang in dict.fromkeys(plan.train + plan.eval) if lang != plan.source])
    backend = {"name": config.backend, "model_name": config.model_name, "model_revision": config.model_revision}
    metrics: dict[str, Any] = {"backend": backend}
    with atomic_output_dir(config.out_dir) as tmp:
        manifest = write_translated_corpus(tmp, source, plan, translator, params.seed, backend)
        if neural:
            metrics["engine"] = {"name": translator.engine.name, "version": translator.engine.version}
            metrics["translation"] = translator.stats.summary()
            metrics["langid"] = check_languages(translated_texts(tmp, plan), config.langid, params.seed)
        else:
            metrics["langid"] = LEXICON_LANGID_SKIPPED
    metrics["stage_seconds"] = round(time.perf_counter() - started, 2)
    write_json(config.metrics_path, metrics)
    train_counts = manifest["counts"]["train"]
    per_language = {lang: sum(c.get(lang, 0) for c in train_counts.values()) for lang in plan.train}
    print(
        f"translate: wrote {config.out_dir} in {metrics['stage_seconds']:.1f}s "
        f"(training examples per language: {per_language}; eval languages: {', '.join(plan.eval)})"
    )

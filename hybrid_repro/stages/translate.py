"""Stage ``translate``: render ``data/source`` into every language of ``params.translate``.

Besides ``data/translated`` (:mod:`hybrid_repro.data.translated_corpus`) the stage writes
``translate.metrics_path``: for the neural backends the translation counts (sentences, distinct,
cache hits and hit rate, translated, cut at the input limit, sentences per second) and the
wrong-language rate of each (dataset, language) output (:mod:`hybrid_repro.data.langid_check`).
Before translating anything it checks that the model has a token for every target language.
``backend: parallel`` translates nothing: the source corpus is already parallel (``data.source:
xquad``) and the stage keeps its training languages (:mod:`hybrid_repro.data.parallel_corpus`).
A ``kind: paper`` source corpus (``data.source: paper``) carries no evaluation set, so none is
translated (the params refuse ``translate.eval_languages`` for it; evaluation reads the fetched XQuAD-R /
MLQA-R), and its released datasets (mMARCO) pass through untranslated and unchecked by language
identification: their texts are the released translations, not this stage's. The stage streams its input
and output (:func:`hybrid_repro.data.translated_corpus.write_translated_corpus`) and collects the language
check's sample while writing, so its memory does not grow with the released records.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from hybrid_repro.config import Params
from hybrid_repro.data.langid_check import OutputSamples, check_samples
from hybrid_repro.data.neural_translate import NeuralTranslator
from hybrid_repro.data.source_corpus import read_source_corpus
from hybrid_repro.data.translate import build_translator
from hybrid_repro.data.translated_corpus import LanguagePlan, write_translated_corpus
from hybrid_repro.io import atomic_output_dir, write_json

LANGID_SKIPPED = {
    "lexicon": "the lexicon backend writes synthetic languages, which no language detector knows",
    "parallel": "the parallel backend translates nothing: its texts are the released human translations",
}


def run_translate(params: Params) -> None:
    """Verify the source corpus, translate it and write ``params.translate.out_dir`` atomically,
    then the stage metrics."""
    started = time.perf_counter()
    config = params.translate
    backend = {"name": config.backend, "model_name": config.model_name, "model_revision": config.model_revision}
    metrics: dict[str, Any] = {"backend": backend}
    if config.backend == "parallel":
        _pass_through(params)
        metrics["langid"] = {"skipped": LANGID_SKIPPED["parallel"]}
        summary = f"parallel corpus: training languages {', '.join(config.train_languages)}, no translation"
    else:
        source = read_source_corpus(params.data.out_dir)
        translator = build_translator(config, source.kind, source.source_language, source.lexicon)
        plan = LanguagePlan.from_config(config, source.source_language, translator.known_languages())
        if source.eval_dataset is None:
            plan = dataclasses.replace(plan, eval=())
        neural = isinstance(translator, NeuralTranslator)
        if neural:
            translator.check_targets([lang for lang in dict.fromkeys(plan.train + plan.eval) if lang != plan.source])
        samples = OutputSamples(config.langid, params.seed) if neural else None
        with atomic_output_dir(config.out_dir) as tmp:
            manifest = write_translated_corpus(tmp, source, plan, translator, params.seed, backend, samples)
            if neural:
                metrics["engine"] = {"name": translator.engine.name, "version": translator.engine.version}
                metrics["translation"] = translator.stats.summary()
                metrics["langid"] = check_samples(samples)
            else:
                metrics["langid"] = {"skipped": LANGID_SKIPPED["lexicon"]}
        train_counts = manifest["counts"]["train"]
        per_language = {lang: sum(c.get(lang, 0) for c in train_counts.values()) for lang in plan.train}
        eval_languages = ", ".join(plan.eval) or "none (the corpus has no evaluation set: evaluate.datasets are fetched)"
        summary = f"training examples per language: {per_language}; eval languages: {eval_languages}"
    metrics["stage_seconds"] = round(time.perf_counter() - started, 2)
    write_json(config.metrics_path, metrics)
    print(f"translate: wrote {config.out_dir} in {metrics['stage_seconds']:.1f}s ({summary})")


def _pass_through(params: Params) -> None:
    from hybrid_repro.data.parallel_corpus import read_parallel_source, write_passthrough

    source = read_parallel_source(params.data.out_dir)
    plan = LanguagePlan.from_config(params.translate, source.source_language, source.languages)
    with atomic_output_dir(params.translate.out_dir) as tmp:
        write_passthrough(tmp, source, plan, params.seed)

"""Stage ``translate@DATASET-LANGUAGE`` (``pipelines/paper/dvc.yaml``): one machine-translated dataset of the paper
corpus into one training language, ahead of the ``translate`` stage, so that DVC records each pair and a pair that
fails re-runs alone.

The stage verifies ``data/source`` as the translate stage does (all but ``released.jsonl``, which it never uses),
selects the examples of the dataset that exist in the language as the translate stage does (:func:`~hybrid_repro.data.translated_corpus.placed_examples`: a
low-resource language keeps its seeded share), and translates their distinct sentences through the same
translator and persistent cache (``translate.cache_dir``), in rounds of
:data:`~hybrid_repro.data.translated_corpus.CHUNK_EXAMPLES` examples. The ``translate`` stage run afterwards finds
every sentence of the pair in the cache (hit rate 1.0 for the pair), and writes the same bytes as without this stage
when a sentence's translation does not depend on the batch it was translated in (docs/translation.md, "Same bytes").
The language check (:mod:`hybrid_repro.data.langid_check`) takes the sample the translate stage would take of the
pair's output, with the same threshold; a pair above it fails alone and writes no receipt.

The receipt, ``data/translations/<DATASET>/<LANGUAGE>.json`` (written atomically), holds the pair's translation
counts (sentences, distinct, cache hits, translated, seconds, sentences per second), its language check, the
translator's identity (the cache namespace: model, revision, engine and version, decoding settings) and
``sha256``: over the (source sentence, translation) pair of every sentence of every text of the pair's examples in
file order, so it changes exactly when a translation does.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from hybrid_repro.config import Params
from hybrid_repro.data.langid_check import OutputSamples, check_samples
from hybrid_repro.data.neural_translate import NeuralTranslator
from hybrid_repro.data.sentences import split_sentences
from hybrid_repro.data.source_corpus import (ORIGIN_MACHINE_TRANSLATED, PAPER_KIND, TEXT_FIELDS, LoadedSource,
                                             read_source_corpus)
from hybrid_repro.data.translate import build_translator
from hybrid_repro.data.translated_corpus import CHUNK_EXAMPLES, LanguagePlan, in_rounds, placed_examples
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import write_json
from hybrid_repro.paths import safe_name

RECEIPTS_DIR = Path("data/translations")


def receipt_path(dataset: str, language: str) -> Path:
    """Where the receipt of one pair goes (relative to the repository root, like every stage output); both names are
    path components, so each must be a plain name."""
    return RECEIPTS_DIR / safe_name(dataset, "translate-pair: dataset") / f"{safe_name(language, 'language')}.json"


def run_translate_pair(params: Params, dataset: str, language: str) -> Path:
    """Translate ``dataset``'s examples into ``language`` through the translation cache, check their language, and
    write the pair's receipt; return its path. A dataset that is not machine-translated, a language that is not a
    training language or is the source language, and a corpus other than the paper's are refused before any
    translation."""
    started = time.perf_counter()
    config = params.translate
    if params.data.source != "paper":
        raise HybridReproError(
            f"translate-pair translates the paper corpus only (data.source: paper), but data.source is "
            f"{params.data.source!r}: run `hybrid-repro translate`, which translates everything in one stage")
    if language not in config.train_languages:
        raise HybridReproError(f"language {language!r} is not in translate.train_languages "
                               f"({', '.join(config.train_languages)}): pick one of them or add it there")
    # released.jsonl is not this stage's (its records pass through the translate stage untranslated): leaving it
    # alone spares every pair a read of mMARCO's ~250 GB.
    source = read_source_corpus(params.data.out_dir, released=False)
    if source.kind != PAPER_KIND:
        raise HybridReproError(f"{params.data.out_dir} holds a {source.kind!r} corpus, not the paper corpus that "
                               "data.source names: rerun `hybrid-repro data`")
    if language == source.source_language:
        raise HybridReproError(f"{language!r} is the source language of the corpus: its texts are the originals, "
                               "so there is nothing to translate; pick another training language")
    _check_machine_translated(source, dataset)
    translator = build_translator(config, source.kind, source.source_language, source.lexicon)
    # build_translator gives the neural translator for a paper corpus (it refuses the lexicon there).
    assert isinstance(translator, NeuralTranslator)
    plan = LanguagePlan.from_config(config, source.source_language, translator.known_languages())
    translator.check_targets([language])
    samples = OutputSamples(config.langid, params.seed)
    samples.add(dataset, language, ())  # a pair without examples is checked too: 0 texts, no rate
    examples, digest = _translate(source, plan, translator, dataset, language, params.seed, samples)
    try:
        langid = check_samples(samples)[dataset][language]
    except HybridReproError as exc:
        raise HybridReproError(f"{dataset} -> {language}: {exc}. No receipt written; the other pairs are not "
                               "affected") from exc
    # build_neural_translator always opens the cache; its namespace is the translator's identity.
    assert translator.cache is not None
    receipt: dict[str, Any] = {
        "dataset": dataset,
        "language": language,
        "source_language": source.source_language,
        "examples": examples,
        "translation": translator.stats.summary(),
        "langid": langid,
        "translator": {"backend": config.backend, **translator.cache.namespace},
        "sha256": digest,
        "stage_seconds": round(time.perf_counter() - started, 2),
    }
    path = receipt_path(dataset, language)
    write_json(path, receipt)
    stats = receipt["translation"]
    print(f"translate-pair: wrote {path} in {receipt['stage_seconds']:.1f}s ({examples} examples of {dataset}, "
          f"{stats['unique_sentences']} distinct sentences, {stats['cache_hits']} from the cache, "
          f"{stats['translated']} translated; wrong-language rate {langid['wrong_rate']})")
    return path


def _check_machine_translated(source: LoadedSource, dataset: str) -> None:
    datasets = source.manifest["datasets"]
    translated = [name for name, info in datasets.items()
                  if info.get("origin") == ORIGIN_MACHINE_TRANSLATED and info.get("role", "train") == "train"]
    if dataset in translated:
        return
    what = (f"is not in {source.directory}" if dataset not in datasets else
            f"is not machine-translated (origin {datasets[dataset].get('origin')!r}, role "
            f"{datasets[dataset].get('role', 'train')!r})")
    raise HybridReproError(f"dataset {dataset!r} {what}: translate-pair translates the machine-translated training "
                           f"datasets of {source.directory}: {', '.join(translated) or 'none'}")


def _translate(source: LoadedSource, plan: LanguagePlan, translator: NeuralTranslator, dataset: str, language: str,
               seed: int, samples: OutputSamples) -> tuple[int, str]:
    """Translate the pair round by round, feeding ``samples`` the translated texts; return the number of examples
    and the sha256 of the (source sentence, translation) list."""
    digest = hashlib.sha256()
    examples = 0
    selected = (example for _, example, languages in placed_examples(source, plan, seed)
                if example["dataset"] == dataset and language in languages)
    for chunk in in_rounds(selected, CHUNK_EXAMPLES):
        texts = [example[field] for example in chunk for field in TEXT_FIELDS]
        # Each distinct text split once, in order of first appearance, as the translate stage's rounds do.
        splits = {text: split_sentences(text, plan.source) for text in dict.fromkeys(texts)}
        done = translator.translate_sentences([s for split in splits.values() for s in split.sentences],
                                              plan.source, language)
        for text in texts:
            for sentence in splits[text].sentences:
                digest.update(json.dumps([sentence, done[sentence]], ensure_ascii=False).encode() + b"\n")
        samples.add(dataset, language, [split.join([done[s] for s in split.sentences], language)
                                        for split in splits.values()])
        examples += len(chunk)
    return examples, digest.hexdigest()

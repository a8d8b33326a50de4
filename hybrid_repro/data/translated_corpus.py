"""Render a verified source corpus into every language: the ``data/translated`` directory.

Layout written by :func:`write_translated_corpus`:

* ``train.jsonl`` / ``val.jsonl``: one example per line, ``{"id", "question_id", "dataset", "positive_id",
  "negative_id", "texts": {lang: {"query", "positive", "negative"}}}``; the passage ids are language-independent
  (every translation of a passage shares its source's id); ``texts``
  holds the languages the example exists in: the source language only for source-only datasets,
  and for a low-resource language only its kept share of each multilingual dataset (training split
  only; validation stays fully parallel so the validation loss weighs every language alike);
  a released dataset's records (a ``kind: paper`` corpus's ``released.jsonl``, e.g. mMARCO) follow the
  translated ones with their released texts, untranslated, in those of their languages that are training
  languages (the low-resource shares apply to machine-translated datasets only);
* ``eval/<dataset>/<lang>.json`` for every evaluation language in the LAReQA XQuAD-R layout
  ``{"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
  "answers": [{"text", "answer_start"}]}], "sentences", "sentence_breaks"}]}]}`` with the same
  question ids in every language;
* ``manifest.json``: languages, per-dataset per-language counts and the sha256 of every file. A corpus
  without an evaluation set (``kind: paper``: evaluation reads the fetched XQuAD-R / MLQA-R) gets no
  ``eval/`` folder, and the manifest records no evaluation languages.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from hybrid_repro.config import TranslateConfig
from hybrid_repro.data.jsonl import read_jsonl, write_jsonl
from hybrid_repro.data.languages import known_languages, language
from hybrid_repro.data.sentences import sentence_separator
from hybrid_repro.data.source_corpus import TEXT_FIELDS, LoadedSource
from hybrid_repro.data.translate import Translator
from hybrid_repro.data.translated_manifest import MANIFEST, manifest_files
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import read_json, write_json

EVAL_VERSION = "synth-r-1"


@dataclass(frozen=True)
class LanguagePlan:
    """Which languages get which data, validated against what the translator knows."""

    source: str
    train: tuple[str, ...]
    eval: tuple[str, ...]
    low_resource: dict[str, float]

    @property
    def eval_only(self) -> tuple[str, ...]:
        return tuple(lang for lang in self.eval if lang not in self.train)

    @classmethod
    def from_config(cls, config: TranslateConfig, source: str, known: Sequence[str]) -> "LanguagePlan":
        unknown = [lang for lang in dict.fromkeys(config.train_languages + config.eval_languages) if lang not in known]
        if unknown:
            raise HybridReproError(
                f"translate languages {unknown} are unknown to backend {config.backend!r}; known languages: "
                f"{', '.join(known)} (fix translate.train_languages / eval_languages in params.yaml)"
            )
        if source not in config.train_languages:
            raise HybridReproError(
                f"the source language {source!r} of the corpus must be one of translate.train_languages "
                f"({', '.join(config.train_languages)})"
            )
        if source in config.low_resource:
            raise HybridReproError(
                f"translate.low_resource names the source language {source!r}, which holds every dataset; "
                "remove it or pick another language"
            )
        return cls(source, config.train_languages, config.eval_languages, dict(config.low_resource))


def sentence_joiner(lang: str) -> str:
    """What separates sentences in a paragraph of ``lang``."""
    if lang in known_languages():
        return language(lang).sentence_joiner
    return sentence_separator(lang)


def kept_examples(examples: list[dict[str, Any]], plan: LanguagePlan, multilingual: set[str],
                  seed: int, released: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Example ids present in each training language.

    Source-only datasets exist in the source language only; a low-resource language keeps
    ``round(share * n)`` examples of each multilingual dataset, drawn with a seeded generator
    independent of the other languages. A training language needs examples here or among the
    ``released`` records (translated layout, passed through as they are); one with neither is an error.
    """
    released_languages = {lang for record in released for lang in record["texts"]}
    by_dataset: dict[str, list[str]] = defaultdict(list)
    for example in examples:
        by_dataset[example["dataset"]].append(example["id"])
    kept: dict[str, set[str]] = {}
    for lang in plan.train:
        ids: set[str] = set()
        for dataset, dataset_ids in by_dataset.items():
            if lang != plan.source and dataset not in multilingual:
                continue
            share = plan.low_resource.get(lang, 1.0)
            rng = random.Random(f"{seed}:low-resource:{lang}:{dataset}")
            ids |= set(dataset_ids) if share == 1.0 else set(rng.sample(dataset_ids, round(share * len(dataset_ids))))
        if not ids and lang not in released_languages:
            raise HybridReproError(
                f"training language {lang!r} has no examples (its low_resource share is too small, or it has only "
                "source-only datasets, and no released dataset has it); raise translate.low_resource or drop it "
                "from train_languages"
            )
        kept[lang] = ids
    return kept


class TextBank:
    """Collects the distinct texts each language needs, then translates each language in one call."""

    def __init__(self, source: str):
        self.source = source
        self.pending: dict[str, dict[str, None]] = defaultdict(dict)
        self.done: dict[str, dict[str, str]] = {}

    def need(self, lang: str, texts: Sequence[str]) -> None:
        if lang != self.source:
            self.pending[lang].update(dict.fromkeys(texts))

    def translate_all(self, translator: Translator) -> None:
        for lang in tqdm(sorted(self.pending), desc="translate", unit="language"):
            texts = list(self.pending[lang])
            translated = translator.translate(texts, self.source, lang)
            if len(translated) != len(texts):
                raise HybridReproError(f"the translator returned {len(translated)} texts for {len(texts)} into {lang}")
            self.done[lang] = dict(zip(texts, translated))

    def get(self, lang: str) -> Callable[[str], str]:
        if lang == self.source:
            return lambda text: text
        return self.done[lang].__getitem__


def _eval_texts(articles: list[dict[str, Any]]) -> list[str]:
    texts = []
    for article in articles:
        texts.append(article["title"])
        for paragraph in article["paragraphs"]:
            texts += paragraph["sentences"]
            texts += [t for q in paragraph["questions"] for t in (q["question"], q["answer"])]
    return texts


def _example_records(examples: list[dict[str, Any]], languages: Sequence[str], present: dict[str, set[str]],
                     bank: TextBank) -> list[dict[str, Any]]:
    translators = {lang: bank.get(lang) for lang in languages}
    records = []
    for example in examples:
        texts = {
            lang: {field: translators[lang](example[field]) for field in TEXT_FIELDS}
            for lang in languages
            if example["id"] in present[lang]
        }
        records.append({"id": example["id"], "question_id": example["question_id"], "dataset": example["dataset"],
                        "positive_id": example["positive_id"], "negative_id": example["negative_id"], "texts": texts})
    return records


def _xquad_paragraph(paragraph: dict[str, Any], tr: Callable[[str], str], joiner: str) -> dict[str, Any]:
    sentences = [tr(s) for s in paragraph["sentences"]]
    breaks, position = [], 0
    for sentence in sentences:
        breaks.append([position, position + len(sentence)])
        position += len(sentence) + len(joiner)
    qas = []
    for question in paragraph["questions"]:
        sentence = sentences[question["sentence"]]
        answer = tr(question["answer"])
        offset = sentence.find(answer) if answer else -1
        if offset < 0:  # MT may render the answer differently inside the sentence: fall back to the whole sentence
            answer, offset = sentence, 0
        qas.append({
            "id": question["id"],
            "question": tr(question["question"]),
            "answers": [{"text": answer, "answer_start": breaks[question["sentence"]][0] + offset}],
        })
    return {"context": joiner.join(sentences), "qas": qas, "sentences": sentences, "sentence_breaks": breaks}


def xquad_document(articles: list[dict[str, Any]], lang: str, tr: Callable[[str], str]) -> dict[str, Any]:
    """The evaluation articles of one language in the XQuAD-R JSON layout."""
    joiner = sentence_joiner(lang)
    return {
        "version": EVAL_VERSION,
        "data": [
            {"title": tr(article["title"]),
             "paragraphs": [_xquad_paragraph(p, tr, joiner) for p in article["paragraphs"]]}
            for article in articles
        ],
    }


def kept_languages(records: list[dict[str, Any]], languages: Sequence[str]) -> list[dict[str, Any]]:
    """``records`` (translated layout) with only the texts in ``languages``; records left with none are dropped."""
    kept = []
    for record in records:
        texts = {lang: fields for lang, fields in record["texts"].items() if lang in languages}
        if texts:
            kept.append({**record, "texts": texts})
    return kept


def language_counts(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in records:
        for lang in record["texts"]:
            counts[record["dataset"]][lang] += 1
    return {dataset: dict(per_lang) for dataset, per_lang in counts.items()}


def dataset_summary(source_manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What the translated manifest records of each source dataset: its language coverage, query style and
    description, and for a paper corpus its origin and role."""
    return {name: {key: value for key, value in info.items()
                   if key in ("multilingual", "origin", "role", "query_style", "description")}
            for name, info in source_manifest["datasets"].items()}


def write_translated_corpus(out_dir: Path, source: LoadedSource, plan: LanguagePlan, translator: Translator,
                            seed: int, backend: dict[str, Any]) -> dict[str, Any]:
    """Translate ``source`` for ``plan`` and write every output file under ``out_dir``; return the manifest."""
    multilingual = source.multilingual_datasets
    train_present = kept_examples(source.train, plan, multilingual, seed, source.released)
    val_present = {
        lang: {e["id"] for e in source.val if lang == plan.source or e["dataset"] in multilingual} for lang in plan.train
    }
    bank = TextBank(plan.source)
    for examples, present in ((source.train, train_present), (source.val, val_present)):
        for lang in plan.train:
            bank.need(lang, [e[f] for e in examples if e["id"] in present[lang] for f in TEXT_FIELDS])
    for lang in plan.eval:
        bank.need(lang, _eval_texts(source.eval_articles))
    bank.translate_all(translator)

    train = _example_records(source.train, plan.train, train_present, bank) + kept_languages(source.released, plan.train)
    val = _example_records(source.val, plan.train, val_present, bank)
    write_jsonl(out_dir / "train.jsonl", train)
    write_jsonl(out_dir / "val.jsonl", val)
    eval_counts = {}
    for lang in plan.eval:
        document = xquad_document(source.eval_articles, lang, bank.get(lang))
        write_json(out_dir / "eval" / source.eval_dataset / f"{lang}.json", document)
        paragraphs = [p for article in document["data"] for p in article["paragraphs"]]
        eval_counts[lang] = {"questions": sum(len(p["qas"]) for p in paragraphs),
                             "candidates": sum(len(p["sentences"]) for p in paragraphs)}

    manifest = {
        "source_kind": source.kind,
        "backend": backend,
        "seed": seed,
        "languages": {"source": plan.source, "train": list(plan.train), "eval": list(plan.eval),
                      "eval_only": list(plan.eval_only), "low_resource": plan.low_resource},
        "datasets": dataset_summary(source.manifest),
        "counts": {
            "train": language_counts(train),
            "val": language_counts(val),
            "eval": {source.eval_dataset: eval_counts} if source.eval_dataset else {},
        },
        "files": manifest_files(out_dir),
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def translated_texts(out_dir: Path, plan: LanguagePlan) -> dict[tuple[str, str], list[str]]:
    """Every translated text under ``out_dir``, grouped by (dataset, language); the source language is
    left out (it is not translated). Training and validation records contribute their queries,
    positives and negatives; evaluation files their questions and candidate sentences."""
    texts: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name in ("train.jsonl", "val.jsonl"):
        for record in read_jsonl(out_dir / name):
            for lang, fields in record["texts"].items():
                if lang != plan.source:
                    texts[record["dataset"], lang] += [fields[f] for f in TEXT_FIELDS]
    evaluation = out_dir / "eval"
    dataset_dirs = sorted(p for p in evaluation.iterdir() if p.is_dir()) if evaluation.is_dir() else []
    for dataset_dir in dataset_dirs:
        for lang in plan.eval:
            if lang == plan.source:
                continue
            document = read_json(dataset_dir / f"{lang}.json")
            for paragraph in (p for article in document["data"] for p in article["paragraphs"]):
                texts[dataset_dir.name, lang] += paragraph["sentences"] + [qa["question"] for qa in paragraph["qas"]]
    return dict(texts)

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

:func:`write_translated_corpus` streams: the training and validation examples are read, translated and written
:data:`CHUNK_EXAMPLES` at a time, then the released records one at a time, so what it holds does not grow with
the corpus (the bound is in its docstring).
"""

from __future__ import annotations

import random
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from tqdm import tqdm

from hybrid_repro.config import TranslateConfig
from hybrid_repro.data.jsonl import jsonl_line
from hybrid_repro.data.langid_check import OutputSamples
from hybrid_repro.data.languages import known_languages, language
from hybrid_repro.data.sentences import sentence_separator
from hybrid_repro.data.source_corpus import TEXT_FIELDS, LoadedSource, found_among
from hybrid_repro.data.translate import Translator
from hybrid_repro.data.translated_manifest import MANIFEST, manifest_files
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_file, write_json

EVAL_VERSION = "synth-r-1"
# Training and validation examples translated per round (one translator call per target language), then written.
# What the stage holds of the machine-translated part is one round; a neural translator sorts and batches within
# a call, so a round needs enough sentences to fill batches of similar length (4,096 examples give each call up
# to 12,288 texts). A corpus of at most this many examples is translated in one call per language. A neural
# translator's persistent cache serves a sentence met again in a later round (a hit in the metrics), so it keeps
# one translation.
CHUNK_EXAMPLES = 4096


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


@dataclass(frozen=True)
class Presence:
    """Which training languages an example exists in: every example in the source language, a source-only
    dataset's in no other, and in a low-resource language only the ``drawn`` ids of a multilingual dataset."""

    source: str
    multilingual: frozenset[str]
    drawn: dict[str, frozenset[str]]

    def languages(self, example: dict[str, Any], languages: Sequence[str]) -> list[str]:
        return [lang for lang in languages
                if lang == self.source or (example["dataset"] in self.multilingual
                                           and (lang not in self.drawn or example["id"] in self.drawn[lang]))]


def training_presence(source: LoadedSource, plan: LanguagePlan, seed: int) -> Presence:
    """Where each training example of ``source`` exists.

    Source-only datasets exist in the source language only; a low-resource language keeps
    ``round(share * n)`` examples of each multilingual dataset, drawn with a seeded generator
    independent of the other languages. A training language needs examples here or among the
    released records (translated layout, passed through as they are); one with neither is an error.
    Only the ids of the multilingual datasets are read into memory, and only when a share is drawn.
    """
    multilingual = frozenset(source.multilingual_datasets)
    counts = source.split_counts["train"]
    shares = {lang: plan.low_resource[lang] for lang in plan.train if plan.low_resource.get(lang, 1.0) != 1.0}
    ids_by_dataset: dict[str, list[str]] = defaultdict(list)
    for example in source.train() if shares else ():
        if example["dataset"] in multilingual:
            ids_by_dataset[example["dataset"]].append(example["id"])
    drawn = {}
    for lang, share in shares.items():
        drawn[lang] = frozenset(
            example_id for dataset, dataset_ids in ids_by_dataset.items()
            for example_id in random.Random(f"{seed}:low-resource:{lang}:{dataset}").sample(
                dataset_ids, round(share * len(dataset_ids))))
    examples = {lang: sum(counts.values()) if lang == plan.source else
                len(drawn[lang]) if lang in drawn else sum(counts.get(dataset, 0) for dataset in multilingual)
                for lang in plan.train}
    lacking = {lang for lang, count in examples.items() if not count}
    released = found_among(source.released(), lacking, lambda record: record["texts"])
    missing = [lang for lang in plan.train if lang in lacking - released]
    if missing:
        raise HybridReproError(
            f"training language {missing[0]!r} has no examples (its low_resource share is too small, or it has only "
            "source-only datasets, and no released dataset has it); raise translate.low_resource or drop it "
            "from train_languages"
        )
    return Presence(plan.source, multilingual, drawn)


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
        for lang in sorted(self.pending):
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


def _example_record(example: dict[str, Any], languages: Sequence[str], bank: TextBank) -> dict[str, Any]:
    texts = {lang: {field: bank.get(lang)(example[field]) for field in TEXT_FIELDS} for lang in languages}
    return {"id": example["id"], "question_id": example["question_id"], "dataset": example["dataset"],
            "positive_id": example["positive_id"], "negative_id": example["negative_id"], "texts": texts}


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


def in_languages(record: dict[str, Any], languages: Sequence[str]) -> Optional[dict[str, Any]]:
    """``record`` (translated layout) with only its texts in ``languages``; None if it has none of them."""
    texts = {lang: fields for lang, fields in record["texts"].items() if lang in languages}
    return {**record, "texts": texts} if texts else None


def kept_languages(records: Iterable[dict[str, Any]], languages: Sequence[str]) -> list[dict[str, Any]]:
    """``records`` (translated layout) with only the texts in ``languages``; records left with none are dropped."""
    return [kept for record in records if (kept := in_languages(record, languages)) is not None]


class LanguageCounts:
    """Records per (dataset, language), added one record at a time; datasets and languages in order of first
    appearance."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, record: dict[str, Any]) -> None:
        for lang in record["texts"]:
            self.counts[record["dataset"]][lang] += 1

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {dataset: dict(per_lang) for dataset, per_lang in self.counts.items()}


def language_counts(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts = LanguageCounts()
    for record in records:
        counts.add(record)
    return counts.as_dict()


def dataset_summary(source_manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What the translated manifest records of each source dataset: its language coverage, query style and
    description, and for a paper corpus its origin and role."""
    return {name: {key: value for key, value in info.items()
                   if key in ("multilingual", "origin", "role", "query_style", "description")}
            for name, info in source_manifest["datasets"].items()}


def in_rounds(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last may be shorter), read one list at a time."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def placed_examples(source: LoadedSource, plan: LanguagePlan,
                    seed: int) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    """The training and validation examples of ``source`` in file order, training first, as ``(split, example,
    languages)``: the training languages of ``plan`` the example exists in (:func:`training_presence`; validation
    stays fully parallel). What the translate stage translates, and the translate-pair stage selects from."""
    presence = {"train": training_presence(source, plan, seed),
                "val": Presence(plan.source, frozenset(source.multilingual_datasets), {})}
    for split, examples in (("train", source.train()), ("val", source.val())):
        for example in examples:
            yield split, example, presence[split].languages(example, plan.train)


def _translated_rounds(source: LoadedSource, plan: LanguagePlan, translator: Translator,
                       seed: int) -> Iterator[tuple[list[tuple[str, dict[str, Any]]], Optional[TextBank]]]:
    """The training and validation examples of ``source`` (in file order, training first) translated for ``plan``
    in rounds of :data:`CHUNK_EXAMPLES`: per round its ``(split, record)`` pairs, and its TextBank if the round
    translated the evaluation set too (the last one does, when ``plan`` has evaluation languages)."""
    evaluation = [("eval", None, None)] if plan.eval else []
    for items in in_rounds(chain(placed_examples(source, plan, seed), evaluation), CHUNK_EXAMPLES):
        bank = TextBank(plan.source)
        placed = [item for item in items if item[0] != "eval"]
        # Per language: training, then validation, then evaluation texts, so one round is one call with all of them.
        for lang in plan.train:
            bank.need(lang, [example[f] for _, example, present in placed if lang in present for f in TEXT_FIELDS])
        with_eval = len(placed) < len(items)
        for lang in plan.eval if with_eval else ():
            bank.need(lang, _eval_texts(source.eval_articles))
        bank.translate_all(translator)
        yield [(split, _example_record(example, present, bank)) for split, example, present in placed], \
            bank if with_eval else None


def write_translated_corpus(out_dir: Path, source: LoadedSource, plan: LanguagePlan, translator: Translator,
                            seed: int, backend: dict[str, Any],
                            langid: Optional[OutputSamples] = None) -> dict[str, Any]:
    """Translate ``source`` for ``plan`` and write every output file under ``out_dir``; return the manifest.
    ``langid``, when given, collects the language check's samples of every translated text as it is written.

    The training and validation examples are translated and written in rounds (:func:`_translated_rounds`), the
    evaluation set with the last; then the released records are passed through to ``train.jsonl`` one at a
    time. Memory holds one round (its source examples, their translations in every language and its distinct
    source texts), the evaluation set, the ids of the multilingual datasets when a low-resource share is drawn
    (:func:`training_presence`), the language check's samples and the counts: it does not grow with the released
    records nor with the source-only datasets.
    """
    counts = {"train": LanguageCounts(), "val": LanguageCounts()}
    eval_counts: dict[str, dict[str, int]] = {}
    total = sum(sum(per_dataset.values()) for per_dataset in source.split_counts.values())
    with ExitStack() as stack:
        files = {split: stack.enter_context(atomic_output_file(out_dir / f"{split}.jsonl")) for split in counts}

        def write(split: str, record: dict[str, Any]) -> None:
            files[split].write(jsonl_line(record))
            counts[split].add(record)

        progress = stack.enter_context(tqdm(total=total, desc="translate", unit="example"))
        for records, eval_bank in _translated_rounds(source, plan, translator, seed):
            for split, record in records:
                write(split, record)
                if langid is not None:  # the rounds hold machine-translated datasets only, never released ones
                    for lang, fields in record["texts"].items():
                        if lang != plan.source:
                            langid.add(record["dataset"], lang, [fields[f] for f in TEXT_FIELDS])
            if eval_bank is not None:
                eval_counts = _write_eval(out_dir, source, plan, eval_bank, langid)
            progress.update(len(records))
        for record in source.released():
            kept = in_languages(record, plan.train)
            if kept is not None:
                write("train", kept)

    manifest = {
        "source_kind": source.kind,
        "backend": backend,
        "seed": seed,
        "languages": {"source": plan.source, "train": list(plan.train), "eval": list(plan.eval),
                      "eval_only": list(plan.eval_only), "low_resource": plan.low_resource},
        "datasets": dataset_summary(source.manifest),
        "counts": {
            "train": counts["train"].as_dict(),
            "val": counts["val"].as_dict(),
            "eval": {source.eval_dataset: eval_counts} if source.eval_dataset else {},
        },
        "files": manifest_files(out_dir),
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def _write_eval(out_dir: Path, source: LoadedSource, plan: LanguagePlan, bank: TextBank,
                langid: Optional[OutputSamples]) -> dict[str, dict[str, int]]:
    """Write the evaluation set in every evaluation language; return its counts per language."""
    eval_counts = {}
    for lang in plan.eval:
        document = xquad_document(source.eval_articles, lang, bank.get(lang))
        write_json(out_dir / "eval" / source.eval_dataset / f"{lang}.json", document)
        paragraphs = [p for article in document["data"] for p in article["paragraphs"]]
        eval_counts[lang] = {"questions": sum(len(p["qas"]) for p in paragraphs),
                             "candidates": sum(len(p["sentences"]) for p in paragraphs)}
        if langid is not None and lang != plan.source:
            for paragraph in paragraphs:
                langid.add(source.eval_dataset, lang, paragraph["sentences"] + [qa["question"] for qa in paragraph["qas"]])
    return eval_counts

"""Training examples from ``data/translated/{train,val}.jsonl`` and the texts of a sampled batch.

Each line is ``{"id", "question_id", "dataset", "positive_id", "negative_id", "texts": {lang: {"query",
"positive", "negative"}}}``; the passage ids are shared by all translations of a passage.
A batch item ``TripletRef(e, ql, pl)`` becomes the query of example ``e`` in language ``ql`` and its
positive and negative passages in language ``pl``.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch
from torch import Tensor

from hybrid_repro.data.jsonl import read_jsonl
from hybrid_repro.data.translated_corpus import TEXT_FIELDS
from hybrid_repro.errors import HybridReproError
from hybrid_repro.training.sampler import Batch, ExampleMeta, HybridBatchSampler


@dataclass(frozen=True)
class TrainingExample:
    """One question with its positive and hard-negative passage, in every language it exists in."""

    id: str
    question_id: str
    dataset: str
    positive_id: str
    negative_id: str
    texts: Mapping[str, Mapping[str, str]]

    def meta(self) -> ExampleMeta:
        return ExampleMeta(question_id=self.question_id, dataset=self.dataset, languages=frozenset(self.texts))


def read_training_examples(path: str | os.PathLike) -> list[TrainingExample]:
    """Every example of a translated JSONL split, checked field by field."""
    records = read_jsonl(path)
    if not records:
        raise HybridReproError(f"{path} holds no examples: re-run the translate stage")
    return [_example(record, f"{path} line {number}") for number, record in enumerate(records, start=1)]


def _example(record: dict, where: str) -> TrainingExample:
    for key in ("id", "question_id", "dataset", "positive_id", "negative_id"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise HybridReproError(f"{where}: '{key}' must be a non-empty string; re-run the translate stage")
    texts = record.get("texts")
    if not isinstance(texts, dict) or not texts:
        raise HybridReproError(f"{where}: 'texts' must map at least one language to its texts")
    for lang, fields in texts.items():
        if not isinstance(fields, dict) or any(not isinstance(fields.get(f), str) for f in TEXT_FIELDS):
            raise HybridReproError(f"{where}: texts[{lang!r}] must hold the strings {', '.join(TEXT_FIELDS)}")
    return TrainingExample(record["id"], record["question_id"], record["dataset"], record["positive_id"],
                           record["negative_id"], {lang: {f: fields[f] for f in TEXT_FIELDS} for lang, fields in texts.items()})


def corpus_texts(examples: Sequence[TrainingExample]) -> Iterator[str]:
    """Every text of every example: what the scratch tokenizer is learned from."""
    for example in examples:
        for fields in example.texts.values():
            for field in TEXT_FIELDS:
                yield fields[field]


@dataclass(frozen=True)
class TripletTexts:
    """The texts of one batch, and per triplet integer identities of its two passages (for false-negative masks).

    A passage identity is language-independent: a passage and its translations share it.
    """

    queries: list[str]
    positives: list[str]
    negatives: list[str]
    positive_ids: list[int]
    negative_ids: list[int]

    def __len__(self) -> int:
        return len(self.queries)

    def loss_ids(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(query_ids, passage_ids)`` for the passage layout ``[positives; negatives]``.

        A query carries the identity of its positive passage and every passage its own, so the loss
        (``info_nce_reference`` rule (a)) excludes from row i every other column holding row i's answer: the
        same passage as another triplet's positive, or a hard negative that is its translation.
        """
        query_ids = torch.tensor(self.positive_ids, dtype=torch.long, device=device)
        return query_ids, torch.tensor(self.positive_ids + self.negative_ids, dtype=torch.long, device=device)

    def false_negatives(self, positives_as_negatives: bool) -> int:
        """How many (query, passage column) pairs the mask removes: columns other than a row's positive
        that hold that row's answer. Positive columns count only when they serve as negatives."""
        answers = Counter(self.positive_ids)
        from_negatives = sum(answers[identity] for identity in self.negative_ids)
        from_positives = sum(count * (count - 1) for count in answers.values()) if positives_as_negatives else 0
        return from_negatives + from_positives


class TripletLookup:
    """Turns sampled batches of ``TripletRef`` into texts."""

    def __init__(self, examples: Sequence[TrainingExample]):
        self.examples = examples
        identities = sorted({e.positive_id for e in examples} | {e.negative_id for e in examples})
        self.passage_index = {identity: i for i, identity in enumerate(identities)}

    def __call__(self, batch: Batch) -> TripletTexts:
        queries, positives, negatives, positive_ids, negative_ids = [], [], [], [], []
        for item in batch.items:
            example = self.examples[item.example]
            try:
                query_side, passage_side = example.texts[item.query_lang], example.texts[item.passage_lang]
            except KeyError as exc:
                raise HybridReproError(f"example {example.id} has no text in language {exc.args[0]!r}, "
                                       "but the sampler chose it; the data and the sampler disagree") from exc
            queries.append(query_side["query"])
            positives.append(passage_side["positive"])
            negatives.append(passage_side["negative"])
            positive_ids.append(self.passage_index[example.positive_id])
            negative_ids.append(self.passage_index[example.negative_id])
        return TripletTexts(queries, positives, negatives, positive_ids, negative_ids)


def validation_batches(examples: Sequence[TrainingExample], *, batch_size: int, mono_probability: float,
                       languages: Sequence[str], dataset_mixing: str, seed: int) -> list[TripletTexts]:
    """Fixed validation batches in ``languages``: the sampler's epochs 0 .. L-1 over ``examples``, L = len(languages).

    Within one epoch each example appears at most once, in one language; L epochs show the
    validation set about once per language. The batches depend only on the arguments.
    """
    sampler = HybridBatchSampler([example.meta() for example in examples], batch_size=batch_size,
                                 mono_probability=mono_probability, train_languages=languages,
                                 dataset_mixing=dataset_mixing, seed=seed)
    lookup = TripletLookup(examples)
    return [lookup(batch) for epoch in range(len(set(languages))) for batch in sampler.epoch_batches(epoch)]

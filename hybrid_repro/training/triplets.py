"""Training examples from ``data/translated/{train,val}.jsonl`` and the texts of a sampled batch.

Each line is ``{"id", "question_id", "dataset", "positive_id", "negative_id", "texts": {lang: {"query",
"positive", "negative"}}}``; the passage ids are shared by all translations of a passage.
A batch item ``TripletRef(e, ql, pl)`` becomes the query of example ``e`` in language ``ql`` and its
positive and negative passages in language ``pl``.
"""

from __future__ import annotations

import io
import os
import sys
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Mapping, Sequence, overload

import numpy as np
import torch
from torch import Tensor

from hybrid_repro.data.jsonl import jsonl_line, parse_line
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


class TrainingExamples(Sequence[TrainingExample]):
    """The examples of one translated JSONL split, their texts left in the file.

    Opening the split reads it once: every line is checked field by field, and only what the sampler and the
    loss need stays in memory (per example its :class:`ExampleMeta`, the byte offset of its line and integer
    identities of its two passages). ``examples[i]`` reads line ``i`` back, so a batch costs one read per
    triplet and memory does not grow with the length or the number of translations of the texts: the paper's
    corpus holds about 250 GB of text. Lines are split on ``\\n`` only; a text may hold U+2028 or U+0085,
    which JSON leaves unescaped and :meth:`str.splitlines` would cut.
    """

    def __init__(self, handle: BinaryIO, name: str):
        self._handle, self.name = handle, name
        metas: list[ExampleMeta] = []
        # Machine integers while reading (8 bytes each, not a Python int object apiece), numpy arrays after.
        offsets, positives, negatives = array("q"), array("q"), array("q")
        identities: dict[str, int] = {}
        language_sets: dict[frozenset[str], frozenset[str]] = {}
        handle.seek(0)
        offset = 0
        for number, line in enumerate(handle, start=1):
            example = _example(parse_line(line, name, number), f"{name} line {number}")
            languages = frozenset(example.texts)
            # One object per distinct question, dataset and language set, not one per example: mMARCO's 39.8M
            # triples ask about 0.8M questions.
            metas.append(ExampleMeta(sys.intern(example.question_id), sys.intern(example.dataset),
                                     language_sets.setdefault(languages, languages)))
            positives.append(identities.setdefault(example.positive_id, len(identities)))
            negatives.append(identities.setdefault(example.negative_id, len(identities)))
            offsets.append(offset)
            offset += len(line)
        if not offsets:
            raise HybridReproError(f"{name} holds no examples: re-run the translate stage")
        self.metas = metas
        self.offsets = np.frombuffer(offsets, dtype=np.int64)
        self.positive_ids = np.frombuffer(positives, dtype=np.int64)
        """The loss's identity of each example's positive passage: equal for a passage and its translations."""
        self.negative_ids = np.frombuffer(negatives, dtype=np.int64)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "TrainingExamples":
        """The examples of the JSONL split at ``path``, which stays open to read the texts from."""
        path = Path(path)
        if not path.is_file():
            raise HybridReproError(f"{path} does not exist: re-run the translate stage")
        handle = path.open("rb")
        try:
            return cls(handle, str(path))
        except BaseException:
            handle.close()
            raise

    @classmethod
    def from_records(cls, records: Iterable[Mapping], name: str = "records") -> "TrainingExamples":
        """Examples held in memory, encoded as the split's lines would be."""
        lines = "".join(jsonl_line(record) for record in records).encode()
        return cls(io.BytesIO(lines), name)

    def __len__(self) -> int:
        return len(self.offsets)

    def __enter__(self) -> "TrainingExamples":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the split's file; the examples' texts cannot be read after this."""
        self._handle.close()

    @overload
    def __getitem__(self, index: int) -> TrainingExample: ...

    @overload
    def __getitem__(self, index: slice) -> list[TrainingExample]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        self._handle.seek(int(self.offsets[index]))
        number = index % len(self) + 1
        return _example(parse_line(self._handle.readline(), self.name, number), f"{self.name} line {number}")


def read_training_examples(path: str | os.PathLike) -> TrainingExamples:
    """Every example of a translated JSONL split, checked field by field; texts are read when used."""
    return TrainingExamples.open(path)


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


def corpus_texts(examples: Iterable[TrainingExample]) -> Iterator[str]:
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

    def __init__(self, examples: TrainingExamples):
        self.examples = examples

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
            positive_ids.append(int(self.examples.positive_ids[item.example]))
            negative_ids.append(int(self.examples.negative_ids[item.example]))
        return TripletTexts(queries, positives, negatives, positive_ids, negative_ids)


def validation_batches(examples: TrainingExamples, *, batch_size: int, mono_probability: float,
                       languages: Sequence[str], dataset_mixing: str, seed: int) -> list[TripletTexts]:
    """Fixed validation batches in ``languages``: the sampler's epochs 0 .. L-1 over ``examples``, L = len(languages).

    Within one epoch each example appears at most once, in one language; L epochs show the
    validation set about once per language. The batches depend only on the arguments.
    """
    sampler = HybridBatchSampler(examples.metas, batch_size=batch_size,
                                 mono_probability=mono_probability, train_languages=languages,
                                 dataset_mixing=dataset_mixing, seed=seed)
    lookup = TripletLookup(examples)
    return [lookup(batch) for epoch in range(len(set(languages))) for batch in sampler.epoch_batches(epoch)]
